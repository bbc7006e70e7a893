//! Which events an export holds: a time range and the same narrowing terms as `audit tail`.

use crate::domain::InvalidValue;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The slice a review asks for. `since` and `until` are times as the log stores them
/// (RFC 3339, microseconds, UTC); `since` is inclusive, `until` exclusive. Tenant, actor and
/// action match as case-insensitive substrings (as `audit tail` filters), realm and outcome
/// exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFilter {
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub realm: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
}

/// A time as `--since`/`--until` take it: RFC 3339, a date (midnight UTC), or a duration
/// before `now` (`30d`, `12h`).
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidValue> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(midnight) = d.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc());
        }
    }
    if let Ok(d) = humantime::parse_duration(t) {
        if let Ok(d) = chrono::Duration::from_std(d) {
            if let Some(at) = now.checked_sub_signed(d) {
                return Ok(at);
            }
        }
    }
    Err(InvalidValue::from(format!(
        "time {t:?} is not understood; use RFC 3339 (2026-01-31T00:00:00Z), a date (2026-01-31) or a duration before now (30d)"
    )))
}

/// A time in the stored form, so that comparing text compares times.
fn stored(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl ExportFilter {
    /// The filter with its times in the stored form, checked; the error names the flag.
    pub fn normalized(mut self, now: DateTime<Utc>) -> Result<ExportFilter, InvalidValue> {
        for (flag, v) in [("--since", &mut self.since), ("--until", &mut self.until)] {
            if let Some(t) = v.as_deref() {
                let at = parse_time(t, now).map_err(|m| format!("{flag}: {m}"))?;
                *v = Some(stored(at));
            }
        }
        if let (Some(s), Some(u)) = (&self.since, &self.until) {
            if s >= u {
                return Err(InvalidValue::from(format!(
                    "--since {s} is not before --until {u}; the range would be empty"
                )));
            }
        }
        if let Some(o) = &self.outcome {
            if !matches!(o.as_str(), "ok" | "failed" | "denied") {
                return Err(InvalidValue::from(format!(
                    "--outcome {o:?} is not an outcome; use ok, failed or denied"
                )));
            }
        }
        for (flag, v) in [
            ("--tenant", &self.tenant),
            ("--realm", &self.realm),
            ("--actor", &self.actor),
            ("--action", &self.action),
        ] {
            if v.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(InvalidValue::from(format!(
                    "{flag} is empty; give a value or leave the flag out"
                )));
            }
        }
        Ok(self)
    }

    /// Whether rows are picked by content (tenant, realm, actor, action, outcome). Without
    /// such terms the export is a contiguous stretch of the chain, whose links the offline
    /// verifier checks too.
    pub fn picks_rows(&self) -> bool {
        [
            &self.tenant,
            &self.realm,
            &self.actor,
            &self.action,
            &self.outcome,
        ]
        .iter()
        .any(|v| v.is_some())
    }

    /// The terms, as `field=value` words, for the audit record of the export.
    pub fn describe(&self) -> String {
        super::query::describe_terms(
            "=",
            &[
                ("since", &self.since),
                ("until", &self.until),
                ("tenant", &self.tenant),
                ("realm", &self.realm),
                ("actor", &self.actor),
                ("action", &self.action),
                ("outcome", &self.outcome),
            ],
        )
    }
}

/// How an export is written: one JSON object per line, or CSV for a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(InvalidValue::from(format!(
                "export format {other:?} is not known; use --format jsonl or --format csv"
            ))),
        }
    }
}

/// Where the manifest of `file` lives: beside it, `FILE.manifest.json`.
pub fn manifest_path(file: &std::path::Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".manifest.json");
    std::path::PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_three_spellings_and_stored_in_one() {
        let now = DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let f = ExportFilter {
            since: Some("2026-03-01".into()),
            until: Some("1d".into()),
            ..Default::default()
        }
        .normalized(now)
        .unwrap();
        assert_eq!(f.since.as_deref(), Some("2026-03-01T00:00:00.000000Z"));
        assert_eq!(f.until.as_deref(), Some("2026-03-09T12:00:00.000000Z"));
        let e = ExportFilter {
            since: Some("last tuesday".into()),
            ..Default::default()
        }
        .normalized(now)
        .unwrap_err();
        assert!(
            e.0.contains("--since") && e.0.contains("\"last tuesday\""),
            "{e}"
        );
        assert!(!f.picks_rows());
    }
}
