//! The state machine, driven by messages alone.

use super::*;
use crate::audit_log;
use crate::event::Done;
use crate::fake_daemon;
use crossterm::event::{KeyCode, KeyModifiers, MouseEvent, MouseEventKind};
use qbo_core::domain::ErrorClass;
use qbo_service::fixtures::{at, every_state, NOW};
use qbo_service::{AuditQuery, Environment, RefreshOutcome, RefreshReport, Status, Target};

fn session(role: Role, demo: bool) -> Session {
    Session {
        account: "alice".into(),
        role,
        embedded: false,
        scheduler_running: true,
        paused: Vec::new(),
        demo,
    }
}

/// `update` as the runtime drives it: windows asked for are answered by the fake daemon.
fn update(a: &mut App, m: Msg) -> Vec<Cmd> {
    fake_daemon::drive(a, m)
}

fn app(role: Role) -> App {
    let mut a = App::new(session(role, false), Keymap::default(), at(NOW), (120, 30));
    fake_daemon::open(&mut a, every_state());
    a
}

fn key(a: &mut App, code: KeyCode) -> Vec<Cmd> {
    update(a, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ch(a: &mut App, c: char) -> Vec<Cmd> {
    key(a, KeyCode::Char(c))
}

fn typed(a: &mut App, s: &str) {
    for c in s.chars() {
        assert!(ch(a, c).is_empty());
    }
}

fn shown(a: &App) -> Vec<String> {
    a.table
        .window(0, usize::MAX)
        .map(|(_, c)| c.tenant.clone())
        .collect()
}

fn selected(a: &App) -> String {
    a.table.selected().unwrap().tenant.clone()
}

fn failed_refresh(id: i64, tenant: &str) -> RefreshReport {
    RefreshReport {
        target: Target {
            connection_id: id,
            tenant: tenant.into(),
            realm_id: format!("91300000000000{id:02}"),
            environment: Environment::Production,
        },
        outcome: RefreshOutcome::Failed {
            error_class: ErrorClass::Transient,
            detail: "HTTP 503".into(),
            intuit_tid: Some("1-abc".into()),
            next_attempt_at: None,
        },
    }
}

fn ok_refresh(id: i64, tenant: &str) -> RefreshReport {
    RefreshReport {
        outcome: RefreshOutcome::Refreshed {
            access_expires_at: at(NOW),
            rotated: false,
            intuit_tid: None,
        },
        ..failed_refresh(id, tenant)
    }
}

#[test]
fn the_filter_narrows_as_it_is_typed_and_esc_clears_it() {
    let mut a = app(Role::Viewer);
    ch(&mut a, '/');
    typed(&mut a, "acme");
    assert_eq!(shown(&a), ["acme-corp"]);
    key(&mut a, KeyCode::Backspace);
    key(&mut a, KeyCode::Backspace);
    key(&mut a, KeyCode::Backspace);
    assert_eq!(a.filter_text, "a");
    key(&mut a, KeyCode::Enter);
    assert!(a.prompt.is_none());
    assert_eq!(a.filter_text, "a", "enter keeps the filter");
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.table.visible_len(), 9, "esc clears it");
}

#[test]
fn a_bad_term_is_left_out_while_typing_and_says_why() {
    let mut a = app(Role::Viewer);
    ch(&mut a, '/');
    typed(&mut a, "env:sandbox left<");
    assert_eq!(shown(&a), ["umbrella", "hooli"]);
    let why = a.filter_error.clone().unwrap();
    assert!(
        why.contains("`left<`") && why.contains("valid forms"),
        "{why}"
    );
    typed(&mut a, "100");
    assert_eq!(a.filter_error, None);
    assert_eq!(shown(&a), ["umbrella"]);
}

#[test]
fn a_bad_term_left_in_when_the_line_closes_is_reported() {
    let mut a = app(Role::Viewer);
    ch(&mut a, '/');
    typed(&mut a, "env:prodd");
    key(&mut a, KeyCode::Enter);
    let m = a.message.clone().unwrap();
    assert_eq!(m.tone, Tone::Error);
    assert!(m.text.contains("`env:prodd`"), "{}", m.text);
    ch(&mut a, ':');
    typed(&mut a, "filter sync:maybe");
    key(&mut a, KeyCode::Enter);
    assert!(a.message.unwrap().text.contains("`sync:maybe`"));
}

#[test]
fn refresh_of_the_selected_row_runs_in_the_background_and_reports_its_outcome() {
    let mut a = app(Role::Support);
    ch(&mut a, 'j');
    assert_eq!(selected(&a), "initech");
    let cmds = ch(&mut a, 'r');
    let [Cmd::Refresh { request, targets }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(targets, &Targets::Ids(vec![4]));
    assert_eq!(a.running.len(), 1, "the spinner turns");
    update(
        &mut a,
        Msg::Reply {
            request: *request,
            result: Ok(Done::Refreshed(vec![failed_refresh(4, "initech")])),
        },
    );
    assert!(a.running.is_empty());
    let m = a.message.clone().unwrap();
    assert_eq!(m.tone, Tone::Error);
    assert_eq!(
        m.text,
        "initech: refresh failed: transient: HTTP 503 (intuit_tid 1-abc)"
    );
}

#[test]
fn a_bulk_refresh_waits_for_a_yes_naming_the_count() {
    let mut a = app(Role::Support);
    ch(&mut a, ' ');
    ch(&mut a, ' ');
    assert_eq!(a.table.marked(), 2);
    assert!(ch(&mut a, 'r').is_empty(), "nothing is sent before the yes");
    assert_eq!(
        a.overlay,
        Some(Overlay::Confirm {
            action: Action::Refresh,
            targets: Targets::Ids(vec![3, 4])
        })
    );
    // n cancels and keeps the marks.
    assert!(ch(&mut a, 'n').is_empty());
    assert_eq!((a.overlay.clone(), a.table.marked()), (None, 2));
    ch(&mut a, 'r');
    let cmds = ch(&mut a, 'y');
    let [Cmd::Refresh { request, targets }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(targets, &Targets::Ids(vec![3, 4]));
    update(
        &mut a,
        Msg::Reply {
            request: *request,
            result: Ok(Done::Refreshed(vec![
                ok_refresh(3, "globex"),
                failed_refresh(4, "initech"),
            ])),
        },
    );
    assert_eq!(
        a.message.unwrap().text,
        "refresh of 2: 1 ok, 1 failed; first: initech: transient: HTTP 503 (intuit_tid 1-abc)"
    );
}

#[test]
fn a_key_the_role_lacks_sends_nothing_and_names_the_role() {
    let mut a = app(Role::Viewer);
    assert!(ch(&mut a, 'r').is_empty());
    assert_eq!(
        a.message.clone().unwrap().text,
        "refresh needs role support or admin (you are viewer)"
    );
    assert!(ch(&mut a, 'a').is_empty());
    assert!(a
        .message
        .clone()
        .unwrap()
        .text
        .starts_with("audit needs role auditor or admin"));
    assert_eq!(a.screen, Screen::Connections);
    // The command line is held to the same rule.
    ch(&mut a, ':');
    typed(&mut a, "verify");
    assert!(key(&mut a, KeyCode::Enter).is_empty());
}

#[test]
fn the_audit_key_asks_for_the_first_page_then_older_ones_at_the_end() {
    let mut a = app(Role::Auditor);
    let first = AuditQuery {
        before_seq: None,
        limit: audit_log::PAGE as i64,
        ..AuditQuery::default()
    };
    assert_eq!(ch(&mut a, 'a'), [Cmd::AuditPage(first.clone())]);
    let mut page = qbo_service::fixtures::audit_records();
    // A full page: there may be more.
    while page.len() < audit_log::PAGE {
        let mut e = page.last().unwrap().clone();
        e.seq -= 1;
        page.push(e);
    }
    let oldest = page.last().unwrap().seq;
    update(
        &mut a,
        Msg::AuditPage {
            query: first.clone(),
            events: page,
            next_before_seq: Some(oldest),
        },
    );
    assert_eq!(
        key(&mut a, KeyCode::End),
        [Cmd::AuditPage(AuditQuery {
            before_seq: Some(oldest),
            ..first
        })]
    );
    // Asked once, not again while it is on its way.
    assert!(key(&mut a, KeyCode::End).is_empty());
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Connections);
}

#[test]
fn the_command_line_sorts_filters_and_quits() {
    let mut a = app(Role::Support);
    ch(&mut a, ':');
    typed(&mut a, "sort left");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.table.sort().key, SortKey::Left);
    assert_eq!(shown(&a)[0], "stark");
    ch(&mut a, ':');
    typed(&mut a, "filter status:expiring");
    key(&mut a, KeyCode::Enter);
    assert_eq!(shown(&a), ["wayne"]);
    ch(&mut a, ':');
    typed(&mut a, "frobnicate");
    key(&mut a, KeyCode::Enter);
    assert!(a
        .message
        .clone()
        .unwrap()
        .text
        .contains("unknown command \"frobnicate\""));
    ch(&mut a, ':');
    typed(&mut a, "q");
    assert_eq!(key(&mut a, KeyCode::Enter), [Cmd::Quit]);
}

#[test]
fn enter_opens_the_detail_and_esc_comes_back() {
    let mut a = app(Role::Viewer);
    assert_eq!(key(&mut a, KeyCode::Enter), [Cmd::Show(3)]);
    assert_eq!(a.screen, Screen::Detail(3));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Connections);
}

