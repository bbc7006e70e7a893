//! `qbo-console doctor`: checks an installation as a whole and says, for each problem, the
//! fix. Run it as the daemon's account: what it reads is what the daemon would.
//!
//! Exit codes: 0 nothing failed (warnings may be shown), 1 at least one check failed,
//! 2 the configuration could not be read (nothing else was checked).

use super::{exit, print_json, Failure};
use chrono::{DateTime, Utc};
use qbo_core::config::{Config, SecretSource};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check: what was looked at, how it stands, and the fix when it is not well.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(check: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        check: check.into(),
        status: Status::Ok,
        detail: detail.into(),
        fix: None,
    }
}

fn bad(
    status: Status,
    check: impl Into<String>,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        check: check.into(),
        status,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// How far a clock may be from Intuit's before refreshes are scheduled wrongly.
const SKEW_WARN: i64 = 30;
const SKEW_FAIL: i64 = 120;
/// Free space under which a SQLite database is in danger.
const FREE_WARN: u64 = 1 << 30;
const FREE_FAIL: u64 = 100 << 20;
/// A certificate this close to its end is a warning.
const CERT_WARN_DAYS: i64 = 21;

pub(super) async fn run(config_path: Option<&Path>, json: bool) -> Result<u8, Failure> {
    let mut checks = Vec::new();
    let code = match Config::load(config_path) {
        Err(e) => {
            checks.push(bad(
                Status::Fail,
                "config",
                e.to_string(),
                "fix what the message names; config.example.toml documents every key",
            ));
            exit::BAD_INPUT
        }
        Ok(config) => {
            checks.push(ok("config", format!("{} parses", config.source.display())));
            checks.extend(secrets(&config));
            checks.extend(database(&config).await);
            checks.extend(socket(&config));
            checks.extend(listeners(&config).await);
            checks.extend(tls(&config));
            checks.extend(intuit(&config).await);
            checks.extend(redirects(&config));
            if checks.iter().any(|c| c.status == Status::Fail) {
                exit::FAILED
            } else {
                exit::OK
            }
        }
    };
    if json {
        print_json(&serde_json::json!({
            "ok": code == exit::OK,
            "checks": checks,
        }))?;
    } else {
        for c in &checks {
            let glyph = match c.status {
                Status::Ok => "✓",
                Status::Warn => "⚠",
                Status::Fail => "✗",
            };
            println!(
                "{glyph} {:<16} {}",
                c.check,
                qbo_core::text::Safe(&c.detail)
            );
            if let Some(f) = &c.fix {
                println!("  {:<16} fix: {}", "", qbo_core::text::Safe(f));
            }
        }
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
        println!(
            "\n{} checks: {failed} failed, {warned} warnings",
            checks.len()
        );
    }
    Ok(code)
}

/// Every key and client secret: present, readable by this account, and by no other.
fn secrets(config: &Config) -> Vec<Check> {
    let mut named: Vec<(String, SecretSource, bool)> = Vec::new();
    if let Ok(v) = config.vault() {
        named.push(("[vault] key".into(), v.key.clone(), true));
        for (i, k) in v.old_keys.iter().enumerate() {
            named.push((format!("[vault] old key {}", i + 1), k.clone(), true));
        }
        if let Some(f) = &v.fingerprint_key {
            named.push(("[vault] fingerprint_key".into(), f.clone(), true));
        }
    }
    if let Some(s) = &config.audit.signing_key {
        named.push(("[audit] signing_key".into(), s.clone(), true));
    }
    for (env, e) in &config.environments {
        named.push((
            format!("[environments.{env}] client_secret"),
            e.client_secret.clone(),
            false,
        ));
    }
    let mut out = Vec::new();
    if config.vault().is_err() {
        out.push(bad(
            Status::Fail,
            "key",
            "no [vault] section: the daemon has no token key",
            "create one with `qbo-console keys generate --out /etc/qbo-console/token.key` and name it in [vault] key_file",
        ));
    }
    for (what, source, is_key) in named {
        out.push(secret(&what, &source, is_key));
    }
    out
}

fn secret(what: &str, source: &SecretSource, is_key: bool) -> Check {
    let path = match source {
        SecretSource::Env(var) => {
            return match std::env::var_os(var) {
                Some(_) => ok("secret", format!("{what}: from ${var}")),
                None => bad(
                    Status::Fail,
                    "secret",
                    format!("{what}: ${var} is not set in this environment"),
                    format!("set {var} for the daemon (systemd: an EnvironmentFile readable by its account only)"),
                ),
            };
        }
        SecretSource::File(p) => p,
    };
    let create = if is_key {
        format!(
            "create it: `qbo-console keys generate --out {}` (mode 0600, the daemon's account)",
            path.display()
        )
    } else {
        format!(
            "write the client secret from Intuit's developer portal into {} (chmod 600, owned by the daemon's account)",
            path.display()
        )
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return bad(
                Status::Fail,
                "secret",
                format!("{what}: {}: {e}", path.display()),
                create,
            )
        }
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return bad(
            Status::Fail,
            "secret",
            format!(
                "{what}: {} has mode {mode:04o}: readable beyond its owner",
                path.display()
            ),
            format!("chmod 600 {}", path.display()),
        );
    }
    if let Err(e) = std::fs::File::open(path) {
        return bad(
            Status::Fail,
            "secret",
            format!("{what}: {} cannot be read by this account: {e}", path.display()),
            format!(
                "chown the file to the daemon's account (`chown qbo-console {}`), and run doctor as that account",
                path.display()
            ),
        );
    }
    ok(
        "secret",
        format!("{what}: {} mode {mode:04o}", path.display()),
    )
}

