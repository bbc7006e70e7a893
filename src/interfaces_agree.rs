//! The CLI and the console say the same thing about the same row: the same state in the
//! same glyph and word, the same times, the same actors (issue 23's "one presentation
//! vocabulary"). Each side is rendered by its own code, as an operator would see it, and
//! compared; a renderer that stops taking its words from `present` fails here.

use crate::cli::render;
use qbo_core::domain::Status;
use qbo_core::present;
use qbo_service::fixtures::{at, audit_records, every_state, NOW};
use qbo_tui::theme::{condition_mark, status_mark};
use qbo_tui::views::cells;

/// The CLI table's line for `tenant`.
fn cli_row<'a>(table: &'a str, tenant: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{tenant} ")))
        .unwrap_or_else(|| panic!("{tenant} in\n{table}"))
}

#[test]
fn every_state_is_the_same_glyph_and_word_in_both() {
    for s in Status::ALL {
        let m = status_mark(s);
        assert_eq!(
            render::status_label(s),
            format!("{} {}", m.glyph, m.word),
            "{s}"
        );
        assert_eq!(render::status_label(s), present::status(s).label());
    }
}

#[test]
fn a_live_connection_whose_refreshes_fail_says_failing_in_both() {
    let now = at(NOW);
    let rows = every_state();
    let failing: Vec<_> = rows
        .iter()
        .filter(|c| c.status.is_live() && c.consecutive_failures > 0)
        .collect();
    assert!(
        !failing.is_empty(),
        "the fixtures hold a failing connection"
    );
    let table = render::connections_table(&rows, now);
    for c in failing {
        let said = format!("↯ failing ×{}", c.consecutive_failures);
        assert_eq!(render::condition_label(c), said);
        let line = cli_row(&table, &c.tenant);
        assert!(line.contains(&said), "{line}");
        assert!(!line.contains("✓"), "no tick on a failing row: {line}");
        let m = condition_mark(c.condition());
        assert_eq!((m.glyph, m.word), ("↯", "failing"));
    }
}

#[test]
fn every_row_shows_the_same_state_and_times_in_both() {
    let now = at(NOW);
    let rows = every_state();
    let table = render::connections_table(&rows, now);
    for c in &rows {
        let line = cli_row(&table, &c.tenant);
        // How it is (`↯ failing` for initech, whose refreshes fail), in both.
        let m = condition_mark(c.condition());
        assert!(
            line.contains(&format!("{} {}", m.glyph, m.word)),
            "{}: the console says {} {}: {line}",
            c.tenant,
            m.glyph,
            m.word
        );
        // The access token: the console's cell is the countdown the CLI words.
        if c.status.has_tokens() {
            let (access, _) = cells::access(c, now);
            let cli_says = if access.starts_with("expired ") || access == "unknown" {
                access.clone()
            } else {
                format!("expires in {access}")
            };
            assert!(
                line.contains(&cli_says),
                "{}: the console says {access:?}, the CLI: {line}",
                c.tenant
            );
        }
        // The last refresh: the same time since, in both.
        if let Some(t) = c.last_refresh_at {
            let since = present::ago(t, now);
            let (console, _) = cells::last_refresh(c, now);
            assert!(
                console.contains(since.trim_end_matches(" ago")),
                "{}: {console:?} vs {since:?}",
                c.tenant
            );
            assert!(line.contains(&since), "{}: {since:?} in {line}", c.tenant);
        }
        if let Some(t) = c.last_sync_at {
            let since = present::ago(t, now);
            let (console, _) = cells::last_sync(c, now);
            assert!(console.contains(&since), "{}: {console:?}", c.tenant);
            assert!(line.contains(&since), "{}: {since:?} in {line}", c.tenant);
        }
    }
}

#[test]
fn every_actor_is_named_alike_in_both() {
    let records = audit_records();
    let cli = render::audit_lines(&records);
    for r in &records {
        let line = cli
            .lines()
            .find(|l| l.starts_with(&format!("#{} ", r.seq)))
            .unwrap_or_else(|| panic!("#{} in\n{cli}", r.seq));
        // The console's audit list shows the short name; the CLI the whole one, which
        // begins with it (or names the kind, for a customer's browser).
        let short = r.actor_short();
        assert!(
            line.contains(&short),
            "#{}: the console says {short:?}, the CLI: {line}",
            r.seq
        );
    }
}