#[test]
fn esc_on_the_command_line_closes_only_the_line() {
    let mut a = app(Role::Viewer);
    key(&mut a, KeyCode::Enter);
    ch(&mut a, ':');
    typed(&mut a, "sort");
    key(&mut a, KeyCode::Esc);
    assert!(a.prompt.is_none());
    assert_eq!(a.screen, Screen::Detail(3));
    assert_eq!(a.table.sort().key, SortKey::Urgency);
}

#[test]
fn a_live_change_reorders_without_losing_the_selection() {
    let mut a = app(Role::Viewer);
    ch(&mut a, 'G');
    assert_eq!(selected(&a), "hooli");
    let mut acme = a.table.get(1).unwrap().clone();
    acme.status = Status::NeedsReconnect;
    update(&mut a, Msg::Changed(acme));
    assert_eq!(&shown(&a)[..2], ["globex", "acme-corp"]);
    assert_eq!(selected(&a), "hooli");
    assert_eq!(a.table.cursor(), 8);
}

#[test]
fn a_missed_feed_asks_for_the_window_again_and_a_lost_daemon_is_said() {
    let mut a = app(Role::Viewer);
    let asked = super::update(&mut a, Msg::Missed(3));
    assert!(matches!(asked.as_slice(), [Cmd::Window(_)]), "{asked:?}");
    update(
        &mut a,
        Msg::Disconnected("the daemon closed the socket; start `qbo-console serve`".into()),
    );
    assert!(matches!(a.link, Link::Lost(_)));
    assert_eq!(a.message.unwrap().tone, Tone::Error);
}

