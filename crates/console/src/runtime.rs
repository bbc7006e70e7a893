//! The one event loop. It waits on the terminal, a one-second tick, SIGTERM and SIGHUP, and
//! one channel on which the live feed and every finished command post their messages; it
//! hands each message to `app::update`, spawns the commands that come back (each its own
//! task, so the screen never waits on the daemon), and, once nothing more is queued, draws
//! at most one frame. Nothing changes and nothing is drawn between ticks when no message
//! arrives, so an idle console costs one frame a second.

use crate::app::{self, App};
use crate::event::{Cmd, Done, Msg, Session};
use crate::keymap::{refusal, Action, Keymap};
use crate::table::Targets;
use crate::terminal::{self, Guard};
use crate::theme::Theme;
use crate::ConsoleError;
use crate::{views, ConsoleOptions};
use chrono::{DateTime, Utc};
use crossterm::event::{Event, EventStream, MouseEventKind};
use futures_util::{Stream, StreamExt};
use qbo_service::{
    Client, ClientError, RevokeRequest, Role, Selection, SessionEvent, WatchEvent, WindowQuery,
};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{self, UnboundedSender};

/// How long the console waits for the daemon to record it closed before giving up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The forecast risks the console asks for: the soonest, a few screens' worth; the view
/// says how many more there are.
const FORECAST_SHOWN: u32 = 1000;

pub(super) async fn run(
    client: Arc<dyn Client>,
    opts: ConsoleOptions,
    keymap: Keymap,
    theme: Theme,
) -> anyhow::Result<()> {
    // Signals are set up before the terminal changes: if that fails, nothing to restore.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut guard = Guard::enter()?;
    let size = guard.screen.size()?;
    let clock = Clock(opts.demo.clone());
    let session = Session {
        account: String::new(),
        // Until the daemon's hello says otherwise, the console offers nothing it may refuse.
        role: Role::Unmapped,
        embedded: opts.embedded,
        // Until the hello says what the daemon's scheduler is doing, the header says
        // "connecting" rather than anything about it.
        scheduler_running: true,
        paused: Vec::new(),
        demo: opts.demo.is_some(),
    };
    let mut app = App::new(session, keymap, clock.now(), (size.width, size.height));
    if let Some(text) = opts.demo.as_ref().and_then(|d| d.greeting()) {
        app.message = Some(crate::app::Message {
            tone: crate::app::Tone::Info,
            text,
        });
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opened = Arc::new(AtomicBool::new(false));
    let feed = tokio::spawn(follow(
        client.clone(),
        app.session.clone(),
        opened.clone(),
        tx.clone(),
    ));
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Every command's task holds a clone of `in_flight`; once the runner's own is dropped,
    // `settled` ends when the last of them has.
    let (in_flight, mut settled) = mpsc::channel::<()>(1);
    let (windows, asked) = tokio::sync::watch::channel(None);
    let window_worker = tokio::spawn(answer_windows(client.clone(), asked, tx.clone()));
    let runner = Runner {
        client: client.clone(),
        demo: opts.demo.clone(),
        tx,
        in_flight,
        windows,
    };
    let mut dirty = true;
    let outcome: anyhow::Result<()> = 'outer: loop {
        if dirty {
            let now = clock.now();
            if let Err(e) = guard
                .screen
                .draw(|f| views::draw(&app, &theme, now, f, f.area()))
            {
                break Err(e.into());
            }
            dirty = false;
        }
        let first = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => match from_terminal(ev) {
                    Some(m) => m,
                    None => continue,
                },
                Some(Err(e)) => break Err(e.into()),
                // The terminal is gone: nobody is left to quit.
                None => break Ok(()),
            },
            Some(m) = rx.recv() => m,
            _ = tick.tick() => Msg::Tick(clock.now()),
            _ = sigterm.recv() => break Ok(()),
            _ = sighup.recv() => break Ok(()),
        };
        // Everything already queued is handled before the next frame: a burst of keys (a
        // held arrow, a paste) or of changes costs one draw, not one each.
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        loop {
            match ready_key(&mut events).await {
                Ok(Some(m)) => batch.push(m),
                Ok(None) => break,
                Err(e) => break 'outer Err(e.into()),
            }
        }
        for msg in batch {
            for cmd in app::update(&mut app, msg) {
                if cmd == Cmd::Quit {
                    break 'outer Ok(());
                }
                runner.spawn(cmd, &app);
            }
            dirty = true;
        }
        if !terminal::still_ours() {
            // A panic elsewhere restored the terminal and printed its message: drawing on
            // would scribble over both.
            break Err(anyhow::anyhow!(
                "the console stopped after an internal error (the message is above); please report it"
            ));
        }
    };
    feed.abort();
    window_worker.abort();
    drop(guard);
    // Requests already sent are answered (and recorded) before the session's close is, so
    // the audit log never shows a read after the console closed; one the daemon takes too
    // long over is not waited for.
    // Both within the one bound: the requests in hand get half of it, the close the rest.
    let started = tokio::time::Instant::now();
    let deadline = started + CLOSE_TIMEOUT;
    drop(runner);
    let _ = tokio::time::timeout_at(started + CLOSE_TIMEOUT / 2, settled.recv()).await;
    if opened.load(Ordering::SeqCst) {
        // Best effort: the daemon may be gone already, and the operator wants their shell.
        let _ = tokio::time::timeout_at(deadline, client.session(SessionEvent::Closed)).await;
    }
    outcome
}

