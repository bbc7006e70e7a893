//! The console as an operator meets it: the real binary in a real terminal (tmux), against
//! `qbo-sim` and a running `serve`. Keys go in with `send-keys`; what the operator would
//! see comes back with `capture-pane`.

use crate::common;

use common::{DaemonProc, World};
use qbo_sim::SimOptions;
use std::process::Command;
use std::time::{Duration, Instant};

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// One tmux server of its own (`-L`), so that tests in parallel and the operator's own
/// tmux never meet; killed with everything in it when the test ends, however it ends.
struct Tmux {
    server: String,
}

impl Tmux {
    /// Runs `command` through `sh` in a `width`×`height` terminal.
    fn start(command: &str, width: u16, height: u16) -> Tmux {
        let server = format!(
            "qbo-console-test-{}-{}",
            std::process::id(),
            qbo_core::vault::hex(&rand::random::<[u8; 4]>())
        );
        let t = Tmux { server };
        let out = t
            .tmux()
            .args(["new-session", "-d", "-s", "console", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(command)
            .output()
            .expect("the console's end-to-end test drives tmux: install it (apt-get install tmux)");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.server);
        // Inside another tmux (a developer's), tmux would talk to that one.
        c.env_remove("TMUX");
        c
    }

    /// Keys as tmux names them ("Enter", "Escape", "C-c") or literal text.
    fn keys(&self, keys: &[&str]) {
        let out = self
            .tmux()
            .args(["send-keys", "-t", "console"])
            .args(keys)
            .output()
            .expect("run tmux send-keys");
        assert!(out.status.success(), "send-keys {keys:?} failed");
    }

    /// Text typed as it is, one character at a time (no key names).
    fn type_text(&self, text: &str) {
        let out = self
            .tmux()
            .args(["send-keys", "-t", "console", "-l", text])
            .output()
            .expect("run tmux send-keys");
        assert!(out.status.success(), "send-keys -l {text:?} failed");
    }

    fn resize(&self, width: u16, height: u16) {
        let out = self
            .tmux()
            .args(["resize-window", "-t", "console", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .output()
            .expect("run tmux resize-window");
        assert!(out.status.success(), "resize-window failed");
    }

    /// The console's process id: the child of the pane's shell.
    fn console_pid(&self) -> i32 {
        let out = self
            .tmux()
            .args(["list-panes", "-t", "console", "-F", "#{pane_pid}"])
            .output()
            .expect("run tmux list-panes");
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        children
            .split_whitespace()
            .next()
            .expect("the shell runs the console")
            .parse()
            .unwrap()
    }

    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "console"])
            .output()
            .expect("run tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok`, and returns it; fails naming `what` and
    /// showing the last screen after 20 s.
    async fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// The line of the table that shows `tenant` (after the cursor and the mark, if any).
fn row<'a>(screen: &'a str, tenant: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        l.split_whitespace()
            .find(|w| !matches!(*w, "›" | "●"))
            .is_some_and(|w| w == tenant)
    })
}

/// The rows of the audit view (each starts with its date).
fn audit_rows(screen: &str) -> impl Iterator<Item = &str> {
    screen.lines().filter(|l| l.starts_with("20"))
}

/// The access token's countdown on `tenant`'s row, in seconds (the emulator here issues
/// tokens for under a minute, so the countdown is written in seconds: `47s`).
fn countdown(screen: &str, tenant: &str) -> Option<u64> {
    let words: Vec<&str> = row(screen, tenant)?.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let secs = w[0].strip_suffix('s')?.parse().ok()?;
        // "12s ago" is the last refresh, not the countdown.
        (w[1] != "ago").then_some(secs)
    })
}

