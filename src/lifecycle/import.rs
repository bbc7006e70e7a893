//! Importing existing connections from a JSON array or a CSV file. All or nothing: every
//! row is parsed and checked first, naming the line of the first bad one; then everything
//! is written, sealed and audited in one transaction.

use super::{Engine, Status};
use crate::audit::{AuditEvent, Outcome};
use crate::domain::{Environment, RealmId};
use crate::identity::Actor;
use crate::store::NewConnection;
use crate::vault::{AccessToken, RefreshToken, TokenColumn};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(pub String);

/// One validated row.
#[derive(Debug)]
pub struct ImportEntry {
    pub line: usize,
    pub tenant: String,
    pub realm_id: RealmId,
    pub environment: Environment,
    pub company_name: Option<String>,
    pub refresh_token: RefreshToken,
    pub access_token: Option<AccessToken>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub rows: Vec<ImportedRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportedRow {
    pub line: usize,
    pub connection_id: i64,
    pub tenant: String,
    pub realm_id: String,
    pub environment: Environment,
    pub action: String,
}

/// Parses a file's text. JSON when it starts with `[`, CSV with a header otherwise.
pub fn parse(text: &str, file: &str) -> Result<Vec<ImportEntry>, ImportError> {
    let trimmed = text.trim_start();
    let entries = if trimmed.starts_with('[') {
        parse_json(text, file)?
    } else {
        parse_csv(text, file)?
    };
    if entries.is_empty() {
        return Err(ImportError(format!("{file}: no connections to import")));
    }
    let mut seen = HashSet::new();
    for e in &entries {
        if !seen.insert((e.environment, e.realm_id.clone())) {
            return Err(ImportError(format!(
                "{file}:{}: {} realm {} appears twice in the file",
                e.line, e.environment, e.realm_id
            )));
        }
    }
    Ok(entries)
}

fn parse_json(text: &str, file: &str) -> Result<Vec<ImportEntry>, ImportError> {
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text).map_err(|e| {
        ImportError(format!(
            "{file}:{}: not a JSON array of objects: {}",
            e.line(),
            strip_position(&e.to_string())
        ))
    })?;
    items
        .into_iter()
        .map(|raw| {
            // The raw value borrows from `text`, so its offset gives the line it starts on.
            let offset = (raw.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
            let line = text[..offset.min(text.len())].matches('\n').count() + 1;
            let row: RawRow = serde_json::from_str(raw.get()).map_err(|e| {
                ImportError(format!("{file}:{line}: {}", strip_position(&e.to_string())))
            })?;
            validate(row, line).map_err(|m| ImportError(format!("{file}:{line}: {m}")))
        })
        .collect()
}

fn parse_csv(text: &str, file: &str) -> Result<Vec<ImportEntry>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError(format!("{file}:1: cannot read the CSV header: {e}")))?
        .clone();
    for required in ["tenant", "realm_id", "environment", "refresh_token"] {
        if !headers.iter().any(|h| h == required) {
            return Err(ImportError(format!(
                "{file}:1: the CSV header has no `{required}` column; expected tenant, realm_id, environment, refresh_token \
                 and optionally access_token, access_expires_at, refresh_expires_at, company_name"
            )));
        }
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            ImportError(format!("{file}:{line}: malformed CSV record"))
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let row: RawRow = record.deserialize(Some(&headers)).map_err(|e| {
            let msg = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
                _ => "malformed record".into(),
            };
            ImportError(format!("{file}:{line}: {msg}"))
        })?;
        out.push(validate(row, line).map_err(|m| ImportError(format!("{file}:{line}: {m}")))?);
    }
    Ok(out)
}

fn validate(row: RawRow, line: usize) -> Result<ImportEntry, String> {
    let tenant = row.tenant.trim().to_string();
    if tenant.is_empty() || tenant.len() > 200 {
        return Err("tenant must be 1 to 200 characters".into());
    }
    let realm_id = RealmId::parse(&row.realm_id)?;
    let environment: Environment = row.environment.parse()?;
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
        company_name: row
            .company_name
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        refresh_token,
        access_token,
        access_expires_at,
        refresh_expires_at,
    })
}

