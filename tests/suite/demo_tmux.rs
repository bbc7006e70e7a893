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
pub(crate) fn demo_line(tmp: &Path, args: &str) -> String {
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
        "$ qbo-console forecast",
        "the customer must reconnect",
        "$ qbo-console link cedar-dental",
        "callback page: HTTP 200 \"Connected\"",
        "cedar-dental  ",
        "export intact: ",
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
    // The failures in words, whole (`dead grant`, not `invalid_g`).
    assert!(table.contains("dead grant"), "{table}");
    assert!(
        ["Intuit 5", "rate limited", "timed out", "garbled"]
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

    // Its outage key: Intuit's production token endpoint fails, one incident opens and the
    // banner says so under the header; pressed again, Intuit answers and the banner goes.
    t.keys(&["!"]);
    let outage = t.wait_for("the incident's banner", Duration::from_secs(60), |s| {
        s.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("⚠ Intuit incident "))
            && s.contains("incident 1 opened")
    });
    let banner = outage.lines().nth(1).unwrap();
    assert!(
        banner.contains("production") && banner.contains("5xx"),
        "{banner}"
    );
    t.keys(&["!"]);
    let over = t.wait_for("the incident's end", Duration::from_secs(60), |s| {
        s.contains("answers again")
    });
    assert!(
        !over.contains("⚠ Intuit incident"),
        "the banner is gone once it ended:\n{over}"
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

/// The screen's text without line breaks: a wrapped message read as one line.
fn unwrapped(screen: &str) -> String {
    screen
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first word of `screen` that starts with `prefix`, up to the next space.
fn word_after(screen: &str, prefix: &str) -> Option<String> {
    let from = screen.find(prefix)?;
    Some(
        screen[from..]
            .split(|c: char| c.is_whitespace() || c == ')' || c == '(')
            .next()?
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_80_columns_the_demos_console_forecasts_its_dead_connections_exports_a_verifiable_log_and_issues_links_a_browser_completes(
) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // The export and the bundle are written to the current directory: the test's own.
    let line = format!(
        "cd '{}' && {}",
        dir.path().display(),
        demo_line(&tmp, "--tenants 20")
    );
    let t = Tmux::start(dir.path(), "tour", 80, 24, &line);
    let first = t.wait_for("the table of 20 tenants", Duration::from_secs(120), |s| {
        header_total(s) == Some(20)
    });
    // The first message says where the public listener is, whole though it wraps.
    assert!(
        unwrapped(&first).contains("public listener http://localhost:"),
        "{first}"
    );
    let base = word_after(&unwrapped(&first), "http://localhost:")
        .unwrap_or_else(|| panic!("no public listener named on:\n{first}"));

    // The forecast, grouped by cause: the dead connections under one heading with its one
    // remedy, each on one line with its date and why, nothing past the edge.
    t.keys(&["F"]);
    let forecast = t.wait_for("the forecast", Duration::from_secs(10), |s| {
        s.contains("forecast: ") && s.contains("Intuit refused the refresh token")
    });
    let lines: Vec<&str> = forecast.lines().collect();
    let heading = lines
        .iter()
        .position(|l| l.contains("Intuit refused the refresh token"))
        .unwrap_or_else(|| panic!("no heading for the dead connections in:\n{forecast}"));
    assert!(
        lines[heading + 1]
            .trim_start()
            .starts_with("→ send each customer a reconnect link"),
        "the remedy is not under its heading:\n{forecast}"
    );
    let item = lines[heading + 1..]
        .iter()
        .find(|l| l.starts_with("  ✗ "))
        .unwrap_or_else(|| panic!("no dead connection under its heading in:\n{forecast}"));
    let date = item.split_whitespace().nth(1).unwrap_or_default();
    assert!(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "no date on {item:?}"
    );
    // Intuit's own words; the heading above says what they mean.
    assert!(item.contains("invalid_grant"), "no reason on {item:?}");
    for l in &lines {
        assert!(l.chars().count() <= 80, "past the edge: {l:?}");
    }
    escape(&t);

    // `e` in the audit view: the whole path is on screen, and the export verifies offline.
    t.keys(&["a"]);
    t.wait_for("the audit log", Duration::from_secs(10), |s| {
        s.contains("AT (UTC)")
    });
    t.keys(&["e"]);
    let exported = t.wait_for("the export", Duration::from_secs(30), |s| {
        s.contains("exported ") && s.contains(".manifest.json")
    });
    let export = word_after(
        &unwrapped(&exported),
        &dir.path().join("audit-export-").display().to_string(),
    )
    .unwrap_or_else(|| panic!("no export path on:\n{exported}"));
    assert!(std::path::Path::new(&format!("{export}.manifest.json")).is_file());
    let verified = Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .args(["audit", "verify", "--export", &export])
        .output()
        .expect("run qbo-console");
    let said = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(0), "{said}");
    assert!(said.contains("export intact"), "{said}");
    escape(&t);

    // The dead row's detail pane: its realm, a support bundle, and a link.
    t.keys(&["g"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["Enter"]);
    let detail = t.wait_for("the detail pane", Duration::from_secs(10), |s| {
        s.contains("realm id") && s.contains("needs reconnect")
    });
    let realm = detail
        .lines()
        .find_map(|l| l.strip_prefix("realm id"))
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|| panic!("no realm id on:\n{detail}"));
    // The reason is longer than the line: it continues under itself, not at the left edge.
    let reason = detail
        .lines()
        .skip_while(|l| !l.starts_with("  reason "))
        .nth(1)
        .unwrap_or_default();
    assert!(
        reason.starts_with(&" ".repeat(16)) && !reason.trim().is_empty(),
        "the reason's second line is {reason:?} in\n{detail}"
    );
    t.keys(&["b"]);
    let bundled = t.wait_for("the support bundle", Duration::from_secs(30), |s| {
        s.contains("support bundle for") && s.contains(".md")
    });
    let bundle = word_after(
        &unwrapped(&bundled),
        &dir.path().join("qbo-support-").display().to_string(),
    )
    .unwrap_or_else(|| panic!("no bundle path on:\n{bundled}"));
    assert!(std::path::Path::new(&bundle).is_file(), "{bundle}");

    t.keys(&["l"]);
    let linked = t.wait_for("the link", Duration::from_secs(30), |s| {
        s.contains("/connect/")
    });
    let url = word_after(&unwrapped(&linked), &format!("{base}/connect/"))
        .unwrap_or_else(|| panic!("no link on:\n{linked}"));

    // The customer's browser: the link, qbo-sim's consent for their company, the callback.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = browser.get(&url).send().await.unwrap();
    assert_eq!(opened.status().as_u16(), 302, "{url}");
    let intuit = opened.headers()["location"].to_str().unwrap().to_string();
    let cookie = opened.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let consented = browser
        .get(&intuit)
        .header("x-sim-decision", "approve")
        .header("x-sim-realm-id", &realm)
        .send()
        .await
        .unwrap();
    assert_eq!(consented.status().as_u16(), 302, "{intuit}");
    let callback = consented.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        callback.starts_with(&format!("{base}/callback?")),
        "qbo-sim sent the browser to {callback}"
    );
    let page = browser
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("Connected"));
    t.wait_for(
        "the connection back to active",
        Duration::from_secs(30),
        |s| s.contains("status          ✓ active"),
    );

    // Help: a description too long for the box wraps under itself, not under the keys.
    t.keys(&["?"]);
    let help = t.wait_for("the help", Duration::from_secs(10), |s| {
        s.contains("keys: ")
    });
    let keys: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.contains("keys: "))
        .skip(1)
        .take_while(|l| l.starts_with("│  "))
        .collect();
    assert!(keys.len() > 5, "{help}");
    let after_keys = help
        .lines()
        .skip_while(|l| !l.contains("keys: "))
        .nth(keys.len() + 1)
        .unwrap_or_default();
    assert!(
        !after_keys.starts_with("│") || after_keys.trim_matches(['│', ' ']).is_empty(),
        "a description wrapped to the box's edge: {after_keys:?} in\n{help}"
    );
    escape(&t);
    t.keys(&["q"]);
    t.wait_for("the shell after q", Duration::from_secs(30), |s| {
        s.contains("DEMO-EXITED")
    });
}

