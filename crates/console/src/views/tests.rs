//! Snapshots of whole frames at a fixed clock, drawn into a test backend.

use super::draw;
use crate::app::App;
use crate::event::{Cmd, Msg, Session};
use crate::fake_daemon;
use crate::keymap::Keymap;
use crate::theme::Theme;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use qbo_service::fixtures::{at, audit_records, every_state, NOW};
use qbo_service::{ConnectionDetail, Role};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn session(role: Role) -> Session {
    Session {
        account: "alice".into(),
        role,
        embedded: false,
        scheduler_running: true,
        paused: Vec::new(),
        demo: false,
    }
}

fn update(a: &mut App, m: Msg) -> Vec<Cmd> {
    fake_daemon::drive(a, m)
}

fn app(role: Role, w: u16, h: u16) -> App {
    let mut a = App::new(session(role), Keymap::default(), at(NOW), (w, h));
    fake_daemon::open(&mut a, every_state());
    a
}

fn press(a: &mut App, code: KeyCode) {
    update(a, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn typed(a: &mut App, s: &str) {
    for c in s.chars() {
        press(a, KeyCode::Char(c));
    }
}

/// The frame as text, one line per row, trailing blanks trimmed.
fn render(a: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(a.size.0, a.size.1)).expect("test backend");
    t.draw(|f| draw(a, &Theme::dark(), a.now, f, f.area()))
        .expect("draws");
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn the_main_table_shows_every_state_most_urgent_first() {
    let a = app(Role::Admin, 160, 14);
    let frame = render(&a);
    insta::assert_snapshot!("main_table", frame);
    // Status is written, never colour alone.
    for word in [
        "✗ needs reconnect",
        "⚠ expiring",
        "– revoked",
        "… pending",
        "↻ revoking",
    ] {
        assert!(frame.contains(word), "{word}");
    }
}

#[test]
fn a_filter_leaves_the_matching_rows_and_says_so() {
    let mut a = app(Role::Support, 120, 12);
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "env:sandbox");
    press(&mut a, KeyCode::Enter);
    let frame = render(&a);
    insta::assert_snapshot!("filtered_table", frame);
    assert!(frame.contains("2 of 9 shown"));
}

#[test]
fn a_bad_filter_term_is_explained_on_the_filter_line() {
    let mut a = app(Role::Support, 100, 14);
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "age>x");
    let frame = render(&a);
    insta::assert_snapshot!("filter_error", frame);
    assert!(frame.contains("filter term `age>x`"));
}

#[test]
fn the_detail_pane_shows_every_field_the_last_error_and_recent_events() {
    let mut a = app(Role::Support, 100, 40);
    press(&mut a, KeyCode::Enter);
    let globex = a.table.get(3).unwrap().clone();
    let events = audit_records()
        .into_iter()
        .filter(|e| e.connection_id == Some(3))
        .collect();
    update(
        &mut a,
        Msg::Detail(ConnectionDetail {
            connection: globex,
            recent_events: events,
            incident: None,
        }),
    );
    let frame = render(&a);
    insta::assert_snapshot!("detail", frame);
    assert!(frame.contains("1-65f0c3a2-7b1d"));
}

#[test]
fn help_lists_the_keys_and_marks_the_refused_ones() {
    let a = {
        let mut a = app(Role::Viewer, 100, 40);
        press(&mut a, KeyCode::Char('?'));
        a
    };
    let frame = render(&a);
    insta::assert_snapshot!("help", frame);
    assert!(frame.contains("refresh needs role support or admin (you are viewer)"));
}

/// An admin's console at `w`×`h` with the audit view open on the fixtures' events.
fn audit_opened(w: u16, h: u16) -> App {
    let mut a = app(Role::Admin, w, h);
    let [Cmd::AuditPage(query)] = &update(&mut a, Msg::Key(KeyEvent::from(KeyCode::Char('a'))))[..]
    else {
        panic!("the audit key asks for a page");
    };
    update(
        &mut a,
        Msg::AuditPage {
            query: query.clone(),
            events: audit_records(),
            next_before_seq: None,
        },
    );
    a
}

