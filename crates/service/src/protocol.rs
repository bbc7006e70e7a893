//! Requests and replies: what the CLI asks of the service, whether in this process
//! (`--embedded`) or over the operators' socket (one JSON object per line). Both paths end
//! in `Service::handle`, so no operation is written twice.

use super::{ServiceError, SessionEvent};
use qbo_core::audit::Action;
use qbo_core::domain::{Environment, Status};
use qbo_core::identity::{Interface, Role};
use serde::{Deserialize, Serialize};

/// `Debug` is written by hand: an import carries refresh tokens in its text.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    List {
        #[serde(default)]
        status: Option<Status>,
        #[serde(default)]
        environment: Option<Environment>,
        /// The console's filter language (`list --where`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        /// At most this many rows (`list --limit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    /// A console's window: rows of what a filter selects in an order, and the counts.
    Window(crate::WindowQuery),
    /// `list --json` of any size: answered by `ListFrame`s, rows a page at a time, then the
    /// end with the count.
    ListStream {
        #[serde(default)]
        status: Option<Status>,
        #[serde(default)]
        environment: Option<Environment>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
    Show {
        target: String,
    },
    Refresh {
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default)]
        due: bool,
        #[serde(default)]
        all: bool,
        /// What a filter selects (the console's language) instead of named targets.
        #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        /// With `where`: the count the operator confirmed; another count refuses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<u64>,
    },
    Verify {
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<u64>,
    },
    Import {
        file: String,
        text: String,
        #[serde(default)]
        update: bool,
    },
    /// An import file of any size, sent in pieces: the daemon answers `ImportFrame`s (send
    /// the file, progress, checked, send it again, done); the client sends `ImportUpload`
    /// lines (text pieces, then the end) when asked.
    ImportStream {
        file: String,
        #[serde(default)]
        update: bool,
        /// Rows that start before this line are left alone (resuming an import).
        #[serde(default = "first_line")]
        from_line: usize,
    },
    /// Named targets or a filter (`where`, the console's language), exactly one.
    Revoke {
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default, rename = "where")]
        filter: Option<String>,
        #[serde(default)]
        local_only_reason: Option<String>,
        #[serde(default)]
        dry_run: bool,
        /// With `where`: the count the operator confirmed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<u64>,
    },
    /// Deletes connections revoked longer ago than `[retention] revoked_days`.
    Purge {
        #[serde(default)]
        dry_run: bool,
    },
    AuditTail {
        n: i64,
    },
    /// `audit tail -n N` of any length: answered by `AuditFrame`s, the latest N events a
    /// page at a time, oldest first, then the end with the count.
    AuditTailStream {
        n: i64,
    },
    /// A page of the log, newest first (`AuditQuery` field by field).
    AuditPage {
        #[serde(default)]
        before_seq: Option<i64>,
        limit: i64,
        #[serde(default)]
        tenant: Option<String>,
        #[serde(default)]
        actor: Option<String>,
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        outcome: Option<String>,
    },
    AuditVerify,
    /// `audit quarantine --from SEQ`: moves the rows stored past the chain head out of it.
    AuditQuarantine {
        from: i64,
    },
    /// A console opened or closed, for the audit log.
    Session {
        event: SessionEvent,
    },
    /// Stream changes (one reply per committed change) until the client hangs up.
    Watch,
    /// Who the daemon thinks the caller is, and with which role.
    WhoAmI,
    /// Which keys seal the stored tokens (`keys status`).
    KeysStatus,
    /// The connections that will die within `days` (else `[forecast] days`).
    Forecast {
        #[serde(default)]
        days: Option<u32>,
        /// Only the soonest this many items (every one without).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// `forecast --json` of any size: answered by `ForecastFrame`s, the head, the items a
    /// page at a time in connection order, then the counts and the last alerts.
    ForecastStream {
        #[serde(default)]
        days: Option<u32>,
    },
    /// `link`: a reconnect link for a connection, or (`new_tenant`) for a new company.
    Link {
        #[serde(default)]
        target: Option<String>,
        #[serde(default)]
        new_tenant: Option<String>,
        #[serde(default)]
        environment: Option<Environment>,
        #[serde(default)]
        expires_secs: Option<u64>,
    },
    /// `links`: the open reconnect links.
    Links,
    /// `links` of any length: answered by `LinkFrame`s, the open links a page at a time,
    /// then the end with the count.
    LinksStream,
    /// `link --where FILTER --csv FILE`: a campaign, one link per connection selected.
    LinkCampaign {
        filter: String,
        #[serde(default)]
        expect: Option<u64>,
        #[serde(default)]
        expires_secs: Option<u64>,
    },
    /// `links --campaigns`: the newest campaigns with their counts.
    Campaigns,
    /// `links --campaign ID`: one campaign with its counts.
    Campaign {
        id: i64,
    },
    /// `db backup FILE`: an online snapshot written by the daemon to FILE (absolute, new).
    DbBackup {
        path: String,
    },
    /// `db restore-check FILE`: the restore drill of a backup against the live database.
    DbRestoreCheck {
        path: String,
    },
    /// `incidents`: the newest incidents.
    Incidents,
    /// `incidents show ID`: one incident and its connections.
    Incident {
        id: i64,
    },
    /// `link cancel ID`.
    LinkCancel {
        id: String,
    },
    /// A support bundle for one connection over a window (`support-bundle`).
    SupportBundle {
        target: String,
        /// A duration such as `30d`; `30d` when absent.
        #[serde(default)]
        since: Option<String>,
    },
    /// The security posture report (`report posture`).
    Posture,
    /// A service API key for the token API (`apikey create`).
    ApikeyCreate {
        name: String,
        #[serde(default)]
        realms: Vec<String>,
        #[serde(default)]
        environment: Option<Environment>,
    },
    ApikeyList,
    ApikeyRevoke {
        id: i64,
    },
    /// Streams a slice of the log (`ExportFrame`s: data frames with raw bytes, then the
    /// signed manifest).
    AuditExport {
        format: crate::ExportFormat,
        #[serde(default)]
        filter: crate::ExportFilter,
    },
    /// The public key that verifies export manifests.
    AuditPubkey,
    /// Archives events older than `[retention] audit_days`, then removes them.
    AuditArchive,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::List {
                status,
                environment,
                filter,
                limit,
            } => f
                .debug_struct("List")
                .field("status", status)
                .field("environment", environment)
                .field("filter", filter)
                .field("limit", limit)
                .finish(),
            Request::Window(q) => f.debug_tuple("Window").field(q).finish(),
            Request::ListStream {
                status,
                environment,
                filter,
                limit,
            } => f
                .debug_struct("ListStream")
                .field("status", status)
                .field("environment", environment)
                .field("filter", filter)
                .field("limit", limit)
                .finish(),
            Request::Show { target } => f.debug_struct("Show").field("target", target).finish(),
            Request::Refresh {
                targets,
                due,
                all,
                filter,
                expect,
            } => f
                .debug_struct("Refresh")
                .field("targets", targets)
                .field("due", due)
                .field("all", all)
                .field("where", filter)
                .field("expect", expect)
                .finish(),
            Request::Verify {
                targets,
                filter,
                expect,
            } => f
                .debug_struct("Verify")
                .field("targets", targets)
                .field("where", filter)
                .field("expect", expect)
                .finish(),
            Request::Import { file, text, update } => f
                .debug_struct("Import")
                .field("file", file)
                .field("text", &format_args!("<{} bytes, redacted>", text.len()))
                .field("update", update)
                .finish(),
            Request::ImportStream {
                file,
                update,
                from_line,
            } => f
                .debug_struct("ImportStream")
                .field("file", file)
                .field("update", update)
                .field("from_line", from_line)
                .finish(),
            Request::Revoke {
                targets,
                filter,
                local_only_reason,
                dry_run,
                expect,
            } => f
                .debug_struct("Revoke")
                .field("targets", targets)
                .field("where", filter)
                .field("expect", expect)
                .field("local_only_reason", local_only_reason)
                .field("dry_run", dry_run)
                .finish(),
            Request::Purge { dry_run } => {
                f.debug_struct("Purge").field("dry_run", dry_run).finish()
            }
            Request::AuditTail { n } => f.debug_struct("AuditTail").field("n", n).finish(),
            Request::AuditTailStream { n } => {
                f.debug_struct("AuditTailStream").field("n", n).finish()
            }
            Request::AuditPage {
                before_seq,
                limit,
                tenant,
                actor,
                action,
                outcome,
            } => f
                .debug_struct("AuditPage")
                .field("before_seq", before_seq)
                .field("limit", limit)
                .field("tenant", tenant)
                .field("actor", actor)
                .field("action", action)
                .field("outcome", outcome)
                .finish(),
            Request::Session { event } => f.debug_struct("Session").field("event", event).finish(),
            Request::AuditVerify => f.write_str("AuditVerify"),
            Request::AuditQuarantine { from } => f
                .debug_struct("AuditQuarantine")
                .field("from", from)
                .finish(),
            Request::Watch => f.write_str("Watch"),
            Request::WhoAmI => f.write_str("WhoAmI"),
            Request::KeysStatus => f.write_str("KeysStatus"),
            Request::Forecast { days, limit } => f
                .debug_struct("Forecast")
                .field("days", days)
                .field("limit", limit)
                .finish(),
            Request::ForecastStream { days } => f
                .debug_struct("ForecastStream")
                .field("days", days)
                .finish(),
            Request::Link {
                target,
                new_tenant,
                environment,
                expires_secs,
            } => f
                .debug_struct("Link")
                .field("target", target)
                .field("new_tenant", new_tenant)
                .field("environment", environment)
                .field("expires_secs", expires_secs)
                .finish(),
            Request::Links => f.write_str("Links"),
            Request::LinkCampaign {
                filter,
                expect,
                expires_secs,
            } => f
                .debug_struct("LinkCampaign")
                .field("filter", filter)
                .field("expect", expect)
                .field("expires_secs", expires_secs)
                .finish(),
            Request::Campaigns => f.write_str("Campaigns"),
            Request::Incidents => f.write_str("Incidents"),
            Request::DbBackup { path } => f.debug_struct("DbBackup").field("path", path).finish(),
            Request::DbRestoreCheck { path } => f
                .debug_struct("DbRestoreCheck")
                .field("path", path)
                .finish(),
            Request::Incident { id } => f.debug_struct("Incident").field("id", id).finish(),
            Request::Campaign { id } => f.debug_struct("Campaign").field("id", id).finish(),
            Request::LinksStream => f.write_str("LinksStream"),
            Request::LinkCancel { id } => f.debug_struct("LinkCancel").field("id", id).finish(),
            Request::SupportBundle { target, since } => f
                .debug_struct("SupportBundle")
                .field("target", target)
                .field("since", since)
                .finish(),
            Request::Posture => f.write_str("Posture"),
            Request::ApikeyCreate {
                name,
                realms,
                environment,
            } => f
                .debug_struct("ApikeyCreate")
                .field("name", name)
                .field("realms", realms)
                .field("environment", environment)
                .finish(),
            Request::ApikeyList => f.write_str("ApikeyList"),
            Request::ApikeyRevoke { id } => f.debug_struct("ApikeyRevoke").field("id", id).finish(),
            Request::AuditExport { format, filter } => f
                .debug_struct("AuditExport")
                .field("format", format)
                .field("filter", filter)
                .finish(),
            Request::AuditPubkey => f.write_str("AuditPubkey"),
            Request::AuditArchive => f.write_str("AuditArchive"),
        }
    }
}

