//! Requests and replies: what the CLI asks of the service, whether in this process
//! (`--embedded`) or over the operators' socket (one JSON object per line). Both paths end
//! in `Service::handle`, so no operation is written twice.

use super::ServiceError;
use crate::domain::{Environment, Status};
use crate::identity::Role;
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
    },
    Verify {
        targets: Vec<String>,
    },
    Import {
        file: String,
        text: String,
        #[serde(default)]
        update: bool,
    },
    AuditTail {
        n: i64,
    },
    AuditVerify,
    /// Stream changes (one reply per committed change) until the client hangs up.
    Watch,
    /// Who the daemon thinks the caller is, and with which role.
    WhoAmI,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::List {
                status,
                environment,
            } => f
                .debug_struct("List")
                .field("status", status)
                .field("environment", environment)
                .finish(),
            Request::Show { target } => f.debug_struct("Show").field("target", target).finish(),
            Request::Refresh { targets, due, all } => f
                .debug_struct("Refresh")
                .field("targets", targets)
                .field("due", due)
                .field("all", all)
                .finish(),
            Request::Verify { targets } => {
                f.debug_struct("Verify").field("targets", targets).finish()
            }
            Request::Import { file, text, update } => f
                .debug_struct("Import")
                .field("file", file)
                .field("text", &format_args!("<{} bytes, redacted>", text.len()))
                .field("update", update)
                .finish(),
            Request::AuditTail { n } => f.debug_struct("AuditTail").field("n", n).finish(),
            Request::AuditVerify => f.write_str("AuditVerify"),
            Request::Watch => f.write_str("Watch"),
            Request::WhoAmI => f.write_str("WhoAmI"),
        }
    }
}

impl Request {
    /// The verb, as audit records and denials name it.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::List { .. } => "list",
            Request::Show { .. } => "show",
            Request::Refresh { .. } => "refresh",
            Request::Verify { .. } => "verify",
            Request::Import { .. } => "import",
            Request::AuditTail { .. } => "audit tail",
            Request::AuditVerify => "audit verify",
            Request::Watch => "watch",
            Request::WhoAmI => "whoami",
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    Ok {
        result: serde_json::Value,
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
    pub fn from_result(r: Result<serde_json::Value, ServiceError>) -> Reply {
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
}