/// Free bytes on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path; `s` is written by the call.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

async fn database(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let db = match config.database() {
        Ok(d) => d,
        Err(e) => {
            out.push(bad(
                Status::Fail,
                "database",
                e.0,
                "add a [database] section with url (config.example.toml)",
            ));
            return out;
        }
    };
    let shown = qbo_core::text::redact_url(&db.url);
    let file = qbo_service::sqlite_file(&db.url).ok().flatten();
    if let Some(f) = &file {
        if !f.exists() {
            out.push(bad(
                Status::Fail,
                "database",
                format!("{} does not exist", f.display()),
                "create it with `qbo-console db migrate` (serve also creates it at start); if it was lost, restore the last backup with `qbo-console db restore FILE`",
            ));
            return out;
        }
        if !writable(f) {
            out.push(bad(
                Status::Fail,
                "database",
                format!("{} is not writable by this account", f.display()),
                format!("chown the database and its directory to the daemon's account (`chown qbo-console {}`)", f.display()),
            ));
        }
        if let Some(dir) = f.parent() {
            match free_bytes(dir) {
                Some(n) if n < FREE_FAIL => out.push(bad(Status::Fail, "disk", format!("{} MB free beside the database", n >> 20), "free space on that filesystem: SQLite cannot commit without it, and every refresh fails")),
                Some(n) if n < FREE_WARN => out.push(bad(Status::Warn, "disk", format!("{} MB free beside the database", n >> 20), "free space on that filesystem before it fills")),
                Some(n) => out.push(ok("disk", format!("{:.1} GB free beside the database", n as f64 / (1u64 << 30) as f64))),
                None => {}
            }
        }
    }
    let up = match qbo_service::database_checkup(config).await {
        Ok(u) => u,
        Err(e) => {
            out.push(bad(
                Status::Fail,
                "database",
                format!("{shown}: {e:#}"),
                "check [database] url, that the server runs and this account may connect",
            ));
            return out;
        }
    };
    match up.pending {
        Ok(p) if p.is_empty() => out.push(ok("database", format!("{shown}: reachable, schema current"))),
        Ok(p) => out.push(bad(
            Status::Warn,
            "database",
            format!("{shown}: {} migration(s) pending", p.len()),
            "`qbo-console db migrate` (serve applies them at start)",
        )),
        Err(e) => out.push(bad(
            Status::Fail,
            "database",
            format!("{shown}: {e:#}"),
            "run the qbo-console release that upgraded this database, or restore a backup made by this one",
        )),
    }
    out.push(match &up.blocked {
        Some(b) => bad(
            Status::Fail,
            "audit chain",
            b.to_string(),
            format!("an admin runs `qbo-console audit quarantine --from {}` after `qbo-console audit verify`", b.first_seq),
        ),
        None if up.head_consistent => ok("audit chain", format!("head at event {} matches it", up.head_seq)),
        None => bad(
            Status::Fail,
            "audit chain",
            format!("the chain's head (event {}) does not match the event it names", up.head_seq),
            "run `qbo-console audit verify` to find the damage; restore the database from a backup (`qbo-console db restore-check FILE`, then `db restore`) and keep the damaged one for the investigation",
        ),
    });
    out
}

