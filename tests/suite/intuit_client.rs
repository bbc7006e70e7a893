//! The product's Intuit client (`IntuitClient`) against the in-process emulator: the
//! authorization URL, the code exchange, refresh, revoke and the error classes, each
//! checked against the protocol facts in INTUIT.md.
//!
//! The client is built the way the daemon builds it: a configuration file (endpoints taken
//! from the emulator's discovery document, the secret in a file) loaded with
//! `Config::load`, then `IntuitClient::new` for the environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use qbo_core::config::Config;
use qbo_core::domain::{Environment, ErrorClass, RealmId};
use qbo_engine::intuit::{IntuitClient, IntuitError, TokenGrant};
use qbo_sim::{self as sim, PreviousToken, Rotation, SimEnvironment, SimHandle, SimOptions};
use reqwest::{StatusCode, Url};
use tempfile::TempDir;

const CLIENT_ID: &str = "sim-sandbox-client";
const CLIENT_SECRET: &str = "sim-sandbox-secret";
const REDIRECT_URI: &str = "http://localhost:8080/callback";
const ACCOUNTING: &str = "com.intuit.quickbooks.accounting";

/// Lifetimes that differ from Intuit's defaults, so a client that assumed 3600 s or
/// 100 days instead of reading the answer would be caught.
const ACCESS_TTL: i64 = 1_234;
const REFRESH_IDLE: i64 = 4_321_000;
const HARD_LIMIT: i64 = 150_000_000;

/// The endpoints the emulator's sandbox discovery document lists.
struct Endpoints {
    authorization: String,
    token: String,
    revocation: String,
    api_base: String,
}

struct Fixture {
    sim: SimHandle,
    endpoints: Endpoints,
    /// Does not follow redirects: the callback URL is not served by anyone.
    browser: reqwest::Client,
    dir: TempDir,
}

/// What the emulator's redirect to the app's callback carried.
#[derive(Debug)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    realm_id: Option<String>,
    error: Option<String>,
}

/// How a client is configured, beyond the fixture's defaults.
struct ClientSetup<'a> {
    secret: &'a str,
    scopes: &'a [&'a str],
    request_hard_expiry: bool,
}

impl Default for ClientSetup<'_> {
    fn default() -> Self {
        ClientSetup {
            secret: CLIENT_SECRET,
            scopes: &[ACCOUNTING],
            request_hard_expiry: true,
        }
    }
}

fn sim_options() -> SimOptions {
    SimOptions {
        access_token_ttl_secs: ACCESS_TTL,
        refresh_idle_secs: REFRESH_IDLE,
        hard_limit_secs: HARD_LIMIT,
        ..SimOptions::default()
    }
}