fn first_line() -> usize {
    1
}

impl Request {
    /// The verb, as audit records and denials name it.
    pub fn verb(&self) -> Action {
        match self {
            Request::List { .. } | Request::Window(_) | Request::ListStream { .. } => Action::List,
            Request::Show { .. } => Action::Show,
            Request::Refresh { .. } => Action::Refresh,
            Request::Verify { .. } => Action::Verify,
            Request::Import { .. } | Request::ImportStream { .. } => Action::Import,
            Request::Revoke { .. } => Action::Revoke,
            Request::Purge { .. } => Action::Purge,
            Request::AuditTail { .. } | Request::AuditTailStream { .. } => Action::AuditTail,
            Request::AuditPage { .. } => Action::AuditPage,
            Request::Session { event } => event.action(),
            Request::AuditVerify => Action::AuditVerify,
            Request::AuditQuarantine { .. } => Action::ChainRepaired,
            Request::Watch => Action::Watch,
            Request::WhoAmI => Action::WhoAmI,
            Request::KeysStatus => Action::KeysStatus,
            Request::Forecast { .. } | Request::ForecastStream { .. } => Action::Forecast,
            Request::Link { .. } => Action::LinkIssued,
            Request::Links | Request::LinksStream => Action::LinkList,
            Request::LinkCampaign { .. } => Action::LinkCampaign,
            Request::Campaigns | Request::Campaign { .. } => Action::LinkList,
            Request::Incidents | Request::Incident { .. } => Action::IncidentsShown,
            Request::DbBackup { .. } => Action::DatabaseBackup,
            Request::DbRestoreCheck { .. } => Action::RestoreCheck,
            Request::LinkCancel { .. } => Action::LinkCancelled,
            Request::SupportBundle { .. } => Action::SupportBundle,
            Request::Posture => Action::PostureReport,
            Request::ApikeyCreate { .. } => Action::ApiKeyCreated,
            Request::ApikeyList => Action::ApiKeysListed,
            Request::ApikeyRevoke { .. } => Action::ApiKeyRevoked,
            Request::AuditExport { .. } => Action::AuditExport,
            Request::AuditPubkey => Action::AuditPubkey,
            Request::AuditArchive => Action::AuditArchive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Denied,
    NotFound,
    Ambiguous,
    Input,
    Internal,
}

/// Who was refused what, with which role: a denial a client can act on without parsing
/// the message (a console names the role it would need).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    pub account: String,
    pub role: Role,
    pub what: String,
}

/// Written by the daemon only: the client reads a reply's result straight into the type
/// it asked for (`client::socket`), never through this enum.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    Ok {
        /// Encoded once, as text: a list of 100,000 connections is written as it was
        /// serialized, not first built as a tree of `serde_json::Value`s (several hundred
        /// megabytes) and then serialized again.
        result: Box<serde_json::value::RawValue>,
    },
    Error {
        kind: ErrorKind,
        message: String,
        /// With `kind: denied` (protocol 1 on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        denial: Option<Denial>,
    },
}

