//! Property tests over what strangers can send the public listener: arbitrary paths,
//! methods, query strings (the callback's `code`, `state`, `realmId` and `error` with
//! huge, unicode, control-character, repeated and badly percent-encoded values), headers
//! (oversized, many, hostile `Host`, `User-Agent`, `X-Forwarded-For`, `Cookie`) and bodies.
//!
//! Whatever arrives: no panic, never a 5xx, and nothing written but what the design records
//! on purpose for a refused request — one `link opened`, `state rejected`, `link issued` or
//! `customer disconnected` event with the outcome `denied`. Connections and invitations stay exactly as they were.
//!
//! Many cases go through the public router in this process (`oneshot`, cheap); a sample
//! goes as raw bytes through the real listener of a `serve` process, with its header and
//! body limits, where hyper itself answers what cannot be parsed. A third test gets past
//! the state: callbacks carrying the live state and cookie of the browser that opened the
//! link, with hostile `code`, `realmId` and `error`.
//!
//! Each run draws new cases (proptest's random seed); a failure prints the smallest case
//! that still fails. Fixed cases run first, so each route and limit is reached every time.

use crate::common::World;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use qbo_sim::SimOptions;
use std::time::Duration;

/// Cases per test: enough to reach every route with many shapes of input, few enough that
/// a CI run spends seconds here.
const ROUTER_CASES: u32 = 256;
const SOCKET_CASES: u32 = 64;

/// The only events a refused request may leave, as (action, outcome).
/// Intuit's Reconnect and Disconnect URLs record one denied event for a realm not
/// connected here (the fuzzer cannot know the seeded realm, and its sandbox realm is not
/// one the Reconnect URL serves).
const RECORDED_ON_PURPOSE: [(&str, &str); 4] = [
    ("link opened", "denied"),
    ("state rejected", "denied"),
    ("link issued", "denied"),
    ("customer disconnected", "denied"),
];

// ---------------------------------------------------------------------------------------
// What a stranger sends.

#[derive(Clone)]
struct Case {
    method: String,
    path: String,
    /// (key, value, percent-encode it?)
    query: Vec<(String, String, bool)>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// The browser address the in-process router is told the request came from.
    peer: [u8; 4],
}

/// Long values shortened, so that a failing case can be read.
fn short(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    if text.chars().count() <= 60 {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(60).collect();
        format!("{head:?}…({} bytes)", b.len())
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} {}",
            short(self.method.as_bytes()),
            short(self.path.as_bytes())
        )?;
        for (k, v, encode) in &self.query {
            writeln!(
                f,
                "  ?{} = {} (encoded: {encode})",
                short(k.as_bytes()),
                short(v.as_bytes())
            )?;
        }
        if self.headers.len() > 20 {
            writeln!(
                f,
                "  {} headers, the first {:?}",
                self.headers.len(),
                self.headers[0].0
            )?;
        } else {
            for (k, v) in &self.headers {
                writeln!(f, "  {}: {}", short(k.as_bytes()), short(v))?;
            }
        }
        write!(f, "  body {}, from {:?}", short(&self.body), self.peer)
    }
}