async fn fixture_with(opts: SimOptions) -> Fixture {
    let sim = sim::start(opts).await.expect("the emulator starts");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    let doc: serde_json::Value = browser
        .get(sim.discovery_url(SimEnvironment::Sandbox))
        .send()
        .await
        .expect("discovery document")
        .json()
        .await
        .expect("discovery document is JSON");
    let field = |name: &str| {
        doc[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery document lacks {name}: {doc}"))
            .to_string()
    };
    let endpoints = Endpoints {
        authorization: field("authorization_endpoint"),
        token: field("token_endpoint"),
        revocation: field("revocation_endpoint"),
        api_base: sim.base_url(),
    };
    Fixture {
        sim,
        endpoints,
        browser,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

async fn fixture() -> Fixture {
    fixture_with(sim_options()).await
}

/// A TOML basic string (the values here are plain ASCII paths and URLs).
fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

impl Fixture {
    /// Writes a configuration file and builds the sandbox client from it, exactly as
    /// `Engine::clients` does.
    fn client(&self, name: &str, setup: ClientSetup<'_>) -> IntuitClient {
        let secret_path = self.dir.path().join(format!("{name}.secret"));
        std::fs::write(&secret_path, format!("{}\n", setup.secret)).expect("write secret");
        // Owner-only, or the configuration refuses it.
        std::fs::set_permissions(
            &secret_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod secret");
        let scopes: Vec<String> = setup.scopes.iter().map(|s| toml_str(s)).collect();
        let toml = format!(
            "[intuit]\n\
             timeout = \"10s\"\n\
             connect_timeout = \"5s\"\n\
             request_hard_expiry = {hard}\n\
             \n\
             [environments.sandbox]\n\
             client_id = {client_id}\n\
             client_secret_file = {secret}\n\
             redirect_uri = {redirect}\n\
             scopes = [{scopes}]\n\
             authorization_endpoint = {auth}\n\
             token_endpoint = {token}\n\
             revocation_endpoint = {revoke}\n\
             api_base = {api}\n",
            hard = setup.request_hard_expiry,
            client_id = toml_str(CLIENT_ID),
            secret = toml_str(&secret_path.display().to_string()),
            redirect = toml_str(REDIRECT_URI),
            scopes = scopes.join(", "),
            auth = toml_str(&self.endpoints.authorization),
            token = toml_str(&self.endpoints.token),
            revoke = toml_str(&self.endpoints.revocation),
            api = toml_str(&self.endpoints.api_base),
        );
        let config_path: PathBuf = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config_path, toml).expect("write config");
        let config = Config::load(Some(&config_path)).unwrap_or_else(|e| panic!("{e}"));
        let env = config
            .environment(Environment::Sandbox)
            .unwrap_or_else(|e| panic!("{e}"));
        let client = IntuitClient::new(env, &config.intuit, &config.source)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.environment(), Environment::Sandbox);
        client
    }

    fn default_client(&self) -> IntuitClient {
        self.client("default", ClientSetup::default())
    }

    /// Sends the browser to `url` with a scripted consent decision (`x-sim-decision`, as
    /// the Python SDK test does) and reads the redirect back to the app.
    async fn decide(&self, url: &str, decision: &str) -> Callback {
        let resp = self
            .browser
            .get(url)
            .header("x-sim-decision", decision)
            .send()
            .await
            .expect("authorize request");
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::FOUND,
            "authorize answered {status}: {body}"
        );
        let location = location.expect("a redirect has a Location");
        let (base, _) = location
            .split_once('?')
            .unwrap_or_else(|| panic!("the callback has no query: {location}"));
        assert_eq!(base, REDIRECT_URI, "redirected somewhere else: {location}");
        let parsed = Url::parse(&location).expect("Location is a URL");
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in parsed.query_pairs() {
            let previous = params.insert(k.to_string(), v.to_string());
            assert!(previous.is_none(), "{k} given twice in {location}");
        }
        Callback {
            code: params.remove("code"),
            state: params.remove("state"),
            realm_id: params.remove("realmId"),
            error: params.remove("error"),
        }
    }

    /// Approves an authorization started by `client` and returns the code and realm id.
    async fn authorize(&self, client: &IntuitClient, state: &str) -> (String, String) {
        let cb = self
            .decide(&client.authorization_url(state), "approve")
            .await;
        assert_eq!(cb.error, None, "{cb:?}");
        assert_eq!(cb.state.as_deref(), Some(state), "{cb:?}");
        let code = cb.code.expect("an approval carries a code");
        let realm = cb.realm_id.expect("the accounting scope yields a realmId");
        (code, realm)
    }

    fn issued(&self, token: &str) -> bool {
        self.sim.issued_tokens().iter().any(|t| t == token)
    }
}

fn expect_err<T: std::fmt::Debug>(r: Result<T, IntuitError>, what: &str) -> IntuitError {
    match r {
        Ok(v) => panic!("{what} succeeded but must fail: {v:?}"),
        Err(e) => e,
    }
}

fn assert_tid(tid: Option<&str>, what: &str) {
    let tid = tid.unwrap_or_else(|| panic!("{what}: no intuit_tid kept"));
    // The emulator's shape: 1-<8 hex>-<24 hex>.
    assert!(
        tid.starts_with("1-") && tid.len() == 35,
        "{what}: unexpected intuit_tid {tid:?}"
    );
}

fn realm(id: &str) -> RealmId {
    RealmId::parse(id).unwrap_or_else(|e| panic!("{e}"))
}

/// INTUIT.md, "Authorization": exactly client_id, response_type=code, scope (space
/// separated), redirect_uri and state on the configured authorization endpoint; the
/// approval comes back with code, the same state, and realmId.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_url_has_the_required_parameters_and_approval_returns_code_state_realm() {
    let f = fixture().await;
    let client = f.default_client();
    // Characters that must be percent-encoded to survive the round trip.
    let state = "csrf/Zx+9=&?#% é-0123456789abcdef";
    let url = client.authorization_url(state);

    let (endpoint, _) = url.split_once('?').expect("the URL has a query");
    assert_eq!(endpoint, f.endpoints.authorization);
    assert!(
        endpoint.ends_with("/connect/oauth2"),
        "{endpoint} is not the sim's authorize path"
    );
    let parsed = Url::parse(&url).expect("authorization_url is a URL");
    assert_eq!(parsed.fragment(), None);
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state"
        ],
        "exactly the parameters INTUIT.md lists, each once: {url}"
    );
    let params: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["scope"], ACCOUNTING, "minimal scope by default");
    assert_eq!(params["redirect_uri"], REDIRECT_URI);
    assert_eq!(params["state"], state);

    // Approve at the emulator: code, our state unchanged, a realmId of digits.
    let cb = f.decide(&url, "approve").await;
    assert_eq!(cb.error, None, "{cb:?}");
    assert_eq!(cb.state.as_deref(), Some(state));
    let code = cb.code.expect("code");
    assert!(f.issued(&code), "the code is one the emulator issued");
    let realm_id = cb.realm_id.expect("realmId");
    assert!(
        (10..=19).contains(&realm_id.len()) && realm_id.bytes().all(|b| b.is_ascii_digit()),
        "{realm_id:?}"
    );
    assert_eq!(f.sim.stats().authorizations_approved, 1);

    // A denial carries the error and our state, and no code.
    let denied = f
        .decide(&client.authorization_url("deny-state"), "deny")
        .await;
    assert_eq!(denied.error.as_deref(), Some("access_denied"));
    assert_eq!(denied.state.as_deref(), Some("deny-state"));
    assert_eq!((denied.code, denied.realm_id), (None, None));
    assert_eq!(f.sim.stats().authorizations_denied, 1);

    // Several scopes travel space separated, and the emulator accepts them.
    let wide = f.client(
        "two-scopes",
        ClientSetup {
            scopes: &[ACCOUNTING, "openid"],
            ..ClientSetup::default()
        },
    );
    let wide_url = wide.authorization_url("s2");
    let scope = Url::parse(&wide_url)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .expect("scope");
    assert_eq!(scope, format!("{ACCOUNTING} openid"));
    let (code2, _) = f.authorize(&wide, "s2").await;
    assert_ne!(code2, code);
    f.sim.shutdown().await;
}

