//! `qbo-console demo` as a newcomer meets it, driven in a real terminal (`tmux`): on a
//! terminal, the console over a world of about 200 tenants whose clocks move an hour on a
//! key press, cleaned up on `q`; without a terminal for its output, or with `--script`, the
//! narrated walk-through.

use crate::common;

use common::tmux::{header_total, Tmux};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A shell line running the demo with its temporary files under `tmp`, then saying so.
fn demo_line(tmp: &Path, args: &str) -> String {
    format!(
        "TMPDIR='{}' '{}' demo {args}; echo DEMO-EXITED; sleep 30",
        tmp.display(),
        env!("CARGO_BIN_EXE_qbo-console")
    )
}

/// What the demo left in its temporary directory.
fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .expect("read the test's TMPDIR")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("qbo-console-demo"))
        .collect()
}

/// The narrated walk-through's landmarks: commands with their output, then the audit check.
fn assert_walkthrough(screen: &str) {
    for landmark in [
        "$ qbo-console import demo-import.csv",
        "$ qbo-console refresh --all",
        "$ qbo-console audit verify",
        "DEMO-EXITED",
    ] {
        assert!(
            screen.contains(landmark),
            "{landmark:?} missing from:\n{screen}"
        );
    }
}

/// Types into the console: keys sent one by one would be read as they are typed, but an
/// Escape followed at once by a key is read as Alt and that key, so Escape goes alone.
fn escape(t: &Tmux) {
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
}

fn filter(t: &Tmux, text: &str) {
    t.keys(&["/"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["-l", text]);
}

/// The first table row showing `word` as its status.
fn row_with<'a>(screen: &'a str, word: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(&format!(" {word} ")))
}

/// The access-token column of a row: "expired 3m ago", "42m".
fn access_cell(row: &str) -> Option<&str> {
    let from = row.find("expired ")?;
    let len = row[from..].find(" ago")? + " ago".len();
    Some(&row[from..from + len])
}

#[test]
fn on_a_terminal_the_demo_opens_the_console_over_200_tenants_moves_its_clocks_and_cleans_up_on_q() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let t = Tmux::start(dir.path(), "demo", 120, 40, &demo_line(&tmp, ""));

    let table = t.wait_for("the table of 200 tenants", Duration::from_secs(180), |s| {
        header_total(s) == Some(200)
    });
    assert!(
        t.alternate_screen(),
        "the console is not on the alternate screen"
    );
    // The most urgent first: customers who disconnected, whose refresh met invalid_grant,
    // and refreshes failing transiently.
    assert!(table.contains("needs reconnect"), "{table}");
    assert!(table.contains("invalid_g"), "{table}");
    assert!(
        ["transien", "rate_lim", "timeout", "garbage"]
            .iter()
            .any(|class| table.contains(class)),
        "no transient failure on the first page:\n{table}"
    );
    // Every status the demo promises has its rows.
    for (status, word) in [
        ("active", "active"),
        ("expiring", "expiring"),
        ("needs_reconnect", "needs reconnect"),
        ("pending", "pending"),
        ("revoked", "revoked"),
    ] {
        filter(&t, &format!("status:{status}"));
        let shown = t.wait_for(
            &format!("rows with status {status}"),
            Duration::from_secs(10),
            |s| s.contains("of 200 shown") && row_with(s, word).is_some(),
        );
        assert!(!shown.contains(" 0 of 200 shown"), "{shown}");
        escape(&t);
        escape(&t);
        t.wait_for("the whole table again", Duration::from_secs(10), |s| {
            header_total(s) == Some(200)
        });
    }

    // A disconnected customer's access token expired as the world became ready: minutes
    // ago at most, until an hour passes.
    // The selection stayed on the last filter's row; the most urgent are at the top.
    t.keys(&["g"]);
    let before = t.wait_for("the top of the table", Duration::from_secs(10), |s| {
        row_with(s, "needs reconnect").is_some()
    });
    let row = row_with(&before, "needs reconnect")
        .unwrap_or_else(|| panic!("no needs-reconnect row on:\n{before}"));
    // Tenant and realm, without the selection marker that may move.
    let who: String = row.chars().skip(3).take(33).collect();
    let was = access_cell(row)
        .expect("its access token expired")
        .to_string();
    assert!(
        was.ends_with("s ago") || was.ends_with("m ago"),
        "{was} in:\n{before}"
    );
    t.keys(&["+"]);
    let after = t.wait_for("the hour to pass", Duration::from_secs(60), |s| {
        s.contains("demo time now ")
    });
    let moved = after
        .lines()
        .find(|l| l.contains(&who))
        .and_then(access_cell)
        .unwrap_or_else(|| panic!("{who:?} is gone from:\n{after}"));
    assert_eq!(moved, "expired 1h ago", "{after}");
    // The demo's time is the wall clock's plus the hour of the build and the hour asked for.
    let told = after
        .split("demo time now ")
        .nth(1)
        .and_then(|rest| rest.get(..16))
        .expect("the demo time in the message");
    let demo_now = chrono::NaiveDateTime::parse_from_str(told, "%Y-%m-%d %H:%M")
        .expect("a demo time")
        .and_utc();
    let ahead = demo_now - chrono::Utc::now();
    assert!(
        ahead > chrono::Duration::minutes(115) && ahead < chrono::Duration::minutes(125),
        "the demo's clock is {ahead} ahead of the wall clock"
    );

    t.keys(&["q"]);
    let gone = t.wait_for("the shell after q", Duration::from_secs(30), |s| {
        s.contains("DEMO-EXITED")
    });
    assert!(!t.alternate_screen(), "the alternate screen is still on");
    assert!(
        header_total(&gone).is_none(),
        "the console's table is still on the screen:\n{gone}"
    );
    assert!(gone.contains("removed"), "{gone}");
    assert_eq!(leftovers(&tmp), Vec::<String>::new(), "the demo left files");
}