impl Case {
    fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v, encode)| {
                if *encode {
                    format!("{}={}", urlencoding::encode(k), urlencoding::encode(v))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query_string())
        }
    }

    /// The target as a browser would send it: every byte that needs it percent-encoded.
    fn encoded_target(&self) -> String {
        let path = urlencoding::encode(&self.path).replace("%2F", "/");
        let mut u = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        if !self.query.is_empty() {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v, _)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)))
                .collect();
            u = format!("{u}?{}", q.join("&"));
        }
        u
    }

    /// The case as a browser could send it: the target encoded, and only headers HTTP
    /// allows (hostile values still, just well-formed).
    fn well_formed(mut self) -> Case {
        if axum::http::Uri::try_from(self.target().as_str()).is_err() {
            self.path = self.encoded_target();
            self.query.clear();
        }
        self.headers.retain(|(n, v)| {
            axum::http::HeaderName::from_bytes(n.as_bytes()).is_ok()
                && axum::http::HeaderValue::from_bytes(v).is_ok()
        });
        if axum::http::Method::from_bytes(self.method.as_bytes()).is_err() {
            self.method = "GET".into();
        }
        self
    }

    /// The route family the path names, for which event (if any) it may leave. An
    /// absolute-form target (`GET http://host/callback`) is routed by its path.
    fn may_record(&self) -> Option<&'static str> {
        let path = match self.path.strip_prefix("http://") {
            Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => self.path.as_str(),
        };
        let path = path.split('?').next().unwrap_or(path);
        if path.starts_with("/connect/") {
            Some("link opened")
        } else if path == "/callback" || path == "/qbo/callback" {
            Some("state rejected")
        } else if path == "/intuit/reconnect" {
            Some("link issued")
        } else if path == "/intuit/disconnect" {
            Some("customer disconnected")
        } else {
            None
        }
    }
}

/// Values meant to hurt: huge, unicode (bidi overrides, zero widths, emoji), control
/// characters, markup, SQL, path traversal, percent-encoding garbage, near-valid realm ids.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,40}",
        1 => "[\\x00-\\x1f\\x7f]{1,8}",
        1 => "[0-9]{1,25}",
        1 => " [0-9]{1,12} ",
        1 => "%[0-9A-Fa-fg-zG-Z%]{0,3}[a-z%]{0,6}",
        1 => "(%[0-9a-fA-F][0-9a-fA-F]){1,12}",
        1 => "[\u{202a}-\u{202e}\u{2066}-\u{2069}\u{200b}\u{feff}\u{1f600}-\u{1f64f}]{1,6}",
        1 => prop::sample::select(vec![
            "<script>alert(1)</script>".to_string(),
            "'; DROP TABLE connections; --".to_string(),
            "../../../etc/passwd".to_string(),
            "https://evil.example/".to_string(),
            "//evil.example".to_string(),
            "access_denied".to_string(),
            "null".to_string(),
            "%00".to_string(),
            "%ff%fe".to_string(),
            "%".to_string(),
            "a=b&c".to_string(),
            String::new(),
        ]),
        1 => (prop::sample::select(vec!['A', '9', '%', 'é', '\u{7f}']), 1000usize..12_000)
            .prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "code", "state", "realmId", "error", "error_description", "realmid", "STATE",
            "state[]", "", "code%00",
        ])
        .prop_map(String::from),
        1 => hostile(),
    ]
}