/// INTUIT.md, "Token endpoint" and the single-use code: the grant carries the emulator's
/// tokens and lifetimes and an intuit_tid; a second exchange of the code is invalid_grant,
/// counted as a reuse, and revokes what the first exchange produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_code_returns_the_sims_grant_and_a_reused_code_is_invalid_grant() {
    let f = fixture().await;
    let client = f.default_client();
    let (code, realm_id) = f.authorize(&client, "exchange-state").await;

    let grant = client.exchange_code(&code).await.expect("code exchange");
    let (access, refresh) = (grant.access_token.expose(), grant.refresh_token.expose());
    assert!(f.issued(access), "the access token is the emulator's");
    assert!(f.issued(refresh), "the refresh token is the emulator's");
    assert_ne!(access, refresh);
    assert_ne!(access, code);
    assert!(
        access.len() >= 700,
        "access token of {} chars",
        access.len()
    );
    assert!(refresh.starts_with("RT1-"), "refresh token shape");
    assert_eq!(
        grant.expires_in, ACCESS_TTL,
        "expires_in as the sim answered"
    );
    assert_eq!(
        grant.refresh_expires_in, REFRESH_IDLE,
        "x_refresh_token_expires_in as the sim answered"
    );
    assert_eq!(
        grant.hard_expires_in,
        Some(HARD_LIMIT),
        "x_refresh_token_hard_expires_in, asked for by default"
    );
    assert_tid(grant.intuit_tid.as_deref(), "code exchange");
    let s = f.sim.stats();
    assert_eq!(
        (s.code_exchanges, s.code_reuses, s.invalid_grants),
        (1, 0, 0)
    );

    // The tokens work for the company the consent named.
    let info = client
        .company_info(&realm(&realm_id), &grant.access_token)
        .await
        .expect("companyinfo with the new access token");
    assert!(!info.company_name.is_empty());

    // An unknown code is invalid_grant, but not a reuse.
    let unknown = expect_err(
        client.exchange_code("AB11-not-a-code-anyone-issued").await,
        "exchanging an unknown code",
    );
    assert_eq!(unknown.class, ErrorClass::InvalidGrant, "{unknown}");
    assert_eq!(f.sim.stats().code_reuses, 0);

    // The same code again: invalid_grant, a counted reuse, and the first grant is dead.
    let again = expect_err(client.exchange_code(&code).await, "exchanging a used code");
    assert_eq!(again.class, ErrorClass::InvalidGrant, "{again}");
    assert_eq!(again.status, Some(400));
    assert!(again.detail.contains("invalid_grant"), "{}", again.detail);
    assert_tid(again.intuit_tid.as_deref(), "code reuse");
    assert_ne!(again.intuit_tid, grant.intuit_tid, "a fresh tid per answer");
    let s = f.sim.stats();
    assert_eq!(s.code_reuses, 1, "{s:?}");
    assert_eq!(s.code_exchanges, 1, "{s:?}");
    assert_eq!(s.invalid_grants, 2, "{s:?}");

    let after = expect_err(
        client.refresh(&grant.refresh_token).await,
        "refreshing a grant whose code was replayed",
    );
    assert_eq!(after.class, ErrorClass::InvalidGrant, "{after}");
    assert_eq!(f.sim.stats().refreshes, 0);
    f.sim.shutdown().await;
}

