//! A terminal for tests that drive the real binary as a person would: a detached tmux
//! session of a given size, keys in with `send-keys`, the screen out with `capture-pane`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of the test's own (its socket in the test's directory), so sessions of
/// other tests and of the machine's users are never touched; killed on drop, with what
/// runs in it, however the test ends.
pub struct Tmux {
    socket: PathBuf,
    session: String,
}

impl Tmux {
    /// Runs `shell` (through `sh -c`) in a new detached session of `width`×`height`.
    pub fn start(dir: &Path, session: &str, width: u16, height: u16, shell: &str) -> Tmux {
        let t = Tmux {
            // One server per session: a server being killed cannot take the next one along.
            socket: dir.join(format!("tmux-{session}.sock")),
            session: session.to_string(),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let out = t.tmux(&[
            "new-session",
            "-d",
            "-x",
            &w,
            "-y",
            &h,
            "-s",
            session,
            shell,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            // Inside a developer's tmux, tmux would otherwise talk to that one.
            .env_remove("TMUX")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux is installed")
    }

    pub fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends keys by tmux's names (`q`, `Enter`, `+`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "tmux send-keys {keys:?}");
    }

    /// Whether the program in the pane holds the alternate screen.
    pub fn alternate_screen(&self) -> bool {
        let out = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            &self.session,
            "#{alternate_on}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// The process the pane's shell is running now (the demo), by its process id.
    pub fn foreground_child(&self) -> i32 {
        let out = self.tmux(&["display-message", "-p", "-t", &self.session, "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = Command::new("pgrep")
            .args(["-P", &shell])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no process under the pane's shell {shell}"))
    }

    /// Waits until the screen satisfies `ready`; fails naming `what` with the last screen.
    pub fn wait_for(&self, what: &str, within: Duration, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let s = self.screen();
            if ready(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("waited {within:?} for {what}; the screen shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// How many connections the console's header says it holds, however much room it had to
/// say it in: `qbo-console N connections …`, `N connections …` or, at 120 columns with
/// every status to name, `N: …`.
pub fn header_total(screen: &str) -> Option<usize> {
    let first = screen.lines().next()?.trim_start();
    let first = first.strip_prefix("qbo-console ").unwrap_or(first);
    let (n, rest) = first.split_at(first.find(|c: char| !c.is_ascii_digit())?);
    (rest.starts_with(" connections") || rest.starts_with(": "))
        .then(|| n.parse().ok())
        .flatten()
}
