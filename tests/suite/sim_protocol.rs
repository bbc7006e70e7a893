//! Black-box tests of the Intuit emulator over HTTP: every protocol fact in
//! INTUIT.md that `qbo-sim` models, checked the way a client sees it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use qbo_sim::{
    self as sim, FaultConfig, FaultKind, GrantSeed, PreviousToken, Rotation, SeededGrant,
    SimEnvironment, SimHandle, SimOptions,
};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SANDBOX: (&str, &str) = ("sim-sandbox-client", "sim-sandbox-secret");
const PRODUCTION: (&str, &str) = ("sim-production-client", "sim-production-secret");
const REDIRECT: &str = "http://localhost:8080/callback";
const ACCOUNTING: &str = "com.intuit.quickbooks.accounting";
const DAY: i64 = 86_400;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    fn tid(&self) -> &str {
        self.headers
            .get("intuit_tid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no intuit_tid on a {} answer", self.status))
    }
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location header")
    }
}

struct Env {
    sim: SimHandle,
    http: reqwest::Client,
}

async fn env_with(opts: SimOptions) -> Env {
    let sim = sim::start(opts).await.expect("sim starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Env { sim, http }
}

async fn env() -> Env {
    env_with(SimOptions::default()).await
}

fn options(rotation: Rotation, previous: PreviousToken) -> SimOptions {
    SimOptions {
        rotation,
        previous_token: previous,
        ..SimOptions::default()
    }
}

async fn read(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.text().await.expect("body");
    Answer {
        status,
        headers,
        body,
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    async fn get(&self, path: &str) -> Answer {
        read(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    async fn post_json(&self, path: &str, body: Value) -> Answer {
        read(
            self.http
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    async fn token(&self, client: (&str, &str), form: &[(&str, &str)]) -> Answer {
        self.token_with(client, form, false).await
    }

    async fn token_with(&self, client: (&str, &str), form: &[(&str, &str)], hard: bool) -> Answer {
        let mut req = self
            .http
            .post(self.url("/oauth2/v1/tokens/bearer"))
            .basic_auth(client.0, Some(client.1))
            .header("accept", "application/json")
            .form(form);
        if hard {
            req = req.header("x-include-refresh-token-hard-expires-in", "true");
        }
        read(req.send().await.expect("token request")).await
    }

    async fn refresh(&self, rt: &str) -> Answer {
        self.token(
            SANDBOX,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await
    }

    /// Refreshes and insists on success; returns the refresh token that came back.
    async fn refresh_ok(&self, rt: &str) -> String {
        let a = self.refresh(rt).await;
        assert_eq!(a.status, StatusCode::OK, "refresh failed: {}", a.body);
        a.json()["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string()
    }

    async fn revoke_json(&self, client: (&str, &str), token: &str) -> Answer {
        read(
            self.http
                .post(self.url("/v2/oauth2/tokens/revoke"))
                .basic_auth(client.0, Some(client.1))
                .json(&json!({ "token": token }))
                .send()
                .await
                .expect("revoke"),
        )
        .await
    }

    async fn company_info(&self, realm: &str, access: Option<&str>) -> Answer {
        let mut req = self
            .http
            .get(self.url(&format!(
                "/v3/company/{realm}/companyinfo/{realm}?minorversion=75"
            )))
            .header("accept", "application/json");
        if let Some(t) = access {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("companyinfo")).await
    }

    async fn authorize(&self, client_id: &str, scope: &str, headers: &[(&str, &str)]) -> Answer {
        let query = format!(
            "/connect/oauth2?client_id={client_id}&response_type=code&scope={}&redirect_uri={}&state=st-123",
            urlencoding::encode(scope),
            urlencoding::encode(REDIRECT)
        );
        let mut req = self.http.get(self.url(&query));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.expect("authorize")).await
    }

    fn seed(&self) -> SeededGrant {
        self.sim.seed_grant(SANDBOX.0, None, None).expect("seed")
    }
}

fn callback_params(location: &str) -> HashMap<String, String> {
    let (base, query) = location.split_once('?').expect("query in Location");
    assert_eq!(base, REDIRECT);
    query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (
                k.to_string(),
                urlencoding::decode(v).expect("utf8").into_owned(),
            )
        })
        .collect()
}

fn error_code(a: &Answer) -> String {
    a.json()["error"].as_str().unwrap_or("").to_string()
}

#[test]
fn handle_and_stats_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SimHandle>();
    check::<sim::SimStats>();
    check::<SimOptions>();
}

#[tokio::test]
async fn discovery_documents_point_at_the_emulator() {
    let e = env().await;
    let base = e.sim.base_url();
    for (env_kind, userinfo) in [
        (
            SimEnvironment::Sandbox,
            "/sandbox/v1/openid_connect/userinfo",
        ),
        (SimEnvironment::Production, "/v1/openid_connect/userinfo"),
    ] {
        let url = e.sim.discovery_url(env_kind);
        let a = read(e.http.get(&url).send().await.unwrap()).await;
        assert_eq!(a.status, StatusCode::OK);
        let d = a.json();
        assert_eq!(
            d["authorization_endpoint"],
            format!("{base}/connect/oauth2")
        );
        assert_eq!(
            d["token_endpoint"],
            format!("{base}/oauth2/v1/tokens/bearer")
        );
        assert_eq!(
            d["revocation_endpoint"],
            format!("{base}/v2/oauth2/tokens/revoke")
        );
        assert_eq!(d["userinfo_endpoint"], format!("{base}{userinfo}"));
        assert_eq!(d["jwks_uri"], format!("{base}/oauth2/v1/keys"));
        assert!(d["issuer"].as_str().unwrap().starts_with(&base));
        assert_eq!(d["response_types_supported"], json!(["code"]));
        // intuitlib's built-in URLs end with a slash; serve that form too.
        let slash = read(e.http.get(format!("{url}/")).send().await.unwrap()).await;
        assert_eq!(slash.json(), d);
    }
    assert!(e
        .sim
        .discovery_url(SimEnvironment::Sandbox)
        .ends_with("/.well-known/openid_sandbox_configuration"));
    assert!(e
        .sim
        .discovery_url(SimEnvironment::Production)
        .ends_with("/.well-known/openid_configuration"));
    let keys = e.get("/oauth2/v1/keys").await;
    assert_eq!(keys.json(), json!({ "keys": [] }));
}

#[tokio::test]
async fn scripted_authorize_then_code_exchange() {
    let e = env().await;
    let a = e
        .authorize(SANDBOX.0, ACCOUNTING, &[("x-sim-decision", "approve")])
        .await;
    assert_eq!(a.status, StatusCode::FOUND);
    let p = callback_params(a.location());
    assert_eq!(p["state"], "st-123");
    assert!(p["code"].starts_with("AB11"));
    let realm = &p["realmId"];
    assert!(realm.len() >= 10 && realm.bytes().all(|b| b.is_ascii_digit()));

    let t = e
        .token(
            SANDBOX,
            &[
                ("grant_type", "authorization_code"),
                ("code", &p["code"]),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.headers["cache-control"], "no-store");
    let j = t.json();
    assert_eq!(j["token_type"], "bearer");
    assert_eq!(j["expires_in"], 3600);
    assert_eq!(j["x_refresh_token_expires_in"], 8_640_000);
    assert!(j.get("x_refresh_token_hard_expires_in").is_none());
    assert!(
        j.get("realmId").is_none(),
        "realmId is not part of the token answer"
    );
    let access = j["access_token"].as_str().unwrap();
    assert!(
        access.len() >= 700 && access.starts_with("eyJ"),
        "{}",
        access.len()
    );
    let rt = j["refresh_token"].as_str().unwrap();
    assert!(rt.starts_with("RT1-") && rt.contains("-H0-"), "{rt}");

    let info = e.company_info(realm, Some(access)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert!(info.json()["CompanyInfo"]["CompanyName"]
        .as_str()
        .unwrap()
        .starts_with("Sandbox Company"));
    assert_eq!(info.json()["CompanyInfo"]["Id"], "1");
    let s = e.sim.stats();
    assert_eq!(
        (
            s.code_exchanges,
            s.authorizations_approved,
            s.token_requests
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn authorize_rejects_bad_clients_and_redirects_protocol_errors() {
    let e = env().await;
    let unknown = e
        .authorize("nobody", ACCOUNTING, &[("x-sim-decision", "approve")])
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.headers.get("location").is_none());
    assert!(unknown.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    let wrong_redirect = e
        .get(&format!(
            "/connect/oauth2?client_id={}&response_type=code&scope={ACCOUNTING}&redirect_uri={}&state=s",
            SANDBOX.0,
            urlencoding::encode("http://localhost:8080/callback/")
        ))
        .await;
    assert_eq!(wrong_redirect.status, StatusCode::BAD_REQUEST);
    assert!(wrong_redirect.headers.get("location").is_none());

    let bad_scope = e
        .authorize(SANDBOX.0, "com.intuit.quickbooks.payroll", &[])
        .await;
    assert_eq!(bad_scope.status, StatusCode::FOUND);
    let p = callback_params(bad_scope.location());
    assert_eq!(
        (p["error"].as_str(), p["state"].as_str()),
        ("invalid_scope", "st-123")
    );

    let bad_type = e
        .get(&format!(
            "/connect/oauth2?client_id={}&response_type=token&scope={ACCOUNTING}&redirect_uri={}",
            SANDBOX.0,
            urlencoding::encode(REDIRECT)
        ))
        .await;
    assert_eq!(
        callback_params(bad_type.location())["error"],
        "unsupported_response_type"
    );

    let denied = e
        .authorize(SANDBOX.0, ACCOUNTING, &[("x-sim-decision", "deny")])
        .await;
    let p = callback_params(denied.location());
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "st-123");
    assert!(!p.contains_key("code"));
    assert_eq!(e.sim.stats().authorizations_denied, 1);
}

#[tokio::test]
async fn consent_page_form_round_trip_and_realm_rules() {
    let e = env().await;
    let page = e.authorize(SANDBOX.0, ACCOUNTING, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("action=\"/connect/oauth2/decision\""));
    assert!(page.body.contains("name=\"realm_id\""));

    // Reconnect an existing company through the form.
    let seeded = e
        .sim
        .seed_grant(SANDBOX.0, Some("9130350000000001"), Some("Reconnect Co"))
        .unwrap();
    let form = [
        ("client_id", SANDBOX.0),
        ("redirect_uri", REDIRECT),
        ("scope", ACCOUNTING),
        ("response_type", "code"),
        ("state", "form-state"),
        ("realm_id", seeded.realm_id.as_str()),
        ("decision", "approve"),
    ];
    let a = read(
        e.http
            .post(e.url("/connect/oauth2/decision"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.body);
    let p = callback_params(a.location());
    assert_eq!(p["realmId"], "9130350000000001");
    assert_eq!(p["state"], "form-state");

    // A tampered hidden field is checked again.
    let mut tampered = form;
    tampered[1] = ("redirect_uri", "https://evil.example.com/cb");
    let t = read(
        e.http
            .post(e.url("/connect/oauth2/decision"))
            .form(&tampered)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(t.status, StatusCode::BAD_REQUEST);

    // A sandbox company cannot be connected with production keys.
    let cross = e
        .get(&format!(
            "/connect/oauth2?client_id={}&response_type=code&scope={ACCOUNTING}&redirect_uri={}",
            PRODUCTION.0,
            urlencoding::encode(REDIRECT)
        ))
        .await;
    assert_eq!(cross.status, StatusCode::OK);
    let cross = read(
        e.http
            .get(e.url(&format!(
                "/connect/oauth2?client_id={}&response_type=code&scope={ACCOUNTING}&redirect_uri={}",
                PRODUCTION.0,
                urlencoding::encode(REDIRECT)
            )))
            .header("x-sim-decision", "approve")
            .header("x-sim-realm-id", seeded.realm_id.as_str())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(cross.status, StatusCode::BAD_REQUEST);

    // Without the accounting or payment scope there is no realmId.
    let openid = e
        .authorize(SANDBOX.0, "openid email", &[("x-sim-decision", "approve")])
        .await;
    let p = callback_params(openid.location());
    assert!(p.contains_key("code") && !p.contains_key("realmId"));
}

/// Approves an authorization; returns the code and the realm id.
async fn code_for(e: &Env) -> (String, String) {
    let a = e
        .authorize(SANDBOX.0, ACCOUNTING, &[("x-sim-decision", "approve")])
        .await;
    let p = callback_params(a.location());
    (p["code"].clone(), p["realmId"].clone())
}

#[tokio::test]
async fn reused_code_fails_and_revokes_the_first_exchange() {
    let e = env().await;
    let (code, realm) = code_for(&e).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let first = e.token(SANDBOX, &form).await;
    assert_eq!(first.status, StatusCode::OK);
    let j = first.json();
    let (access, rt) = (
        j["access_token"].as_str().unwrap(),
        j["refresh_token"].as_str().unwrap(),
    );

    let second = e.token(SANDBOX, &form).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&second), "invalid_grant");
    assert!(second.json()["error_description"].is_string());

    assert_eq!(error_code(&e.refresh(rt).await), "invalid_grant");
    assert!(
        e.sim.stats().refreshes_by_realm.is_empty(),
        "no refresh may have succeeded"
    );
    let s = e.sim.stats();
    assert_eq!(
        (s.code_reuses, s.code_exchanges, s.invalid_grants),
        (1, 1, 2)
    );
    // The access token from the first exchange is dead too.
    let info = e.company_info(&realm, Some(access)).await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn codes_are_bound_to_redirect_uri_and_client_and_expire() {
    let e = env().await;
    let (code, _) = code_for(&e).await;
    let wrong_redirect = e
        .token(
            SANDBOX,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://ops.example.com/qbo/callback"),
            ],
        )
        .await;
    assert_eq!(error_code(&wrong_redirect), "invalid_grant");
    let other_client = e
        .token(
            PRODUCTION,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(error_code(&other_client), "invalid_grant");

    let (late, _) = code_for(&e).await;
    e.sim.advance(Span::seconds(601));
    let expired = e
        .token(
            SANDBOX,
            &[
                ("grant_type", "authorization_code"),
                ("code", &late),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(error_code(&expired), "invalid_grant");
    assert_eq!(e.sim.stats().code_exchanges, 0);
}

/// Runs the rotation story for one (rotation, previous-token) pair and
/// checks what the old token does after a new one was issued.
async fn rotation_story(rotation: Rotation, previous: PreviousToken) {
    let e = env_with(options(rotation, previous)).await;
    let g = e.seed();
    let rt1 = g.refresh_token.clone();

    let again = e.refresh_ok(&rt1).await;
    match rotation {
        Rotation::Daily => assert_eq!(again, rt1, "daily rotation keeps the token for 24 h"),
        Rotation::EveryRefresh => assert_ne!(again, rt1, "every refresh rotates"),
    }
    let rt2 = match rotation {
        Rotation::Daily => {
            e.sim.advance(Span::hours(23));
            assert_eq!(e.refresh_ok(&rt1).await, rt1);
            e.sim.advance(Span::hours(2));
            let rt2 = e.refresh_ok(&rt1).await;
            assert_ne!(rt2, rt1, "a day after issue a new token comes back");
            rt2
        }
        Rotation::EveryRefresh => again,
    };
    assert_eq!(e.sim.stats().superseded_uses, 0);

    // rt1 has been replaced by rt2.
    let old = e.refresh(&rt1).await;
    match previous {
        PreviousToken::Grace24h => {
            assert_eq!(old.status, StatusCode::OK, "{}", old.body);
            let back = old.json()["refresh_token"].as_str().unwrap().to_string();
            match rotation {
                // Within grace the caller learns the grant's current token.
                Rotation::Daily => assert_eq!(back, rt2),
                Rotation::EveryRefresh => assert!(back != rt1 && back != rt2),
            }
            assert_eq!(e.sim.stats().grace_refreshes, 1);
            e.sim.advance(Span::hours(24));
            assert_eq!(error_code(&e.refresh(&rt1).await), "invalid_grant");
            let s = e.sim.stats();
            assert_eq!((s.superseded_uses, s.invalid_grants), (2, 1));
        }
        PreviousToken::InvalidAtOnce => {
            assert_eq!(error_code(&old), "invalid_grant");
            let s = e.sim.stats();
            assert_eq!(
                (s.superseded_uses, s.invalid_grants, s.grace_refreshes),
                (1, 1, 0)
            );
            // The newest token is unaffected.
            e.refresh_ok(&rt2).await;
        }
    }
}

#[tokio::test]
async fn rotation_daily_with_grace() {
    rotation_story(Rotation::Daily, PreviousToken::Grace24h).await;
}

#[tokio::test]
async fn rotation_daily_invalid_at_once() {
    rotation_story(Rotation::Daily, PreviousToken::InvalidAtOnce).await;
}

#[tokio::test]
async fn rotation_every_refresh_with_grace() {
    rotation_story(Rotation::EveryRefresh, PreviousToken::Grace24h).await;
}

#[tokio::test]
async fn rotation_every_refresh_invalid_at_once() {
    rotation_story(Rotation::EveryRefresh, PreviousToken::InvalidAtOnce).await;
}

#[tokio::test]
async fn rotation_policy_can_change_at_run_time() {
    let e = env().await;
    let g = e.seed();
    assert_eq!(e.refresh_ok(&g.refresh_token).await, g.refresh_token);
    e.sim
        .set_rotation(Rotation::EveryRefresh, PreviousToken::InvalidAtOnce);
    let rt2 = e.refresh_ok(&g.refresh_token).await;
    assert_ne!(rt2, g.refresh_token);
    assert_eq!(
        error_code(&e.refresh(&g.refresh_token).await),
        "invalid_grant"
    );
    let a = e
        .post_json(
            "/_sim/rotation",
            json!({"rotation": "daily", "previous_token": "grace_24h"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(e.refresh_ok(&rt2).await, rt2);
}

#[tokio::test]
async fn refresh_token_dies_after_100_idle_days_and_use_restarts_the_window() {
    let e = env().await;
    let g = e.seed();
    e.sim.advance(Span::days(99));
    let rt = e.refresh_ok(&g.refresh_token).await;
    e.sim.advance(Span::days(99));
    let rt = e.refresh_ok(&rt).await;
    e.sim.advance(Span::days(100) + Span::seconds(1));
    let dead = e.refresh(&rt).await;
    assert_eq!(error_code(&dead), "invalid_grant");
    assert!(dead.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("100 days"));
}

#[tokio::test]
async fn hard_limit_ends_the_grant_five_years_after_consent() {
    let e = env().await;
    let g = e.seed();
    let mut rt = g.refresh_token.clone();
    let hard = 5 * 365 * DAY;
    let mut elapsed = 0;
    let mut last_expires_in = i64::MAX;
    while elapsed + 90 * DAY < hard {
        e.sim.advance(Span::days(90));
        elapsed += 90 * DAY;
        let a = e.refresh(&rt).await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "at day {}: {}",
            elapsed / DAY,
            a.body
        );
        rt = a.json()["refresh_token"].as_str().unwrap().to_string();
        last_expires_in = a.json()["x_refresh_token_expires_in"].as_i64().unwrap();
    }
    // Near the end the refresh window is capped by the hard limit.
    assert!(
        last_expires_in < 100 * DAY && last_expires_in > 0,
        "{last_expires_in}"
    );
    e.sim.advance(Span::seconds(hard - elapsed + 1));
    let dead = e.refresh(&rt).await;
    assert_eq!(error_code(&dead), "invalid_grant");
    assert!(dead.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("hard"));
}

#[tokio::test]
async fn hard_expiry_field_only_on_request() {
    let e = env().await;
    let g = e.seed();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", g.refresh_token.as_str()),
    ];
    let plain = e.token(SANDBOX, &form).await.json();
    assert!(plain.get("x_refresh_token_hard_expires_in").is_none());
    let with = e.token_with(SANDBOX, &form, true).await.json();
    let hard = with["x_refresh_token_hard_expires_in"]
        .as_i64()
        .expect("hard field");
    assert!(
        (5 * 365 * DAY - 60..=5 * 365 * DAY).contains(&hard),
        "{hard}"
    );
}

#[tokio::test]
async fn wrong_client_credentials_are_invalid_client() {
    let e = env().await;
    let g = e.seed();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", g.refresh_token.as_str()),
    ];
    for creds in [(SANDBOX.0, "wrong"), ("unknown", "x")] {
        let a = e.token(creds, &form).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.json(), json!({ "error": "invalid_client" }));
    }
    let bare = read(
        e.http
            .post(e.url("/oauth2/v1/tokens/bearer"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED);
    // A refresh token belongs to the client that got it.
    let other = e.token(PRODUCTION, &form).await;
    assert_eq!(error_code(&other), "invalid_grant");
    let s = e.sim.stats();
    assert_eq!(
        (s.invalid_clients, s.invalid_grants, s.refreshes),
        (3, 1, 0)
    );
}

#[tokio::test]
async fn malformed_token_requests() {
    let e = env().await;
    assert_eq!(
        error_code(&e.token(SANDBOX, &[("refresh_token", "x")]).await),
        "invalid_request"
    );
    assert_eq!(
        error_code(&e.token(SANDBOX, &[("grant_type", "refresh_token")]).await),
        "invalid_request"
    );
    assert_eq!(
        error_code(
            &e.token(
                SANDBOX,
                &[("grant_type", "authorization_code"), ("code", "AB11x")]
            )
            .await
        ),
        "invalid_request"
    );
    let pw = e.token(SANDBOX, &[("grant_type", "password")]).await;
    assert_eq!(
        (pw.status, error_code(&pw).as_str()),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let as_json = read(
        e.http
            .post(e.url("/oauth2/v1/tokens/bearer"))
            .basic_auth(SANDBOX.0, Some(SANDBOX.1))
            .json(&json!({"grant_type": "refresh_token", "refresh_token": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&as_json), "invalid_request");
    assert_eq!(e.sim.stats().invalid_requests, 5);
}

#[tokio::test]
async fn revoke_with_json_or_form_ends_the_grant() {
    let e = env().await;
    // JSON body with the refresh token.
    let g1 = e.seed();
    let a = e.revoke_json(SANDBOX, &g1.refresh_token).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.is_empty());
    assert_eq!(
        error_code(&e.refresh(&g1.refresh_token).await),
        "invalid_grant"
    );
    assert_eq!(
        e.company_info(&g1.realm_id, Some(&g1.access_token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Form body with the access token.
    let g2 = e.seed();
    let f = read(
        e.http
            .post(e.url("/v2/oauth2/tokens/revoke"))
            .basic_auth(SANDBOX.0, Some(SANDBOX.1))
            .form(&[("token", g2.access_token.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(
        error_code(&e.refresh(&g2.refresh_token).await),
        "invalid_grant"
    );

    // Unknown token: 200 like Intuit. Missing token: 400. Wrong secret: 401.
    assert_eq!(
        e.revoke_json(SANDBOX, "RT1-00-H0-0000000000nothing")
            .await
            .status,
        StatusCode::OK
    );
    let missing = read(
        e.http
            .post(e.url("/v2/oauth2/tokens/revoke"))
            .basic_auth(SANDBOX.0, Some(SANDBOX.1))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let g3 = e.seed();
    assert_eq!(
        e.revoke_json((SANDBOX.0, "nope"), &g3.refresh_token)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        e.revoke_json(PRODUCTION, &g3.refresh_token).await.status,
        StatusCode::BAD_REQUEST
    );
    e.refresh_ok(&g3.refresh_token).await;
    let s = e.sim.stats();
    assert_eq!(
        (s.revocations, s.revoked_grants, s.invalid_clients),
        (3, 2, 1)
    );
}

#[tokio::test]
async fn company_info_answers_200_401_403() {
    let e = env().await;
    let g = e
        .sim
        .seed_grant(SANDBOX.0, None, Some("Craig's Design and Landscaping"))
        .unwrap();
    let other = e.seed();

    let ok = e.company_info(&g.realm_id, Some(&g.access_token)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.json()["CompanyInfo"]["CompanyName"],
        "Craig's Design and Landscaping"
    );
    assert_eq!(ok.json()["CompanyInfo"]["Country"], "US");
    assert!(ok.json()["time"].is_string());

    for token in [None, Some("eyJnot-a-token")] {
        let a = e.company_info(&g.realm_id, token).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        let err = &a.json()["fault"]["error"][0];
        assert_eq!(err["code"], "3200");
        assert!(err["message"]
            .as_str()
            .unwrap()
            .contains("errorCode=003200"));
        assert!(a.json().get("Fault").is_none(), "401 uses lower-case keys");
    }

    let forbidden = e.company_info(&g.realm_id, Some(&other.access_token)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.json()["fault"]["error"][0]["code"], "3100");

    e.sim.advance(Span::seconds(3601));
    let expired = e.company_info(&g.realm_id, Some(&g.access_token)).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.json()["fault"]["error"][0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("Token expired"));
    assert!(
        !expired.body.contains(&g.access_token[..40]),
        "the token is never echoed"
    );
    let s = e.sim.stats();
    assert_eq!(
        (
            s.company_info_calls,
            s.company_info_unauthorized,
            s.company_info_forbidden
        ),
        (5, 3, 1)
    );
}

#[tokio::test]
async fn customer_disconnect_kills_every_grant_of_the_realm() {
    let e = env().await;
    let a = e
        .sim
        .seed_grant(SANDBOX.0, Some("4620816365000000001"), None)
        .unwrap();
    let b = e
        .sim
        .seed_grant(SANDBOX.0, Some("4620816365000000001"), None)
        .unwrap();
    let other = e.seed();
    e.sim.disconnect(&a.realm_id);
    for g in [&a, &b] {
        assert_eq!(
            error_code(&e.refresh(&g.refresh_token).await),
            "invalid_grant"
        );
        let info = e.company_info(&g.realm_id, Some(&g.access_token)).await;
        assert_eq!(info.status, StatusCode::UNAUTHORIZED);
        assert_eq!(info.json()["fault"]["error"][0]["code"], "3200");
    }
    e.refresh_ok(&other.refresh_token).await;

    // The same through the control API.
    let c = e
        .post_json(
            &format!("/_sim/realms/{}/disconnect", other.realm_id),
            json!({}),
        )
        .await;
    assert_eq!(c.json()["grants_ended"], 1);
    assert_eq!(
        error_code(&e.refresh(&other.refresh_token).await),
        "invalid_grant"
    );
    assert_eq!(
        e.post_json("/_sim/realms/123/disconnect", json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(e.sim.stats().disconnects, 2);
}

#[tokio::test]
async fn injected_faults_replace_answers_and_are_counted_apart() {
    let e = env().await;
    let g = e.seed();
    e.sim
        .set_faults(FaultConfig::always(FaultKind::ServiceUnavailable));
    let a = e.refresh("RT1-00-H0-0000000000unknown").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("<html>"));
    a.tid();
    let info = e.company_info(&g.realm_id, Some(&g.access_token)).await;
    assert_eq!(info.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        e.revoke_json(SANDBOX, &g.refresh_token).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Discovery and the control API are never faulted.
    assert_eq!(
        e.get("/.well-known/openid_configuration").await.status,
        StatusCode::OK
    );
    assert_eq!(e.get("/_sim/stats").await.status, StatusCode::OK);

    e.sim
        .set_faults(FaultConfig::always(FaultKind::RateLimited));
    let r = e.refresh(&g.refresh_token).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("<IntuitResponse") && r.body.contains("<Error code=\"3001\">"));
    assert!(r.body.contains("ThrottleExceeded"));
    assert!(r.headers.contains_key("retry-after"));

    e.sim.set_faults(FaultConfig::always(FaultKind::Garbage));
    let gb = e.refresh(&g.refresh_token).await;
    assert_eq!(gb.status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&gb.body).is_err());

    let s = e.sim.stats();
    assert_eq!(s.faults_injected, 5);
    assert_eq!(
        (
            s.invalid_grants,
            s.refreshes,
            s.revocations,
            s.company_info_calls
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(s.token_requests, 3);

    e.sim.set_faults(FaultConfig::none());
    e.refresh_ok(&g.refresh_token).await;
}

#[tokio::test]
async fn fault_rate_is_a_fraction() {
    let e = env().await;
    let g = e.seed();
    e.sim.set_faults(FaultConfig {
        rate: 0.5,
        kinds: vec![FaultKind::ServiceUnavailable],
        ..FaultConfig::none()
    });
    let mut faulted = 0;
    for _ in 0..200 {
        if e.refresh(&g.refresh_token).await.status == StatusCode::SERVICE_UNAVAILABLE {
            faulted += 1;
        }
    }
    assert!(
        (50..=150).contains(&faulted),
        "{faulted} of 200 faulted at rate 0.5"
    );
    let s = e.sim.stats();
    assert_eq!(s.faults_injected, faulted);
    assert_eq!(s.refreshes, 200 - faulted);
}

#[tokio::test]
async fn faults_of_one_company_leave_the_other_companies_answered() {
    let e = env().await;
    let (sick, well) = (e.seed(), e.seed());
    e.sim.set_realm_faults(
        &sick.realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    assert_eq!(
        e.refresh(&sick.refresh_token).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        e.company_info(&sick.realm_id, Some(&sick.access_token))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        e.revoke_json(SANDBOX, &sick.access_token).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let well_rt = e.refresh_ok(&well.refresh_token).await;
    assert_eq!(
        e.company_info(&well.realm_id, Some(&well.access_token))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(e.sim.stats().faults_injected, 3);

    // A company's own configuration replaces the global one, also to exempt it.
    e.sim.set_faults(FaultConfig::always(FaultKind::Garbage));
    e.sim.set_realm_faults(&well.realm_id, FaultConfig::none());
    e.refresh_ok(&well_rt).await;
    e.sim.clear_realm_faults(&well.realm_id);
    assert_eq!(e.refresh(&well_rt).await.status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&e.refresh(&well_rt).await.body).is_err());
    e.sim.set_faults(FaultConfig::none());
    e.sim.clear_realm_faults(&sick.realm_id);
    e.refresh_ok(&sick.refresh_token).await;
}

#[tokio::test]
async fn faults_of_one_company_over_the_control_api() {
    let e = env().await;
    let (sick, well) = (e.seed(), e.seed());
    let path = format!("/_sim/realms/{}/faults", sick.realm_id);
    let set = e
        .post_json(&path, json!({"rate": 1.0, "kinds": ["503"]}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        e.get(&path).await.json()["kinds"],
        json!(["service_unavailable"])
    );
    assert_eq!(e.get("/_sim/faults").await.json()["rate"], json!(0.0));
    assert_eq!(
        e.refresh(&sick.refresh_token).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    e.refresh_ok(&well.refresh_token).await;
    assert_eq!(
        e.post_json(&path, json!({"rate": 2.0})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        e.post_json("/_sim/realms/999/faults", json!({"rate": 1.0}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let cleared = e.http.delete(e.url(&path)).send().await.expect("DELETE");
    assert_eq!(cleared.status(), StatusCode::OK);
    e.refresh_ok(&sick.refresh_token).await;
}

#[tokio::test]
async fn a_seeded_grant_can_start_near_its_limits() {
    let e = env().await;
    let now = e.sim.now();
    let five_years = Span::days(5 * 365);
    let near = e
        .sim
        .seed_grant_with(
            SANDBOX.0,
            &GrantSeed {
                consented_at: Some(now - five_years + Span::days(10)),
                issued_at: Some(now - Span::days(85)),
                ..GrantSeed::default()
            },
        )
        .expect("seed with a history");
    assert_eq!(near.issued_at, now - Span::days(85));
    assert_eq!(near.x_refresh_token_expires_in, 95 * DAY);
    assert_eq!(near.x_refresh_token_hard_expires_in, 95 * DAY);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", near.refresh_token.as_str()),
    ];
    let a = e.token_with(SANDBOX, &form, true).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let hard = a.json()["x_refresh_token_hard_expires_in"]
        .as_i64()
        .unwrap();
    assert!((10 * DAY - 60..=10 * DAY).contains(&hard), "{hard}");
    // The access token issued with it expired long ago.
    assert_eq!(
        e.company_info(&near.realm_id, Some(&near.access_token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let lapsed = e
        .sim
        .seed_grant_with(
            SANDBOX.0,
            &GrantSeed {
                issued_at: Some(now - Span::days(101)),
                ..GrantSeed::default()
            },
        )
        .expect("seed with a lapsed token");
    let dead = e.refresh(&lapsed.refresh_token).await;
    assert_eq!(error_code(&dead), "invalid_grant", "{}", dead.body);

    for bad in [
        GrantSeed {
            issued_at: Some(now + Span::days(1)),
            ..GrantSeed::default()
        },
        GrantSeed {
            consented_at: Some(now - Span::days(1)),
            issued_at: Some(now - Span::days(2)),
            ..GrantSeed::default()
        },
    ] {
        assert!(e.sim.seed_grant_with(SANDBOX.0, &bad).is_err(), "{bad:?}");
    }

    let over_http = e
        .post_json(
            "/_sim/grants",
            json!({"client_id": SANDBOX.0, "issued_at": (now - Span::days(90)).to_rfc3339()}),
        )
        .await;
    assert_eq!(over_http.status, StatusCode::OK, "{}", over_http.body);
    let grants: Vec<SeededGrant> = serde_json::from_str(&over_http.body).unwrap();
    assert!(
        (grants[0].issued_at - (now - Span::days(90)))
            .num_milliseconds()
            .abs()
            < 1
    );
    e.sim.advance(Span::days(11));
    let dead = e.refresh(&grants[0].refresh_token).await;
    assert_eq!(error_code(&dead), "invalid_grant", "{}", dead.body);
}

#[tokio::test]
async fn a_company_can_exist_before_it_consents() {
    let e = env().await;
    let realm = e
        .sim
        .add_company(SimEnvironment::Production, "Quiet Harbor Books")
        .expect("company");
    assert_eq!(realm.len(), 15);
    assert_eq!(e.sim.stats().refreshes, 0);
    let g = e
        .sim
        .seed_grant(PRODUCTION.0, Some(&realm), None)
        .expect("consent");
    assert_eq!(g.company_name, "Quiet Harbor Books");
    assert!(e.sim.seed_grant(SANDBOX.0, Some(&realm), None).is_err());
}

#[tokio::test]
async fn timeout_fault_holds_then_drops_without_answer() {
    let e = env().await;
    let g = e.seed();
    e.sim.set_faults(FaultConfig {
        timeout_hold: Duration::from_millis(300),
        ..FaultConfig::always(FaultKind::Timeout)
    });
    let started = Instant::now();
    let r = e
        .http
        .post(e.url("/oauth2/v1/tokens/bearer"))
        .basic_auth(SANDBOX.0, Some(SANDBOX.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", g.refresh_token.as_str()),
        ])
        .send()
        .await;
    assert!(
        r.is_err(),
        "a timeout fault sends no answer: {:?}",
        r.map(|r| r.status())
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(e.sim.stats().refreshes, 0);
}

#[tokio::test]
async fn lost_response_is_processed_before_the_answer_is_lost() {
    let e = env_with(options(Rotation::EveryRefresh, PreviousToken::Grace24h)).await;
    let g = e.seed();
    e.sim
        .set_faults(FaultConfig::always(FaultKind::LostResponse));
    let r = e
        .http
        .post(e.url("/oauth2/v1/tokens/bearer"))
        .basic_auth(SANDBOX.0, Some(SANDBOX.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", g.refresh_token.as_str()),
        ])
        .send()
        .await;
    assert!(r.is_err(), "the answer must be lost");
    let s = e.sim.stats();
    assert_eq!((s.refreshes, s.rotations, s.faults_injected), (1, 1, 1));
    // Intuit rotated: the token we still hold is superseded; grace recovers.
    e.sim.set_faults(FaultConfig::none());
    let again = e.refresh(&g.refresh_token).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(e.sim.stats().superseded_uses, 1);
}

#[tokio::test]
async fn per_realm_throttle_answers_xml_429() {
    let e = env().await;
    let g = e.seed();
    for i in 0..500 {
        let a = e.company_info(&g.realm_id, Some(&g.access_token)).await;
        assert_eq!(a.status, StatusCode::OK, "call {i}");
    }
    let t = e.company_info(&g.realm_id, Some(&g.access_token)).await;
    assert_eq!(t.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(t.body.contains("<IntuitResponse") && t.body.contains("statusCode=429"));
    // Another company has its own budget.
    let other = e.seed();
    assert_eq!(
        e.company_info(&other.realm_id, Some(&other.access_token))
            .await
            .status,
        StatusCode::OK
    );
    e.sim.advance(Span::seconds(61));
    assert_eq!(
        e.company_info(&g.realm_id, Some(&g.access_token))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(e.sim.stats().throttled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_refreshes_of_one_token_are_counted() {
    let e = env_with(options(
        Rotation::EveryRefresh,
        PreviousToken::InvalidAtOnce,
    ))
    .await;
    let g = e.seed();
    e.sim.set_token_latency(Duration::from_millis(300));
    let (a, b) = tokio::join!(e.refresh(&g.refresh_token), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        e.refresh(&g.refresh_token).await
    });
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{} / {}",
        a.body,
        b.body
    );
    let s = e.sim.stats();
    assert_eq!(
        (s.concurrent_uses, s.refreshes, s.superseded_uses),
        (1, 1, 1)
    );

    // Sequential uses of the new token do not count.
    let rt = if a.status == StatusCode::OK {
        a.json()
    } else {
        b.json()
    }["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = e.refresh_ok(&rt).await;
    e.refresh_ok(&rt).await;
    assert_eq!(e.sim.stats().concurrent_uses, 1);
}

#[tokio::test]
async fn every_answer_carries_a_fresh_intuit_tid() {
    let e = env().await;
    let g = e.seed();
    let mut answers = vec![
        e.get("/.well-known/openid_configuration").await,
        e.get("/oauth2/v1/keys").await,
        e.authorize(SANDBOX.0, ACCOUNTING, &[("x-sim-decision", "approve")])
            .await,
        e.authorize("nobody", ACCOUNTING, &[]).await,
        e.refresh(&g.refresh_token).await,
        e.refresh("RT1-bogus").await,
        e.token(("x", "y"), &[("grant_type", "refresh_token")])
            .await,
        e.company_info(&g.realm_id, Some(&g.access_token)).await,
        e.company_info(&g.realm_id, None).await,
        e.get("/_sim/stats").await,
        e.get("/no/such/path").await,
    ];
    e.sim
        .set_faults(FaultConfig::always(FaultKind::RateLimited));
    answers.push(e.refresh(&g.refresh_token).await);
    e.sim.set_faults(FaultConfig::always(FaultKind::Garbage));
    answers.push(e.company_info(&g.realm_id, Some(&g.access_token)).await);
    e.sim.set_faults(FaultConfig::none());
    answers.push(e.revoke_json(SANDBOX, &g.refresh_token).await);
    let tids: HashSet<String> = answers.iter().map(|a| a.tid().to_string()).collect();
    assert_eq!(tids.len(), answers.len(), "intuit_tid values repeat");
}

#[tokio::test]
async fn control_api_drives_the_emulator() {
    let e = env().await;
    let seeded = e
        .post_json(
            "/_sim/grants",
            json!({"client_id": SANDBOX.0, "count": 3, "company_name": "Bench Co"}),
        )
        .await;
    assert_eq!(seeded.status, StatusCode::OK, "{}", seeded.body);
    let grants: Vec<SeededGrant> = serde_json::from_str(&seeded.body).unwrap();
    assert_eq!(grants.len(), 3);
    assert!(grants
        .iter()
        .all(|g| g.company_name == "Bench Co" && g.x_refresh_token_expires_in == 8_640_000));
    let bad_client = e
        .post_json("/_sim/grants", json!({"client_id": "nobody"}))
        .await;
    assert_eq!(bad_client.status, StatusCode::BAD_REQUEST);

    e.refresh_ok(&grants[0].refresh_token).await;
    let over_http: sim::SimStats = serde_json::from_str(&e.get("/_sim/stats").await.body).unwrap();
    assert_eq!(over_http.refreshes, 1);
    assert_eq!(over_http, e.sim.stats());
    assert_eq!(
        e.post_json("/_sim/stats/reset", json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(e.sim.stats().refreshes, 0);

    let before = e.sim.now();
    let c = e
        .post_json("/_sim/clock/advance", json!({"seconds": 3 * DAY}))
        .await;
    assert_eq!(c.json()["offset_seconds"], 3 * DAY);
    assert!(e.sim.now() - before >= Span::days(3));
    assert_eq!(e.get("/_sim/clock").await.json()["offset_seconds"], 3 * DAY);
    assert_eq!(
        e.post_json("/_sim/clock/advance", json!({"seconds": -1}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let f = e
        .post_json(
            "/_sim/faults",
            json!({"rate": 1.0, "kinds": ["rate_limited"], "timeout_hold_ms": 10}),
        )
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.body);
    assert_eq!(
        e.refresh(&grants[1].refresh_token).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        e.post_json("/_sim/faults", json!({"rate": 2.0}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // Faults on one endpoint alone: the accounting API down, the OAuth service answering.
    let f = e
        .post_json(
            "/_sim/faults",
            json!({"rate": 1.0, "kinds": ["503"], "endpoints": ["company_info"]}),
        )
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.body);
    assert_eq!(f.json()["endpoints"], json!(["company_info"]));
    let refreshed = e.refresh(&grants[2].refresh_token).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let access = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        e.company_info(&grants[2].realm_id, Some(&access))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        e.post_json(
            "/_sim/faults",
            json!({"rate": 1.0, "endpoints": ["ledger"]})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        e.post_json("/_sim/faults", json!({"rate": 1.0, "kinds": ["nope"]}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        e.post_json("/_sim/faults", json!({"rate": 0.0}))
            .await
            .status,
        StatusCode::OK
    );

    assert_eq!(
        e.post_json("/_sim/latency", json!({"ms": 5})).await.status,
        StatusCode::OK
    );
    e.refresh_ok(&grants[1].refresh_token).await;

    let issued: Vec<String> =
        serde_json::from_str(&e.get("/_sim/issued_tokens").await.body).unwrap();
    for g in &grants {
        assert!(issued.contains(&g.access_token) && issued.contains(&g.refresh_token));
    }
}

#[tokio::test]
async fn issued_tokens_lists_codes_access_and_refresh_tokens() {
    let e = env().await;
    let (code, _) = code_for(&e).await;
    let t = e
        .token(
            SANDBOX,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await
        .json();
    let rt = t["refresh_token"].as_str().unwrap();
    let refreshed = e.refresh(rt).await.json();
    let issued = e.sim.issued_tokens();
    for v in [
        code.as_str(),
        t["access_token"].as_str().unwrap(),
        rt,
        refreshed["access_token"].as_str().unwrap(),
    ] {
        assert!(issued.iter().any(|i| i == v), "{} missing", &v[..12]);
    }
    assert_eq!(issued.len(), 4, "code, refresh token, two access tokens");
}

#[tokio::test]
async fn shutdown_is_prompt_even_while_a_connection_is_held() {
    let e = env().await;
    e.sim.set_faults(FaultConfig {
        timeout_hold: Duration::from_secs(60),
        ..FaultConfig::always(FaultKind::Timeout)
    });
    let url = e.url("/oauth2/v1/tokens/bearer");
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .basic_auth(SANDBOX.0, Some(SANDBOX.1))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .is_err()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    e.sim.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(held.await.unwrap(), "the held request gets no answer");
}

#[tokio::test]
async fn userinfo_needs_the_openid_scope() {
    let e = env().await;
    let g = e.seed();
    let a = read(
        e.http
            .get(e.url("/sandbox/v1/openid_connect/userinfo"))
            .bearer_auth(&g.access_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = e
        .authorize(SANDBOX.0, "openid email", &[("x-sim-decision", "approve")])
        .await;
    let code = callback_params(a.location())["code"].clone();
    let t = e
        .token(
            SANDBOX,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await
        .json();
    let u = read(
        e.http
            .get(e.url("/v1/openid_connect/userinfo"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK);
    assert!(u.json()["sub"].is_string() && u.json()["email"].is_string());
}

#[tokio::test]
async fn the_consent_page_offers_the_environments_companies_by_name_to_reconnect() {
    let e = env().await;
    let mine = e
        .sim
        .seed_grant(SANDBOX.0, Some("9130350000000002"), Some("Harbor <Books>"))
        .unwrap();
    let theirs = e
        .sim
        .seed_grant(PRODUCTION.0, None, Some("Production Only Co"))
        .unwrap();
    let page = e.authorize(SANDBOX.0, ACCOUNTING, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("list=\"companies\""), "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "<option value=\"{}\">Harbor &lt;Books&gt;</option>",
            mine.realm_id
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&theirs.realm_id), "{}", page.body);
    assert!(!page.body.contains("Production Only Co"), "{}", page.body);
}