/// Also: each kind of actor is named in words (issue 22): an operator by account, the
/// daemon's work by its task, a host app by its key's name, a customer's browser and
/// Intuit as such.
#[test]
fn the_audit_view_lists_events_newest_first() {
    let a = audit_opened(120, 15);
    let frame = render(&a);
    insta::assert_snapshot!("audit", frame);
    for who in [
        "Intuit ",
        "customer ",
        "service:books-sync ",
        "scheduler ",
        "health check ",
    ] {
        assert!(frame.contains(who), "{who} in {frame}");
    }
    let mallory = frame.find("mallory").unwrap();
    let root = frame.find("root").unwrap();
    assert!(mallory < root);
}

#[test]
fn a_bulk_action_asks_for_confirmation_with_the_count() {
    let mut a = app(Role::Admin, 100, 20);
    press(&mut a, KeyCode::Char('*'));
    press(&mut a, KeyCode::Char('r'));
    let frame = render(&a);
    insta::assert_snapshot!("bulk_confirmation", frame);
    assert!(frame.contains("Refresh 9 connections?"));
}

#[test]
fn a_refused_key_names_the_role_it_needs() {
    let mut a = app(Role::Viewer, 100, 12);
    press(&mut a, KeyCode::Char('r'));
    let frame = render(&a);
    insta::assert_snapshot!("role_refusal", frame);
    assert!(frame.contains("refresh needs role support or admin (you are viewer)"));
    // Not offered in the footer either.
    let footer = frame.lines().last().unwrap();
    assert!(!footer.contains("refresh"), "{footer}");
}

#[test]
fn a_running_action_turns_a_spinner_on_the_message_line() {
    let mut a = app(Role::Support, 100, 12);
    press(&mut a, KeyCode::Char('r'));
    let before = render(&a);
    let line = before.lines().nth(10).unwrap().to_string();
    assert!(line.ends_with("refreshing globex…"), "{line}");
    let now = a.now;
    update(&mut a, Msg::Tick(now));
    let after = render(&a);
    assert_ne!(after.lines().nth(10).unwrap(), line, "the spinner moved");
}

#[test]
fn everything_needed_fits_in_80_by_24() {
    let mut a = app(Role::Support, 80, 24);
    press(&mut a, KeyCode::Char(' '));
    let frame = render(&a);
    insta::assert_snapshot!("layout_80x24", frame);
    for needed in [
        "TENANT",
        "STATUS",
        "ACCESS",
        "USED/LEFT",
        "LAST REFRESH",
        "r refresh",
        "? help",
    ] {
        assert!(frame.contains(needed), "{needed} missing at 80x24");
    }
}

#[test]
fn a_tiny_terminal_gets_a_message_not_a_panic() {
    let a = app(Role::Support, 20, 5);
    let frame = render(&a);
    insta::assert_snapshot!("tiny_20x5", frame);
    assert!(frame.contains("too small"));
}

#[test]
fn with_no_color_nothing_is_coloured_and_states_still_read() {
    let a = app(Role::Admin, 160, 14);
    let mut t = Terminal::new(TestBackend::new(160, 14)).expect("test backend");
    let theme = Theme::pick(qbo_core::config::ThemeName::Dark, Some("1"));
    t.draw(|f| draw(&a, &theme, a.now, f, f.area()))
        .expect("draws");
    let buf = t.backend().buffer();
    for cell in buf.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{cell:?}");
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{cell:?}");
    }
    let text: String = buf.content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("✗ needs reconnect"));
}

#[test]
fn control_characters_in_a_tenant_name_are_drawn_escaped() {
    let mut a = app(Role::Support, 200, 12);
    let mut evil = every_state()[0].clone();
    evil.tenant = "evil\u{1b}]0;pwned\u{7}\u{202e}".into();
    update(&mut a, Msg::Changed(evil));
    let frame = render(&a);
    assert!(frame.contains("evil\\x1b]0;pwned"), "{frame}");
    assert!(!frame.contains('\u{1b}') && !frame.contains('\u{202e}'));
}