#[test]
fn the_mouse_wheel_scrolls_and_a_click_selects() {
    let mut a = app(Role::Viewer);
    let ev = |kind, column, row| MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    update(&mut a, Msg::Mouse(ev(MouseEventKind::ScrollDown, 5, 5)));
    assert_eq!(a.table.cursor(), 3);
    // Row 0 is the header, row 1 the column titles: row 3 is the second connection.
    update(
        &mut a,
        Msg::Mouse(ev(MouseEventKind::Down(MouseButton::Left), 5, 3)),
    );
    assert_eq!(selected(&a), "initech");
}

#[test]
fn the_clock_key_works_only_in_the_demo() {
    let mut a = app(Role::Admin);
    assert!(ch(&mut a, '+').is_empty());
    let mut demo = App::new(
        session(Role::Viewer, true),
        Keymap::default(),
        at(NOW),
        (80, 24),
    );
    assert_eq!(ch(&mut demo, '+'), [Cmd::AdvanceClock]);
}

#[test]
fn time_terms_follow_the_clock() {
    let mut a = app(Role::Viewer);
    ch(&mut a, '/');
    typed(&mut a, "left<10");
    key(&mut a, KeyCode::Enter);
    assert!(shown(&a).is_empty());
    update(&mut a, Msg::Tick(at(NOW) + chrono::Duration::days(6)));
    assert_eq!(shown(&a), ["stark"]);
}