impl Reply {
    pub fn from_result(r: Result<Box<serde_json::value::RawValue>, ServiceError>) -> Reply {
        match r {
            Ok(result) => Reply::Ok { result },
            Err(e) => {
                let kind = match &e {
                    ServiceError::Denied { .. } => ErrorKind::Denied,
                    ServiceError::NotFound(_) => ErrorKind::NotFound,
                    ServiceError::Ambiguous(_) => ErrorKind::Ambiguous,
                    ServiceError::Input(_) => ErrorKind::Input,
                    ServiceError::Internal(_) => ErrorKind::Internal,
                };
                let message = match &e {
                    ServiceError::Internal(inner) => format!("{inner:#}"),
                    other => other.to_string(),
                };
                let denial = match e {
                    ServiceError::Denied {
                        account,
                        role,
                        what,
                    } => Some(Denial {
                        account,
                        role,
                        what,
                    }),
                    _ => None,
                };
                Reply::Error {
                    kind,
                    message,
                    denial,
                }
            }
        }
    }
}

/// A request as one line on the socket, with the interface the client declares, if any: the
/// `interface` field beside `op`. Informational only: it names the front end in the audit
/// log and never bears on the role, which comes from the kernel.
pub fn encode_line(req: &Request, interface: Option<Interface>) -> serde_json::Result<Vec<u8>> {
    let mut v = serde_json::to_value(req)?;
    if let (Some(i), Some(fields)) = (interface, v.as_object_mut()) {
        fields.insert("interface".into(), serde_json::to_value(i)?);
    }
    let mut line = serde_json::to_vec(&v)?;
    line.push(b'\n');
    Ok(line)
}