/// Where `text` appears on `screen` (its first eight characters at least), it is whole or
/// cut where a `…` says so. Where several texts share a beginning, one of them must fit.
fn cuts_are_marked(screen: &str, texts: &[String], what: &str) -> usize {
    let texts: Vec<Vec<char>> = texts
        .iter()
        .map(|t| t.chars().collect::<Vec<char>>())
        .filter(|t| t.len() >= 8)
        .collect();
    let mut checked = 0;
    for line in screen.lines() {
        let chars: Vec<char> = line.chars().collect();
        for start in 0..chars.len() {
            let rest = &chars[start..];
            let starting: Vec<&Vec<char>> = texts
                .iter()
                .filter(|t| rest.len() >= 8 && rest[..8] == t[..8])
                .collect();
            if starting.is_empty() || (start > 0 && !chars[start - 1].is_whitespace()) {
                continue;
            }
            // Whole, marked, or not this text at all: a cut shows the text's beginning and
            // then stops (blank or the line's end) inside one of its words. Stopping
            // between two words is another column's word that begins like it ("refresh",
            // the action, beside "refresh token rotated"); going on with other letters is
            // another text ("refreshes failed" in a reason, "refreshes failing" a heading).
            let fits = starting.iter().any(|t| {
                let common = t.iter().zip(rest).take_while(|(a, b)| a == b).count();
                let stopped = rest.get(common).is_none_or(|c| c.is_whitespace());
                common == t.len()
                    || rest.get(common) == Some(&'…')
                    || !stopped
                    || t[common - 1].is_whitespace()
                    || t[common].is_whitespace()
            });
            assert!(
                fits,
                "{what}: {:?} is cut without a mark (one of {:?}) in:\n{screen}",
                rest.iter().collect::<String>(),
                starting
                    .iter()
                    .map(|t| t.iter().collect::<String>())
                    .collect::<Vec<_>>()
            );
            checked += 1;
        }
    }
    checked
}