/// A world whose access tokens live under a minute, so a refresh visibly resets the
/// countdown, and whose scheduler refreshes imported connections once and then leaves them
/// (it keeps refresh tokens alive only), so every refresh the emulator counts after that
/// is the test's own.
async fn world(prefix: &str, role: &str) -> (World, DaemonProc) {
    let opts = SimOptions {
        access_token_ttl_secs: 55,
        ..SimOptions::default()
    };
    let t = common::Tuning {
        extra: "refresh_access_tokens = false\n".into(),
        ..common::Tuning::default()
    };
    let w = World::start_tuned(opts, t).await;
    w.seed(3, prefix).await;
    w.append_config(&format!("[roles]\n{role} = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;
    (w, d)
}

/// The console in tmux, then a line that shows once it has exited, with the shell kept
/// open long enough to read it.
fn console(w: &World, width: u16, height: u16) -> Tmux {
    let cmd = format!(
        "{} --config {} tui; echo CONSOLE-EXITED; sleep 60",
        env!("CARGO_BIN_EXE_qbo-console"),
        w.config.display()
    );
    Tmux::start(&cmd, width, height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_filters_refreshes_sees_another_refresh_live_and_quits_cleanly() {
    let (w, d) = world("tmux", "admin").await;
    let t = console(&w, 120, 40);
    let s = t
        .wait_for("the imported tenants", |s| {
            ["tmux-0", "tmux-1", "tmux-2"]
                .iter()
                .all(|n| row(s, n).is_some())
        })
        .await;
    assert!(s.contains("3 connections"), "{s}");
    assert!(s.contains(&format!("{} (admin)", me())), "{s}");

    // `/` and a tenant name leave its row alone.
    t.keys(&["/"]);
    t.type_text("tmux-1");
    let s = t
        .wait_for("one row", |s| {
            row(s, "tmux-1").is_some() && row(s, "tmux-0").is_none() && row(s, "tmux-2").is_none()
        })
        .await;
    assert!(s.contains("1 of 3 shown"), "{s}");
    t.keys(&["Enter"]);

    // `r` refreshes it: the emulator counts one refresh, and the countdown starts again.
    let before = w.sim.stats().refreshes;
    let s = t
        .wait_for("the countdown to run down a little", |s| {
            countdown(s, "tmux-1").is_some_and(|c| c <= 45)
        })
        .await;
    let old = countdown(&s, "tmux-1").unwrap();
    t.keys(&["r"]);
    t.wait_for("the countdown to start again", |s| {
        countdown(s, "tmux-1").is_some_and(|c| c > old + 3)
    })
    .await;
    assert_eq!(w.sim.stats().refreshes, before + 1);
    t.wait_for("the outcome on the message line", |s| {
        s.contains("tmux-1: refresh ok")
    })
    .await;

    // Enter opens the detail (a `show` on the record), Esc comes back.
    t.keys(&["Enter"]);
    t.wait_for("the detail", |s| s.contains("recent audit events"))
        .await;
    t.keys(&["Escape"]);
    t.wait_for("the table", |s| s.contains("LAST REFRESH"))
        .await;

    // A refresh by another process (the CLI) shows without a key press.
    t.keys(&["Escape"]);
    t.wait_for("every row again", |s| row(s, "tmux-2").is_some())
        .await;
    let s = t
        .wait_for("tmux-2's countdown to run down a little", |s| {
            countdown(s, "tmux-2").is_some_and(|c| c <= 45)
        })
        .await;
    let old = countdown(&s, "tmux-2").unwrap();
    let out = w.via_daemon(&["refresh", "tmux-2"]).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    t.wait_for("tmux-2's countdown to start again", |s| {
        countdown(s, "tmux-2").is_some_and(|c| c > old + 3)
    })
    .await;

    // `?` shows the help, from the same table the keys dispatch on.
    t.keys(&["?"]);
    // Both ends of the help: a capture can land while a frame is half written.
    let s = t
        .wait_for("the help", |s| {
            s.contains("refresh the marked rows") && s.contains("quit the console")
        })
        .await;
    assert!(s.contains("quit the console"), "{s}");
    t.keys(&["Escape"]);
    // A terminal cannot tell Esc and a key right after it from Alt and that key: wait.
    t.wait_for("the help to close", |s| !s.contains("quit the console"))
        .await;

    // `a` opens the audit log, newest first; Enter shows one event; a filter by field is
    // asked of the daemon when the line closes.
    t.keys(&["a"]);
    let s = t
        .wait_for("the audit log", |s| {
            s.contains("AT (UTC)") && s.contains("tmux-2")
        })
        .await;
    let first = s
        .lines()
        .position(|l| l.contains("refresh") && l.contains("tmux-2"))
        .expect("the CLI's refresh of tmux-2 is listed");
    let older = s
        .lines()
        .position(|l| l.contains("refresh") && l.contains("tmux-1"))
        .expect("the console's refresh of tmux-1 is listed");
    assert!(first < older, "newest first:\n{s}");
    t.keys(&["Enter"]);
    t.wait_for("one event", |s| {
        s.contains("audit event") && s.contains("sequence")
    })
    .await;
    t.keys(&["Escape"]);
    t.wait_for("the list again", |s| !s.contains("sequence"))
        .await;
    t.keys(&["/"]);
    t.type_text("action:show");
    t.keys(&["Enter"]);
    // The unfiltered list already holds a `show` row: wait for the filtered page itself
    // (a show row and no other action), or time out naming what was on screen.
    let s = t
        .wait_for("only show events", |s| {
            s.lines()
                .any(|l| l.contains(" show ") && l.contains("tmux-1"))
                && !audit_rows(s).any(|l| l.contains(" refresh "))
        })
        .await;
    assert!(
        !audit_rows(&s).any(|l| l.contains(" refresh ")),
        "the filter left other actions:\n{s}"
    );
    t.keys(&["Escape"]);
    // A refresh row of the log itself, not the message line's "tmux-1: refresh ok": were
    // the second Esc sent before the first is read, a terminal would deliver both bytes in
    // one read, which reads as one Esc (this test failed that way under load).
    t.wait_for("the filter cleared", |s| {
        audit_rows(s).any(|l| l.contains(" refresh "))
    })
    .await;
    t.keys(&["Escape"]);
    t.wait_for("the table", |s| s.contains("LAST REFRESH"))
        .await;

    // `q` quits, and the shell is back with the console's screen gone.
    t.keys(&["q"]);
    let s = t
        .wait_for("the shell", |s| s.contains("CONSOLE-EXITED"))
        .await;
    assert!(
        row(&s, "tmux-0").is_none(),
        "the table is still shown:\n{s}"
    );
    assert!(!s.contains("qbo-console "), "{s}");

    // The audit log has the console opened and closed, by the console, and no read per
    // window: the console asked for one per keystroke, scroll and change it followed, and
    // its opening says who was reading.
    let events = w.audit_events(200).await;
    let tui: Vec<&serde_json::Value> = events.iter().filter(|e| e["interface"] == "tui").collect();
    let actions: Vec<&str> = tui.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions.first(), Some(&"watch"), "{actions:?}");
    assert!(actions.contains(&"console opened"), "{actions:?}");
    assert_eq!(actions.last(), Some(&"console closed"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "list").count(),
        0,
        "{actions:?}"
    );
    // Each page read is on the record: the first, the narrowed one, the one after Esc.
    assert!(
        actions.iter().filter(|a| **a == "audit page").count() >= 3,
        "{actions:?}"
    );
    assert!(
        tui.iter()
            .any(|e| e["action"] == "show" && e["tenant"] == "tmux-1"),
        "{actions:?}"
    );
    let opened = tui
        .iter()
        .find(|e| e["action"] == "console opened")
        .unwrap();
    assert_eq!(opened["actor_account"], me().as_str());
    assert!(
        opened["reason"].as_str().is_some_and(|r| r
            .starts_with(&format!("console opened as uid {}", unsafe {
                libc::getuid()
            }))),
        "{opened}"
    );
    d.stop(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_refused_the_refresh_key_with_the_role_named_and_nothing_reaches_intuit() {
    let (w, d) = world("view", "viewer").await;
    let t = console(&w, 120, 40);
    let s = t
        .wait_for("the table", |s| s.contains(&format!("{} (viewer)", me())))
        .await;
    // The footer (the last line) offers only what a viewer may do.
    let footer = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        !footer.contains("r refresh") && !footer.contains("v verify"),
        "{s}"
    );
    assert!(footer.contains("/ filter"), "{s}");
    t.wait_for("the imported tenants", |s| row(s, "view-0").is_some())
        .await;
    let before = w.sim.stats();
    t.keys(&["r"]);
    t.wait_for("the refusal", |s| {
        s.contains("refresh needs role support or admin (you are viewer)")
    })
    .await;
    t.keys(&["a"]);
    t.wait_for("the audit refusal", |s| {
        s.contains("audit needs role auditor or admin (you are viewer)")
    })
    .await;
    // Given time to go wrong, nothing reached the emulator.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.sim.stats().refreshes, before.refreshes);
    let refused = w
        .audit_events(50)
        .await
        .into_iter()
        .filter(|e| e["action"] == "refresh" && e["interface"] == "tui")
        .count();
    assert_eq!(
        refused, 0,
        "the refusal was the console's: nothing was sent"
    );

    // Resizing redraws: down to 80×24 the keys that matter still show; at 20×5 a message
    // says the terminal is too small; back up, the table returns.
    t.resize(80, 24);
    let s = t
        .wait_for("the 80-column layout", |s| {
            s.lines().all(|l| l.chars().count() <= 80) && s.contains("? help")
        })
        .await;
    assert!(row(&s, "view-0").is_some(), "{s}");
    t.resize(20, 5);
    t.wait_for("the small-terminal message", |s| s.contains("too small"))
        .await;
    t.resize(120, 40);
    t.wait_for("the table again", |s| row(s, "view-2").is_some())
        .await;

    t.keys(&["q"]);
    t.wait_for("the shell", |s| s.contains("CONSOLE-EXITED"))
        .await;
    d.stop(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_daemon_one_screen_says_what_to_do_and_the_console_connects_once_one_runs() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "late").await;
    w.append_config(&format!("[roles]\nsupport = [\"{}\"]\n", me()));

    // One screen, the fix on it, and q still quits.
    let t = console(&w, 120, 40);
    let s = t
        .wait_for("the explanation", |s| {
            s.contains("no qbo-console daemon answers")
        })
        .await;
    assert!(
        s.contains("qbo-console serve") && s.contains("--embedded"),
        "{s}"
    );
    assert!(!s.contains("error:") && !s.contains("panicked"), "{s}");
    t.keys(&["q"]);
    t.wait_for("the shell", |s| s.contains("CONSOLE-EXITED"))
        .await;
    drop(t);

    // Left open, it connects by itself once the daemon is up...
    let t = console(&w, 120, 40);
    t.wait_for("the explanation", |s| {
        s.contains("no qbo-console daemon answers")
    })
    .await;
    let d = w.start_daemon(&[]).await;
    t.wait_for("the table", |s| row(s, "late-0").is_some())
        .await;
    // ...says so when the daemon goes away, keeping what it showed...
    d.stop(&w).await;
    let s = t
        .wait_for("the lost connection in the header", |s| {
            s.contains("daemon connection lost, retrying")
        })
        .await;
    assert!(row(&s, "late-0").is_some(), "{s}");
    // ...and is live again when it is back.
    let d = w.start_daemon(&[]).await;
    t.wait_for("the scheduler line again", |s| {
        s.contains("scheduler running") && !s.contains("connection lost")
    })
    .await;
    // SIGTERM (a shutdown, a closed SSH session's cleanup) leaves the terminal as it was
    // and still records the console closed.
    let pid = t.console_pid();
    // SAFETY: a signal to the console this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let s = t
        .wait_for("the shell", |s| s.contains("CONSOLE-EXITED"))
        .await;
    assert!(
        row(&s, "late-0").is_none(),
        "the table is still shown:\n{s}"
    );
    let closed = w
        .audit_events(20)
        .await
        .into_iter()
        .filter(|e| e["action"] == "console closed")
        .count();
    assert_eq!(closed, 1, "the console is recorded closed once");
    d.stop(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_bare_qbo_console_prints_its_help_and_tui_says_what_to_use() {
    let w = World::start(SimOptions::default()).await;
    let out = w
        .daemon_command(&[])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let help = common::stdout(&out);
    assert!(help.contains("Usage:") && help.contains("tui"), "{help}");

    let out = w
        .daemon_command(&["tui"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("needs a terminal") && err.contains("list --json"),
        "{err}"
    );

    // A mistake in [tui.keys] is named before anything else.
    w.append_config("[tui.keys]\n\"ctl-r\" = \"refresh\"\n");
    let out = w
        .daemon_command(&["tui"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(err.contains("[tui.keys] \"ctl-r\": not a key"), "{err}");

    // So is a colour that is not one, or a meaning the theme does not have.
    w.append_config("[tui.colors]\nerror = \"reddish\"\n");
    let out = w
        .daemon_command(&["tui"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("[tui.colors] error = \"reddish\" is not a colour"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revokes_with_r_and_the_typed_realm_id_and_the_cli_asks_for_the_count_on_a_terminal(
) {
    let (w, d) = world("rvk", "admin").await;
    let realm = |tenant: &str, rows: &[serde_json::Value]| -> String {
        rows.iter()
            .find(|c| c["tenant"] == tenant)
            .and_then(|c| c["realm_id"].as_str())
            .expect("tenant listed")
            .to_string()
    };
    let rows = w.connections_json().await;
    let realm_1 = realm("rvk-1", &rows);
    let t = console(&w, 120, 40);
    t.wait_for("the imported tenants", |s| row(s, "rvk-2").is_some())
        .await;
    t.keys(&["/"]);
    t.type_text("rvk-1");
    t.wait_for("one row", |s| row(s, "rvk-0").is_none()).await;
    t.keys(&["Enter"]);

    // R asks for the realm id; nothing reaches Intuit before it is typed.
    t.keys(&["R"]);
    t.wait_for("the typed confirmation", |s| {
        s.contains("Revoke 1 connection at Intuit?") && s.contains(&realm_1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.sim.stats().revocations, 0);
    t.type_text(&realm_1);
    t.keys(&["Enter"]);
    t.wait_for("the outcome", |s| s.contains("rvk-1: revoke ok"))
        .await;
    t.wait_for("the row shows revoked", |s| {
        row(s, "rvk-1").is_some_and(|r| r.contains("revoked"))
    })
    .await;
    assert_eq!(w.sim.stats().revoked_grants, 1);
    t.keys(&["q"]);
    t.wait_for("the shell", |s| s.contains("CONSOLE-EXITED"))
        .await;

    // The CLI on a terminal asks for the count of several, through the daemon.
    let cmd = format!(
        "{} --config {} revoke rvk-0 rvk-2; echo EXIT=$?; sleep 60",
        env!("CARGO_BIN_EXE_qbo-console"),
        w.config.display()
    );
    let cli = Tmux::start(&cmd, 120, 20);
    cli.wait_for("the question", |s| {
        s.contains("type the number of connections")
    })
    .await;
    assert_eq!(w.sim.stats().revocations, 1);
    cli.type_text("2");
    cli.keys(&["Enter"]);
    cli.wait_for("the end", |s| s.contains("EXIT=0")).await;
    assert_eq!(w.sim.stats().revoked_grants, 3);
    d.stop(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_makes_a_reconnect_link_with_l_and_it_reaches_the_clipboard_through_tmux() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "lnk").await;
    w.append_config(&format!(
        "[roles]\nsupport = [\"{}\"]\n\n[public]\nbase_url = \"https://connect.example.com\"\n",
        me()
    ));
    let d = w.start_daemon(&[]).await;
    let t = console(&w, 140, 40);
    t.wait_for("the imported tenants", |s| row(s, "lnk-1").is_some())
        .await;
    // Everything the console writes, escape sequences included, as tmux receives it.
    let raw = w.path("pane.raw");
    let out = t
        .tmux()
        .args(["pipe-pane", "-t", "console", "-o"])
        .arg(format!("cat >> {}", raw.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    t.keys(&["l"]);
    let s = t
        .wait_for("the link", |s| {
            s.contains("https://connect.example.com/connect/")
        })
        .await;
    let url: String = s
        .split_whitespace()
        .find(|w| w.starts_with("https://connect.example.com/connect/"))
        .unwrap()
        .to_string();
    // Inside tmux the OSC 52 sequence travels in tmux's passthrough, ESCs doubled.
    let wanted = qbo_tui::clipboard::osc52(&url, true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read(&raw)
        .map(|b| String::from_utf8_lossy(&b).contains(&wanted))
        .unwrap_or(false)
    {
        assert!(
            Instant::now() < deadline,
            "no OSC 52 sequence for {url} reached tmux"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open: Vec<serde_json::Value> =
        serde_json::from_str(&common::stdout(&w.via_daemon(&["links", "--json"]).await)).unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    t.keys(&["q"]);
    t.wait_for("the shell", |s| s.contains("CONSOLE-EXITED"))
        .await;
    d.stop(&w).await;
}

/// A live connection whose refreshes fail is `↯ failing` everywhere it is counted or shown:
/// its row and the header in the console, `list`, `list --json` (beside its lifecycle
/// `status`), the `status:failing` filter and `/metrics`. Before, the header said "1 failing"
/// while the row said `✓ active`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_whose_refreshes_fail_says_failing_in_every_interface() {
    use qbo_sim::{FaultConfig, FaultKind};
    let (w, d) = world("truth", "support").await;
    let realm = w.connections_json().await[0]["realm_id"]
        .as_str()
        .unwrap()
        .to_string();
    w.sim
        .set_realm_faults(&realm, FaultConfig::always(FaultKind::ServiceUnavailable));
    for _ in 0..2 {
        let out = w.via_daemon(&["refresh", &realm]).await;
        assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    }
    let all = w.connections_json().await;
    let failing = all
        .iter()
        .find(|c| c["realm_id"] == realm.as_str())
        .unwrap();
    let tenant = failing["tenant"].as_str().unwrap().to_string();
    assert_eq!(failing["condition"], "failing", "{failing}");
    assert_eq!(
        failing["status"], "active",
        "the lifecycle stays: {failing}"
    );
    // Two failures, or more if the scheduler's own retry came in between.
    assert!(
        failing["consecutive_failures"].as_i64() >= Some(2),
        "{failing}"
    );
    for c in all.iter().filter(|c| c["realm_id"] != realm.as_str()) {
        assert_eq!(c["condition"], "active", "{c}");
    }

    // `list` says it in the status column, and the filter finds exactly it.
    let listed = common::stdout(&w.via_daemon(&["list"]).await);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("{tenant} ")))
        .unwrap_or_else(|| panic!("{tenant} in\n{listed}"));
    assert!(line.contains("↯ failing ×"), "{line}");
    assert!(!line.contains("✓ active"), "{line}");
    let only = common::stdout(
        &w.via_daemon(&["list", "--where", "status:failing", "--json"])
            .await,
    );
    let only: Vec<serde_json::Value> = serde_json::from_str(&only).unwrap();
    assert_eq!(
        only.iter().map(|c| c["tenant"].clone()).collect::<Vec<_>>(),
        [serde_json::Value::from(tenant.clone())]
    );

    // `list --status` says the same: failing alone, and active without it.
    let by_status = |status: &'static str| {
        let w = &w;
        async move {
            let out = w.via_daemon(&["list", "--status", status, "--json"]).await;
            let rows: Vec<serde_json::Value> = serde_json::from_str(&common::stdout(&out)).unwrap();
            rows.iter()
                .map(|c| c["tenant"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by_status("failing").await, std::slice::from_ref(&tenant));
    let active = by_status("active").await;
    assert_eq!(active.len(), 2);
    assert!(!active.contains(&tenant), "{active:?}");

    // `/metrics` counts it as failing, apart from the active ones.
    let metrics = d.get("/metrics").await.1;
    let series = |status: &str| {
        common::metric(
            &metrics,
            &format!("qbo_connections{{environment=\"sandbox\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(
        (series("failing"), series("active")),
        (Some(1.0), Some(2.0)),
        "{metrics}"
    );

    // The console: the header counts it as failing and its row says so, with the count.
    let t = console(&w, 120, 40);
    let screen = t
        .wait_for("the failing row", |s| row(s, &tenant).is_some())
        .await;
    let shown = row(&screen, &tenant).unwrap();
    assert!(shown.contains("↯ failing ×"), "{screen}");
    assert!(!shown.contains('✓'), "no tick on a failing row:\n{screen}");
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.contains("↯ 1 failing") && header.contains("✓ 2 active"),
        "{screen}"
    );
    // `status:failing` leaves its row alone, and the detail pane keeps the lifecycle
    // state beside how it is.
    t.keys(&["/"]);
    t.type_text("status:failing");
    t.wait_for("the failing row alone", |s| s.contains("1 of 3 shown"))
        .await;
    t.keys(&["Enter"]);
    t.keys(&["Enter"]);
    let screen = t
        .wait_for("the detail pane", |s| s.contains("lifecycle"))
        .await;
    assert!(
        screen
            .lines()
            .any(|l| l.contains("lifecycle") && l.contains("✓ active")),
        "{screen}"
    );
    drop(t);
    assert!(d.stop(&w).await.success());
}
