//! Classifying everything Intuit can answer. Only `invalid_grant` blames the tenant;
//! `invalid_client` blames our configuration; the rest are worth retrying.

use qbo_core::domain::ErrorClass;
use std::fmt;
use std::time::Duration;

/// A failed Intuit call. Carries the `intuit_tid` Intuit support asks for, and never any
/// token or secret: `detail` is built from status codes and Intuit's error fields only.
#[derive(Debug, Clone)]
pub struct IntuitError {
    pub class: ErrorClass,
    pub status: Option<u16>,
    pub intuit_tid: Option<String>,
    pub retry_after: Option<Duration>,
    pub detail: String,
}

impl fmt::Display for IntuitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.detail)?;
        if let Some(tid) = &self.intuit_tid {
            write!(f, " (intuit_tid {tid})")?;
        }
        Ok(())
    }
}

impl std::error::Error for IntuitError {}

impl IntuitError {
    /// A request this process cut off itself because its lease could not outlast it.
    pub(crate) fn timed_out() -> IntuitError {
        IntuitError {
            class: ErrorClass::Transient,
            status: None,
            intuit_tid: None,
            retry_after: None,
            detail: "timed out waiting for Intuit".to_string(),
        }
    }
}

/// Longest error text we keep from a response body.
const DETAIL_LIMIT: usize = 300;

pub(crate) fn transport(e: &reqwest::Error) -> IntuitError {
    let what = if e.is_timeout() {
        "timed out waiting for Intuit"
    } else if e.is_connect() {
        "could not connect to Intuit"
    } else {
        "the connection to Intuit failed"
    };
    IntuitError {
        class: ErrorClass::Transient,
        status: None,
        intuit_tid: None,
        retry_after: None,
        detail: what.to_string(),
    }
}

/// Classifies a token-endpoint (or revoke) answer that was not a usable success.
pub(crate) fn classify_oauth(
    status: u16,
    body: &str,
    tid: Option<String>,
    retry_after: Option<Duration>,
) -> IntuitError {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.as_str())
        .map(str::to_string);
    let desc = parsed
        .as_ref()
        .and_then(|v| v.get("error_description"))
        .and_then(|e| e.as_str())
        .map(clip);
    let class = match (status, code.as_deref()) {
        (429, _) => ErrorClass::RateLimited,
        (s, _) if s >= 500 => ErrorClass::Transient,
        (_, Some("invalid_grant")) => ErrorClass::InvalidGrant,
        (_, Some("invalid_client")) => ErrorClass::InvalidClient,
        // An answer without a JSON error code is an HTML page or garbage from a proxy.
        (_, None) => ErrorClass::Transient,
        _ => ErrorClass::Other,
    };
    let detail = match (&code, &desc) {
        (Some(c), Some(d)) => format!("HTTP {status} {c}: {d}"),
        (Some(c), None) => format!("HTTP {status} {c}"),
        _ => format!("HTTP {status} {}", describe_body(body)),
    };
    IntuitError {
        class,
        status: Some(status),
        intuit_tid: tid,
        retry_after,
        detail,
    }
}

/// Classifies a QBO API answer (CompanyInfo): JSON faults with lower-case keys, and 429s
/// that arrive as XML even when JSON was asked for.
pub(crate) fn classify_api(
    status: u16,
    body: &str,
    tid: Option<String>,
    retry_after: Option<Duration>,
) -> IntuitError {
    let fault_code = api_fault_code(body);
    let class = match status {
        429 => ErrorClass::RateLimited,
        s if s >= 500 => ErrorClass::Transient,
        // 401 on an API call means the access token is expired or the grant is gone; the
        // caller decides (refresh first; an invalid_grant on refresh is the real verdict).
        401 => ErrorClass::InvalidGrant,
        403 => ErrorClass::Other,
        _ if fault_code.is_none() && serde_json::from_str::<serde_json::Value>(body).is_err() => {
            ErrorClass::Transient
        }
        _ => ErrorClass::Other,
    };
    let detail = match fault_code {
        Some(c) => format!("HTTP {status} fault {c}"),
        None => format!("HTTP {status} {}", describe_body(body)),
    };
    IntuitError {
        class,
        status: Some(status),
        intuit_tid: tid,
        retry_after,
        detail,
    }
}

fn api_fault_code(body: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let fault = v.get("fault").or_else(|| v.get("Fault"))?;
        let err = fault.get("error").or_else(|| fault.get("Error"))?.get(0)?;
        return err.get("code").and_then(|c| c.as_str()).map(str::to_string);
    }
    // XML: <Error code="3001">
    let i = body.find("<Error code=\"")? + "<Error code=\"".len();
    let rest = &body[i..];
    let end = rest.find('"')?;
    let code = &rest[..end];
    code.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| code.to_string())
}

fn describe_body(body: &str) -> String {
    let t = body.trim_start();
    if t.is_empty() {
        "with an empty body".into()
    } else if t.starts_with('<') {
        if t.to_ascii_lowercase().contains("<html") {
            "with an HTML page".into()
        } else {
            "with an XML body".into()
        }
    } else {
        "with an unparsable body".into()
    }
}

fn clip(s: &str) -> String {
    s.chars().take(DETAIL_LIMIT).collect()
}

pub(crate) fn unparsable_success(status: u16, tid: Option<String>) -> IntuitError {
    IntuitError {
        class: ErrorClass::Transient,
        status: Some(status),
        intuit_tid: tid,
        retry_after: None,
        detail: format!("HTTP {status} but the body is not a token response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_are_classified() {
        let c = |s, b| classify_oauth(s, b, None, None).class;
        assert_eq!(
            c(400, r#"{"error":"invalid_grant"}"#),
            ErrorClass::InvalidGrant
        );
        assert_eq!(
            c(401, r#"{"error":"invalid_client"}"#),
            ErrorClass::InvalidClient
        );
        assert_eq!(c(400, r#"{"error":"invalid_request"}"#), ErrorClass::Other);
        assert_eq!(c(503, "<html>down</html>"), ErrorClass::Transient);
        assert_eq!(c(429, ""), ErrorClass::RateLimited);
        assert_eq!(c(400, "<html>proxy</html>"), ErrorClass::Transient);
    }

    #[test]
    fn api_faults_are_read_from_json_and_xml() {
        let json = r#"{"fault":{"error":[{"message":"m","detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}"#;
        let e = classify_api(401, json, Some("tid-1".into()), None);
        assert_eq!(e.class, ErrorClass::InvalidGrant);
        assert!(e.detail.contains("3200"));
        let xml = r#"<IntuitResponse><Fault type="SERVICE"><Error code="3001"><Message>ThrottleExceeded</Message></Error></Fault></IntuitResponse>"#;
        let e = classify_api(429, xml, None, Some(Duration::from_secs(7)));
        assert_eq!(e.class, ErrorClass::RateLimited);
        assert!(e.detail.contains("3001"));
    }
}
