//! A full reconnect driven by a real browser: headless Chromium (Debian's `chromium`)
//! opens the link, lands on qbo-sim's consent page, chooses the company and clicks
//! Connect there, follows Intuit's redirect to the callback, and shows the final page,
//! whose text the test reads. The browser is driven over the DevTools protocol: nothing
//! stands in for its cookies, redirects or form submission.
//!
//! Without `chromium` on the PATH the test is skipped, saying so on stderr, unless
//! `QBO_CONSOLE_REQUIRE_BROWSER=1` (CI, which installs it) makes that a failure.

use crate::common::{self, World};
use futures_util::{SinkExt, StreamExt};
use qbo_sim::SimOptions;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Bounds on each step, so a browser that hangs fails the test with a message instead of
/// holding CI.
const START_LIMIT: Duration = Duration::from_secs(60);
const STEP_LIMIT: Duration = Duration::from_secs(30);
const CALL_LIMIT: Duration = Duration::from_secs(15);

fn chromium_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
}

/// A headless Chromium in its own process group with a throwaway profile. Dropping it
/// kills the whole group (the browser and its helper processes) and removes the profile,
/// also when the test fails half way.
struct Chromium {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Chromium {
    fn profile(dir: &Path) -> PathBuf {
        dir.join("profile")
    }

    fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    async fn launch(binary: &Path) -> Chromium {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("temp dir for the browser profile");
        let log = std::fs::File::create(dir.path().join("chromium.log")).unwrap();
        let child = std::process::Command::new(binary)
            .args([
                "--headless=new",
                // The sandbox needs user namespaces or a setuid helper; CI runs as root,
                // where Chromium refuses to start with it.
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                // Loopback only: whatever proxy the machine sets must not see the test.
                "--no-proxy-server",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!(
                "--user-data-dir={}",
                Self::profile(dir.path()).display()
            ))
            .arg("about:blank")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut browser = Chromium {
            child,
            dir,
            port: 0,
        };
        // Chromium writes the port it chose, then the browser's websocket path.
        let file = Self::profile(browser.dir.path()).join("DevToolsActivePort");
        let started = Instant::now();
        browser.port = loop {
            // Both lines, so that a file caught half written is read again.
            if let Some(port) = std::fs::read_to_string(&file)
                .ok()
                .filter(|t| t.lines().count() >= 2)
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                break port;
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                panic!(
                    "chromium exited ({status}) before opening its DevTools port:\n{}",
                    browser.log()
                );
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "chromium did not write {} within {START_LIMIT:?}:\n{}",
                file.display(),
                browser.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        browser
    }

    /// The DevTools websocket of the page Chromium opened (about:blank).
    async fn page(&self) -> Cdp {
        let list_url = format!("http://127.0.0.1:{}/json/list", self.port);
        let started = Instant::now();
        let target = loop {
            let pages: Vec<Value> = match reqwest::get(&list_url).await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            if let Some(ws) = pages
                .iter()
                .find(|p| p["type"] == "page")
                .and_then(|p| p["webSocketDebuggerUrl"].as_str())
            {
                break ws.to_string();
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "chromium lists no page at {list_url}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Cdp::connect(&target).await
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this test started (its leader is our child).
        unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
        // The profile goes with `dir`, now that nothing writes to it.
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One page's DevTools session: commands and their results, events ignored.
struct Cdp {
    ws: Socket,
    next_id: u64,
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("not a loopback websocket: {url}"));
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .unwrap_or_else(|e| panic!("connect to chromium's DevTools at {authority}: {e}"));
        let (ws, _) = tokio::time::timeout(CALL_LIMIT, tokio_tungstenite::client_async(url, tcp))
            .await
            .unwrap_or_else(|_| panic!("no DevTools websocket handshake within {CALL_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("DevTools websocket {url}: {e}"));
        Cdp { ws, next_id: 1 }
    }

    /// Sends one command and waits for its answer.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        let exchange = async {
            self.ws
                .send(Message::text(msg))
                .await
                .map_err(|e| format!("send {method}: {e}"))?;
            loop {
                let frame = self
                    .ws
                    .next()
                    .await
                    .ok_or_else(|| format!("chromium closed DevTools during {method}"))?
                    .map_err(|e| format!("read {method}: {e}"))?;
                let Message::Text(text) = frame else { continue };
                let v: Value = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("DevTools sent non-JSON ({e})"))?;
                if v["id"] != id {
                    continue; // an event, or an earlier command's late answer
                }
                if let Some(err) = v.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(v["result"].clone());
            }
        };
        tokio::time::timeout(CALL_LIMIT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("{method}: no answer within {CALL_LIMIT:?}")))
    }

    /// Evaluates `expr` in the page; its value, or why there is none (a page being
    /// replaced by a navigation has no context to evaluate in).
    async fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("{expr}: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expr` until it is true, then returns what `read` evaluates to.
    async fn wait_until(&mut self, what: &str, expr: &str, read: &str) -> Value {
        let started = Instant::now();
        let mut last;
        loop {
            match self.eval(expr).await {
                Ok(Value::Bool(true)) => match self.eval(read).await {
                    Ok(v) => return v,
                    Err(e) => last = e,
                },
                Ok(v) => last = format!("not yet: {v}"),
                Err(e) => last = e,
            }
            if started.elapsed() > STEP_LIMIT {
                let at = self
                    .eval("location.href + ' :: ' + (document.body ? document.body.innerText : '')")
                    .await
                    .unwrap_or_default();
                panic!("{what}: not within {STEP_LIMIT:?} (last: {last}); the page: {at}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Chromium's path, or None after saying why the test is skipped.
fn require_chromium() -> Option<PathBuf> {
    if let Some(p) = chromium_binary() {
        return Some(p);
    }
    let why = "chromium is not on the PATH (Debian: apt-get install chromium)";
    if std::env::var("QBO_CONSOLE_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("{why}, and QBO_CONSOLE_REQUIRE_BROWSER=1 says this test must run here");
    }
    eprintln!("skipped: {why}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_brings_a_dead_connection_back_through_the_consent_page() {
    let Some(binary) = require_chromium() else {
        return;
    };
    // The browser must come back to this test's listener, on the host the link named (the
    // binding cookie is the host's): the sandbox app registers that address at qbo-sim.
    let port = crate::common::free_port();
    let base = format!("http://localhost:{port}");
    let redirect = format!("{base}/callback");
    let mut opts = SimOptions::default();
    opts.clients[0].redirect_uris.push(redirect.clone());
    let w = World::start(opts).await;
    w.append_config(&format!(
        "[public]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"{base}\"\n"
    ));
    w.edit_config(
        "redirect_uri = \"http://localhost:8080/callback\"",
        &format!("redirect_uri = \"{redirect}\""),
    );
    let d = w.start_daemon(&[]).await;

    // A tenant Intuit has forgotten: the refresh makes it needs_reconnect.
    let g = w.seed(1, "chrome").await.remove(0);
    w.sim.disconnect(&g.realm_id);
    let out = w.cli(&["refresh", "chrome-0"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let row = w.connections_json().await.remove(0);
    assert_eq!(row["status"], "needs_reconnect", "{row}");
    let id = row["id"].as_i64().unwrap();

    let link: Value = serde_json::from_str(&w.ok(&["link", "chrome-0", "--json"]).await).unwrap();
    let url = link["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{base}/connect/")), "{url}");
    w.sim.reset_stats();

    let browser = Chromium::launch(&binary).await;
    let mut page = browser.page().await;
    page.call("Page.navigate", json!({"url": url}))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", browser.log()));
    // Our listener answered 302 to Intuit's authorization endpoint: qbo-sim's consent.
    let sim = w.sim.base_url();
    let consent = page
        .wait_until(
            "qbo-sim's consent page after opening the link",
            &format!(
                "location.href.startsWith({sim:?}) && document.readyState === 'complete' \
                 && !!document.querySelector('button[value=approve]')"
            ),
            "document.body.innerText",
        )
        .await;
    assert!(
        consent.as_str().unwrap_or("").contains("Connect"),
        "{consent}"
    );
    // The customer picks their company and clicks Connect.
    page.eval(&format!(
        "document.querySelector('input[name=realm_id]').value = {:?}; \
         document.querySelector('button[value=approve]').click(); true",
        g.realm_id
    ))
    .await
    .unwrap_or_else(|e| panic!("clicking Connect: {e}"));
    // qbo-sim redirects the browser to the callback, which answers the final page.
    let final_page = page
        .wait_until(
            "the callback's page after approving",
            &format!(
                "location.href.startsWith({:?}) && document.readyState === 'complete'",
                format!("{redirect}?")
            ),
            "JSON.stringify({href: location.href, title: document.title, text: document.body.innerText})",
        )
        .await;
    let final_page: Value = serde_json::from_str(final_page.as_str().unwrap()).unwrap();
    let text = final_page["text"].as_str().unwrap();
    assert_eq!(final_page["title"], "Connected", "{final_page}");
    assert!(
        text.contains(&format!(
            "{} is connected to QuickBooks again",
            g.company_name
        )),
        "the page names the company: {text}"
    );
    assert!(
        final_page["href"].as_str().unwrap().contains("code="),
        "Intuit's answer reached the callback: {final_page}"
    );
    drop(page);
    drop(browser);

    assert_eq!(w.sim.stats().code_exchanges, 1);
    let row = w
        .connections_json()
        .await
        .into_iter()
        .find(|c| c["id"] == id)
        .expect("the same row");
    assert_eq!(row["status"], "active", "{row}");
    assert_eq!(row["realm_id"], g.realm_id.as_str());
    assert_eq!(row["company_name"], g.company_name.as_str());
    assert_eq!(w.connections_json().await.len(), 1, "no second row");
    d.stop(&w).await;
    w.assert_no_secrets().await;
}