#[test]
fn without_a_daemon_one_screen_says_why_and_what_to_do() {
    let mut a = App::new(
        session(Role::Unmapped),
        Keymap::default(),
        at(NOW),
        (100, 16),
    );
    update(
        &mut a,
        Msg::Disconnected(
            "no qbo-console daemon answers at /run/qbo-console/ops.sock (no socket there); start one with `qbo-console serve`, or run this command with --embedded if you hold the key".into(),
        ),
    );
    let frame = render(&a);
    insta::assert_snapshot!("no_daemon", frame);
    assert!(frame.contains("qbo-console serve") && frame.contains("q quits"));
    assert!(frame.contains("connects by itself"));
    assert!(!frame.contains("TENANT"), "no empty table under it");
}

#[test]
fn a_console_the_daemon_refuses_says_who_can_change_that_and_stops_asking() {
    let mut a = App::new(
        session(Role::Unmapped),
        Keymap::default(),
        at(NOW),
        (100, 16),
    );
    update(
        &mut a,
        Msg::Refused(
            "permission denied: eve (role unmapped) may not watch; ask an admin to give your account a role in [roles] of the daemon's configuration".into(),
        ),
    );
    let frame = render(&a);
    assert!(
        frame.contains("ask an admin") && frame.contains("q quits"),
        "{frame}"
    );
    assert!(!frame.contains("connects by itself"), "{frame}");
}

#[test]
fn a_lost_daemon_is_said_in_the_header_over_the_last_table() {
    let mut a = app(Role::Support, 120, 12);
    update(&mut a, Msg::Disconnected("the daemon went away".into()));
    let frame = render(&a);
    assert!(frame
        .lines()
        .next()
        .unwrap()
        .contains("daemon connection lost, retrying"));
    assert!(frame.contains("globex"));
}

#[test]
fn a_bad_filter_term_is_explained_in_full_at_80_columns() {
    let mut a = app(Role::Viewer, 80, 24);
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "status:needs");
    let frame = render(&a);
    let said: String = frame.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains("other words search tenant, realm and company"),
        "{frame}"
    );
}

#[test]
fn a_revoke_asks_the_operator_to_type_the_realm_id() {
    let mut a = app(Role::Admin, 100, 24);
    press(&mut a, KeyCode::Char('R'));
    typed(&mut a, "9130");
    let frame = render(&a);
    insta::assert_snapshot!("revoke_typed_confirmation", frame);
    assert!(frame.contains("Revoke 1 connection at Intuit?"), "{frame}");
    assert!(frame.contains("Type the realm id"), "{frame}");
    assert!(frame.contains(">9130"), "{frame}");
}

#[test]
fn the_header_says_what_the_daemons_scheduler_does_and_a_pause_ends_at_its_time() {
    use qbo_core::domain::{Environment, PausedEnvironment, SchedulerState};
    let mut a = app(Role::Admin, 160, 12);
    let until = at(NOW) + chrono::Duration::minutes(5);
    update(
        &mut a,
        Msg::Scheduler(SchedulerState {
            running: true,
            paused: vec![PausedEnvironment {
                environment: Environment::Production,
                until,
                reason: "invalid_client".into(),
            }],
            audit_blocked: None,
            incidents: Vec::new(),
        }),
    );
    let header = |a: &App| render(a).lines().next().unwrap_or("").to_string();
    assert!(
        header(&a).contains("⚠ paused: production"),
        "{}",
        header(&a)
    );
    update(&mut a, Msg::Tick(until + chrono::Duration::seconds(1)));
    assert!(header(&a).contains("✓ scheduler running"), "{}", header(&a));
    update(
        &mut a,
        Msg::Scheduler(SchedulerState {
            running: false,
            paused: Vec::new(),
            audit_blocked: None,
            incidents: Vec::new(),
        }),
    );
    assert!(header(&a).contains("⚠ scheduler stopped"), "{}", header(&a));
}