/// The hard-expiry field is an opt-in header; without it the grant has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_expiry_is_reported_only_when_requested() {
    let f = fixture().await;
    let client = f.client(
        "no-hard",
        ClientSetup {
            request_hard_expiry: false,
            ..ClientSetup::default()
        },
    );
    let (code, _) = f.authorize(&client, "no-hard").await;
    let grant = client.exchange_code(&code).await.expect("code exchange");
    assert_eq!(grant.hard_expires_in, None);
    assert_eq!(grant.expires_in, ACCESS_TTL);
    let refreshed = client.refresh(&grant.refresh_token).await.expect("refresh");
    assert_eq!(refreshed.hard_expires_in, None);
    f.sim.shutdown().await;
}

/// INTUIT.md, "Revocation": refresh works, revoking the refresh token ends the whole grant,
/// and the refresh after it is invalid_grant (the customer must reconnect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_then_revoke_then_refresh_is_invalid_grant() {
    // A new refresh token on every refresh, the replaced one kept usable for 24 h: the
    // revoke must end the grant behind both.
    let f = fixture_with(SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::Grace24h,
        ..sim_options()
    })
    .await;
    let client = f.default_client();
    let (code, realm_id) = f.authorize(&client, "revoke-state").await;
    let grant = client.exchange_code(&code).await.expect("code exchange");

    let refreshed = client
        .refresh(&grant.refresh_token)
        .await
        .expect("refresh with the exchanged refresh token");
    assert!(f.issued(refreshed.access_token.expose()));
    assert!(f.issued(refreshed.refresh_token.expose()));
    assert_ne!(
        refreshed.access_token.expose(),
        grant.access_token.expose(),
        "a refresh issues a new access token"
    );
    assert_ne!(
        refreshed.refresh_token.expose(),
        grant.refresh_token.expose(),
        "every-refresh rotation hands out a new refresh token"
    );
    assert_eq!(refreshed.expires_in, ACCESS_TTL);
    assert_eq!(refreshed.refresh_expires_in, REFRESH_IDLE);
    let hard = refreshed.hard_expires_in.expect("hard expiry");
    assert!(
        (HARD_LIMIT - 60..=HARD_LIMIT).contains(&hard),
        "hard expiry counts down from consent: {hard}"
    );
    assert_tid(refreshed.intuit_tid.as_deref(), "refresh");
    let s = f.sim.stats();
    assert_eq!((s.refreshes, s.rotations), (1, 1), "{s:?}");
    client
        .company_info(&realm(&realm_id), &refreshed.access_token)
        .await
        .expect("companyinfo with the refreshed access token");

    let tid = client
        .revoke(refreshed.refresh_token.expose())
        .await
        .expect("revoke the refresh token");
    assert_tid(tid.as_deref(), "revoke");
    let s = f.sim.stats();
    assert_eq!((s.revocations, s.revoked_grants), (1, 1), "{s:?}");

    let dead = expect_err(
        client.refresh(&refreshed.refresh_token).await,
        "refresh after revoke",
    );
    assert_eq!(dead.class, ErrorClass::InvalidGrant, "{dead}");
    assert_eq!(dead.status, Some(400));
    assert_tid(dead.intuit_tid.as_deref(), "refresh after revoke");
    // The replaced token is inside its grace window, but the grant is over.
    let old = expect_err(
        client.refresh(&grant.refresh_token).await,
        "refresh with the replaced token after revoke",
    );
    assert_eq!(old.class, ErrorClass::InvalidGrant, "{old}");
    // And the access token died with the grant.
    let api = expect_err(
        client
            .company_info(&realm(&realm_id), &refreshed.access_token)
            .await,
        "companyinfo after revoke",
    );
    assert_eq!(api.status, Some(401), "{api}");
    assert_eq!(api.class, ErrorClass::InvalidGrant, "{api}");
    let s = f.sim.stats();
    assert_eq!(
        s.refreshes, 1,
        "no refresh succeeded after the revoke: {s:?}"
    );
    f.sim.shutdown().await;
}