fn socket(config: &Config) -> Vec<Check> {
    let sock = &config.daemon.socket;
    let mut out = Vec::new();
    match sock.parent() {
        Some(dir) if !dir.is_dir() => out.push(bad(
            Status::Fail,
            "socket",
            format!("{} does not exist", dir.display()),
            format!("start the daemon (`systemctl start qbo-console`: the unit's RuntimeDirectory makes it), or create it for the daemon's account (`install -d -o qbo-console -m 0750 {}`)", dir.display()),
        )),
        Some(dir) if !writable(dir) => out.push(bad(
            Status::Fail,
            "socket",
            format!("{} is not writable by this account", dir.display()),
            format!("chown {} to the daemon's account", dir.display()),
        )),
        _ => out.push(ok("socket", format!("{} can be made", sock.display()))),
    }
    if let Some(g) = &config.daemon.socket_group {
        let c = std::ffi::CString::new(g.as_str()).unwrap_or_default();
        // SAFETY: `c` is a valid C string; the result is only compared with null.
        let found = !unsafe { libc::getgrnam(c.as_ptr()) }.is_null();
        out.push(if found {
            ok("socket group", format!("{g} exists"))
        } else {
            bad(
                Status::Fail,
                "socket group",
                format!("group {g} does not exist"),
                format!("groupadd {g}, and add the operators to it"),
            )
        });
    }
    out
}

/// Whether our daemon answers on its socket.
fn daemon_running(config: &Config) -> bool {
    std::os::unix::net::UnixStream::connect(&config.daemon.socket).is_ok()
}

async fn listeners(config: &Config) -> Vec<Check> {
    let mut wanted = vec![
        ("[daemon] http_listen", config.daemon.http_listen.clone()),
        ("[api] listen", config.api.listen.clone()),
    ];
    if let Some(p) = &config.public.listen {
        wanted.push(("[public] listen", p.clone()));
    }
    let ours = daemon_running(config);
    let mut out = Vec::new();
    for (key, addr) in wanted {
        let Ok(sa) = addr.parse::<std::net::SocketAddr>() else {
            out.push(bad(
                Status::Fail,
                "listener",
                format!("{key} {addr:?} is not an address"),
                format!("give {key} as host:port, such as 127.0.0.1:9187"),
            ));
            continue;
        };
        if sa.port() == 0 {
            out.push(ok(
                "listener",
                format!("{key} {addr}: a free port is chosen at start"),
            ));
            continue;
        }
        match std::net::TcpListener::bind(sa) {
            Ok(_) => out.push(ok("listener", format!("{key} {addr}: free"))),
            Err(_) if ours => out.push(ok("listener", format!("{key} {addr}: held by the running daemon"))),
            Err(e) => out.push(bad(
                Status::Fail,
                "listener",
                format!("{key} {addr}: taken ({e}) and no qbo-console daemon answers on its socket"),
                format!("find what holds it (`ss -ltnp 'sport = :{}'`), stop it, or choose another port in {key}", sa.port()),
            )),
        }
    }
    out
}