/// A blocked audit log outranks everything else the header says about the daemon, and
/// names the verb that repairs it; once repaired, the header is as before.
#[test]
fn the_header_names_a_blocked_audit_log_and_the_verb_that_repairs_it() {
    use qbo_core::domain::SchedulerState;
    let mut a = app(Role::Admin, 200, 12);
    let header = |a: &App| render(a).lines().next().unwrap_or("").to_string();
    update(
        &mut a,
        Msg::Scheduler(SchedulerState {
            running: true,
            paused: Vec::new(),
            audit_blocked: Some(qbo_core::domain::ChainBlocked {
                head_seq: 41,
                first_seq: 42,
                last_seq: 42,
            }),
            incidents: Vec::new(),
        }),
    );
    let h = header(&a);
    assert!(h.contains("✗ audit log blocked at 42"), "{h}");
    assert!(h.contains("audit quarantine --from 42"), "{h}");
    update(
        &mut a,
        Msg::Scheduler(SchedulerState {
            running: true,
            paused: Vec::new(),
            audit_blocked: None,
            incidents: Vec::new(),
        }),
    );
    assert!(header(&a).contains("✓ scheduler running"), "{}", header(&a));
}

fn forecast_fixture() -> qbo_service::Forecast {
    use qbo_service::{Cause, CauseSummary, Environment, Status};
    use qbo_service::{Forecast, ForecastItem, Risk};
    let now = at(NOW);
    let item =
        |id: i64, tenant: &str, days: i64, risk: Risk, cause: Cause, reason: &str| ForecastItem {
            connection_id: id,
            tenant: tenant.into(),
            realm_id: qbo_core::domain::RealmId::parse(&format!("91300000000000{id:02}")).unwrap(),
            environment: Environment::Production,
            status: Status::Active,
            date: now + chrono::Duration::days(days),
            risk,
            cause,
            reason: reason.into(),
            action: cause.remedy().into(),
            incident: None,
        };
    // Three causes, the first with two connections (and 12 in all, 2 shown).
    let items = vec![
        item(
            3,
            "Initech",
            -1,
            Risk::NeedsReconnect,
            Cause::DeadGrant,
            "needs reconnect: invalid_grant",
        ),
        item(
            5,
            "Globex",
            4,
            Risk::HardLimit,
            Cause::FiveYearLimit,
            "Intuit's 5-year limit from the original consent ends on 2026-03-05",
        ),
        item(
            9,
            "Hooli",
            6,
            Risk::NeedsReconnect,
            Cause::DeadGrant,
            "needs reconnect: the customer disconnected the app in QuickBooks",
        ),
        item(
            7,
            "Umbrella",
            21,
            Risk::RefreshFailing,
            Cause::IntuitFailing,
            "40 refreshes failed in a row, last 2026-02-28: HTTP 503 with an HTML page; the refresh token lapses after 100 days unused",
        ),
    ];
    let mut by_cause = std::collections::BTreeMap::new();
    by_cause.insert(Cause::DeadGrant, 12);
    by_cause.insert(Cause::FiveYearLimit, 1);
    by_cause.insert(Cause::IntuitFailing, 1);
    Forecast {
        generated_at: now,
        days: 30,
        items,
        count: 14,
        by_risk: Default::default(),
        causes: CauseSummary::of(&by_cause),
        alerts: vec![qbo_service::AlertDelivery {
            id: 1,
            created_at: now - chrono::Duration::hours(3),
            condition_key: "connection:3:needs_reconnect".into(),
            event: "opened".into(),
            webhook: "ops-slack".into(),
            text: "qbo-console alert: Initech needs_reconnect".into(),
            body: String::new(),
            state: "delivered".into(),
            attempts: 1,
            next_attempt_at: None,
            last_error: None,
            finished_at: Some(now - chrono::Duration::hours(3)),
        }],
    }
}

#[test]
fn the_forecast_view_lists_risks_soonest_first_with_the_last_alerts() {
    let mut a = app(Role::Viewer, 120, 16);
    let cmds = update(
        &mut a,
        Msg::Key(KeyEvent::new(KeyCode::Char('F'), KeyModifiers::NONE)),
    );
    assert_eq!(cmds, vec![Cmd::Forecast]);
    assert!(render(&a).contains("reading the forecast"));
    update(&mut a, Msg::Forecast(forecast_fixture()));
    let frame = render(&a);
    insta::assert_snapshot!("forecast", frame);
    press(&mut a, KeyCode::Esc);
    assert!(render(&a).contains("TENANT"), "Esc goes back to the table");
}