#[test]
fn the_filter_line_in_the_audit_view_filters_the_audit_log() {
    let mut a = app(Role::Admin);
    let [Cmd::AuditPage(query)] = &ch(&mut a, 'a')[..] else {
        panic!("the audit key asks for a page");
    };
    let events = qbo_service::fixtures::audit_records();
    update(
        &mut a,
        Msg::AuditPage {
            query: query.clone(),
            events: events.clone(),
            next_before_seq: None,
        },
    );
    ch(&mut a, '/');
    typed(&mut a, "outcome:denied");
    // As typed, the pages already read are narrowed.
    assert_eq!(a.audit.visible_len(), 1);
    assert_eq!(
        a.table.visible_len(),
        9,
        "the connections filter is untouched"
    );
    // Closing the line asks the daemon for pages of denied events only.
    let [Cmd::AuditPage(narrowed)] = &key(&mut a, KeyCode::Enter)[..] else {
        panic!("closing the filter line asks for the narrowed page");
    };
    assert_eq!(narrowed.outcome.as_deref(), Some("denied"));
    assert_eq!(narrowed.before_seq, None);
    assert_eq!(a.audit.visible_len(), 0);
    // A late page of the unfiltered log is not mixed in.
    update(
        &mut a,
        Msg::AuditPage {
            query: query.clone(),
            events: events.clone(),
            next_before_seq: None,
        },
    );
    assert_eq!(a.audit.visible_len(), 0);
    let denied: Vec<_> = events
        .into_iter()
        .filter(|e| e.outcome == "denied")
        .collect();
    update(
        &mut a,
        Msg::AuditPage {
            query: narrowed.clone(),
            events: denied,
            next_before_seq: None,
        },
    );
    assert_eq!(a.audit.visible_len(), 1);
    // The same terms again ask for nothing new.
    ch(&mut a, '/');
    assert!(key(&mut a, KeyCode::Enter).is_empty());
    // Esc clears the filter first (reading the whole log again), then leaves.
    let [Cmd::AuditPage(all)] = &key(&mut a, KeyCode::Esc)[..] else {
        panic!("clearing the filter asks for the unfiltered page");
    };
    assert_eq!(all.outcome, None);
    assert_eq!(a.screen, Screen::Audit);
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    assert_eq!(a.screen, Screen::Connections);
}

