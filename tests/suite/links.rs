//! Reconnect links end to end: `link` on the command line, the customer's browser (an HTTP
//! client) through `serve`'s public listener and qbo-sim's consent, back to the callback.

use crate::common::catalogue::assert_catalogued;
use crate::common::{self, DaemonProc, World};
use qbo_sim::SimOptions;
use qbo_store::audit::Action;
use serde_json::Value;

fn me() -> String {
    // SAFETY: getuid cannot fail and has no preconditions.
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

pub(crate) struct Public {
    pub(crate) w: World,
    pub(crate) d: DaemonProc,
    pub(crate) base: String,
    http: reqwest::Client,
}

/// A world whose daemon serves the public listener at `base`, with `extra` more keys in
/// `[public]` and any further sections after them.
pub(crate) async fn start(extra: &str) -> Public {
    let w = World::start(SimOptions::default()).await;
    let port = crate::common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    w.append_config(&format!(
        "[public]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"{base}\"\n{extra}\n"
    ));
    let d = w.start_daemon(&[]).await;
    assert!(
        d.log().contains(&format!("public listener {base}")),
        "{}",
        d.log()
    );
    Public {
        w,
        d,
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Public {
    pub(crate) async fn get(&self, url: &str, cookie: Option<&str>) -> Reply {
        let mut req = self.http.get(url).header("user-agent", "links-test/1.0");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        Reply {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    /// Opens a link as a browser: Intuit's consent address and the binding cookie.
    pub(crate) async fn open(&self, url: &str) -> (String, String) {
        let r = self.get(url, None).await;
        assert_eq!(r.status, 302, "{}", r.body);
        let location = r.headers["location"].to_str().unwrap().to_string();
        assert!(
            location.starts_with(&format!("{}/connect/oauth2?", self.w.sim.base_url())),
            "sent to Intuit's authorization endpoint: {location}"
        );
        for part in [
            "client_id=sim-sandbox-client",
            "response_type=code",
            "scope=com.intuit.quickbooks.accounting",
            "redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback",
            "state=",
        ] {
            assert!(location.contains(part), "{part} in {location}");
        }
        let cookie = r.headers["set-cookie"].to_str().unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let pair = cookie.split(';').next().unwrap().to_string();
        (location, pair)
    }

    /// Decides at qbo-sim's consent page; returns the callback address on our listener.
    pub(crate) async fn consent(
        &self,
        location: &str,
        decision: &str,
        realm: Option<&str>,
    ) -> String {
        let mut req = self.http.get(location).header("x-sim-decision", decision);
        if let Some(r) = realm {
            req = req.header("x-sim-realm-id", r);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap());
        let back = r.headers()["location"].to_str().unwrap().to_string();
        // The registered sandbox or production redirect URI; the test's listener stands
        // in for its host.
        let rest = back
            .strip_prefix("http://localhost:8080")
            .or_else(|| back.strip_prefix("https://ops.example.com"))
            .unwrap_or_else(|| panic!("Intuit sent the browser to {back}"));
        format!("{}{rest}", self.base)
    }

    pub(crate) async fn link(&self, args: &[&str]) -> Value {
        let mut all = vec!["link"];
        all.extend_from_slice(args);
        all.push("--json");
        serde_json::from_str(&self.w.ok(&all).await).expect("link --json prints JSON")
    }

    async fn connection(&self, id: i64) -> Value {
        self.w
            .connections_json()
            .await
            .into_iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("connection {id} is listed"))
    }

    async fn events(&self, action: Action) -> Vec<Value> {
        self.w
            .audit_events(500)
            .await
            .into_iter()
            .filter(|e| e["action"] == action.as_str())
            .collect()
    }

    pub(crate) async fn stop(self) -> World {
        self.d.stop(&self.w).await;
        self.w
    }
}

/// Imports one sandbox tenant and lets Intuit forget its grant: the next refresh makes it
/// `needs_reconnect`, the state a link exists to repair.
pub(crate) async fn dead_tenant(p: &Public, name: &str) -> (i64, String, String) {
    let g = p.w.seed(1, name).await.remove(0);
    let tenant = format!("{name}-0");
    p.w.sim.disconnect(&g.realm_id);
    let out = p.w.cli(&["refresh", &tenant]).await;
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let rows = p.w.connections_json().await;
    let row = rows
        .iter()
        .find(|c| c["tenant"] == tenant.as_str())
        .unwrap();
    assert_eq!(row["status"], "needs_reconnect");
    (row["id"].as_i64().unwrap(), g.realm_id, g.company_name)
}

fn assert_plain_page(r: &Reply) {
    assert_eq!(r.headers["cache-control"], "no-store");
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert!(!r.body.contains("<script"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_brings_a_dead_connection_back_through_a_link_on_the_same_row() {
    let p = start("").await;
    let (id, realm, company) = dead_tenant(&p, "acme").await;
    let history = p.w.ok(&["show", "acme-0", "--json"]).await;
    let before: Value = serde_json::from_str(&history).unwrap();
    let earlier = before["recent_events"].as_array().unwrap().len();
    assert!(earlier >= 2, "import and the failed refresh are on record");

    let link = p.link(&["acme-0"]).await;
    let fields: Vec<&String> = link.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["connection_id", "expires_at", "url"]);
    assert_eq!(link["connection_id"], id);
    let url = link["url"].as_str().unwrap();
    let secret = url
        .strip_prefix(&format!("{}/connect/", p.base))
        .expect("the link is {base_url}/connect/{id}");
    assert!(secret.len() >= 22, "at least 128 bits: {secret}");

    p.w.sim.reset_stats();
    let (intuit, cookie) = p.open(url).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    let page = p.get(&callback, Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&company),
        "the page names the company: {}",
        page.body
    );
    assert_plain_page(&page);
    let code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!page.body.contains(code) && !page.body.contains(secret));
    assert_eq!(p.w.sim.stats().code_exchanges, 1);

    let row = p.connection(id).await;
    assert_eq!(row["status"], "active", "{row}");
    assert_eq!(row["realm_id"], realm.as_str());
    assert_eq!(row["company_name"], company.as_str());
    assert_eq!(row["consecutive_failures"], 0);
    p.w.ok(&["refresh", "acme-0"]).await;
    let after: Value = serde_json::from_str(&p.w.ok(&["show", "acme-0", "--json"]).await).unwrap();
    let actions: Vec<&str> = after["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"import"), "history kept: {actions:?}");
    assert!(actions.contains(&"code exchanged"), "{actions:?}");

    let issued = p.events(Action::LinkIssued).await;
    assert_catalogued(&issued[0], Action::LinkIssued, &me());
    // The customer's browser, not an operator (issue 22): named by the fingerprint of the
    // link it came through (the one `link issued` carries), with its address and no role.
    let customer = format!("customer:{}", link_fp(&issued[0]));
    let opened = p.events(Action::LinkOpened).await;
    assert_catalogued(&opened[0], Action::LinkOpened, &customer);
    let reason = opened[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("127.0.0.1") && reason.contains("links-test/1.0"),
        "{reason}"
    );
    let exchanged = p.events(Action::CodeExchanged).await;
    assert_eq!(exchanged.len(), 1);
    assert_catalogued(&exchanged[0], Action::CodeExchanged, &customer);
    for ev in [&opened[0], &exchanged[0]] {
        assert_eq!(ev["actor_kind"], "customer", "{ev}");
        assert_eq!(ev["actor_ssh"], "127.0.0.1", "the browser's address: {ev}");
        assert_eq!(ev["role"], "", "a customer has no role: {ev}");
        assert_eq!(ev["interface"], "callback", "{ev}");
    }
    assert_eq!(exchanged[0]["connection_id"], id);

    // Used: the link opens no more.
    assert_eq!(p.get(url, None).await.status, 410);
    let w = p.stop().await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_identical_callbacks_exchange_the_code_exactly_once() {
    let p = start("").await;
    let (id, realm, _) = dead_tenant(&p, "twice").await;
    let link = p.link(&["twice-0"]).await;
    let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    p.w.sim.reset_stats();
    let fired: Vec<_> = (0..10)
        .map(|_| {
            let (http, callback, cookie) = (p.http.clone(), callback.clone(), cookie.clone());
            tokio::spawn(async move {
                let r = http
                    .get(&callback)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for f in fired {
        answers.push(f.await.unwrap());
    }
    assert_eq!(p.w.sim.stats().code_exchanges, 1, "{answers:?}");
    assert_eq!(p.w.sim.stats().code_reuses, 0);
    let connected = answers.iter().filter(|(s, _)| *s == 200).count();
    let repeats: Vec<_> = answers.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!((connected, repeats.len()), (1, 9), "{answers:?}");
    assert!(repeats.iter().all(|(_, b)| b.contains("Already received")));
    assert_eq!(p.connection(id).await["status"], "active");
    let dups = p.events(Action::DuplicateCallback).await;
    assert_eq!(dups.len(), 9);
    assert_catalogued(&dups[0], Action::DuplicateCallback, &customer_of(&dups[0]));
    let w = p.stop().await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_missing_reused_foreign_or_expired_states_exchange_nothing() {
    let p = start("state_expires = \"2s\"").await;
    let (_, realm_a, _) = dead_tenant(&p, "alpha").await;
    let (_, realm_b, _) = dead_tenant(&p, "beta").await;
    let a = p.link(&["alpha-0"]).await;
    let b = p.link(&["beta-0"]).await;
    let (intuit_a, cookie_a) = p.open(a["url"].as_str().unwrap()).await;
    let (intuit_b, _cookie_b) = p.open(b["url"].as_str().unwrap()).await;
    let cb_a = p.consent(&intuit_a, "approve", Some(&realm_a)).await;
    let cb_b = p.consent(&intuit_b, "approve", Some(&realm_b)).await;
    p.w.sim.reset_stats();

    let code = cb_a
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = format!(
        "{}/callback?code={code}&state=forged-state&realmId={realm_a}",
        p.base
    );
    let missing = format!("{}/callback?code={code}&realmId={realm_a}", p.base);
    for (what, url, cookie) in [
        ("forged", forged.as_str(), Some(cookie_a.as_str())),
        ("missing", missing.as_str(), Some(cookie_a.as_str())),
        // Beta's state in alpha's browser: bound to another browser.
        ("foreign", cb_b.as_str(), Some(cookie_a.as_str())),
        ("unbound", cb_a.as_str(), None),
    ] {
        let r = p.get(url, cookie).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_plain_page(&r);
    }
    // Expired: the state outlives its [public] state_expires.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = p.get(&cb_a, Some(&cookie_a)).await;
    assert_eq!(r.status, 400, "expired: {}", r.body);
    // Reused: consumed by the expired attempt, it is now only a repeat.
    let r = p.get(&cb_a, Some(&cookie_a)).await;
    assert_eq!(r.status, 409, "reused: {}", r.body);
    assert_eq!(p.w.sim.stats().code_exchanges, 0);

    let rejected = p.events(Action::StateRejected).await;
    assert_eq!(rejected.len(), 5, "{rejected:?}");
    for ev in &rejected {
        assert_eq!(ev["outcome"], "denied");
        assert_catalogued(ev, Action::StateRejected, &customer_of(ev));
    }
    assert!(rejected[4]["reason"].as_str().unwrap().contains("expired"));
    let dup = p.events(Action::DuplicateCallback).await;
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0]["outcome"], "denied");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_for_another_company_leaves_the_tenant_untouched() {
    let p = start("").await;
    let g = p.w.seed(1, "keep").await.remove(0);
    let link = p.link(&["keep-0"]).await;
    let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", Some("4242424242")).await;
    p.w.sim.reset_stats();
    let r = p.get(&callback, Some(&cookie)).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains("not the one this link is for"),
        "{}",
        r.body
    );
    assert_eq!(p.w.sim.stats().code_exchanges, 0);
    let row = p.connection(link["connection_id"].as_i64().unwrap()).await;
    assert_eq!(row["realm_id"], g.realm_id.as_str());
    assert_eq!(row["status"], "active");
    // Its own tokens still work.
    p.w.ok(&["refresh", "keep-0"]).await;
    let ev = p.events(Action::RealmMismatch).await;
    assert_catalogued(&ev[0], Action::RealmMismatch, &customer_of(&ev[0]));
    let reason = ev[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("4242424242") && reason.contains(&g.realm_id),
        "{reason}"
    );
    let w = p.stop().await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_company_invited_by_link_waits_pending_then_becomes_active() {
    let p = start("").await;
    let one = p
        .link(&["--new", "--tenant", "Newco", "--env", "sandbox"])
        .await;
    // Two companies may wait at once, neither with a realm yet.
    p.link(&["--new", "--tenant", "Otherco", "--env", "sandbox"])
        .await;
    let id = one["connection_id"].as_i64().unwrap();
    let row = p.connection(id).await;
    assert_eq!(row["status"], "pending");
    assert_eq!(row["realm_id"], "");
    let again =
        p.w.cli(&["link", "--new", "--tenant", "Newco", "--env", "sandbox"])
            .await;
    assert_eq!(again.status.code(), Some(2), "{}", common::stderr(&again));
    // The daemon's scheduler never touches a pending row.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(p.w.sim.stats().refreshes, 0);
    assert_eq!(p.connection(id).await["status"], "pending");

    let (intuit, cookie) = p.open(one["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", None).await;
    let realm = callback
        .split("realmId=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let r = p.get(&callback, Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let row = p.connection(id).await;
    assert_eq!(row["status"], "active", "{row}");
    assert_eq!(row["realm_id"], realm.as_str());
    assert_eq!(row["tenant"], "Newco");
    p.w.ok(&["verify", "Newco"]).await;
    let w = p.stop().await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_expired_links_no_longer_open_and_declined_ones_stay_open() {
    let p = start("").await;
    p.w.seed(1, "lnk").await;
    let cancel_me = p.link(&["lnk-0"]).await;
    let declined = p.link(&["lnk-0"]).await;
    let open: Vec<Value> = serde_json::from_str(&p.w.ok(&["links", "--json"]).await).unwrap();
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|l| l.get("token_hash").is_none()));
    let listed = p.events(Action::LinkList).await;
    assert_catalogued(&listed[0], Action::LinkList, &me());

    let first = open[0]["id"].as_i64().unwrap().to_string();
    p.w.ok(&["link", "cancel", &first]).await;
    let ev = p.events(Action::LinkCancelled).await;
    assert_catalogued(&ev[0], Action::LinkCancelled, &me());
    let r = p.get(cancel_me["url"].as_str().unwrap(), None).await;
    assert_eq!(r.status, 410, "{}", r.body);
    let twice = p.w.cli(&["link", "cancel", &first]).await;
    assert_eq!(twice.status.code(), Some(2));

    let short = p.link(&["lnk-0", "--expires", "1s"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let r = p.get(short["url"].as_str().unwrap(), None).await;
    assert_eq!(r.status, 410, "{}", r.body);
    let ev = p.events(Action::LinkExpired).await;
    assert_eq!(ev.len(), 1);
    assert_catalogued(&ev[0], Action::LinkExpired, "link expiry");

    let (intuit, cookie) = p.open(declined["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "deny", None).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let r = p.get(&callback, Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Not connected"), "{}", r.body);
    let ev = p.events(Action::ConsentDenied).await;
    assert_catalogued(&ev[0], Action::ConsentDenied, &customer_of(&ev[0]));
    let open: Vec<Value> = serde_json::from_str(&p.w.ok(&["links", "--json"]).await).unwrap();
    assert_eq!(open.len(), 1, "the declined link stays open: {open:?}");
    // Opened links show as such, with nothing secret.
    assert!(open[0]["opened_at"].is_string());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_intuit_will_not_exchange_is_recorded_and_the_link_stays_open() {
    let p = start("").await;
    let (id, realm, _) = dead_tenant(&p, "late").await;
    let link = p.link(&["late-0"]).await;
    let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    // Intuit's codes live about ten minutes.
    p.w.sim.advance(chrono::Duration::minutes(11));
    let r = p.get(&callback, Some(&cookie)).await;
    // The browser's answer is what failed, not the service: a 4xx.
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("too old or already used"), "{}", r.body);
    assert_eq!(p.connection(id).await["status"], "needs_reconnect");
    let ev = p.events(Action::ExchangeFailed).await;
    assert_catalogued(&ev[0], Action::ExchangeFailed, &customer_of(&ev[0]));
    assert_eq!(ev[0]["error_class"], "invalid_grant");
    let open: Vec<Value> = serde_json::from_str(&p.w.ok(&["links", "--json"]).await).unwrap();
    assert_eq!(open.len(), 1);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intuit_failing_the_exchange_is_answered_502_and_the_link_stays_open() {
    use qbo_sim::{FaultConfig, FaultKind};
    let p = start("").await;
    let (id, realm, _) = dead_tenant(&p, "down").await;
    let link = p.link(&["down-0"]).await;
    let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    p.w.sim
        .set_faults(FaultConfig::always(FaultKind::ServiceUnavailable));
    let r = p.get(&callback, Some(&cookie)).await;
    p.w.sim.set_faults(FaultConfig::none());
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("in a few minutes"), "{}", r.body);
    assert_eq!(p.connection(id).await["status"], "needs_reconnect");
    let ev = p.events(Action::ExchangeFailed).await;
    assert_eq!(ev[0]["error_class"], "transient", "{}", ev[0]);
    let open: Vec<Value> = serde_json::from_str(&p.w.ok(&["links", "--json"]).await).unwrap();
    assert_eq!(open.len(), 1);
    p.stop().await;
}

/// Imports one production tenant (the environment Intuit's Reconnect URL serves) and lets
/// the daemon's first refresh give it an access token. Returns its id and grant.
async fn production_tenant(p: &Public, tenant: &str) -> (i64, qbo_sim::SeededGrant) {
    let g = p.w.seed_production(tenant).await;
    p.w.wait_for_first_pass().await;
    let id =
        p.w.connections_json()
            .await
            .iter()
            .find(|c| c["tenant"] == tenant)
            .unwrap()["id"]
            .as_i64()
            .unwrap();
    (id, g)
}

/// Refresh requests qbo-sim has answered, successful or refused.
fn refresh_calls(w: &World) -> u64 {
    let s = w.sim.stats();
    s.refreshes + s.invalid_grants
}

/// Waits (bounded) for an event of `action` about connection `id` with `outcome`.
async fn wait_event(p: &Public, action: Action, id: i64, outcome: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(ev) = p
            .events(action)
            .await
            .into_iter()
            .find(|e| e["connection_id"] == id && e["outcome"] == outcome)
        {
            return ev;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {action} {outcome} event about connection {id}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Intuit's Disconnect URL records the request and checks the connection in the background
/// with its stored access token only: QuickBooks refusing it is recorded as a failed
/// `verify`, and nothing is refreshed on the URL's say-so (before, it refreshed at once).
/// An unknown realm gets the same page and a denied event naming no connection. The
/// Reconnect URL takes the customer through consent back to an active connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intuits_reconnect_and_disconnect_urls_act_on_the_realm_they_name() {
    let p = start("").await;
    let (id, g) = production_tenant(&p, "intu").await;
    let calls = refresh_calls(&p.w);

    p.w.sim.disconnect(&g.realm_id);
    let r = p
        .get(
            &format!("{}/intuit/disconnect?realmId={}", p.base, g.realm_id),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_plain_page(&r);
    let ev = p.events(Action::CustomerDisconnected).await;
    assert_catalogued(&ev[0], Action::CustomerDisconnected, "intuit");
    assert_eq!(
        (ev[0]["outcome"].as_str(), ev[0]["connection_id"].as_i64()),
        (Some("ok"), Some(id))
    );
    let checked = wait_event(&p, Action::Verify, id, "failed").await;
    // The check is Intuit's doing too (its URL asked for it), with no operator's role.
    assert_catalogued(&checked, Action::Verify, "intuit");
    assert_eq!(refresh_calls(&p.w), calls, "the URL spent no refresh token");
    assert_eq!(p.connection(id).await["status"], "active");
    // An unknown company gets the same page; its record names no connection.
    let unknown = p
        .get(&format!("{}/intuit/disconnect?realmId=777", p.base), None)
        .await;
    assert_eq!((unknown.status, &unknown.body), (200, &r.body));
    let ev = p.events(Action::CustomerDisconnected).await;
    let denied = ev.iter().find(|e| e["outcome"] == "denied").unwrap();
    assert_catalogued(denied, Action::CustomerDisconnected, "intuit");
    assert!(
        denied["reason"].as_str().unwrap().contains("\"777\""),
        "{denied}"
    );

    // The next refresh (an operator's here) finds the grant gone.
    let out = p.w.cli(&["refresh", "intu"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    assert_eq!(p.connection(id).await["status"], "needs_reconnect");

    let r = p
        .get(
            &format!("{}/intuit/reconnect?realmId={}", p.base, g.realm_id),
            None,
        )
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    let intuit = r.headers["location"].to_str().unwrap().to_string();
    assert!(
        intuit.contains("client_id=sim-production-client"),
        "{intuit}"
    );
    let cookie = r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let callback = p.consent(&intuit, "approve", Some(&g.realm_id)).await;
    let r = p.get(&callback, Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(p.connection(id).await["status"], "active");
    let issued = p.events(Action::LinkIssued).await;
    assert!(issued[0]["reason"]
        .as_str()
        .unwrap()
        .contains("Reconnect URL"));
    assert_eq!(issued[0]["interface"], "callback");
    // Made for the browser Intuit sent, not by an operator (issue 22).
    let customer = format!("customer:{}", link_fp(&issued[0]));
    assert_catalogued(&issued[0], Action::LinkIssued, &customer);
    let w = p.stop().await;
    w.assert_no_secrets().await;
}

/// What a stranger can learn from Intuit's Reconnect and Disconnect URLs: nothing. For a
/// connected realm and for an unknown one, interleaved, 12 times each: the same status,
/// the same page (the Reconnect URL's redirect and cookie alike but for the fresh secrets),
/// no refresh at qbo-sim, and answer times whose medians differ by less than 50 ms or a
/// fifth of the slower (before, the Reconnect URL answered 302 against 404, and the
/// Disconnect URL took 300 ms against under 1 ms because it refreshed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intuits_urls_answer_a_connected_and_an_unknown_realm_alike_in_shape_and_time() {
    let p = start("rate_limit_per_minute = 1000").await;
    let (_, g) = production_tenant(&p, "same").await;
    let calls = refresh_calls(&p.w);
    let unknown = "9130355555555555";
    let shape = |r: &Reply| {
        let strip = |v: &str| {
            v.split(['&', ';'])
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.ends_with("state") || k == "qbo_link" => format!("{k}=…"),
                    _ => kv.to_string(),
                })
                .collect::<Vec<_>>()
                .join("&")
        };
        let h = |n: &str| r.headers.get(n).map(|v| strip(v.to_str().unwrap()));
        (
            r.status,
            r.body.clone(),
            h("location"),
            h("set-cookie"),
            h("content-type"),
        )
    };
    for path in ["/intuit/reconnect", "/intuit/disconnect"] {
        let mut times: [Vec<std::time::Duration>; 2] = [Vec::new(), Vec::new()];
        let mut shapes = [None, None];
        for _ in 0..12 {
            for (i, realm) in [g.realm_id.as_str(), unknown].into_iter().enumerate() {
                let started = std::time::Instant::now();
                let r = p
                    .get(&format!("{}{path}?realmId={realm}", p.base), None)
                    .await;
                times[i].push(started.elapsed());
                let sh = shape(&r);
                match &shapes[i] {
                    None => shapes[i] = Some(sh),
                    Some(first) => assert_eq!(first, &sh, "{path} {realm}"),
                }
            }
        }
        assert_eq!(shapes[0], shapes[1], "{path}: connected and unknown alike");
        let median = |v: &mut Vec<std::time::Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (known, other) = (median(&mut times[0]), median(&mut times[1]));
        let gap = known.abs_diff(other);
        let slower = known.max(other);
        assert!(
            gap < std::time::Duration::from_millis(50).max(slower / 5),
            "{path}: median {known:?} for a connected realm, {other:?} for an unknown one"
        );
    }
    assert_eq!(
        refresh_calls(&p.w),
        calls,
        "no refresh on a stranger's request"
    );
    p.stop().await;
}

/// An address over its budget writes nothing: with 6 requests a minute, 20 requests to
/// Intuit's URLs for a connected realm leave at most 6 records (one per request let
/// through), at most 3 links (one per Reconnect request let through) and at most one
/// background check, and nothing refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intuits_urls_write_a_bounded_number_of_rows_per_address_and_minute() {
    let p = start("rate_limit_per_minute = 6").await;
    let (id, g) = production_tenant(&p, "rows").await;
    let calls = refresh_calls(&p.w);
    let mut passed = 0;
    for i in 0..20 {
        let path = if i % 2 == 0 {
            "reconnect"
        } else {
            "disconnect"
        };
        let r = p
            .get(
                &format!("{}/intuit/{path}?realmId={}", p.base, g.realm_id),
                None,
            )
            .await;
        if r.status != 429 {
            passed += 1;
        }
    }
    assert_eq!(passed, 6);
    let records = p.events(Action::LinkIssued).await.len()
        + p.events(Action::CustomerDisconnected).await.len();
    assert_eq!(records, 6);
    let links: Vec<Value> = serde_json::from_str(&p.w.ok(&["links", "--json"]).await).unwrap();
    assert!(links.len() <= 3, "{links:?}");
    wait_event(&p, Action::Verify, id, "ok").await;
    assert_eq!(
        p.events(Action::Verify)
            .await
            .iter()
            .filter(|e| e["connection_id"] == id)
            .count(),
        1,
        "one background check however often the URL is opened"
    );
    assert_eq!(refresh_calls(&p.w), calls);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_over_its_budget_is_answered_429() {
    let p = start("rate_limit_per_minute = 5").await;
    let url = format!("{}/connect/nothing-here", p.base);
    for _ in 0..5 {
        assert_eq!(p.get(&url, None).await.status, 404);
    }
    let r = p.get(&url, None).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    assert_plain_page(&r);
    // Only what passed the budget was looked at (and recorded).
    let refused = p.events(Action::LinkOpened).await;
    assert_eq!(refused.len(), 5);
    assert_catalogued(&refused[0], Action::LinkOpened, &customer_of(&refused[0]));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_listener_serves_tls_with_its_configured_certificate() {
    let w = World::start(SimOptions::default()).await;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(w.path("public.crt"), cert.cert.pem()).unwrap();
    common::write_secret(&w.path("public.key"), &cert.key_pair.serialize_pem());
    let port = crate::common::free_port();
    w.append_config(&format!(
        "[public]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"https://localhost:{port}\"\n\
         tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        w.path("public.crt").display(),
        w.path("public.key").display()
    ));
    let d = w.start_daemon(&[]).await;
    assert!(
        d.log()
            .contains(&format!("public listener https://127.0.0.1:{port}")),
        "{}",
        d.log()
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{port}/connect/unknown"))
        .send()
        .await
        .expect("the listener speaks TLS with the configured certificate");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["cache-control"], "no-store");
    // Plain HTTP gets no page.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/connect/unknown")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    d.stop(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_without_https_is_refused_at_load_naming_the_key() {
    let w = World::start(SimOptions::default()).await;
    w.append_config("[public]\nbase_url = \"http://connect.example.com\"\n");
    let out = w.cli(&["list"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("[public] base_url") && err.contains("https://"),
        "{err}"
    );
    w.append_config("[public]\nlisten = \"127.0.0.1:8080\"\n");
    let out = w.cli(&["list"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("base_url"));
    // Without a base URL, `link` says what to set.
    w.append_config("");
    w.seed(1, "nob").await;
    let out = w.cli(&["link", "nob-0"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("[public] base_url"),
        "{}",
        common::stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_may_not_issue_links() {
    let p = start(&format!("\n[roles]\nviewer = [\"{}\"]\n", me())).await;
    p.w.seed(1, "view").await;
    let out = p.w.via_daemon(&["link", "view-0"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    let ev = p.events(Action::LinkIssued).await;
    assert_eq!(ev[0]["outcome"], "denied");
    assert_catalogued(&ev[0], Action::LinkIssued, &me());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_exchanged_but_not_storable_is_on_record_and_the_link_stays_open() {
    let p = start("").await;
    let (id, realm, _) = dead_tenant(&p, "held").await;
    let link = p.link(&["held-0"]).await;
    let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    // Another refresher holds the connection for longer than [refresh] lease (5 s here).
    p.w.exec_sql(&[&format!(
        "UPDATE connections SET lease_owner = 'elsewhere', lease_until = '2999-01-01 00:00:00+00:00' WHERE id = {id}"
    )])
    .await;
    let r = p.get(&callback, Some(&cookie)).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("Nothing was changed"), "{}", r.body);
    assert_eq!(p.w.sim.stats().code_exchanges, 1);
    assert_eq!(p.connection(id).await["status"], "needs_reconnect");
    let ev = p.events(Action::ExchangeFailed).await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(
        ev[0]["reason"].as_str().unwrap().contains("was not stored"),
        "{}",
        ev[0]
    );
    assert_catalogued(&ev[0], Action::ExchangeFailed, &customer_of(&ev[0]));
    let open: Vec<Value> = serde_json::from_str(&p.w.ok(&["links", "--json"]).await).unwrap();
    assert_eq!(open.len(), 1);
    let w = p.stop().await;
    w.assert_no_secrets().await;
}

/// The `link` fingerprint a `link issued` event carries.
fn link_fp(issued: &Value) -> String {
    let fps = issued["fingerprints"].as_str().unwrap_or_default();
    fps.split_whitespace()
        .find_map(|p| p.strip_prefix("link="))
        .unwrap_or_else(|| panic!("link issued carries the link's fingerprint: {issued}"))
        .to_string()
}

/// The name a customer's event carries: `customer:fp:…` for a link this daemon knows
/// (checked against the kinds by `assert_catalogued`), `customer` otherwise.
fn customer_of(ev: &Value) -> String {
    let account = ev["actor_account"].as_str().unwrap_or_default();
    assert!(
        account == "customer" || account.starts_with("customer:fp:"),
        "a browser on the public listener is a customer: {ev}"
    );
    account.to_string()
}

/// Issue 22, item 3: the success page is shown only once the grant and its record are
/// committed. SIGKILL the daemon the moment the browser has the page, start it again: the
/// connection is active on the new tokens (a refresh spends them), and the exchange and
/// the link's use are on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_page_killed_right_after_it_was_shown_is_kept() {
    let p = start("").await;
    let (id, realm, _) = dead_tenant(&p, "killpage").await;
    let link = p.link(&["killpage-0"]).await;
    let url = link["url"].as_str().unwrap().to_string();
    let (intuit, cookie) = p.open(&url).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    let page = p.get(&callback, Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let Public { w, d, base, http } = p;
    d.kill(&w).await;

    let d = w.start_daemon(&[]).await;
    let p = Public { w, d, base, http };
    let row = p.connection(id).await;
    assert_eq!(row["status"], "active", "{row}");
    assert_eq!(row["consecutive_failures"], 0, "{row}");
    let exchanged = p.events(Action::CodeExchanged).await;
    assert_eq!(exchanged.len(), 1, "{exchanged:?}");
    assert_eq!(exchanged[0]["outcome"], "ok", "{}", exchanged[0]);
    assert_eq!(exchanged[0]["connection_id"], id);
    assert_eq!(p.events(Action::LinkOpened).await.len(), 1);
    // The tokens the page announced are the ones stored: Intuit takes them.
    let refreshed = p.w.ok(&["refresh", "killpage-0", "--json"]).await;
    let r: Vec<Value> = serde_json::from_str(&refreshed).unwrap();
    assert_eq!(r[0]["outcome"], "refreshed", "{refreshed}");
    // Used before the kill, used after it.
    assert_eq!(p.get(&url, None).await.status, 410);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_open_links_than_a_page_are_listed_whole_in_order() {
    let p = start("").await;
    p.w.seed(1, "many").await;
    let id = p.w.connections_json().await[0]["id"].as_i64().unwrap();
    // 1,001 open links (a page is 1,000), written straight to the database.
    let store = qbo_store::Store::connect(
        &qbo_core::config::DatabaseConfig {
            url: p.w.db_url.clone(),
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(10),
        },
        None,
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let mut tx = store.begin().await.unwrap();
    // And 1,001 that lapsed a minute ago: more than a page of the expiry's (500) too.
    let batches = [
        ("hash", now, now + chrono::Duration::days(7)),
        (
            "lapsed",
            now - chrono::Duration::days(7),
            now - chrono::Duration::minutes(1),
        ),
    ];
    for (prefix, issued, expires) in batches {
        for i in 0..1_001 {
            tx.insert_invitation(
                &format!("{prefix}-{i}"),
                id,
                qbo_core::domain::Environment::Sandbox,
                None,
                "many-0",
                "tester",
                issued,
                expires,
                None,
            )
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
    store.close().await;

    let open: Vec<Value> = serde_json::from_str(&p.w.ok(&["links", "--json"]).await).unwrap();
    assert_eq!(
        open.len(),
        1_001,
        "the lapsed ones expired, page after page"
    );
    let expired =
        p.w.audit_events(3_000)
            .await
            .into_iter()
            .filter(|e| e["action"] == "link expired")
            .count();
    assert_eq!(expired, 1_001, "one event for each lapsed link");
    let ids: Vec<i64> = open.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in their order, none twice"
    );
    let text = p.w.ok(&["links"]).await;
    assert_eq!(text.lines().count(), 1 + 1_001, "a header and a row each");
    assert!(text.starts_with("LINK "), "{text:.200}");
    p.stop().await;
}

/// Rows of a campaign's CSV as (tenant, company, realm, environment, link, expires_at).
fn campaign_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "tenant",
            "company",
            "realm_id",
            "environment",
            "link",
            "expires_at"
        ]
    );
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

async fn campaign_counts(p: &Public, id: i64) -> Value {
    let id = id.to_string();
    serde_json::from_str(&p.w.ok(&["links", "--campaign", &id, "--json"]).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_over_fifty_connections_makes_fifty_links_each_completable() {
    use std::os::unix::fs::PermissionsExt;
    let p = start("rate_limit_per_minute = 1000").await;
    let grants = p.w.seed(50, "camp").await;
    p.w.seed(3, "other").await;
    let csv = p.w.path("campaign.csv");
    let csv_arg = csv.to_str().unwrap();

    // A count confirmed that the filter no longer selects makes nothing, not even the file.
    let out =
        p.w.cli(&[
            "link", "--where", "camp", "--csv", csv_arg, "--expect", "49",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("not the 49 confirmed"));
    assert!(!csv.exists(), "a refused campaign leaves no file behind");

    let made: Value = serde_json::from_str(
        &p.w.ok(&[
            "link", "--where", "camp", "--csv", csv_arg, "--expect", "50", "--json",
        ])
        .await,
    )
    .unwrap();
    let id = made["campaign"]["id"].as_i64().unwrap();
    assert_eq!(made["campaign"]["links"], 50, "{made}");
    assert!(
        !made.to_string().contains("/connect/"),
        "the links go to the file only: {made}"
    );
    let mode = std::fs::metadata(&csv).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the campaign's file is a secret");
    let rows = campaign_rows(&csv);
    assert_eq!(rows.len(), 50);
    let mut tenants: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    assert_eq!(tenants.len(), 50, "one link per connection");
    assert!(
        tenants.iter().all(|t| t.starts_with("camp-")),
        "{tenants:?}"
    );

    // A second campaign onto the same file is refused before any link is made.
    let again =
        p.w.cli(&["link", "--where", "other", "--csv", csv_arg])
            .await;
    assert_eq!(again.status.code(), Some(2), "{}", common::stderr(&again));
    assert!(common::stderr(&again).contains("the file exists"));
    assert_eq!(
        campaign_rows(&csv).len(),
        50,
        "the first campaign's file is kept"
    );
    let all: Value =
        serde_json::from_str(&p.w.ok(&["links", "--campaigns", "--json"]).await).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");

    let counts = campaign_counts(&p, id).await;
    assert_eq!(
        (
            &counts["links"],
            &counts["open"],
            &counts["opened"],
            &counts["completed"]
        ),
        (&50.into(), &50.into(), &0.into(), &0.into()),
        "{counts}"
    );
    // Every link completes through the public listener; the counts follow each one.
    for (i, row) in rows.iter().enumerate() {
        let (realm, url) = (&row[2], &row[4]);
        let g = grants.iter().find(|g| &g.realm_id == realm).unwrap();
        assert_eq!(row[1], g.company_name, "the company as Intuit named it");
        assert_eq!(row[3], "sandbox");
        let (intuit, cookie) = p.open(url).await;
        let callback = p.consent(&intuit, "approve", Some(realm)).await;
        let page = p.get(&callback, Some(&cookie)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        if i == 9 {
            let counts = campaign_counts(&p, id).await;
            assert_eq!(counts["completed"], 10, "{counts}");
            assert_eq!(counts["open"], 40, "{counts}");
        }
    }
    let counts = campaign_counts(&p, id).await;
    assert_eq!(
        (
            &counts["open"],
            &counts["opened"],
            &counts["completed"],
            &counts["expired"]
        ),
        (&0.into(), &50.into(), &50.into(), &0.into()),
        "{counts}"
    );
    let human = p.w.ok(&["links", "--campaign", &id.to_string()]).await;
    assert!(
        human.contains("COMPLETED") && human.trim_end().ends_with(" camp"),
        "{human}"
    );

    let campaign = p.events(Action::LinkCampaign).await;
    assert_eq!(campaign.len(), 1, "one event for the campaign");
    assert_catalogued(&campaign[0], Action::LinkCampaign, &me());
    let reason = campaign[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("campaign {id}: 50 links")),
        "{reason}"
    );
    let issued = p.events(Action::LinkIssued).await;
    assert_eq!(
        issued
            .iter()
            .filter(|e| e["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("in campaign {id}")))
            .count(),
        50,
        "each link audited as today"
    );
    let w = p.stop().await;
    // The file holds the links, not tokens: removed as the customer-success team would.
    std::fs::remove_file(&csv).unwrap();
    w.assert_no_secrets().await;
}
