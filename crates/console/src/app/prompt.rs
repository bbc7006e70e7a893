//! The filter and command lines: typing into them, and what the filter line applies.

use super::{App, PromptKind, Screen, Tone};
use crate::filter::Filter;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_input::InputRequest;

pub(super) fn type_into_prompt(app: &mut App, k: KeyEvent) {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let req = match k.code {
        KeyCode::Char('w') if ctrl => InputRequest::DeletePrevWord,
        KeyCode::Char('u') if ctrl => InputRequest::DeleteLine,
        KeyCode::Char('a') if ctrl => InputRequest::GoToStart,
        KeyCode::Char('e') if ctrl => InputRequest::GoToEnd,
        KeyCode::Char(c) if !ctrl => InputRequest::InsertChar(c),
        KeyCode::Backspace => InputRequest::DeletePrevChar,
        KeyCode::Delete => InputRequest::DeleteNextChar,
        KeyCode::Left => InputRequest::GoToPrevChar,
        KeyCode::Right => InputRequest::GoToNextChar,
        KeyCode::Home => InputRequest::GoToStart,
        KeyCode::End => InputRequest::GoToEnd,
        _ => return,
    };
    let Some(prompt) = app.prompt.as_mut() else {
        return;
    };
    let changed = prompt.input.handle(req).is_some_and(|c| c.value);
    if changed && prompt.kind == PromptKind::Filter {
        let text = prompt.input.value().to_string();
        apply_filter(app, &text);
    }
}

/// A paste goes into the line as text: control characters (a pasted newline) are left out,
/// and the filter is applied once for the whole paste.
pub(super) fn paste_into_prompt(app: &mut App, text: &str) {
    let Some(prompt) = app.prompt.as_mut() else {
        return;
    };
    let mut changed = false;
    for c in text.chars().filter(|c| !c.is_control()) {
        changed |= prompt
            .input
            .handle(InputRequest::InsertChar(c))
            .is_some_and(|c| c.value);
    }
    if changed && prompt.kind == PromptKind::Filter {
        let text = prompt.input.value().to_string();
        apply_filter(app, &text);
    }
}

/// Filters as typed. A term that does not parse is left out of the filter and explained on
/// the filter line.
pub(super) fn apply_filter(app: &mut App, text: &str) {
    if app.screen == Screen::Audit {
        app.audit.set_filter(text);
        return;
    }
    app.filter_text = text.to_string();
    let (filter, error) = Filter::parse_lenient(text);
    app.filter_error = error.map(|e| e.to_string());
    app.table.set_filter(text, filter);
}

pub(super) fn report_filter_error(app: &mut App) {
    let error = match app.screen {
        Screen::Audit => app.audit.filter_error.clone(),
        _ => app.filter_error.clone(),
    };
    if let Some(e) = error {
        app.say(Tone::Error, e);
    }
}