#[test]
fn a_verify_reply_says_what_intuit_answered() {
    use qbo_service::{VerifyOutcome, VerifyReport};
    let mut a = app(Role::Support);
    let cmds = ch(&mut a, 'v');
    let [Cmd::Verify { request, targets }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(targets, &Targets::Ids(vec![3]));
    let target = failed_refresh(3, "globex").target;
    update(
        &mut a,
        Msg::Reply {
            request: *request,
            result: Ok(Done::Verified(vec![VerifyReport {
                target,
                outcome: VerifyOutcome::Failed {
                    error_class: ErrorClass::RateLimited,
                    detail: "HTTP 429".into(),
                    intuit_tid: Some("1-xyz".into()),
                },
            }])),
        },
    );
    assert_eq!(
        a.message.unwrap().text,
        "globex: verify failed: rate_limited: HTTP 429 (intuit_tid 1-xyz)"
    );
}

#[test]
fn a_daemon_that_never_answered_takes_the_whole_screen_until_it_does() {
    let mut a = App::new(
        session(Role::Unmapped, false),
        Keymap::default(),
        at(NOW),
        (120, 30),
    );
    let why = "no qbo-console daemon answers at /run/qbo.sock (no socket there)";
    update(&mut a, Msg::Disconnected(why.into()));
    assert_eq!(a.link, Link::Unreachable(why.into()));
    // Said on the screen itself, not also on the message line.
    assert_eq!(a.message, None);
    // Still unreachable on the next attempt; q still quits.
    update(&mut a, Msg::Disconnected(why.into()));
    assert!(matches!(a.link, Link::Unreachable(_)));
    assert_eq!(ch(&mut a, 'q'), [Cmd::Quit]);
    update(&mut a, Msg::Session(session(Role::Support, false)));
    fake_daemon::open(&mut a, every_state());
    assert_eq!(a.link, Link::Live);
    update(&mut a, Msg::Disconnected("the daemon went away".into()));
    assert_eq!(a.link, Link::Lost("the daemon went away".into()));
}

#[test]
fn a_paste_types_into_an_open_line_and_never_acts_as_keys() {
    let mut a = app(Role::Support);
    // Pasted onto the table, "rv" must not refresh and verify.
    assert!(update(&mut a, Msg::Paste("rv\n".into())).is_empty());
    assert!(a.running.is_empty() && a.overlay.is_none());
    ch(&mut a, '/');
    assert!(update(&mut a, Msg::Paste("glob\nex".into())).is_empty());
    assert_eq!(a.filter_text, "globex");
    assert_eq!(shown(&a), ["globex"]);
}

#[test]
fn a_failed_page_can_be_asked_again_and_the_demo_clock_is_reported() {
    let mut a = app(Role::Auditor);
    assert_eq!(ch(&mut a, 'a').len(), 1);
    assert!(a.audit.loading);
    update(
        &mut a,
        Msg::Failed("cannot read the audit log: the daemon went away".into()),
    );
    assert!(!a.audit.loading);
    assert_eq!(a.message.as_ref().unwrap().tone, Tone::Error);
    // Back to the table and in again: the first page is asked for again.
    key(&mut a, KeyCode::Esc);
    assert_eq!(ch(&mut a, 'a').len(), 1);
    update(
        &mut a,
        Msg::ClockMoved("clock moved forward 1h: now 13:00".into()),
    );
    let m = a.message.unwrap();
    assert_eq!(
        (m.tone, m.text.as_str()),
        (Tone::Ok, "clock moved forward 1h: now 13:00")
    );
}

#[test]
fn a_bulk_tally_counts_the_skipped_apart_from_the_failed() {
    let skipped = |id, tenant| RefreshReport {
        outcome: RefreshOutcome::Skipped {
            reason: "pending: no tokens yet".into(),
        },
        ..failed_refresh(id, tenant)
    };
    let done = Done::Refreshed(vec![
        ok_refresh(3, "globex"),
        skipped(8, "pied-piper"),
        failed_refresh(4, "initech"),
    ]);
    assert_eq!(
        super::report::summarize(&done).1,
        "refresh of 3: 1 ok, 1 failed, 1 skipped (nothing to refresh); first: initech: transient: HTTP 503 (intuit_tid 1-abc)"
    );
    let done = Done::Refreshed(vec![ok_refresh(3, "globex"), skipped(8, "pied-piper")]);
    let (tone, text) = super::report::summarize(&done);
    assert_eq!(text, "refresh of 2: 1 ok, 1 skipped (nothing to refresh)");
    assert!(matches!(tone, Tone::Ok));
}

#[test]
fn an_admin_revokes_only_after_typing_the_realm_id_of_the_selected_row() {
    let mut a = app(Role::Admin);
    let row = a.table.selected().unwrap().clone();
    assert!(
        ch(&mut a, 'R').is_empty(),
        "nothing is sent before the typing"
    );
    assert_eq!(
        a.overlay,
        Some(Overlay::Revoke {
            targets: Targets::Ids(vec![row.id]),
            expected: row.realm_id.clone()
        })
    );
    assert_eq!(a.view(), View::Input);
    // A reflex `y` and Enter revoke nothing.
    typed(&mut a, "y");
    assert!(key(&mut a, KeyCode::Enter).is_empty());
    assert_eq!(a.overlay, None);
    let m = a.message.clone().unwrap();
    assert_eq!(m.tone, Tone::Error);
    assert!(m.text.contains("nothing was revoked"), "{}", m.text);
    // Esc cancels.
    ch(&mut a, 'R');
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    assert_eq!((a.overlay.clone(), a.prompt.is_none()), (None, true));
    // The realm id, typed, sends the revoke for that row, in the background.
    ch(&mut a, 'R');
    typed(&mut a, &row.realm_id);
    let cmds = key(&mut a, KeyCode::Enter);
    let [Cmd::Revoke { request, targets }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(targets, &Targets::Ids(vec![row.id]));
    assert_eq!(a.running[0].request, *request);
    assert_eq!(a.running[0].action, Action::Revoke);
}

#[test]
fn revoking_marked_rows_asks_for_their_count_and_support_may_not_revoke() {
    let mut a = app(Role::Admin);
    ch(&mut a, ' ');
    ch(&mut a, ' ');
    ch(&mut a, 'R');
    typed(&mut a, "2");
    let cmds = key(&mut a, KeyCode::Enter);
    let [Cmd::Revoke { targets, .. }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(targets.len(), 2);

    let mut s = app(Role::Support);
    assert!(ch(&mut s, 'R').is_empty());
    assert_eq!((s.overlay.clone(), s.prompt.is_none()), (None, true));
    assert!(s.message.unwrap().text.contains("needs role admin"));
}

#[test]
fn f_opens_the_forecast_asks_for_it_afresh_and_esc_comes_back() {
    let mut a = app(Role::Viewer);
    assert_eq!(ch(&mut a, 'F'), vec![Cmd::Forecast]);
    assert_eq!(a.screen, Screen::Forecast);
    assert_eq!(a.view(), View::Forecast);
    // A second press while the first is on its way asks nothing more.
    assert_eq!(key(&mut a, KeyCode::Esc), vec![]);
    assert_eq!(a.screen, Screen::Connections);
    assert_eq!(ch(&mut a, 'F'), vec![]);
    let f = qbo_service::Forecast {
        generated_at: at(NOW),
        days: 30,
        items: vec![],
        count: 0,
        by_risk: Default::default(),
        causes: vec![],
        alerts: vec![],
    };
    update(&mut a, Msg::Forecast(f.clone()));
    assert_eq!(a.forecast.as_ref(), Some(&f));
    key(&mut a, KeyCode::Esc);
    assert_eq!(
        ch(&mut a, 'F'),
        vec![Cmd::Forecast],
        "opened again, read again"
    );
    // The `:` line knows it too.
    key(&mut a, KeyCode::Esc);
    update(&mut a, Msg::Forecast(f));
    ch(&mut a, ':');
    typed(&mut a, "forecast");
    assert_eq!(key(&mut a, KeyCode::Enter), vec![Cmd::Forecast]);
}

#[test]
fn l_asks_for_a_link_for_the_selected_row_and_puts_the_answer_on_the_clipboard() {
    let mut a = app(Role::Support);
    let id = a.table.selected().unwrap().id;
    let tenant = selected(&a);
    assert_eq!(ch(&mut a, 'l'), vec![Cmd::Link(id)]);
    let url = "https://connect.example.com/connect/abc".to_string();
    let cmds = update(
        &mut a,
        Msg::Linked {
            tenant: tenant.clone(),
            result: Ok(qbo_service::IssuedLink {
                url: url.clone(),
                expires_at: at(NOW),
                connection_id: id,
            }),
        },
    );
    assert_eq!(cmds, vec![Cmd::Clipboard(url.clone())]);
    let said = &a.message.as_ref().unwrap().text;
    assert!(said.contains(&url) && said.contains(&tenant), "{said}");
    // A viewer is told the role it would need, and nothing is asked.
    let mut v = app(Role::Viewer);
    assert!(ch(&mut v, 'l').is_empty());
    assert!(v.message.as_ref().unwrap().text.contains("support"));
}

#[test]
fn b_on_the_detail_pane_asks_for_a_support_bundle_and_says_where_it_went() {
    let mut a = app(Role::Support);
    // Only on the detail pane: a bundle is about one connection.
    assert!(ch(&mut a, 'b').is_empty());
    assert_eq!(key(&mut a, KeyCode::Enter), [Cmd::Show(3)]);
    assert_eq!(ch(&mut a, 'b'), [Cmd::SupportBundle(3)]);
    assert!(update(&mut a, Msg::BundleWritten("written to /tmp/x.md".into())).is_empty());
    assert_eq!(a.message.clone().unwrap().text, "written to /tmp/x.md");

    let mut a = app(Role::Auditor);
    key(&mut a, KeyCode::Enter);
    assert!(ch(&mut a, 'b').is_empty());
    assert_eq!(
        a.message.clone().unwrap().text,
        "bundle needs role support or admin (you are auditor)"
    );
}

#[test]
fn e_in_the_audit_view_exports_the_current_filter_and_says_where_the_file_went() {
    let mut a = app(Role::Auditor);
    let [Cmd::AuditPage(query)] = &ch(&mut a, 'a')[..] else {
        panic!("the audit key asks for a page");
    };
    update(
        &mut a,
        Msg::AuditPage {
            query: query.clone(),
            events: qbo_service::fixtures::audit_records(),
            next_before_seq: None,
        },
    );
    ch(&mut a, '/');
    typed(&mut a, "tenant:globex outcome:ok");
    key(&mut a, KeyCode::Enter);
    let [Cmd::Export(f)] = &ch(&mut a, 'e')[..] else {
        panic!("e asks for an export");
    };
    assert_eq!(
        (
            f.tenant.as_deref(),
            f.outcome.as_deref(),
            f.action.as_deref()
        ),
        (Some("globex"), Some("ok"), None)
    );
    update(
        &mut a,
        Msg::Exported("exported 3 events to /home/alice/audit-export-x.jsonl (signed manifest beside it: /home/alice/audit-export-x.jsonl.manifest.json)".into()),
    );
    let said = a.message.as_ref().unwrap();
    assert_eq!(said.tone, Tone::Ok);
    assert!(
        said.text.contains("/home/alice/audit-export-x.jsonl"),
        "{}",
        said.text
    );
    // A free word cannot be exported as shown: nothing is asked, the fix is named.
    ch(&mut a, '/');
    key(&mut a, KeyCode::Esc);
    ch(&mut a, '/');
    typed(&mut a, "globex");
    key(&mut a, KeyCode::Enter);
    let asked = ch(&mut a, 'e');
    assert!(
        !asked.iter().any(|c| matches!(c, Cmd::Export(_))),
        "{asked:?}"
    );
    assert!(a.message.as_ref().unwrap().text.contains("tenant:globex"));
}

#[test]
fn a_viewer_pressing_e_in_the_audit_view_is_told_which_role_may_export() {
    let mut a = app(Role::Viewer);
    a.screen = Screen::Audit;
    assert!(ch(&mut a, 'e').is_empty());
    let said = &a.message.as_ref().unwrap().text;
    assert!(
        said.contains("export needs role auditor or admin"),
        "{said}"
    );
}

#[test]
fn a_key_of_another_view_says_where_it_works_instead_of_doing_nothing_silently() {
    let mut a = app(Role::Admin);
    assert!(ch(&mut a, 'b').is_empty());
    let said = a
        .message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default();
    assert!(
        said.starts_with(
            "b works in the detail view, not in the connections view: write a support bundle"
        ),
        "{said}"
    );
    assert!(ch(&mut a, 'e').is_empty());
    let said = a
        .message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default();
    assert!(said.contains("works in the audit log view"), "{said}");
    // A key bound nowhere still says nothing; the demo's clock key is not offered outside it.
    a.message = None;
    assert!(ch(&mut a, 'Z').is_empty());
    assert!(ch(&mut a, '+').is_empty());
    assert!(
        a.message.is_none(),
        "{:?}",
        a.message.as_ref().map(|m| &m.text)
    );
}