/// Asks the daemon for windows one at a time, always the latest asked: while one is on its
/// way, the windows asked after it (a filter typed key by key, a held arrow) collapse into
/// the last, so the daemon answers what the screen needs now, not every step to it.
async fn answer_windows(
    client: Arc<dyn Client>,
    mut asked: tokio::sync::watch::Receiver<Option<WindowQuery>>,
    tx: UnboundedSender<Msg>,
) {
    while asked.changed().await.is_ok() {
        let Some(query) = asked.borrow_and_update().clone() else {
            continue;
        };
        let msg = match client.window(query.clone()).await {
            Ok(page) => Msg::Window { query, page },
            Err(e @ ClientError::Denied { .. }) => Msg::Refused(format!(
                "{e}; ask an admin to give your account a role in [roles] of the daemon's configuration"
            )),
            Err(e) => Msg::WindowFailed(format!("cannot read the connections: {e}")),
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// The console's time: the demo's clock when it runs in the demo, else the system's.
struct Clock(Option<Arc<dyn crate::DemoControl>>);

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Some(d) => d.now(),
            None => Utc::now(),
        }
    }
}

/// A terminal event already waiting, without waiting for one. Polled with this task's own
/// waker: crossterm's stream keeps the first waker it is given until an event arrives, so a
/// throwaway waker here would leave the next key unheard until the tick.
async fn ready_key(events: &mut EventStream) -> std::io::Result<Option<Msg>> {
    loop {
        let polled = poll_fn(|cx| Poll::Ready(Pin::new(&mut *events).poll_next(cx))).await;
        match polled {
            Poll::Ready(Some(Ok(ev))) => {
                if let Some(m) = from_terminal(ev) {
                    return Ok(Some(m));
                }
            }
            Poll::Ready(Some(Err(e))) => return Err(e),
            // Nothing waiting (or the end, which the next select sees again).
            Poll::Ready(None) | Poll::Pending => return Ok(None),
        }
    }
}

/// The terminal events the console reacts to. Mouse movement is dropped here: with mouse
/// reporting on, every motion is an event, and none of them changes anything.
fn from_terminal(ev: Event) -> Option<Msg> {
    match ev {
        Event::Key(k) => Some(Msg::Key(k)),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown | MouseEventKind::Down(_) => {
                Some(Msg::Mouse(m))
            }
            _ => None,
        },
        Event::Resize(w, h) => Some(Msg::Resize(w, h)),
        Event::Paste(text) => Some(Msg::Paste(text)),
        Event::FocusGained | Event::FocusLost => None,
    }
}

/// Carries out commands, each in its own task that posts its result back.
struct Runner {
    client: Arc<dyn Client>,
    demo: Option<Arc<dyn crate::DemoControl>>,
    tx: UnboundedSender<Msg>,
    /// Held by every command in flight (see `run`).
    in_flight: mpsc::Sender<()>,
    /// The window the table asked for last, for `answer_windows`.
    windows: tokio::sync::watch::Sender<Option<WindowQuery>>,
}