fn tls(config: &Config) -> Vec<Check> {
    let Some(cert) = &config.public.tls_cert_file else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(key) = &config.public.tls_key_file {
        out.push(secret(
            "[public] tls_key_file",
            &SecretSource::File(key.clone()),
            false,
        ));
    }
    let facts = certificate_facts(cert);
    if let (Ok(facts), Some(host)) = (&facts, config.public.base_url.as_deref().and_then(host_of)) {
        out.push(if names_host(&facts.names, &host) {
            ok(
                "tls host",
                format!("{} names {host}, the host of [public] base_url", cert.display()),
            )
        } else {
            bad(
                Status::Fail,
                "tls host",
                format!(
                    "{} is for {} but [public] base_url is on {host}: customers' browsers refuse it, and with them every reconnect link and Intuit's redirect",
                    cert.display(),
                    if facts.names.is_empty() {
                        "no DNS name or address".to_string()
                    } else {
                        facts.names.join(", ")
                    }
                ),
                format!("get a certificate whose subject alternative names include {host}, or set base_url to a name the certificate covers"),
            )
        });
    }
    out.push(match facts.map(|f| f.end) {
        Err(e) => bad(
            Status::Fail,
            "tls",
            format!("{}: {e}", cert.display()),
            "give [public] tls_cert_file a PEM certificate chain (the leaf first)",
        ),
        Ok(end) => {
            let left = (end - Utc::now()).num_days();
            if end <= Utc::now() {
                bad(
                    Status::Fail,
                    "tls",
                    format!("{} expired on {}", cert.display(), end.format("%Y-%m-%d")),
                    "renew the certificate and restart the daemon",
                )
            } else if left < CERT_WARN_DAYS {
                bad(
                    Status::Warn,
                    "tls",
                    format!(
                        "{} expires in {left} days ({})",
                        cert.display(),
                        end.format("%Y-%m-%d")
                    ),
                    "renew the certificate before then and restart the daemon",
                )
            } else {
                ok(
                    "tls",
                    format!("{} valid until {}", cert.display(), end.format("%Y-%m-%d")),
                )
            }
        }
    });
    out
}

/// What doctor reads of a certificate: when it ends and the names it is for.
struct CertFacts {
    end: DateTime<Utc>,
    /// Its subject alternative names: DNS names as written (`*.example.com` too) and IP
    /// addresses. Browsers read these alone, not the subject's common name.
    names: Vec<String>,
}

/// The host part of a URL, lower-case, without brackets for IPv6.
fn host_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(
        u.host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

/// Whether one of a certificate's names covers `host`: the same name (case aside), or a
/// wildcard standing for exactly its first label (`*.example.com` covers
/// `connect.example.com`, not `example.com` nor `a.b.example.com`).
fn names_host(names: &[String], host: &str) -> bool {
    names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        if n == host {
            return true;
        }
        match (n.strip_prefix("*."), host.split_once('.')) {
            (Some(parent), Some((label, rest))) => !label.is_empty() && rest == parent,
            _ => false,
        }
    })
}

/// The end and the names of the first certificate in a PEM file.
fn certificate_facts(path: &PathBuf) -> Result<CertFacts, String> {
    use x509_cert::der::DecodePem;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let start = text
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or("no certificate in it")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = text[start..]
        .find(end_marker)
        .ok_or("an unterminated certificate")?
        + start
        + end_marker.len();
    let cert = x509_cert::Certificate::from_pem(&text[start..end]).map_err(|e| e.to_string())?;
    let secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let end = DateTime::from_timestamp(secs as i64, 0).ok_or("a date out of range")?;
    let names = match cert
        .tbs_certificate
        .get::<x509_cert::ext::pkix::SubjectAltName>()
        .map_err(|e| format!("its subject alternative names do not parse: {e}"))?
    {
        None => Vec::new(),
        Some((_, san)) => san
            .0
            .iter()
            .filter_map(|n| match n {
                x509_cert::ext::pkix::name::GeneralName::DnsName(d) => Some(d.to_string()),
                x509_cert::ext::pkix::name::GeneralName::IpAddress(ip) => {
                    let b = ip.as_bytes();
                    let ip: std::net::IpAddr = match b.len() {
                        4 => <[u8; 4]>::try_from(b).ok()?.into(),
                        16 => <[u8; 16]>::try_from(b).ok()?.into(),
                        _ => return None,
                    };
                    Some(ip.to_string())
                }
                _ => None,
            })
            .collect(),
    };
    Ok(CertFacts { end, names })
}