/// Reads a request line; the error (an input error, so a bad-request reply) says what is
/// wrong with it.
pub fn decode_line(line: &[u8]) -> Result<(Request, Option<Interface>), ServiceError> {
    let malformed = |why: String| ServiceError::Input(format!("malformed request: {why}"));
    let mut v: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
    let declared = match v.as_object_mut().and_then(|o| o.remove("interface")) {
        None => None,
        Some(i) => match serde_json::from_value::<Interface>(i.clone()) {
            // Only the operators' front ends: a socket client claiming to be the scheduler
            // or the token API would mislead whoever reads the audit log.
            Ok(i @ (Interface::Cli | Interface::Tui)) => Some(i),
            _ => {
                return Err(malformed(format!(
                    "interface {i} cannot be declared on the operators' socket; expected \"cli\" or \"tui\""
                )))
            }
        },
    };
    let request = serde_json::from_value(v).map_err(|e| malformed(e.to_string()))?;
    Ok((request, declared))
}

impl From<ServiceError> for Reply {
    fn from(e: ServiceError) -> Reply {
        Reply::from_result(Err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_request_never_prints_its_tokens() {
        let r = Request::Import {
            file: "grants.csv".into(),
            text: "tenant,realm_id,environment,refresh_token\na,1,sandbox,RT1-very-secret\n".into(),
            update: false,
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("RT1-very-secret"), "{shown}");
        assert!(
            shown.contains("grants.csv") && shown.contains("redacted"),
            "{shown}"
        );
        let shown = format!(
            "{:?}",
            Request::Show {
                target: "acme".into()
            }
        );
        assert!(shown.contains("acme"), "{shown}");
    }

    #[test]
    fn a_revoke_line_carries_its_filter_as_where_and_purge_defaults_to_acting() {
        let (req, _) = decode_line(
            br#"{"op":"revoke","where":"status:needs_reconnect idle>90d","dry_run":true}"#,
        )
        .unwrap();
        let Request::Revoke {
            targets,
            filter,
            local_only_reason,
            dry_run,
            expect,
        } = &req
        else {
            panic!("{req:?}")
        };
        assert!(targets.is_empty() && local_only_reason.is_none() && *dry_run);
        assert_eq!(*expect, None);
        assert_eq!(filter.as_deref(), Some("status:needs_reconnect idle>90d"));
        assert_eq!(req.verb(), Action::Revoke);
        let line = encode_line(&req, None).unwrap();
        assert!(String::from_utf8_lossy(&line).contains(r#""where":"#));
        let (req, _) = decode_line(br#"{"op":"purge"}"#).unwrap();
        assert!(matches!(req, Request::Purge { dry_run: false }));
        assert!(decode_line(br#"{"op":"purge","older_than":"1d"}"#).is_err());
    }

    #[test]
    fn a_request_line_may_declare_the_operators_front_end_and_nothing_else() {
        let line = encode_line(&Request::WhoAmI, Some(Interface::Tui)).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let (req, declared) = decode_line(&line).unwrap();
        assert!(matches!(req, Request::WhoAmI));
        assert_eq!(declared, Some(Interface::Tui));
        let (_, declared) = decode_line(br#"{"op":"show","target":"acme"}"#).unwrap();
        assert_eq!(declared, None);
        let e = decode_line(br#"{"op":"who_am_i","interface":"scheduler"}"#).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("\"scheduler\"") && e.contains("\"tui\""), "{e}");
        assert!(decode_line(br#"{"op":"who_am_i","interface":"tv"}"#).is_err());
        // Unknown fields are still refused.
        assert!(decode_line(br#"{"op":"show","target":"acme","role":"admin"}"#).is_err());
    }
}