impl Runner {
    /// Runs a command's task, counted as in flight until it ends.
    fn track(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let held = self.in_flight.clone();
        tokio::spawn(async move {
            task.await;
            drop(held);
        });
    }

    fn spawn(&self, cmd: Cmd, app: &App) {
        let client = self.client.clone();
        let tx = self.tx.clone();
        match cmd {
            Cmd::Quit => {}
            Cmd::Window(q) => {
                self.windows.send_replace(Some(q));
            }
            Cmd::Show(id) => {
                let Some(target) = selector(app, id) else {
                    return;
                };
                self.track(async move {
                    let msg = match client.show(target).await {
                        Ok(d) => Msg::Detail(d),
                        Err(e) => Msg::Failed(explain(&e, "show")),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Refresh { request, targets } => {
                let selection = selection(app, targets);
                self.track(async move {
                    let result = client
                        .refresh(selection)
                        .await
                        .map(Done::Refreshed)
                        .map_err(|e| ConsoleError(explain(&e, "refresh")));
                    let _ = tx.send(Msg::Reply { request, result });
                });
            }
            Cmd::Verify { request, targets } => {
                let selection = selection(app, targets);
                self.track(async move {
                    let result = client
                        .verify(selection)
                        .await
                        .map(Done::Verified)
                        .map_err(|e| ConsoleError(explain(&e, "verify")));
                    let _ = tx.send(Msg::Reply { request, result });
                });
            }
            Cmd::Revoke { request, targets } => {
                let request_body = match selection(app, targets) {
                    Selection::Matching { filter, expect } => RevokeRequest {
                        filter: Some(filter),
                        expect,
                        ..RevokeRequest::default()
                    },
                    other => RevokeRequest {
                        targets: other.into_fields().0,
                        ..RevokeRequest::default()
                    },
                };
                self.track(async move {
                    let result = client
                        .revoke(request_body)
                        .await
                        .map(Done::Revoked)
                        .map_err(|e| ConsoleError(explain(&e, "revoke")));
                    let _ = tx.send(Msg::Reply { request, result });
                });
            }
            Cmd::Link(id) => {
                let (Some(target), Some(tenant)) = (
                    selector(app, id),
                    app.table.get(id).map(|c| c.tenant.clone()),
                ) else {
                    return;
                };
                self.track(async move {
                    let result = client
                        .link(qbo_service::LinkRequest {
                            target: Some(target),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| ConsoleError(explain(&e, "link issued")));
                    let _ = tx.send(Msg::Linked { tenant, result });
                });
            }
            Cmd::Clipboard(text) => {
                let inside_tmux = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
                let seq = super::clipboard::osc52(&text, inside_tmux);
                // Written between frames, straight to the terminal: it draws nothing.
                let mut out = std::io::stdout();
                let _ = std::io::Write::write_all(&mut out, seq.as_bytes())
                    .and_then(|()| std::io::Write::flush(&mut out));
            }
            Cmd::AuditPage(query) => {
                self.track(async move {
                    let msg = match client.audit_page(query.clone()).await {
                        Ok(page) => Msg::AuditPage {
                            query,
                            events: page.events,
                            next_before_seq: page.next_before_seq,
                        },
                        Err(e) => Msg::Failed(explain(&e, "audit")),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Forecast => {
                self.track(async move {
                    let msg = match client.forecast(None, Some(FORECAST_SHOWN)).await {
                        Ok(f) => Msg::Forecast(f),
                        Err(e) => Msg::Failed(explain(&e, "forecast")),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Campaigns => {
                self.track(async move {
                    let msg = match client.campaigns().await {
                        Ok(c) => Msg::Campaigns(c),
                        Err(e) => Msg::Failed(explain(&e, "campaigns")),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::SupportBundle(id) => {
                let Some(target) = selector(app, id) else {
                    return;
                };
                self.track(async move {
                    let msg = match client.support_bundle(target, None).await {
                        Ok(bundle) => match write_bundle(&bundle) {
                            Ok(said) => Msg::BundleWritten(said),
                            Err(why) => Msg::Failed(why.0),
                        },
                        Err(e) => Msg::Failed(explain(&e, "bundle")),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Export(filter) => {
                self.track(async move {
                    let format = qbo_service::ExportFormat::Jsonl;
                    let name = qbo_service::client::default_export_path(format, chrono::Utc::now());
                    // Said in full, so the operator finds the file whatever the directory.
                    let path = std::env::current_dir().map_or(name.clone(), |d| d.join(&name));
                    let msg = match qbo_service::client::export_to_file(
                        client.as_ref(),
                        filter,
                        format,
                        &path,
                        &mut |_| {},
                    )
                    .await
                    {
                        Ok(m) => Msg::Exported(format!(
                            "exported {} events to {} (signed manifest beside it: {})",
                            m.rows,
                            path.display(),
                            qbo_service::manifest_path(&path).display()
                        )),
                        Err(e) => Msg::Failed(explain(&e, "export")),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::DemoIncident => {
                let Some(demo) = self.demo.clone() else {
                    return;
                };
                self.track(async move {
                    let msg = match demo.toggle_incident().await {
                        Ok(said) => Msg::ClockMoved(said),
                        Err(e) => Msg::Failed(format!("cannot change the demo's outage: {e:#}")),
                    };
                    let _ = tx.send(msg);
                    let _ = tx.send(Msg::Tick(demo.now()));
                });
            }
            Cmd::AdvanceClock => {
                let Some(demo) = self.demo.clone() else {
                    return;
                };
                self.track(async move {
                    let msg = match demo.advance_clock().await {
                        Ok(said) => Msg::ClockMoved(said),
                        Err(e) => Msg::Failed(format!("cannot move the demo's clock: {e:#}")),
                    };
                    let _ = tx.send(msg);
                    // The countdowns and the day terms of the filter jump with the clock.
                    let _ = tx.send(Msg::Tick(demo.now()));
                });
            }
        }
    }
}

/// Writes a support bundle as Markdown to a new file in the current directory, named after
/// the connection and the time, and says where (the absolute path, to attach to a ticket).
fn write_bundle(bundle: &qbo_service::SupportBundle) -> Result<String, ConsoleError> {
    let c = &bundle.connection;
    let name = format!(
        "qbo-support-{}-{}-{}.md",
        c.environment.as_str(),
        c.realm_id,
        bundle.generated_at.format("%Y%m%dT%H%M%SZ")
    );
    let dir = std::env::current_dir()
        .map_err(|e| format!("cannot write a support bundle: no current directory ({e})"))?;
    let path = dir.join(name);
    qbo_service::write_owner_only(&path, &qbo_service::bundle_markdown(bundle)).map_err(|e| {
        format!(
            "cannot write the support bundle to {}: {e}; start the console in a writable directory",
            path.display()
        )
    })?;
    Ok(format!(
        "support bundle for {} written to {} ({} Intuit calls since {})",
        c.tenant,
        path.display(),
        bundle.intuit_calls.len(),
        bundle.since.format("%Y-%m-%d %H:%M UTC")
    ))
}

/// How the service finds a connection the table knows by id: its environment and realm id,
/// which name it exactly, whatever its tenant is called.
/// What an action is about, as the daemon names it: each connection by its selector, or
/// the filter with the count the operator confirmed.
fn selection(app: &App, targets: Targets) -> Selection {
    match targets {
        Targets::Ids(ids) => {
            Selection::Named(ids.iter().filter_map(|&id| selector(app, id)).collect())
        }
        Targets::Filter(m) => Selection::Matching {
            filter: m.filter,
            expect: Some(m.count as u64),
        },
    }
}

fn selector(app: &App, id: i64) -> Option<String> {
    // A company invited with `link --new` has no realm yet: its tenant name names it.
    app.table.get(id).map(|c| {
        if c.realm_id.is_empty() {
            c.tenant.clone()
        } else {
            format!("{}:{}", c.environment.as_str(), c.realm_id)
        }
    })
}

/// A client error as the message line says it: a refusal names the role that may, an
/// unavailable daemon says how to start one (the error's own text does).
fn explain(e: &ClientError, action: &str) -> String {
    match e {
        ClientError::Denied { role: theirs, .. } => Action::parse(action)
            .and_then(|a| refusal(a, *theirs))
            .unwrap_or_else(|| e.to_string()),
        _ => e.to_string(),
    }
}

/// The backoff between attempts to reach the daemon again: short at first (a restart), then
/// no more often than every ten seconds.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(10))
}

/// The live feed: subscribes, lists once the hello is in (so nothing committed in between is
/// missed), then turns each change into a message. When the daemon goes away it says so and
/// subscribes again with a backoff; a refusal is final.
/// `opened` is set once the daemon has recorded the console opened, so that closing it is
/// recorded too.
async fn follow(
    client: Arc<dyn Client>,
    template: Session,
    opened: Arc<AtomicBool>,
    tx: UnboundedSender<Msg>,
) {
    let mut attempt = 0u32;
    loop {
        let why = match client.watch().await {
            Ok(mut events) => {
                let mut why = None;
                while let Some(ev) = events.next().await {
                    let msg = match ev {
                        Ok(WatchEvent::Hello {
                            account,
                            role,
                            scheduler,
                            ..
                        }) => {
                            attempt = 0;
                            let _ = tx.send(Msg::Session(Session {
                                account,
                                role,
                                ..template.clone()
                            }));
                            let _ = tx.send(Msg::Scheduler(scheduler));
                            if !opened.load(Ordering::SeqCst) {
                                match client.session(SessionEvent::Opened).await {
                                    Ok(()) => opened.store(true, Ordering::SeqCst),
                                    Err(e) => {
                                        why = Some(e);
                                        break;
                                    }
                                }
                            }
                            Msg::FeedOpen
                        }
                        Ok(WatchEvent::Change {
                            connection: Some(c),
                            ..
                        }) => Msg::Changed(*c),
                        Ok(WatchEvent::Change {
                            connection_id: Some(id),
                            connection: None,
                            ..
                        }) => Msg::Removed(id),
                        Ok(WatchEvent::Change { .. }) => continue,
                        Ok(WatchEvent::Missed { count }) => Msg::Missed(count),
                        Ok(WatchEvent::Scheduler { state }) => Msg::Scheduler(state),
                        Err(e) => {
                            why = Some(e);
                            break;
                        }
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                why.unwrap_or(ClientError::ConnectionLost {
                    socket: Default::default(),
                    why: None,
                })
            }
            Err(e) => e,
        };
        let fatal = matches!(why, ClientError::Denied { .. });
        let text = match &why {
            ClientError::Denied { .. } => format!(
                "{why}; ask an admin to give your account a role in [roles] of the daemon's configuration"
            ),
            _ => why.to_string(),
        };
        if fatal {
            let _ = tx.send(Msg::Refused(text));
            return;
        }
        if tx.send(Msg::Disconnected(text)).is_err() {
            return;
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent};

    #[test]
    fn a_refusal_from_the_daemon_names_the_roles_that_may() {
        let e = ClientError::Denied {
            account: "bob".into(),
            role: Role::Viewer,
            what: "refresh".into(),
            message: "permission denied: bob (role viewer) may not refresh".into(),
        };
        assert_eq!(
            explain(&e, "refresh"),
            "refresh needs role support or admin (you are viewer)"
        );
        let down = ClientError::Unavailable {
            socket: "/run/qbo.sock".into(),
            why: "no socket there".into(),
        };
        assert!(explain(&down, "refresh").contains("qbo-console serve"));
    }

    #[test]
    fn mouse_movement_is_not_a_message_and_so_draws_nothing() {
        let at = |kind| {
            Event::Mouse(MouseEvent {
                kind,
                column: 3,
                row: 4,
                modifiers: KeyModifiers::NONE,
            })
        };
        assert!(from_terminal(at(MouseEventKind::Moved)).is_none());
        assert!(from_terminal(at(MouseEventKind::Drag(MouseButton::Left))).is_none());
        assert!(from_terminal(Event::FocusLost).is_none());
        assert!(matches!(
            from_terminal(at(MouseEventKind::ScrollDown)),
            Some(Msg::Mouse(_))
        ));
        assert!(matches!(
            from_terminal(Event::Key(KeyCode::Char('q').into())),
            Some(Msg::Key(_))
        ));
        assert!(matches!(
            from_terminal(Event::Paste("rrr".into())),
            Some(Msg::Paste(p)) if p == "rrr"
        ));
    }

    #[test]
    fn reconnecting_backs_off_to_ten_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert!(backoff(3) < backoff(4));
        assert_eq!(backoff(40), Duration::from_secs(10));
    }
}