/// The running demo's directory under `tmp` (its configuration, database and socket).
pub(crate) fn demo_dir(tmp: &Path) -> std::path::PathBuf {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("qbo-console-demo")
        })
        .expect("the demo's directory")
        .path()
}

/// The demo's own answers as JSON, through its socket (its configuration is in its
/// directory under `tmp`).
fn demo_json(tmp: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .arg("--config")
        .arg(demo_dir(tmp).join("qbo-console.toml"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An array, or one value a line (`audit tail --json`).
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        serde_json::Value::Array(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        )
    })
}

fn strings(v: &serde_json::Value, keys: &[&str]) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|x| {
            keys.iter()
                .filter_map(|k| x[*k].as_str().map(str::to_string))
        })
        .collect()
}

#[test]
fn at_120_by_40_and_80_by_24_the_demos_table_audit_view_and_forecast_cut_no_word_without_a_mark() {
    for (w, h) in [(120u16, 40u16), (80, 24)] {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let t = Tmux::start(
            dir.path(),
            &format!("cuts{w}"),
            w,
            h,
            &demo_line(&tmp, "--tenants 60"),
        );
        let table = t.wait_for("the table of 60 tenants", Duration::from_secs(120), |s| {
            header_total(s) == Some(60)
        });
        let rows = demo_json(&tmp, &["list", "--json"]);
        let tenants = strings(&rows, &["tenant"]);
        assert!(
            cuts_are_marked(&table, &tenants, &format!("the table at {w}×{h}")) >= 10,
            "{table}"
        );

        t.keys(&["a"]);
        let audit = t.wait_for("the audit log", Duration::from_secs(20), |s| {
            s.contains("ACTION")
                && s.contains("REASON")
                && s.lines().filter(|l| l.contains("refresh")).count() > 3
        });
        let events = demo_json(&tmp, &["audit", "tail", "-n", "300", "--json"]);
        let mut texts = strings(&events, &["tenant", "reason", "action"]);
        texts.extend(tenants.iter().cloned());
        assert!(
            cuts_are_marked(&audit, &texts, &format!("the audit view at {w}×{h}")) >= 5,
            "{audit}"
        );
        escape(&t);

        t.keys(&["F"]);
        let forecast = t.wait_for("the forecast", Duration::from_secs(20), |s| {
            s.contains("forecast: ")
        });
        let f = demo_json(&tmp, &["forecast", "--limit", "200", "--json"]);
        let mut texts = strings(&f["items"], &["tenant", "reason"]);
        texts.extend(
            f["causes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["title"].as_str().map(str::to_string)),
        );
        assert!(
            cuts_are_marked(&forecast, &texts, &format!("the forecast at {w}×{h}")) >= 5,
            "{forecast}"
        );
        t.keys(&["q"]);
        t.wait_for("the shell after q", Duration::from_secs(30), |s| {
            s.contains("DEMO-EXITED")
        });
    }
}

#[test]
fn the_cut_check_catches_a_name_cut_mid_word_without_a_mark() {
    let names = vec!["meadowlark-yoga-studio".to_string()];
    assert_eq!(
        cuts_are_marked("x meadowlark-yoga-stu… ✓", &names, "marked"),
        1
    );
    assert_eq!(
        cuts_are_marked("x meadowlark-yoga-studio ✓", &names, "whole"),
        1
    );
    let unmarked = std::panic::catch_unwind(|| {
        cuts_are_marked("x meadowlark-yoga-stu   ✓", &names, "unmarked")
    });
    assert!(unmarked.is_err(), "a cut without a mark is caught");
}
