//! `report posture`: the answers Intuit's app assessment asks for, read from the live
//! configuration and database rather than written by hand, so they cannot drift from what
//! the installation does. Names, ids, counts and addresses only: never a key, a secret or
//! a token.

use super::{Permission, Result, Service};
use chrono::{DateTime, Utc};
use qbo_core::config::Config;
use qbo_core::identity::{Actor, Role};
use qbo_core::text::redact_url;
use qbo_engine::lifecycle::KeyStatus;
use qbo_store::audit::{self, Action};
use serde::{Deserialize, Serialize};

/// Scopes that let an app change data at Intuit. Intuit has no read-only accounting scope:
/// `com.intuit.quickbooks.accounting` grants read and write, and so does `payment`. The
/// OpenID scopes only identify the user.
const WRITE_CAPABLE_SCOPES: &[&str] = &[
    "com.intuit.quickbooks.accounting",
    "com.intuit.quickbooks.payment",
];

/// What qbo-console itself calls with the grant: the token endpoint, the revocation
/// endpoint and one read (CompanyInfo). Nothing it sends changes company data.
const CALLS_MADE: &str = "qbo-console calls only Intuit's token endpoint (refresh, code exchange), its revocation endpoint and GET CompanyInfo (a read); it sends no request that creates, changes or deletes company data";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostureReport {
    pub generated_at: DateTime<Utc>,
    pub generated_by: String,
    pub configuration_file: String,
    pub environments: Vec<EnvironmentPosture>,
    pub scopes: ScopePosture,
    pub encryption: EncryptionPosture,
    pub roles: Vec<RoleHolders>,
    pub audit: AuditPosture,
    /// `[retention]` as configured, key by key.
    pub retention: serde_json::Value,
    pub outbound_endpoints: Vec<OutboundEndpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvironmentPosture {
    pub environment: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The scopes the consent link asks for.
    pub scopes: Vec<String>,
    /// Of those, the ones Intuit treats as able to write.
    pub write_capable_scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScopePosture {
    /// Whether any configured scope is one Intuit grants write access with.
    pub write_capable_scope_requested: bool,
    /// Whether qbo-console itself sends any write call (it does not).
    pub write_calls_made: bool,
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncryptionPosture {
    pub at_rest: String,
    pub algorithm: String,
    pub fingerprints: String,
    pub in_transit: String,
    /// The key status as `keys status` shows it: ids and counts, never key material.
    pub keys: KeyStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleHolders {
    pub role: String,
    /// Accounts, and `@group`s, mapped to the role in `[roles]`.
    pub members: Vec<String>,
    pub may: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditPosture {
    pub backend: String,
    /// The database URL without its password, and the table.
    pub location: String,
    pub chain: String,
    pub verify: audit::VerifyReport,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboundEndpoint {
    pub environment: String,
    /// What the daemon calls it for.
    pub purpose: String,
    pub url: String,
    pub host: String,
    pub port: Option<u16>,
    pub https: bool,
}

/// What a role may do, in words, for the table of role holders.
fn abilities(role: Role) -> Vec<String> {
    use Permission::*;
    [
        (ViewConnections, "view connections"),
        (ReadAudit, "read the audit log"),
        (Refresh, "refresh"),
        (BulkActions, "act in bulk"),
        (Verify, "verify"),
        (ReconnectLink, "send reconnect links"),
        (Revoke, "revoke and purge"),
        (Import, "import"),
        (ManageKeys, "manage keys"),
        (SupportBundle, "write support bundles"),
    ]
    .into_iter()
    .filter(|(p, _)| role.allows(*p))
    .map(|(_, what)| what.to_string())
    .collect()
}

fn endpoint(environment: &str, purpose: &str, url: &str) -> OutboundEndpoint {
    let parsed = reqwest::Url::parse(url).ok();
    OutboundEndpoint {
        environment: environment.to_string(),
        purpose: purpose.to_string(),
        url: url.to_string(),
        host: parsed
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default(),
        port: parsed.as_ref().and_then(|u| u.port_or_known_default()),
        https: parsed.is_some_and(|u| u.scheme() == "https"),
    }
}

impl PostureReport {
    fn from_config(
        config: &Config,
        caller: &Actor,
        keys: KeyStatus,
        verify: audit::VerifyReport,
        now: DateTime<Utc>,
    ) -> PostureReport {
        let environments: Vec<EnvironmentPosture> = config
            .environments
            .values()
            .map(|e| EnvironmentPosture {
                environment: e.environment.to_string(),
                client_id: e.client_id.clone(),
                redirect_uri: e.redirect_uri.clone(),
                scopes: e.scopes.clone(),
                write_capable_scopes: e
                    .scopes
                    .iter()
                    .filter(|s| WRITE_CAPABLE_SCOPES.contains(&s.as_str()))
                    .cloned()
                    .collect(),
            })
            .collect();
        let write_capable = environments
            .iter()
            .any(|e| !e.write_capable_scopes.is_empty());
        let explanation = if write_capable {
            format!(
                "Intuit has no read-only accounting scope: com.intuit.quickbooks.accounting (and payment) grant read and write, so the grant could write. {CALLS_MADE}."
            )
        } else {
            format!("No configured scope grants write access. {CALLS_MADE}.")
        };
        let mut outbound = Vec::new();
        for e in config.environments.values() {
            let env = e.environment.to_string();
            outbound.push(endpoint(
                &env,
                "token endpoint: refresh and code exchange",
                &e.token_endpoint,
            ));
            outbound.push(endpoint(
                &env,
                "revocation endpoint: revoke",
                &e.revocation_endpoint,
            ));
            outbound.push(endpoint(
                &env,
                "QuickBooks API: GET CompanyInfo (verify)",
                &e.api_base,
            ));
        }
        let https = outbound.iter().all(|o| o.https);
        let db_url = config.database().map(|d| d.url.clone()).unwrap_or_default();
        let roles = &config.roles;
        PostureReport {
            generated_at: now,
            generated_by: caller.name(),
            configuration_file: config.source.display().to_string(),
            environments,
            scopes: ScopePosture {
                write_capable_scope_requested: write_capable,
                write_calls_made: false,
                explanation,
            },
            encryption: EncryptionPosture {
                at_rest: "every access, refresh and previous refresh token is sealed before it is stored; the key lives in [vault] key_file/key_env, held by the daemon alone, never in the database".into(),
                algorithm: "AES-256-GCM, a random 96-bit nonce per value, bound to its connection and column (associated data)".into(),
                fingerprints: "HMAC-SHA-256 under the fingerprint key (never rotated with the token key), first 64 bits in hex: the audit log and reports name tokens by these only".into(),
                in_transit: if https {
                    "HTTPS (rustls, certificates verified) to every outbound endpoint below".into()
                } else {
                    "NOT all outbound endpoints below use HTTPS (see `https`): a test or emulator configuration, not one for production".into()
                },
                keys,
            },
            roles: [
                (Role::Admin, &roles.admin),
                (Role::Support, &roles.support),
                (Role::Auditor, &roles.auditor),
                (Role::Viewer, &roles.viewer),
            ]
            .into_iter()
            .map(|(role, members)| RoleHolders {
                role: role.to_string(),
                members: members.clone(),
                may: abilities(role),
            })
            .collect(),
            audit: AuditPosture {
                backend: if db_url.starts_with("postgres") {
                    "PostgreSQL".into()
                } else {
                    "SQLite".into()
                },
                location: format!("{}, table audit_events", redact_url(&db_url)),
                chain: "each event holds the SHA-256 of the previous event's hash and its own fields; rows cannot be updated or deleted (triggers)".into(),
                verify,
            },
            retention: serde_json::to_value(&config.retention).unwrap_or(serde_json::Value::Null),
            outbound_endpoints: outbound,
        }
    }
}

impl Service {
    /// The security posture report (admin, auditor), recorded as a read with the chain's
    /// verdict.
    pub async fn posture(&self, caller: &Actor) -> Result<PostureReport> {
        self.authorize(caller, Permission::ReadAudit, Action::PostureReport)
            .await?;
        let keys = self.engine.key_status().await?;
        let verify = audit::verify(self.store()).await?;
        let shown = match verify.first_bad_seq {
            None => format!(
                "posture report; audit chain intact over {} events",
                verify.events
            ),
            Some(seq) => format!("posture report; audit chain broken at sequence {seq}"),
        };
        let report =
            PostureReport::from_config(&self.config, caller, keys, verify, self.engine.clock.now());
        self.record_view(caller, Action::PostureReport, None, shown)
            .await?;
        Ok(report)
    }
}

/// The report as Markdown, for a reviewer.
pub fn posture_markdown(r: &PostureReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    let _ = writeln!(s, "# qbo-console security posture\n");
    let _ = writeln!(
        s,
        "Generated {} by {} from {}.\n",
        r.generated_at.to_rfc3339(),
        cell(&r.generated_by),
        cell(&r.configuration_file)
    );
    let _ = writeln!(s, "## Scopes and redirect URIs\n");
    let _ = writeln!(
        s,
        "| environment | client id | redirect URI | scopes | write-capable |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for e in &r.environments {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {} |",
            e.environment,
            cell(&e.client_id),
            cell(&e.redirect_uri),
            e.scopes.join(" "),
            if e.write_capable_scopes.is_empty() {
                "none".to_string()
            } else {
                e.write_capable_scopes.join(" ")
            }
        );
    }
    let _ = writeln!(
        s,
        "\nWrite-capable scope requested: {}. Write calls made by qbo-console: {}. {}\n",
        yes_no(r.scopes.write_capable_scope_requested),
        yes_no(r.scopes.write_calls_made),
        r.scopes.explanation
    );
    let _ = writeln!(s, "## Token encryption\n");
    let _ = writeln!(s, "- At rest: {}", r.encryption.at_rest);
    let _ = writeln!(s, "- Algorithm: {}", r.encryption.algorithm);
    let _ = writeln!(s, "- Fingerprints: {}", r.encryption.fingerprints);
    let _ = writeln!(s, "- In transit: {}", r.encryption.in_transit);
    let k = &r.encryption.keys;
    let _ = writeln!(
        s,
        "- Current key id `{}`; older keys configured: {}; fingerprint key id `{}`; rotation {}\n",
        k.current_key_id,
        if k.old_key_ids.is_empty() {
            "none".to_string()
        } else {
            k.old_key_ids.join(", ")
        },
        k.fingerprint_key_id,
        if k.rotation_complete {
            "complete"
        } else {
            "incomplete"
        }
    );
    let _ = writeln!(s, "| key id | role | connections sealed | values sealed |");
    let _ = writeln!(s, "|---|---|---|---|");
    for u in &k.keys {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            u.key_id, u.role, u.connections, u.values
        );
    }
    let _ = writeln!(s, "\n## Who holds which role (`[roles]`)\n");
    let _ = writeln!(s, "| role | accounts and @groups | may |");
    let _ = writeln!(s, "|---|---|---|");
    for h in &r.roles {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            h.role,
            if h.members.is_empty() {
                "nobody".to_string()
            } else {
                cell(&h.members.join(", "))
            },
            h.may.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nAny other account is refused everything, and each refusal is recorded.\n"
    );
    let _ = writeln!(s, "## Audit log\n");
    let _ = writeln!(
        s,
        "- Where: {} ({})",
        cell(&r.audit.location),
        r.audit.backend
    );
    let _ = writeln!(s, "- Chain: {}", r.audit.chain);
    let _ = writeln!(
        s,
        "- Verified now: {}\n",
        match r.audit.verify.first_bad_seq {
            None => format!("intact over {} events", r.audit.verify.events),
            Some(seq) => format!(
                "BROKEN at sequence {seq}: {}",
                r.audit.verify.problem.as_deref().unwrap_or("")
            ),
        }
    );
    let _ = writeln!(s, "## Retention (`[retention]`)\n");
    match r.retention.as_object() {
        Some(o) if !o.is_empty() => {
            for (k, v) in o {
                let _ = writeln!(s, "- `{k}` = {v}");
            }
        }
        _ => {
            let _ = writeln!(s, "- defaults");
        }
    }
    let _ = writeln!(s, "\n## Outbound endpoints the daemon calls\n");
    let _ = writeln!(s, "| environment | purpose | host | port | HTTPS | URL |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for o in &r.outbound_endpoints {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            o.environment,
            o.purpose,
            cell(&o.host),
            o.port.map_or("-".to_string(), |p| p.to_string()),
            yes_no(o.https),
            cell(&o.url)
        );
    }
    let _ = writeln!(
        s,
        "\nThe authorization endpoint is visited by the customer's browser, not called by the daemon."
    );
    s
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