/// Intuit's token endpoint, where the configuration leaves it at Intuit's own.
const INTUIT_TOKEN_ENDPOINT: &str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer";

/// Intuit's discovery document of an environment (`../shared/INTUIT.md`).
fn discovery(env: qbo_core::domain::Environment) -> &'static str {
    match env {
        qbo_core::domain::Environment::Production => {
            "https://developer.api.intuit.com/.well-known/openid_configuration"
        }
        qbo_core::domain::Environment::Sandbox => {
            "https://developer.api.intuit.com/.well-known/openid_sandbox_configuration"
        }
    }
}

/// Each environment's token endpoint: reachable, and its clock against ours; against
/// Intuit itself, its discovery document too.
async fn intuit(config: &Config) -> Vec<Check> {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            return vec![bad(
                Status::Fail,
                "intuit",
                e.to_string(),
                "check this host's TLS setup",
            )]
        }
    };
    let mut out = Vec::new();
    for (env, e) in &config.environments {
        let sent = Utc::now();
        match http.get(&e.token_endpoint).send().await {
            Err(err) => out.push(bad(
                Status::Fail,
                "intuit",
                format!("{env}: cannot reach the token endpoint {}: {}", e.token_endpoint, qbo_core::text::Safe(&err.to_string())),
                format!("check DNS, the firewall and any proxy (HTTPS_PROXY) on the way to Intuit, and [environments.{env}] token_endpoint"),
            )),
            Ok(resp) => {
                let got = Utc::now();
                out.push(ok("intuit", format!("{env}: token endpoint answers (HTTP {})", resp.status().as_u16())));
                if e.token_endpoint == INTUIT_TOKEN_ENDPOINT {
                    let doc = discovery(*env);
                    out.push(match http.get(doc).send().await {
                        Ok(r) if r.status().is_success() => ok("intuit", format!("{env}: discovery document {doc} answers")),
                        Ok(r) => bad(Status::Warn, "intuit", format!("{env}: {doc} answered HTTP {}", r.status().as_u16()), "check Intuit's status page; the endpoints in use may move"),
                        Err(err) => bad(Status::Warn, "intuit", format!("{env}: {doc}: {}", qbo_core::text::Safe(&err.to_string())), "allow developer.api.intuit.com through the firewall or proxy"),
                    });
                }
                let date = resp
                    .headers()
                    .get("date")
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok());
                if let Some(theirs) = date {
                    // Against the middle of the request: the Date is when they answered.
                    let ours = sent + (got - sent) / 2;
                    let skew = (theirs.with_timezone(&Utc) - ours).num_seconds();
                    let said = match skew {
                        0 => format!("{env}: this host's clock is within a second of Intuit's"),
                        s => format!(
                            "{env}: this host's clock is {}s {} Intuit's",
                            s.abs(),
                            if s > 0 { "behind" } else { "ahead of" }
                        ),
                    };
                    let fix = "synchronise the clock (`timedatectl set-ntp true`, or chrony): access tokens and the 100-day window are scheduled by it";
                    out.push(if skew.abs() > SKEW_FAIL {
                        bad(Status::Fail, "clock", said, fix)
                    } else if skew.abs() > SKEW_WARN {
                        bad(Status::Warn, "clock", said, fix)
                    } else {
                        ok("clock", said)
                    });
                }
            }
        }
    }
    out
}