/// serde_json appends " at line L column C" relative to the fragment; the caller already
/// names the line in the file.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl Engine {
    pub async fn import(
        &self,
        entries: Vec<ImportEntry>,
        update: bool,
        actor: &Actor,
        file: &str,
    ) -> anyhow::Result<ImportReport> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let mut report = ImportReport {
            created: 0,
            updated: 0,
            rows: Vec::new(),
        };
        for e in entries {
            let existing = tx.find_by_realm(e.environment, e.realm_id.as_str()).await?;
            let new = NewConnection {
                tenant: e.tenant.clone(),
                realm_id: e.realm_id.clone(),
                environment: e.environment,
                company_name: e.company_name.clone(),
                scopes: "com.intuit.quickbooks.accounting".into(),
                status: Status::Active,
                access_expires_at: e.access_token.as_ref().and(e.access_expires_at),
                refresh_issued_at: None,
                refresh_expires_at: e.refresh_expires_at,
            };
            let (id, action) = match existing {
                Some(rec) if update => {
                    tx.update_imported(rec.id, &new, now).await?;
                    (rec.id, "updated")
                }
                Some(rec) => {
                    return Err(ImportError(format!(
                        "{file}:{}: {} realm {} already exists as tenant {:?}; nothing was imported (use --update to replace its tokens)",
                        e.line, e.environment, e.realm_id, rec.tenant
                    ))
                    .into())
                }
                None => (tx.insert_connection(&new, now).await?, "created"),
            };
            let access = e
                .access_token
                .as_ref()
                .map(|t| self.vault.seal(id, TokenColumn::Access, t.expose()));
            let refresh = self
                .vault
                .seal(id, TokenColumn::Refresh, e.refresh_token.expose());
            tx.set_sealed(id, access.as_deref(), &refresh).await?;
            let mut ev = AuditEvent::new(now, actor, "import", Outcome::Ok)
                .target(id, e.environment.as_str(), e.realm_id.as_str(), &e.tenant)
                .fingerprint("refresh", self.vault.fingerprint(e.refresh_token.expose()));
            if let Some(a) = &e.access_token {
                ev = ev.fingerprint("access", self.vault.fingerprint(a.expose()));
            }
            ev.reason = Some(format!("{action} from {file} line {}", e.line));
            self.audit(&mut tx, &ev).await?;
            if action == "created" {
                report.created += 1;
            } else {
                report.updated += 1;
            }
            report.rows.push(ImportedRow {
                line: e.line,
                connection_id: id,
                tenant: e.tenant,
                realm_id: e.realm_id.to_string(),
                environment: e.environment,
                action: action.to_string(),
            });
        }
        self.published(tx.commit().await?);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_name_the_bad_line() {
        let csv = "tenant,realm_id,environment,refresh_token\nacme,123,sandbox,RT1-a\nbeta,12x,sandbox,RT1-b\n";
        let e = parse(csv, "f.csv").unwrap_err().0;
        assert!(e.starts_with("f.csv:3: invalid realm id"), "{e}");
        let json = "[\n {\"tenant\":\"a\",\"realm_id\":\"1\",\"environment\":\"sandbox\",\"refresh_token\":\"RT1-a\"},\n {\"tenant\":\"b\",\"realm_id\":\"2\",\"environment\":\"prod\",\"refresh_token\":\"RT1-b\"}\n]";
        let e = parse(json, "f.json").unwrap_err().0;
        assert!(e.starts_with("f.json:3: unknown environment"), "{e}");
    }

    #[test]
    fn errors_never_quote_tokens() {
        let csv = "tenant,realm_id,environment,refresh_token,access_token\nacme,123,sandbox,RT1-secret-value,\n";
        assert!(parse(csv, "f").is_ok());
        let long = format!(
            "tenant,realm_id,environment,refresh_token\nacme,123,sandbox,{}\n",
            "s".repeat(5000)
        );
        let e = parse(&long, "f").unwrap_err().0;
        assert!(!e.contains("sss"), "{e}");
        assert!(e.contains("f:2: refresh_token"), "{e}");
    }

    #[test]
    fn duplicate_pairs_in_one_file_are_refused() {
        let csv =
            "tenant,realm_id,environment,refresh_token\na,1,sandbox,RT1-a\nb,1,sandbox,RT1-b\n";
        assert!(parse(csv, "f").unwrap_err().0.contains("f:3"));
    }
}
