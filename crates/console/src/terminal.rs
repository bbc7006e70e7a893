//! The terminal guard: raw mode, the alternate screen, mouse reporting and bracketed paste
//! while the console runs, and the terminal as it was afterwards: on a normal exit, on an
//! error (the guard is dropped), on a panic (the hook restores before the message is
//! printed, or the message would vanish with the alternate screen) and on SIGTERM or SIGHUP
//! (the runtime turns them into a quit, and the guard is dropped on the way out).

use crossterm::cursor::Show;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

pub type Screen = ratatui::Terminal<CrosstermBackend<Stdout>>;

/// Whether the terminal is in the console's modes now; the panic hook reads it, so a panic
/// elsewhere in the process (before or after the console) leaves the terminal alone.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

pub struct Guard {
    pub screen: Screen,
}

impl Guard {
    pub fn enter() -> io::Result<Guard> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = io::stdout();
        if let Err(e) = crossterm::execute!(
            out,
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        ) {
            restore();
            return Err(e);
        }
        let screen = match ratatui::Terminal::new(CrosstermBackend::new(out)) {
            Ok(s) => s,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        Ok(Guard { screen })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves every mode the console entered, once (`ACTIVE`), whichever of the drop and the
/// panic hook comes first. Each step is tried even if one before failed: a
/// terminal half restored is worse than one with a step missing.
fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = io::stdout();
    let _ = crossterm::execute!(
        out,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        Show
    );
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Whether the terminal is still in the console's modes: false once a panic (in any task)
/// has restored it, after which the console must stop drawing.
pub fn still_ours() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Whether standard input and output are both a terminal: the console needs both (keys in,
/// frames out).
pub fn is_interactive() -> bool {
    use std::io::IsTerminal;
    io::stdin().is_terminal() && io::stdout().is_terminal()
}