/// Each environment's redirect URI must reach the public listener, where the callback is.
fn redirects(config: &Config) -> Vec<Check> {
    let base = config.public.base(&config.source).ok();
    let mut out = Vec::new();
    for (env, e) in &config.environments {
        out.push(match (&config.public.listen, &base) {
            (None, _) => bad(
                Status::Warn,
                "redirect uri",
                format!("{env}: {} is served by no listener of this daemon ([public] listen is not set)", e.redirect_uri),
                "set [public] listen and base_url so reconnect links and their callbacks work",
            ),
            (Some(_), Some(b)) if e.redirect_uri.starts_with(b.as_str()) => {
                ok("redirect uri", format!("{env}: {} is under [public] base_url", e.redirect_uri))
            }
            (Some(_), _) => bad(
                Status::Warn,
                "redirect uri",
                format!("{env}: {} is not under [public] base_url", e.redirect_uri),
                "make sure a proxy sends that address to [public] listen, or register a redirect URI under base_url at Intuit",
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate ending on `y-m-d`, written to a PEM file.
    fn cert_ending(dir: &Path, y: i32, m: u8, d: u8) -> PathBuf {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = dir.join(format!("{y}-{m}-{d}.pem"));
        std::fs::write(&path, cert.pem()).unwrap();
        path
    }

    #[test]
    fn a_certificates_end_is_read_from_its_pem() {
        let dir = tempfile::tempdir().unwrap();
        let facts = certificate_facts(&cert_ending(dir.path(), 2031, 6, 30)).unwrap();
        assert_eq!(facts.end.format("%Y-%m-%d").to_string(), "2031-06-30");
        assert_eq!(facts.names, vec!["localhost".to_string()]);
        let expired = certificate_facts(&cert_ending(dir.path(), 2021, 1, 1)).unwrap();
        assert!(expired.end < Utc::now());
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        assert!(certificate_facts(&junk)
            .err()
            .unwrap()
            .contains("no certificate"));
    }

    #[test]
    fn a_certificate_must_name_the_host_of_base_url() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let host = host_of("https://Connect.Example.com:8443/x").unwrap();
        assert_eq!(host, "connect.example.com");
        assert!(names_host(&names(&["connect.example.com"]), &host));
        assert!(names_host(&names(&["CONNECT.example.com"]), &host));
        assert!(names_host(&names(&["*.example.com"]), &host));
        assert!(!names_host(&names(&["*.example.com"]), "example.com"));
        assert!(!names_host(&names(&["*.example.com"]), "a.b.example.com"));
        assert!(!names_host(
            &names(&["localhost", "other.example.com"]),
            &host
        ));
        assert!(!names_host(&[], &host));
        assert_eq!(host_of("https://[::1]:9/").unwrap(), "::1");
        assert!(names_host(&names(&["::1"]), "::1"));

        // Through the whole check: a certificate for localhost on a base_url elsewhere.
        let dir = tempfile::tempdir().unwrap();
        let cert = cert_ending(dir.path(), 2031, 6, 30);
        let path = dir.path().join("qbo-console.toml");
        std::fs::write(
            &path,
            format!(
                "[public]\nbase_url = \"https://connect.example.com\"\ntls_cert_file = {:?}\ntls_key_file = {:?}\n",
                cert.display().to_string(),
                dir.path().join("tls.key").display().to_string()
            ),
        )
        .unwrap();
        let mut config = Config::load(Some(&path)).unwrap();
        let checks = tls(&config);
        let host = checks.iter().find(|c| c.check == "tls host").unwrap();
        assert_eq!(host.status, Status::Fail, "{:?}", host.detail);
        assert!(host.detail.contains("is for localhost"), "{}", host.detail);
        config.public.base_url = Some("https://localhost:8443".into());
        let checks = tls(&config);
        let host = checks.iter().find(|c| c.check == "tls host").unwrap();
        assert_eq!(host.status, Status::Ok, "{:?}", host.detail);
    }
}
