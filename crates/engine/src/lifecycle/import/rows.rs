//! One row of an import file: what it may hold, checked before anything is written.

use super::ImportEntry;
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, InvalidValue, RealmId, MAX_NAME_CHARS};
use qbo_core::vault::{AccessToken, RefreshToken};
use serde::Deserialize;
use zeroize::Zeroizing;

/// A row as the file gives it, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRow {
    tenant: String,
    realm_id: String,
    environment: String,
    refresh_token: Zeroizing<String>,
    #[serde(default)]
    access_token: Option<Zeroizing<String>>,
    #[serde(default)]
    access_expires_at: Option<String>,
    #[serde(default)]
    refresh_expires_at: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
}

/// A name may carry any text (it is escaped wherever it is shown) but NUL, which
/// PostgreSQL cannot store and which no name has a use for.
fn check_name(key: &str, v: &str) -> Result<(), String> {
    if v.contains('\0') {
        return Err(format!(
            "{key} contains a NUL character; remove it from the file"
        ));
    }
    let n = v.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "{key} is {n} characters; at most {MAX_NAME_CHARS} are accepted: shorten it in the file"
        ));
    }
    Ok(())
}

/// A token is one line of printable text; a line break inside means the file is broken
/// (a field that swallowed the next line), and would be sent to Intuit as is.
fn check_token(key: &str, v: &str) -> Result<(), String> {
    if v.contains(['\r', '\n']) {
        return Err(format!(
            "{key} contains a line break (CR or LF); a token is a single line: fix the quoting in the file"
        ));
    }
    if v.contains(char::is_control) {
        return Err(format!(
            "{key} contains a control character; a token is printable text: copy it again from its source"
        ));
    }
    Ok(())
}

pub(super) fn validate(row: RawRow, line: usize) -> Result<ImportEntry, RowProblem> {
    check(row, line).map_err(RowProblem)
}

/// What is wrong with a row, without its line (the reader names that).
#[derive(Debug)]
pub(super) struct RowProblem(pub String);

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn check(row: RawRow, line: usize) -> Result<ImportEntry, String> {
    let tenant = row.tenant.trim().to_string();
    if tenant.is_empty() {
        return Err(format!(
            "tenant is empty; give 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    check_name("tenant", &tenant)?;
    let company_name = row
        .company_name
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(c) = &company_name {
        check_name("company_name", c)?;
    }
    check_token("refresh_token", row.refresh_token.trim())?;
    if let Some(a) = &row.access_token {
        check_token("access_token", a.trim())?;
    }
    let realm_id = RealmId::parse(&row.realm_id).map_err(|e| e.0)?;
    let environment: Environment = row.environment.parse().map_err(|e: InvalidValue| e.0)?;
    let refresh_token =
        RefreshToken::new(row.refresh_token.trim()).map_err(|e| format!("refresh_token: {e}"))?;
    let access_token = match row
        .access_token
        .as_ref()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(t) => Some(AccessToken::new(t).map_err(|e| format!("access_token: {e}"))?),
        None => None,
    };
    let time = |v: Option<String>, key: &str| -> Result<Option<DateTime<Utc>>, String> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| {
                    format!("{key} {s:?} is not an RFC 3339 time such as 2026-11-23T14:00:00Z")
                }),
        }
    };
    let access_expires_at = time(row.access_expires_at, "access_expires_at")?;
    let refresh_expires_at = time(row.refresh_expires_at, "refresh_expires_at")?;
    if access_expires_at.is_some() && access_token.is_none() {
        return Err("access_expires_at is given without access_token".into());
    }
    Ok(ImportEntry {
        line,
        tenant,
        realm_id,
        environment,
        company_name,
        refresh_token,
        access_token,
        access_expires_at,
        refresh_expires_at,
    })
}

/// serde_json appends " at line L column C" relative to the fragment; the caller already
/// names the line in the file.
pub(super) fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