#[test]
fn a_forecast_of_more_risks_than_shown_says_how_many_there_are() {
    let mut a = app(Role::Viewer, 120, 16);
    update(
        &mut a,
        Msg::Key(KeyEvent::new(KeyCode::Char('F'), KeyModifiers::NONE)),
    );
    let mut f = forecast_fixture();
    f.count = 980_000;
    update(&mut a, Msg::Forecast(f));
    let frame = render(&a);
    assert!(
        frame.contains("forecast: 980,000 risks within 30 days (4 soonest shown)"),
        "{frame}"
    );
    // Each group says how many it holds in all, and how many of them are shown.
    assert!(frame.contains("· 12, the 2 soonest shown"), "{frame}");
}

#[test]
fn space_in_the_forecast_marks_the_group_pointed_at_for_the_tables_bulk_actions() {
    let mut a = app(Role::Support, 120, 30);
    update(
        &mut a,
        Msg::Key(KeyEvent::new(KeyCode::Char('F'), KeyModifiers::NONE)),
    );
    update(&mut a, Msg::Forecast(forecast_fixture()));
    let frame = render(&a);
    assert!(
        frame.contains("› Intuit refused the refresh token"),
        "the first group is pointed at:\n{frame}"
    );
    press(&mut a, KeyCode::Char(' '));
    assert_eq!(a.table.targets(), crate::table::Targets::Ids(vec![3, 9]));
    assert!(
        render(&a).contains("marked 2 connections of"),
        "{}",
        render(&a)
    );
    // Scrolled to the next group, space adds its connection to the marks.
    for _ in 0..20 {
        if render(&a).contains("› Intuit's 5-year limit") {
            break;
        }
        press(&mut a, KeyCode::Down);
    }
    press(&mut a, KeyCode::Char(' '));
    assert_eq!(a.table.targets(), crate::table::Targets::Ids(vec![3, 5, 9]));
    // The table's bulk confirmation names them, though none of them is in hand.
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.table.marked(), 3);
}

/// Rows as the demo's are: long tenant names, and every way a refresh fails.
fn long_rows() -> Vec<qbo_service::ConnectionView> {
    let failures = [
        ("invalid_grant", "HTTP 400 invalid_grant: Token invalid"),
        ("transient", "HTTP 503 with an HTML page"),
        ("rate_limited", "HTTP 429 with an XML body"),
        ("transient", "timed out waiting for Intuit"),
        ("transient", "the connection to Intuit failed"),
        ("transient", "HTTP 200 but the body is not a token response"),
        ("invalid_client", "HTTP 401 invalid_client"),
    ];
    let names = [
        "oak-hollow-coffee-roasters",
        "oak-hollow-accounting",
        "granite-peak-heating-and-air-conditioning-of-the-valley",
        "hilltop-physical-therapy",
        "golden-gate-chiropractic",
        "meadowlark-yoga-studio",
        "zed",
    ];
    every_state()
        .into_iter()
        .take(names.len())
        .zip(names.iter().zip(failures))
        .map(|(mut c, (name, (class, detail)))| {
            c.tenant = (*name).into();
            c.status = qbo_service::Status::Active;
            c.consecutive_failures = 12;
            c.last_refresh_at = Some(at(NOW) - chrono::Duration::minutes(25));
            c.last_refresh_outcome = Some(qbo_service::LastRefresh::Failed);
            c.last_error_class = Some(class.into());
            c.last_error_detail = Some(detail.into());
            c
        })
        .collect()
}

/// Every word on the line that starts like `whole` shows it whole, or cut and marked `…`.
fn shown_whole_or_marked(frame: &str, whole: &str) {
    let head: String = whole.chars().take(12).collect();
    let line = frame
        .lines()
        .find(|l| l.contains(&head))
        .unwrap_or_else(|| panic!("{whole:?} not on:\n{frame}"));
    let at = line.find(&head).unwrap();
    let rest = &line[at..];
    // A cut cell ends at its mark; a whole one at the two spaces before the next column.
    let cell = match rest.find('…') {
        Some(i) if !rest[..i].contains("  ") => &rest[..i + '…'.len_utf8()],
        _ => rest.split("  ").next().unwrap_or_default().trim_end(),
    };
    assert!(
        cell == whole || (cell.ends_with('…') && whole.starts_with(cell.trim_end_matches('…'))),
        "{whole:?} shown as {cell:?}:\n{frame}"
    );
}