/// INTUIT.md: `invalid_client` means our own credentials are wrong, a configuration
/// problem, never a dead tenant. The failed calls must not consume the code or harm the
/// grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_invalid_client_not_invalid_grant() {
    let f = fixture().await;
    let good = f.default_client();
    let bad = f.client(
        "wrong-secret",
        ClientSetup {
            secret: "not-the-sandbox-secret",
            ..ClientSetup::default()
        },
    );
    // The authorization URL carries no secret: the wrong-secret client gets a code too.
    let (code, _) = f.authorize(&bad, "bad-secret").await;

    let e = expect_err(
        bad.exchange_code(&code).await,
        "exchange with a wrong secret",
    );
    assert_eq!(e.class, ErrorClass::InvalidClient, "{e}");
    assert_eq!(e.status, Some(401));
    assert_tid(e.intuit_tid.as_deref(), "invalid_client on exchange");
    let s = f.sim.stats();
    assert_eq!(
        (
            s.invalid_clients,
            s.invalid_grants,
            s.code_reuses,
            s.code_exchanges
        ),
        (1, 0, 0, 0),
        "{s:?}"
    );

    // The code was not consumed by the refused attempt.
    let grant = good
        .exchange_code(&code)
        .await
        .expect("the code still exchanges with the right secret");

    let e = expect_err(
        bad.refresh(&grant.refresh_token).await,
        "refresh with a wrong secret",
    );
    assert_eq!(e.class, ErrorClass::InvalidClient, "{e}");
    assert_eq!(e.status, Some(401));

    let e = expect_err(
        bad.revoke(grant.refresh_token.expose()).await,
        "revoke with a wrong secret",
    );
    assert_eq!(e.class, ErrorClass::InvalidClient, "{e}");
    assert_eq!(e.status, Some(401));

    // Nothing above touched the grant.
    let refreshed = good
        .refresh(&grant.refresh_token)
        .await
        .expect("the grant is still live");
    assert!(f.issued(refreshed.access_token.expose()));
    let s = f.sim.stats();
    assert_eq!((s.invalid_clients, s.invalid_grants), (3, 0), "{s:?}");
    assert_eq!((s.revocations, s.revoked_grants), (0, 0), "{s:?}");
    f.sim.shutdown().await;
}

