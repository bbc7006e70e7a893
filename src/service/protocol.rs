//! Requests and replies: what the CLI asks of the service, whether in this process
//! (`--embedded`) or over the operators' socket (one JSON object per line). Both paths end
//! in `Service::handle`, so no operation is written twice.

use super::ServiceError;
use crate::domain::Environment;
use crate::lifecycle::Status;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    Ok { result: serde_json::Value },
    Error { kind: ErrorKind, message: String },
}

impl Reply {
    pub fn from_result(r: Result<serde_json::Value, ServiceError>) -> Reply {
        match r {
            Ok(result) => Reply::Ok { result },
            Err(e) => {
                let kind = match &e {
                    ServiceError::Denied { .. } | ServiceError::Refused(_) => ErrorKind::Denied,
                    ServiceError::NotFound(_) => ErrorKind::NotFound,
                    ServiceError::Ambiguous(_) => ErrorKind::Ambiguous,
                    ServiceError::Input(_) => ErrorKind::Input,
                    ServiceError::Internal(_) => ErrorKind::Internal,
                };
                let message = match &e {
                    ServiceError::Internal(inner) => format!("{inner:#}"),
                    other => other.to_string(),
                };
                Reply::Error { kind, message }
            }
        }
    }

    /// Back to the service's own result, on the client side.
    pub fn into_result(self) -> Result<serde_json::Value, ServiceError> {
        match self {
            Reply::Ok { result } => Ok(result),
            Reply::Error { kind, message } => Err(match kind {
                ErrorKind::Denied => ServiceError::Refused(message),
                ErrorKind::NotFound => ServiceError::NotFound(message),
                ErrorKind::Ambiguous => ServiceError::Ambiguous(message),
                ErrorKind::Input => ServiceError::Input(message),
                ErrorKind::Internal => ServiceError::Internal(anyhow::anyhow!(message)),
            }),
        }
    }
}
