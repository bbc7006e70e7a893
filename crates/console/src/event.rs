//! What reaches the console ([`Msg`]) and what it asks for ([`Cmd`]). Both are plain data:
//! the runtime turns the terminal, the daemon's feed and each command's result into
//! messages, and carries out the commands; `app::update` only reads one and returns the
//! other.

use crate::table::Targets;
use crate::ConsoleError;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};
use qbo_service::{
    AuditQuery, AuditRecord, ConnectionDetail, ConnectionView, Environment, RefreshReport,
    RevokeReport, Role, VerifyReport, WindowPage, WindowQuery,
};

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
    /// Text pasted into the terminal (bracketed paste): typed into an open line, ignored
    /// elsewhere, so a paste can never act as a string of keys.
    Paste(String),
    Session(Session),
    /// The live feed is open (the daemon said hello): windows may be asked for.
    FeedOpen,
    /// The daemon's answer to a window the table asked for.
    Window {
        query: WindowQuery,
        page: WindowPage,
    },
    /// A window could not be had; the text says why.
    WindowFailed(String),
    /// One connection changed, as the daemon committed it.
    Changed(ConnectionView),
    Removed(i64),
    /// The feed dropped this many changes: the window must be asked for again.
    Missed(u64),
    /// The daemon's scheduler started, stopped or paused an environment.
    Scheduler(qbo_core::domain::SchedulerState),
    Reply {
        request: RequestId,
        result: Result<Done, ConsoleError>,
    },
    Detail(ConnectionDetail),
    /// A page of the audit log, newest first, and the query it answers (a page for a
    /// filter no longer in force is dropped).
    AuditPage {
        query: AuditQuery,
        events: Vec<AuditRecord>,
        /// Where the next older page starts (`None`: nothing older).
        next_before_seq: Option<i64>,
    },
    /// The daemon went away; the text says why and what to do.
    Disconnected(String),
    /// The daemon refused the console outright (the account has no role); the text says
    /// who can change that. Nothing is asked again.
    Refused(String),
    /// A request other than an action failed (a list, a detail, a page of the audit log);
    /// the text says why.
    Failed(String),
    /// The demo's clocks moved; the text says to when.
    ClockMoved(String),
    /// The forecast and the last alerts, for the forecast view.
    Forecast(qbo_service::Forecast),
    /// The newest reconnect campaigns, for the campaigns view.
    Campaigns(Vec<qbo_service::CampaignView>),
    /// A reconnect link was made for `tenant` (or why not).
    Linked {
        tenant: String,
        result: Result<qbo_service::IssuedLink, ConsoleError>,
    },
    /// A support bundle was written; the text says where.
    BundleWritten(String),
    /// An export is written; the text says where, with its manifest.
    Exported(String),
}

/// What a finished action reports: each connection's own outcome.
#[derive(Debug, Clone)]
pub enum Done {
    Refreshed(Vec<RefreshReport>),
    Verified(Vec<VerifyReport>),
    Revoked(Vec<RevokeReport>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Ask the daemon for this window (the latest asked replaces one not yet sent).
    Window(WindowQuery),
    Show(i64),
    Refresh {
        request: RequestId,
        targets: Targets,
    },
    Verify {
        request: RequestId,
        targets: Targets,
    },
    /// Only ever sent after the operator typed the realm id or the count.
    Revoke {
        request: RequestId,
        targets: Targets,
    },
    /// A page of audit events, newest first: older than `query.before_seq`, narrowed by
    /// the audit filter's field terms.
    AuditPage(AuditQuery),
    /// Write a support bundle for this connection to a file in the current directory.
    SupportBundle(i64),
    /// Export the audit view's filter (as JSON lines, with the manifest beside it).
    Export(qbo_service::ExportFilter),
    AdvanceClock,
    /// The demo's emulator: start an outage of Intuit's production token endpoint, or end it.
    DemoIncident,
    /// The forecast over `[forecast] days`, with the last alerts.
    Forecast,
    /// The newest reconnect campaigns with their counts.
    Campaigns,
    /// Make a reconnect link for this connection.
    Link(i64),
    /// Put this text on the operator's clipboard (OSC 52, through tmux when inside it).
    Clipboard(String),
    Quit,
}