/// A path, raw (it may not even be a valid URI path): the routes, near misses, and noise.
fn path() -> impl Strategy<Value = String> {
    let segment = || "[a-zA-Z0-9._~%-]{0,16}";
    prop_oneof![
        4 => hostile().prop_map(|s| format!("/connect/{}", urlencoding::encode(&s))),
        2 => hostile().prop_map(|s| format!("/connect/{s}")),
        3 => Just("/callback".to_string()),
        1 => Just("/qbo/callback".to_string()),
        2 => Just("/intuit/reconnect".to_string()),
        2 => Just("/intuit/disconnect".to_string()),
        1 => prop::sample::select(vec![
            "/", "/connect", "/connect/", "/connect//", "/connect/a/b", "/callback/",
            "//callback", "/CALLBACK", "/%63allback", "/callback%00", "/intuit/reconnect/",
            "/intuit/%2e%2e/intuit/disconnect", "/../callback", "/metrics", "/healthz", "*",
            "http://evil.example/callback",
        ])
        .prop_map(String::from),
        1 => prop::collection::vec(segment(), 0..8).prop_map(|s| format!("/{}", s.join("/"))),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("GET".to_string()),
        2 => Just("HEAD".to_string()),
        1 => prop::sample::select(vec![
            "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND", "get",
            "FOO",
        ])
        .prop_map(String::from),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => hostile().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => (1usize..20_000).prop_map(|n| vec![b'x'; n]),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let named = prop_oneof![
        3 => prop::sample::select(vec![
            "host", "user-agent", "x-forwarded-for", "cookie", "content-length",
            "transfer-encoding", "content-type", "x-forwarded-host", "forwarded", "referer",
            "origin", "accept-language",
        ])
        .prop_map(String::from),
        1 => "[a-zA-Z0-9-]{1,24}",
        1 => "[^\\r\\n:]{1,12}",
    ];
    let special = prop_oneof![
        ("[0-9a-f:.,% ]{0,60}").prop_map(|v| ("x-forwarded-for".to_string(), v.into_bytes())),
        hostile().prop_map(|v| ("cookie".to_string(), format!("qbo_link={v}").into_bytes())),
        prop::sample::select(vec![
            "0",
            "4096",
            "4097",
            "-1",
            "99999999999999999999",
            "1, 2",
            " 12",
            "abc",
        ])
        .prop_map(|v| ("content-length".to_string(), v.as_bytes().to_vec())),
        Just(("transfer-encoding".to_string(), b"chunked".to_vec())),
    ];
    let one = prop_oneof![3 => (named, header_value()), 1 => special];
    prop_oneof![
        8 => prop::collection::vec(one, 0..8),
        // Many headers at once.
        1 => (1usize..400).prop_map(|n| (0..n)
            .map(|i| (format!("x-many-{i}"), b"aaaaaaaaaaaaaaaaaaaaaaaa".to_vec()))
            .collect()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => Just(Vec::new()),
        3 => prop::collection::vec(any::<u8>(), 1..256),
        1 => (4000usize..9000).prop_map(|n| vec![b'b'; n]),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        method(),
        path(),
        prop::collection::vec((key(), hostile(), any::<bool>()), 0..7),
        headers(),
        body(),
        any::<[u8; 4]>(),
    )
        .prop_map(|(method, path, query, headers, body, peer)| Case {
            method,
            path,
            query,
            headers,
            body,
            peer,
        })
}

/// A plain GET of `target` (a path, maybe with its query).
fn get(target: &str) -> Case {
    Case {
        method: "GET".into(),
        path: target.into(),
        query: vec![],
        headers: vec![],
        body: vec![],
        peer: [127, 0, 0, 1],
    }
}

/// Cases every run sends besides the random ones, so that each route and limit is
/// certainly reached: an unknown link, forged and missing states, the live state from
/// another browser, a wrong method, an oversized body, Intuit's URLs for no known company.
fn fixed_cases(live_state: &str) -> Vec<Case> {
    let with = |mut c: Case, f: &dyn Fn(&mut Case)| {
        f(&mut c);
        c
    };
    vec![
        get("/connect/no-such-link"),
        get("/callback?code=x&state=forged&realmId=123"),
        get("/callback?code=x&realmId=123"),
        with(get("/callback"), &|c| {
            c.query = vec![
                ("code".into(), "x".into(), true),
                ("state".into(), live_state.into(), true),
            ];
            c.headers = vec![("cookie".into(), b"qbo_link=another-browser".to_vec())];
        }),
        with(get("/callback?state=forged"), &|c| c.method = "POST".into()),
        with(get("/connect/no-such-link"), &|c| c.body = vec![b'b'; 5000]),
        get("/intuit/disconnect?realmId=999"),
        get("/intuit/reconnect?realmId=not-a-realm"),
    ]
}

/// Values the fuzzer may also pick, taken from the world: the live state of an opened
/// link, refused without the cookie of the browser that opened it.
fn with_known_states(s: BoxedStrategy<Case>, states: Vec<String>) -> BoxedStrategy<Case> {
    let states = prop::sample::select(states);
    prop_oneof![
        3 => s.clone(),
        1 => (s, states, any::<bool>()).prop_map(|(mut c, state, cookie)| {
            c.path = "/callback".into();
            c.query.push(("state".into(), state, true));
            if cookie {
                c.headers
                    .push(("cookie".into(), b"qbo_link=not-the-browsers-cookie".to_vec()));
            }
            c
        }),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// What the database holds.

enum Db {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

#[derive(Debug, PartialEq, Eq)]
struct Tables {
    connections: Vec<String>,
    invitations: Vec<String>,
    /// (seq, action, outcome)
    audit: Vec<(i64, String, String)>,
}

impl Db {
    async fn open(w: &World) -> Db {
        if w.on_postgres() {
            Db::Pg(sqlx::PgPool::connect(&w.db_url).await.unwrap())
        } else {
            Db::Sqlite(sqlx::SqlitePool::connect(&w.db_url).await.unwrap())
        }
    }

    /// Every row of `table`, each as one string of all its columns.
    async fn rows(&self, table: &str) -> Vec<String> {
        match self {
            Db::Pg(p) => sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY id"))
                .fetch_all(p)
                .await
                .unwrap(),
            Db::Sqlite(p) => {
                let cols: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(p)
                        .await
                        .unwrap();
                let row = cols
                    .iter()
                    .map(|c| format!("quote({c})"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                sqlx::query_scalar(&format!("SELECT {row} FROM {table} ORDER BY id"))
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
        }
    }

    /// The given columns of every row of `table`, each row as one string.
    async fn columns(&self, table: &str, cols: &[&str]) -> Vec<String> {
        let quote = match self {
            Db::Pg(_) => |c: &str| format!("quote_nullable({c}::text)"),
            Db::Sqlite(_) => |c: &str| format!("quote({c})"),
        };
        let row = cols
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let sql = format!("SELECT {row} FROM {table} ORDER BY id");
        match self {
            Db::Pg(p) => sqlx::query_scalar(&sql).fetch_all(p).await.unwrap(),
            Db::Sqlite(p) => sqlx::query_scalar(&sql).fetch_all(p).await.unwrap(),
        }
    }

    async fn tables(&self) -> Tables {
        let sql = "SELECT seq, action, outcome FROM audit_events ORDER BY seq";
        let audit = match self {
            Db::Pg(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
            Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        };
        Tables {
            connections: self.rows("connections").await,
            invitations: self.rows("link_invitations").await,
            audit,
        }
    }

    async fn close(self) {
        match self {
            Db::Pg(p) => p.close().await,
            Db::Sqlite(p) => p.close().await,
        }
    }
}

/// What a run's cases were answered and recorded, so a run that never reached the routes
/// (every case a 404, say) cannot pass for one that did.
#[derive(Default, Debug)]
struct Seen {
    statuses: std::collections::BTreeMap<u16, u32>,
    events: std::collections::BTreeMap<String, u32>,
}

impl Seen {
    fn note(&mut self, status: u16, before: &Tables, after: &Tables) {
        *self.statuses.entry(status).or_default() += 1;
        for (_, action, _) in after.audit.iter().skip(before.audit.len()) {
            *self.events.entry(action.clone()).or_default() += 1;
        }
    }

    fn assert_reached(&self, statuses: &[u16]) {
        eprintln!("answers and events of the run: {self:?}");
        for s in statuses {
            assert!(
                self.statuses.contains_key(s),
                "no case was answered {s}: {self:?}"
            );
        }
        for (action, _) in RECORDED_ON_PURPOSE {
            assert!(
                self.events.contains_key(action),
                "no case recorded {action:?}: {self:?}"
            );
        }
    }
}

/// The answer was never a 5xx, and the request left nothing but what the design records
/// on purpose.
fn check(case: &Case, status: u16, before: &Tables, after: &Tables) -> Result<(), TestCaseError> {
    prop_assert!(
        (200..500).contains(&status),
        "answered {status} to {} {}",
        case.method,
        case.target().chars().take(300).collect::<String>()
    );
    prop_assert_eq!(
        &before.connections,
        &after.connections,
        "connections changed"
    );
    prop_assert_eq!(
        &before.invitations,
        &after.invitations,
        "invitations changed"
    );
    prop_assert!(
        after.audit.starts_with(&before.audit),
        "audit history changed"
    );
    let new = &after.audit[before.audit.len()..];
    prop_assert!(new.len() <= 1, "one request, several events: {new:?}");
    for (_, action, outcome) in new {
        prop_assert!(
            RECORDED_ON_PURPOSE.contains(&(action.as_str(), outcome.as_str())),
            "a refused request recorded {action:?} ({outcome:?})"
        );
        prop_assert_eq!(
            Some(action.as_str()),
            case.may_record(),
            "{} recorded {:?}",
            case.path.chars().take(100).collect::<String>(),
            action
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The world the fuzzer attacks.

/// The public listener; its rate limit out of the way (it has its own test in links.rs),
/// so that the cases measure the routes.
const WORLD_PUBLIC: &str = "[public]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"http://127.0.0.1:{port}\"\nrate_limit_per_minute = 1000000\n";

/// A tenant with tokens, a pending company's invitation, and an opened link whose state
/// is live (`open` opens it and returns where it sends the browser). Returns that state.
/// With a daemon running, its scheduler's first refresh of the tenant is let through
/// first: it is the daemon's own write, not a request's.
async fn populate(w: &World, daemon: bool, open: impl AsyncFn(&str) -> String) -> Vec<String> {
    w.seed(1, "fz").await;
    if daemon {
        w.wait_for_first_pass().await;
    }
    w.ok(&["link", "--new", "--tenant", "Waiting", "--env", "sandbox"])
        .await;
    let live: serde_json::Value =
        serde_json::from_str(&w.ok(&["link", "fz-0", "--json"]).await).unwrap();
    let location = open(live["url"].as_str().unwrap()).await;
    let state = location
        .split("state=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("the redirect to Intuit carries a state")
        .to_string();
    vec![state]
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..RunnerConfig::default()
    })
}

// ---------------------------------------------------------------------------------------
// In process: many cases through the public router.

/// The router's status and headers, or None for a request hyper refuses before any
/// router sees it (a target longer than a URI may be).
async fn through_router(app: &axum::Router, case: &Case) -> Option<(u16, axum::http::HeaderMap)> {
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder();
    req = match axum::http::Method::from_bytes(case.method.as_bytes()) {
        Ok(m) => req.method(m),
        Err(_) => req.method("GET"),
    };
    // What cannot be a URI here never reaches the router (hyper refuses it first); a
    // browser would have percent-encoded it, so that is what is sent instead.
    let uri = case.target();
    let uri = if axum::http::Uri::try_from(uri.as_str()).is_ok() {
        uri
    } else {
        case.encoded_target()
    };
    req = req.uri(uri);
    for (name, value) in &case.headers {
        // Likewise: hyper never hands the router a header it could not parse.
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_bytes(value),
        ) {
            req = req.header(n, v);
        }
    }
    let mut req = req.body(axum::body::Body::from(case.body.clone())).ok()?;
    let peer = std::net::SocketAddr::from((case.peer, 40_000));
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    // Read the whole body: a handler that panics while streaming would show here.
    axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("the page is read whole");
    Some((status, headers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_router_answers_any_input_without_5xx_or_writes_beyond_its_denials() {
    let w = World::start(SimOptions::default()).await;
    let port = crate::common::free_port();
    // Behind a "proxy": X-Forwarded-For names the browser, so hostile values reach the
    // audit text and the rate limiter's key.
    w.append_config(&format!(
        "{}trust_forwarded_for = true\n",
        WORLD_PUBLIC.replace("{port}", &port.to_string())
    ));
    let config = w.load_config();
    let app = qbo_daemon::public::router(
        qbo_daemon::public::PublicState {
            service: w.service().await,
            settings: std::sync::Arc::new(qbo_daemon::public::Settings::from_config(&config)),
        },
        axum::Router::new(),
    );
    let states = populate(&w, false, async |url: &str| {
        let path = url.split_once(&format!(":{port}")).unwrap().1;
        let (status, headers) = through_router(&app, &get(path)).await.unwrap();
        assert_eq!(status, 302);
        headers["location"].to_str().unwrap().to_string()
    })
    .await;
    let db = Db::open(&w).await;
    let seen = std::sync::Mutex::new(Seen::default());
    let one = async |case: Case| -> Result<(), TestCaseError> {
        let before = db.tables().await;
        let answer = through_router(&app, &case).await;
        let after = db.tables().await;
        let Some((status, headers)) = answer else {
            prop_assert_eq!(
                before,
                after,
                "nothing reached the router, yet something changed"
            );
            return Ok(());
        };
        seen.lock().unwrap().note(status, &before, &after);
        check(&case, status, &before, &after)?;
        // Every answer of the router is a hardened page.
        prop_assert_eq!(
            headers.get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
        prop_assert!(headers.contains_key("content-security-policy"));
        Ok(())
    };
    for case in fixed_cases(&states[0]) {
        if let Err(e) = one(case.clone()).await {
            panic!("{e}\n{case:?}");
        }
    }
    let rt = tokio::runtime::Handle::current();
    let strategy = with_known_states(case().boxed(), states);
    let result = tokio::task::block_in_place(|| {
        runner(ROUTER_CASES)
            .run(&strategy, |case| rt.block_on(one(case)))
            .map_err(|e| e.to_string())
    });
    db.close().await;
    if let Err(e) = result {
        panic!("{e}");
    }
    seen.into_inner()
        .unwrap()
        .assert_reached(&[200, 400, 404, 405, 413]);
}

// ---------------------------------------------------------------------------------------
// Over the socket: a sample as raw bytes through `serve`'s public listener.

/// Writes `case` as raw HTTP/1.1 (whatever its bytes) and reads the head of the answer
/// (status line and headers).
async fn through_socket(port: u16, case: &Case) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = Vec::new();
    raw.extend_from_slice(case.method.as_bytes());
    raw.push(b' ');
    raw.extend_from_slice(case.target().as_bytes());
    raw.extend_from_slice(b" HTTP/1.1\r\n");
    let has = |n: &str| case.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        raw.extend_from_slice(format!("Host: 127.0.0.1:{port}\r\n").as_bytes());
    }
    for (name, value) in &case.headers {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    if !case.body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        raw.extend_from_slice(format!("Content-Length: {}\r\n", case.body.len()).as_bytes());
    }
    raw.extend_from_slice(b"Connection: close\r\n\r\n");
    raw.extend_from_slice(&case.body);

    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The server may answer (and close) before reading everything: a refused write is
        // not a failure, a missing answer is.
        let _ = s.write_all(&raw).await;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if got.is_empty() => return Err(format!("read: {e}")),
                Err(_) => break,
            }
        }
        let end = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("no HTTP answer, got {}", short(&got)))?;
        Ok(String::from_utf8_lossy(&got[..end]).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_listener_answers_raw_hostile_requests_without_5xx_or_writes_beyond_its_denials()
{
    let w = World::start(SimOptions::default()).await;
    let port = crate::common::free_port();
    w.append_config(&WORLD_PUBLIC.replace("{port}", &port.to_string()));
    let d = w.start_daemon(&[]).await;
    let states = populate(&w, true, async |url: &str| {
        let path = url.split_once(&format!(":{port}")).unwrap().1;
        let head = through_socket(port, &get(path)).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 302"), "{head}");
        let location = head
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .expect("a redirect to Intuit");
        location.to_string()
    })
    .await;
    let db = Db::open(&w).await;
    let seen = std::sync::Mutex::new(Seen::default());
    let one = async |case: Case| -> Result<(), TestCaseError> {
        let before = db.tables().await;
        let head = through_socket(port, &case)
            .await
            .map_err(|e| TestCaseError::fail(format!("{case:?}: {e}")))?;
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| TestCaseError::fail(format!("no status line: {head:?}")))?;
        // The daemon commits what it records before it answers.
        let after = db.tables().await;
        seen.lock().unwrap().note(status, &before, &after);
        check(&case, status, &before, &after)
    };
    let mut fixed = fixed_cases(&states[0]);
    // What only a socket can carry: more headers than hyper takes, a request line with a
    // control byte in it.
    let mut many = get("/connect/many-headers");
    many.headers = (0..300)
        .map(|i| (format!("x-many-{i}"), b"aaaaaaaaaaaaaaaaaaaaaaaa".to_vec()))
        .collect();
    fixed.push(many);
    fixed.push(get("/callback\x01?state=x"));
    for case in fixed {
        if let Err(e) = one(case.clone()).await {
            panic!("{e}\n{case:?}");
        }
    }
    let rt = tokio::runtime::Handle::current();
    // Half the sample raw (hyper's parser meets it), half well-formed (the router does).
    let strategy = (with_known_states(case().boxed(), states), any::<bool>())
        .prop_map(|(c, raw)| if raw { c } else { c.well_formed() });
    let result = tokio::task::block_in_place(|| {
        runner(SOCKET_CASES)
            .run(&strategy, |case| rt.block_on(one(case)))
            .map_err(|e| e.to_string())
    });
    db.close().await;
    // Still serving after all that.
    let head = through_socket(port, &get("/connect/still-here"))
        .await
        .expect("the listener still answers");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    d.stop(&w).await;
    if let Err(e) = result {
        panic!("{e}");
    }
    seen.into_inner()
        .unwrap()
        .assert_reached(&[200, 400, 404, 405, 413, 431]);
}

// ---------------------------------------------------------------------------------------
// Past the state: the rest of a callback from the browser that opened the link.

/// What the rest of a callback may hold: Intuit's parameters, hostile, or naming the
/// link's own company (padded, zero-prefixed) so that some cases pass the realm guard and
/// reach the code exchange.
fn callback_rest(realm: String) -> impl Strategy<Value = Vec<(String, String, bool)>> {
    let key = prop_oneof![
        8 => prop::sample::select(vec!["code", "realmId", "error", "error_description"])
            .prop_map(String::from),
        1 => prop::sample::select(vec!["state", "realmid", "code[]"]).prop_map(String::from),
    ];
    let value = prop_oneof![
        3 => hostile(),
        2 => Just(realm.clone()),
        1 => prop::sample::select(vec![
            format!(" {realm} "),
            format!("0{realm}"),
            format!("{realm}0"),
            format!("{realm}%00"),
        ]),
    ];
    // A code and the company's realm are there most of the time, then anything.
    (
        prop::option::weighted(0.8, hostile()),
        prop::option::weighted(0.8, value.clone()),
        prop::collection::vec((key, value, any::<bool>()), 0..4),
    )
        .prop_map(|(code, realm_id, mut rest)| {
            let mut q = Vec::new();
            if let Some(c) = code {
                q.push(("code".to_string(), c, true));
            }
            if let Some(r) = realm_id {
                q.push(("realmId".to_string(), r, true));
            }
            q.append(&mut rest);
            q
        })
}

/// The invitation columns a callback may not change: all but those of its state, which
/// any callback that gets past the cookie consumes, whatever else it carries.
const INVITATION_KEPT: [&str; 11] = [
    "id",
    "token_hash",
    "connection_id",
    "environment",
    "expected_realm",
    "tenant",
    "status",
    "created_at",
    "created_by",
    "expires_at",
    "closed_at",
];

/// What a callback that stores nothing may record, as (action, outcome).
const CALLBACK_RECORDS: [(&str, &str); 5] = [
    ("exchange failed", "failed"),
    ("consent denied", "denied"),
    ("realm mismatch", "denied"),
    ("state rejected", "denied"),
    ("duplicate callback", "denied"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_its_browsers_live_state_and_hostile_parameters_never_gets_a_5xx() {
    const CASES: u32 = 96;
    let w = World::start(SimOptions::default()).await;
    let port = crate::common::free_port();
    w.append_config(&WORLD_PUBLIC.replace("{port}", &port.to_string()));
    let config = w.load_config();
    let app = qbo_daemon::public::router(
        qbo_daemon::public::PublicState {
            service: w.service().await,
            settings: std::sync::Arc::new(qbo_daemon::public::Settings::from_config(&config)),
        },
        axum::Router::new(),
    );
    let g = w.seed(1, "cb").await.remove(0);
    let link: serde_json::Value =
        serde_json::from_str(&w.ok(&["link", "cb-0", "--json"]).await).unwrap();
    let link_path = link["url"]
        .as_str()
        .unwrap()
        .split_once(&format!(":{port}"))
        .unwrap()
        .1
        .to_string();
    let db = Db::open(&w).await;
    let seen = std::sync::Mutex::new(Seen::default());
    let one = async |rest: Vec<(String, String, bool)>| -> Result<(), TestCaseError> {
        // The customer's browser opens the link: a fresh state, bound by its cookie.
        let (status, headers) = through_router(&app, &get(&link_path)).await.unwrap();
        prop_assert_eq!(status, 302);
        let state = headers["location"]
            .to_str()
            .unwrap()
            .split("state=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap()
            .to_string();
        let cookie = headers["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut case = get("/callback");
        case.query = vec![("state".into(), state, false)];
        case.query.extend(rest);
        case.headers = vec![("cookie".into(), cookie.into_bytes())];

        let connections = db.rows("connections").await;
        let invitations = db.columns("link_invitations", &INVITATION_KEPT).await;
        let before = db.tables().await;
        let asked = w.sim.stats().token_requests;
        // Longer than any URI: hyper answers 414 before the router.
        let Some((status, _)) = through_router(&app, &case).await else {
            return Ok(());
        };
        let after = db.tables().await;
        seen.lock().unwrap().note(status, &before, &after);
        prop_assert!(
            (200..500).contains(&status),
            "answered {status} to {case:?}"
        );
        // Intuit never issued these codes: nothing can be stored.
        prop_assert_eq!(
            connections,
            db.rows("connections").await,
            "connections changed"
        );
        prop_assert_eq!(
            invitations,
            db.columns("link_invitations", &INVITATION_KEPT).await,
            "the invitation changed beyond its state"
        );
        let new = &after.audit[before.audit.len()..];
        prop_assert!(new.len() <= 1, "one callback, several events: {new:?}");
        for (_, action, outcome) in new {
            prop_assert!(
                CALLBACK_RECORDS.contains(&(action.as_str(), outcome.as_str())),
                "the callback recorded {action:?} ({outcome:?})"
            );
        }
        // The realm guard: Intuit is asked to exchange a code only for the link's company.
        if w.sim.stats().token_requests > asked {
            prop_assert!(
                case.query
                    .iter()
                    .any(|(k, v, _)| k == "realmId" && v.trim() == g.realm_id),
                "a code was exchanged for a callback not naming company {}: {case:?}",
                g.realm_id
            );
        }
        Ok(())
    };
    // Certainly reached, whatever the random cases do: a made-up code for the right
    // company, a declined consent, another company.
    let q = |k: &str, v: &str| (k.to_string(), v.to_string(), true);
    for rest in [
        vec![q("code", "made-up"), q("realmId", &g.realm_id)],
        vec![q("error", "access_denied"), q("realmId", &g.realm_id)],
        vec![q("code", "made-up"), q("realmId", "4242424242")],
    ] {
        if let Err(e) = one(rest.clone()).await {
            panic!("{e}\n{rest:?}");
        }
    }
    let rt = tokio::runtime::Handle::current();
    let strategy = callback_rest(g.realm_id.clone());
    let result = tokio::task::block_in_place(|| {
        runner(CASES)
            .run(&strategy, |rest| rt.block_on(one(rest)))
            .map_err(|e| e.to_string())
    });
    db.close().await;
    if let Err(e) = result {
        panic!("{e}");
    }
    // Declined consents, refused codes and realm mismatches were all reached.
    let seen = seen.into_inner().unwrap();
    eprintln!("answers and events of the run: {seen:?}");
    for action in ["exchange failed", "consent denied", "realm mismatch"] {
        assert!(
            seen.events.contains_key(action),
            "no case recorded {action:?}: {seen:?}"
        );
    }
}