#[test]
fn with_keep_the_demo_leaves_its_database_and_its_log_which_took_what_the_daemon_logged() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let t = Tmux::start(
        dir.path(),
        "keep",
        120,
        40,
        &demo_line(&tmp, "--keep --tenants 20"),
    );
    let table = t.wait_for("the table of 20 tenants", Duration::from_secs(120), |s| {
        header_total(s) == Some(20)
    });
    assert!(table.contains("needs reconnect"), "{table}");
    t.keys(&["q"]);
    let gone = t.wait_for("the shell after q", Duration::from_secs(30), |s| {
        s.contains("DEMO-EXITED")
    });
    let kept = leftovers(&tmp);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let world = tmp.join(&kept[0]);
    assert!(gone.contains("kept"), "{gone}");
    // Its times are the demo's, an hour ahead of the wall clock's: said, so they surprise no one.
    assert!(gone.contains("1h ahead"), "{gone}");
    assert!(world.join("demo.db").is_file());
    assert!(world.join("qbo-console.toml").is_file());
    let log = std::fs::read_to_string(world.join("demo.log")).expect("the demo's log");
    assert!(
        log.contains("INFO") || log.contains("WARN"),
        "nothing was logged to {}:\n{log}",
        world.display()
    );
}

#[test]
fn on_sigterm_the_demo_gives_the_terminal_back_and_removes_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let t = Tmux::start(
        dir.path(),
        "term",
        120,
        40,
        &demo_line(&tmp, "--tenants 20"),
    );
    t.wait_for("the table of 20 tenants", Duration::from_secs(120), |s| {
        header_total(s) == Some(20)
    });
    assert_eq!(leftovers(&tmp).len(), 1);
    let demo = t.foreground_child();
    // SAFETY: kill has no memory preconditions; the pid is the demo this test started.
    assert_eq!(unsafe { libc::kill(demo, libc::SIGTERM) }, 0);
    let gone = t.wait_for("the shell after SIGTERM", Duration::from_secs(30), |s| {
        s.contains("DEMO-EXITED")
    });
    assert!(!t.alternate_screen(), "the alternate screen is still on");
    assert!(gone.contains("removed"), "{gone}");
    assert_eq!(leftovers(&tmp), Vec::<String>::new(), "the demo left files");
}

#[test]
fn ctrl_c_while_the_world_is_being_built_stops_the_demo_and_removes_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // A world large enough to take a while to build.
    let t = Tmux::start(
        dir.path(),
        "ctrlc",
        120,
        40,
        &demo_line(&tmp, "--tenants 3000"),
    );
    t.wait_for("the build to start", Duration::from_secs(30), |s| {
        s.contains("starting the Intuit emulator")
    });
    t.keys(&["C-c"]);
    let gone = t.wait_for("the shell after Ctrl-C", Duration::from_secs(30), |s| {
        s.contains("DEMO-EXITED")
    });
    assert!(gone.contains("interrupted"), "{gone}");
    assert!(!t.alternate_screen(), "the alternate screen is on");
    assert_eq!(leftovers(&tmp), Vec::<String>::new(), "the demo left files");
}

#[test]
fn with_script_or_without_a_terminal_for_its_output_the_demo_tells_its_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // A tall pane: the walk-through's last lines must still be on the screen at the end.
    for (session, args) in [("script", "--script"), ("piped", "| cat")] {
        let t = Tmux::start(dir.path(), session, 200, 200, &demo_line(&tmp, args));
        let screen = t.wait_for(
            "the walk-through to finish",
            Duration::from_secs(120),
            |s| s.contains("DEMO-EXITED"),
        );
        assert_walkthrough(&screen);
        assert!(
            !t.alternate_screen(),
            "{session}: the alternate screen is on"
        );
        assert_eq!(leftovers(&tmp), Vec::<String>::new(), "{session}");
    }
}

#[test]
fn a_demo_of_no_tenants_or_a_world_size_with_the_walkthrough_is_refused_as_bad_input() {
    for args in [
        &["demo", "--tenants", "0"][..],
        &["demo", "--tenants", "many"],
        &["demo", "--script", "--tenants", "20"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_qbo-console"))
            .args(args)
            .output()
            .expect("run qbo-console");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--tenants"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
