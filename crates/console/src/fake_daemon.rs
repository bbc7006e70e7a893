//! For the console's tests: a daemon that answers windows from a list of connections held
//! in the test's thread, with the service's own filter and sort, so `update` can be driven
//! message by message as the runtime drives it.

use crate::app::{update, App};
use crate::event::{Cmd, Msg};
use crate::filter::Filter;
use chrono::{DateTime, Utc};
use qbo_service::{Condition, ConnectionView, WindowPage, WindowQuery};
use std::cell::RefCell;

thread_local! {
    static WORLD: RefCell<Vec<ConnectionView>> = const { RefCell::new(Vec::new()) };
}

/// The connections the fake daemon holds from now on.
pub fn hold(rows: Vec<ConnectionView>) {
    WORLD.with(|w| *w.borrow_mut() = rows);
}

/// A window of what the fake daemon holds, as the real one would answer it.
pub fn answer(q: &WindowQuery, now: DateTime<Utc>) -> WindowPage {
    WORLD.with(|w| {
        let rows = w.borrow();
        let (filter, error) = Filter::parse_lenient(&q.filter);
        let mut hits: Vec<&ConnectionView> =
            rows.iter().filter(|c| filter.matches(c, now)).collect();
        hits.sort_by(|a, b| q.sort.compare(*a, *b));
        let counts = Condition::ALL
            .into_iter()
            .map(|s| (s, rows.iter().filter(|c| c.condition() == s).count() as u64))
            .collect();
        WindowPage {
            total: rows.len() as u64,
            counts,
            matching: hits.len() as u64,
            offset: q.offset,
            rows: hits
                .iter()
                .skip(q.offset as usize)
                .take(q.rows as usize)
                .map(|c| (*c).clone())
                .collect(),
            selected_at: q
                .selected
                .and_then(|id| hits.iter().position(|c| c.id == id))
                .map(|p| p as u64),
            filter_error: error.map(|e| e.to_string()),
        }
    })
}

/// `update`, with every window it asks for answered at once and changes told to the fake
/// daemon first (as the real one commits before it tells); the other commands come back.
pub fn drive(app: &mut App, msg: Msg) -> Vec<Cmd> {
    WORLD.with(|w| {
        let mut rows = w.borrow_mut();
        match &msg {
            Msg::Changed(c) => match rows.iter_mut().find(|r| r.id == c.id) {
                Some(r) => *r = c.clone(),
                None => rows.push(c.clone()),
            },
            Msg::Removed(id) => rows.retain(|r| r.id != *id),
            _ => {}
        }
    });
    let mut out = Vec::new();
    let mut queue = vec![msg];
    while let Some(m) = queue.pop() {
        for cmd in update(app, m) {
            match cmd {
                Cmd::Window(query) => {
                    let page = answer(&query, app.now);
                    queue.push(Msg::Window { query, page });
                }
                other => out.push(other),
            }
        }
    }
    out
}

/// An app that has heard the daemon's hello and holds `rows` through the fake daemon.
pub fn open(app: &mut App, rows: Vec<ConnectionView>) {
    hold(rows);
    let rest = drive(app, Msg::FeedOpen);
    assert!(rest.is_empty(), "{rest:?}");
}