#[test]
fn at_120_and_80_columns_no_tenant_or_failure_is_cut_without_a_mark() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut a = App::new(session(Role::Support), Keymap::default(), at(NOW), (w, h));
        let rows = long_rows();
        fake_daemon::open(&mut a, rows.clone());
        let frame = render(&a);
        for c in &rows {
            shown_whole_or_marked(&frame, &c.tenant);
        }
        // The failures in words, each whole in its column.
        for words in [
            "dead grant",
            "Intuit 503",
            "rate limited",
            "timed out",
            "cut off",
            "garbled",
            "bad client",
        ] {
            assert!(
                frame.contains(&format!("25m {words}")),
                "{words:?} at {w}:\n{frame}"
            );
        }
        for cut in ["invalid_", "transien", "rate_lim"] {
            assert!(!frame.contains(cut), "{cut:?} at {w}:\n{frame}");
        }
        // Status cells: whole words, short ones at 80 columns.
        assert!(frame.contains("↯ failing ×12"), "{frame}");
    }
}

#[test]
fn the_audit_views_reasons_and_tenants_are_whole_or_marked_at_120_and_80_columns() {
    for (w, h) in [(120, 40), (80, 24)] {
        let frame = render(&audit_opened(w, h));
        let mut checked = 0;
        for r in audit_records() {
            if let Some(reason) = &r.reason {
                let head: String = reason.chars().take(8).collect();
                if let Some(line) = frame.lines().find(|l| l.contains(&head)) {
                    let shown = line[line.find(&head).unwrap()..].trim_end();
                    let kept = shown.trim_end_matches('…');
                    assert!(
                        shown == reason.as_str()
                            || (shown.ends_with('…') && reason.starts_with(kept)),
                        "{reason:?} shown as {shown:?} at {w}:\n{frame}"
                    );
                    // Enough of it to read: a reason cut to a word or two says nothing.
                    assert!(
                        kept.chars().count() >= 12.min(reason.chars().count()),
                        "{shown:?} at {w}:\n{frame}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 5, "only {checked} reasons on:\n{frame}");
    }
}

fn campaign(
    id: i64,
    filter: &str,
    links: u64,
    opened: u64,
    completed: u64,
    expired: u64,
) -> qbo_service::CampaignView {
    qbo_service::CampaignView {
        id,
        filter: filter.into(),
        created_at: at(NOW) - chrono::Duration::hours(30),
        created_by: "alice".into(),
        expires_at: at(NOW) + chrono::Duration::days(5),
        links,
        open: links - completed - expired,
        opened,
        completed,
        expired,
        cancelled: 0,
    }
}

#[test]
fn the_campaigns_view_shows_each_campaigns_links_and_asks_again_while_open() {
    for (w, h) in [(120, 12), (80, 12)] {
        let mut a = app(Role::Support, w, h);
        let cmds = update(
            &mut a,
            Msg::Key(KeyEvent::new(KeyCode::Char('C'), KeyModifiers::NONE)),
        );
        assert_eq!(cmds, vec![Cmd::Campaigns]);
        assert!(render(&a).contains("reading the campaigns"));
        update(
            &mut a,
            Msg::Campaigns(vec![
                campaign(2, "status:needs_reconnect env:production", 50, 12, 7, 0),
                campaign(1, "days<14 acme", 3, 3, 3, 0),
            ]),
        );
        let frame = render(&a);
        insta::assert_snapshot!(format!("campaigns_{w}x{h}"), frame);
        // Live: a tick within a few seconds asks nothing; one after asks again, once.
        let now = a.now;
        assert!(update(&mut a, Msg::Tick(now + chrono::Duration::seconds(1))).is_empty());
        let later = now + chrono::Duration::seconds(4);
        assert_eq!(update(&mut a, Msg::Tick(later)), vec![Cmd::Campaigns]);
        assert!(
            update(&mut a, Msg::Tick(later + chrono::Duration::seconds(4))).is_empty(),
            "not again while an answer is on its way"
        );
        update(
            &mut a,
            Msg::Campaigns(vec![campaign(
                2,
                "status:needs_reconnect env:production",
                50,
                13,
                8,
                0,
            )]),
        );
        assert!(render(&a).contains("  8 "), "the new count is drawn");
        press(&mut a, KeyCode::Esc);
        assert!(
            update(&mut a, Msg::Tick(later + chrono::Duration::seconds(30))).is_empty(),
            "a closed view asks nothing"
        );
    }
    let mut viewer = app(Role::Viewer, 120, 12);
    let cmds = update(
        &mut viewer,
        Msg::Key(KeyEvent::new(KeyCode::Char('C'), KeyModifiers::NONE)),
    );
    assert!(cmds.is_empty());
    assert!(
        render(&viewer).contains("campaigns needs role support or admin"),
        "{}",
        render(&viewer)
    );
}

#[test]
fn no_campaign_yet_says_how_to_make_one() {
    let mut a = app(Role::Support, 80, 12);
    press(&mut a, KeyCode::Char('C'));
    update(&mut a, Msg::Campaigns(Vec::new()));
    let frame = render(&a);
    assert!(
        frame.contains("none yet") && frame.contains("link --where"),
        "{frame}"
    );
}

fn incident(id: i64, class: qbo_service::IncidentClass, n: u64) -> qbo_service::Incident {
    qbo_service::Incident {
        id,
        environment: qbo_service::Environment::Sandbox,
        endpoint: qbo_service::Endpoint::Token,
        class,
        started_at: at(NOW) - chrono::Duration::minutes(12),
        ended_at: None,
        connections: n,
        sample_tids: vec!["1-6b17-abc".into()],
        detail: "HTTP 503 with an HTML page".into(),
    }
}

#[test]
fn an_open_incident_is_a_banner_under_the_header_and_the_table_makes_room() {
    for (w, h) in [(120, 14), (80, 14)] {
        let mut a = app(Role::Support, w, h);
        let rows_before = super::table_height(&a);
        update(
            &mut a,
            Msg::Scheduler(qbo_core::domain::SchedulerState {
                running: true,
                paused: Vec::new(),
                audit_blocked: None,
                incidents: vec![incident(3, qbo_service::IncidentClass::ServerError, 26)],
            }),
        );
        assert_eq!(
            super::table_height(&a),
            rows_before - 1,
            "one line for the banner"
        );
        let frame = render(&a);
        insta::assert_snapshot!(format!("incident_banner_{w}x{h}"), frame);
        let line = frame.lines().nth(1).unwrap();
        assert!(line.contains("incident 3"), "{line}");
        assert!(line.chars().count() <= w as usize);
        // Ended: the banner goes and the table has its line back.
        update(
            &mut a,
            Msg::Scheduler(qbo_core::domain::SchedulerState {
                running: true,
                ..Default::default()
            }),
        );
        assert_eq!(super::table_height(&a), rows_before);
        assert!(!render(&a).contains("incident 3"));
    }
    let mut ours = app(Role::Support, 120, 14);
    update(
        &mut ours,
        Msg::Scheduler(qbo_core::domain::SchedulerState {
            running: true,
            incidents: vec![incident(4, qbo_service::IncidentClass::InvalidClient, 1)],
            ..Default::default()
        }),
    );
    let line = render(&ours).lines().nth(1).unwrap().to_string();
    assert!(
        line.contains("OUR sandbox") && line.contains("[environments.sandbox]"),
        "{line}"
    );
    // The accounting API's says so at every width: it is not a refresh outage.
    for (w, said) in [
        (160, "health checks held, refreshes go on"),
        (120, "sandbox accounting API answering 5xx since"),
        (80, "sandbox accounting API answering 5xx"),
    ] {
        let mut a = app(Role::Support, w, 14);
        let mut down = incident(5, qbo_service::IncidentClass::ServerError, 40);
        down.endpoint = qbo_service::Endpoint::Accounting;
        update(
            &mut a,
            Msg::Scheduler(qbo_core::domain::SchedulerState {
                running: true,
                incidents: vec![down],
                ..Default::default()
            }),
        );
        let line = render(&a).lines().nth(1).unwrap().to_string();
        assert!(line.contains(said), "{w}: {line}");
        assert!(line.contains("incident 5"), "{line}");
    }
}
