//! Reading the log a page at a time, newest first, narrowed by tenant, actor, action and
//! outcome: what the console's audit view scrolls through and `audit tail` filters by.
//! Pages are addressed by sequence number (older than the last one read), so a page stays
//! the same however many events are appended while the reader scrolls, and each one is a
//! walk down the primary key that stops after `limit` rows.

use super::chain::AUDIT_COLUMNS;
use super::AuditRecord;
use crate::Store;
pub use qbo_core::audit::{AuditPage, AuditQuery, MAX_PAGE};

/// A `LIKE` pattern matching `text` anywhere, with `LIKE`'s own wildcards in it taken
/// literally (escaped with `\`). The audit view's page and an export's rows match alike.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Store {
    pub async fn audit_page(&self, q: &AuditQuery) -> anyhow::Result<AuditPage> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        // Column names are fixed here; every value the caller gave is bound.
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq < $1");
        let mut patterns = Vec::new();
        for (column, value) in [
            ("tenant", &q.tenant),
            ("actor_account", &q.actor),
            ("action", &q.action),
            ("outcome", &q.outcome),
        ] {
            if let Some(v) = value {
                patterns.push(contains_pattern(v));
                sql.push_str(&format!(
                    " AND lower(COALESCE({column}, '')) LIKE ${} ESCAPE '\\'",
                    patterns.len() + 1
                ));
            }
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", patterns.len() + 2));
        let before = q.before_seq.unwrap_or(i64::MAX);
        let events: Vec<AuditRecord> = crate::dispatch!(self, p => {
            let mut query = sqlx::query_as(&sql).bind(before);
            for pat in &patterns {
                query = query.bind(pat);
            }
            query.bind(limit).fetch_all(p).await
        })?;
        let next_before_seq = if events.len() as i64 == limit {
            events.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(AuditPage {
            events,
            next_before_seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_wildcards_in_a_term_are_matched_literally() {
        assert_eq!(contains_pattern("Alice"), "%alice%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