/// Every window of `len` characters of `token`, so a partial leak is caught too.
fn windows(token: &str, len: usize) -> impl Iterator<Item = &str> {
    let bytes = token.len();
    (0..=bytes.saturating_sub(len))
        .filter(move |i| token.is_char_boundary(*i) && token.is_char_boundary(i + len))
        .map(move |i| &token[i..i + len])
}

fn assert_no_token_text(debug: &str, issued: &[String], what: &str) {
    for token in issued {
        assert!(
            !debug.contains(token.as_str()),
            "{what} shows a whole token: {debug}"
        );
        if let Some(w) = windows(token, 16).find(|w| debug.contains(w)) {
            panic!("{what} shows part of a token ({w:?}): {debug}");
        }
    }
}

/// Tokens are secrets: Debug output of a grant, of the tokens in it, of an error and of
/// the client never contains their text (or the client secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_never_contains_token_text() {
    let f = fixture().await;
    let client = f.default_client();
    let (code, _) = f.authorize(&client, "debug-state").await;
    let grant: TokenGrant = client.exchange_code(&code).await.expect("code exchange");
    let refreshed = client.refresh(&grant.refresh_token).await.expect("refresh");
    let replay = expect_err(client.exchange_code(&code).await, "replayed code");

    let issued = f.sim.issued_tokens();
    assert!(issued.iter().any(|t| t == grant.access_token.expose()));
    assert!(issued.iter().any(|t| t == grant.refresh_token.expose()));
    assert!(issued.iter().any(|t| t == refreshed.access_token.expose()));
    assert!(issued.len() >= 4, "code, refresh token, two access tokens");

    for (what, g) in [("exchange grant", &grant), ("refresh grant", &refreshed)] {
        let debug = format!("{g:?}");
        // Not vacuous: the output is the struct, with its non-secret fields.
        assert!(debug.contains("TokenGrant"), "{debug}");
        assert!(debug.contains(&ACCESS_TTL.to_string()), "{debug}");
        assert!(
            debug.contains(g.intuit_tid.as_deref().expect("tid")),
            "{debug}"
        );
        assert_no_token_text(&debug, &issued, what);
        assert_no_token_text(&format!("{:#?}", g), &issued, what);
        assert_no_token_text(&format!("{:?}", g.access_token), &issued, "access token");
        assert_no_token_text(&format!("{:?}", g.refresh_token), &issued, "refresh token");
    }
    assert_no_token_text(&format!("{replay:?}"), &issued, "IntuitError Debug");
    assert_no_token_text(&replay.to_string(), &issued, "IntuitError Display");

    let client_debug = format!("{client:?}");
    assert!(client_debug.contains(CLIENT_ID), "{client_debug}");
    assert!(
        !client_debug.contains(CLIENT_SECRET),
        "the client's Debug shows the secret: {client_debug}"
    );
    assert_no_token_text(&client_debug, &issued, "IntuitClient Debug");
    f.sim.shutdown().await;
}
