//! What reaches the console ([`Msg`]) and what it asks for ([`Cmd`]). Both are plain data:
//! the runtime turns the terminal, the daemon's feed and each command's result into
//! messages, and carries out the commands; `app::update` only reads one and returns the
//! other.

use crate::service::{
    AuditRecord, ConnectionDetail, ConnectionView, Environment, RefreshReport, Role, VerifyReport,
};
use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};

/// Ties a reply to the command that asked for it.
pub type RequestId = u64;

/// Who is at the keyboard and what the daemon is doing, from the feed's hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: String,
    pub role: Role,
    /// In process (`--embedded`) rather than through the daemon's socket.
    pub embedded: bool,
    pub scheduler_running: bool,
    pub paused: Vec<Environment>,
    /// The demo, whose clock the operator may move.
    pub demo: bool,
}

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Once a second, and whenever the clock moved (the demo's hour key).
    Tick(DateTime<Utc>),
    Resize(u16, u16),
    Session(Session),
    /// The full table (at start, and again after the feed missed changes).
    Listed(Vec<ConnectionView>),
    /// One connection changed, as the daemon committed it.
    Changed(ConnectionView),
    Removed(i64),
    /// The feed dropped this many changes: the table must be listed again.
    Missed(u64),
    Reply {
        request: RequestId,
        result: Result<Done, String>,
    },
    Detail(ConnectionDetail),
    /// A page of the audit log, newest first.
    AuditPage(Vec<AuditRecord>),
    /// The daemon went away; the text says why and what to do.
    Disconnected(String),
}

/// What a finished action reports: each connection's own outcome.
#[derive(Debug, Clone)]
pub enum Done {
    Refreshed(Vec<RefreshReport>),
    Verified(Vec<VerifyReport>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    List,
    Show(i64),
    Refresh {
        request: RequestId,
        ids: Vec<i64>,
    },
    Verify {
        request: RequestId,
        ids: Vec<i64>,
    },
    /// Audit events older than `before` (a sequence number), newest first.
    AuditPage {
        before: Option<i64>,
        limit: usize,
    },
    AdvanceClock,
    Quit,
}
