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

/// How many events one narrowed page reads at most. A term that matches rarely (or never)
/// would otherwise read the log back to its start before answering: 21 s at ten million
/// events. A page that reaches this far without filling says where it stopped
/// (`next_before_seq`), and the reader asks again from there: each answer stays a fraction
/// of a second, and a console shows how far back it has looked.
#[cfg(not(test))]
pub const SCAN_WINDOW: i64 = 100_000;
/// A small window in tests, so that a log of a test's size is read in several.
#[cfg(test)]
pub const SCAN_WINDOW: i64 = 500;

impl Store {
    pub async fn audit_page(&self, q: &AuditQuery) -> anyhow::Result<AuditPage> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let narrowed = [&q.tenant, &q.actor, &q.action, &q.outcome]
            .iter()
            .any(|t| t.is_some());
        let before = q.before_seq.unwrap_or(i64::MAX);
        // The newest sequence when the reader starts from the top: the window is counted
        // down from it.
        let top = match q.before_seq {
            Some(b) => b,
            None if narrowed => self.audit_head_seq().await? + 1,
            None => i64::MAX,
        };
        let floor = if narrowed {
            top.saturating_sub(SCAN_WINDOW).max(0)
        } else {
            0
        };
        // Column names are fixed here; every value the caller gave is bound.
        let mut sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq < $1 AND seq >= $2");
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
                    patterns.len() + 2
                ));
            }
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", patterns.len() + 3));
        let events: Vec<AuditRecord> = crate::dispatch!(self, p => {
            let mut query = sqlx::query_as(&sql).bind(before).bind(floor);
            for pat in &patterns {
                query = query.bind(pat);
            }
            query.bind(limit).fetch_all(p).await
        })?;
        let next_before_seq = if events.len() as i64 == limit {
            events.last().map(|e| e.seq)
        } else if floor > 1 {
            // The window ran out before the page filled: older events remain to be read.
            Some(floor)
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
    use super::{contains_pattern, AuditQuery, SCAN_WINDOW};
    use crate::audit::{Action, AuditEvent, Outcome};

    /// A log of 2,000 events in which one tenant in 400 appears: a narrowed reader gets
    /// answers of at most a window each, goes on from where each stopped, and finds exactly
    /// what a reading of the whole log finds, newest first.
    #[tokio::test]
    async fn a_narrowed_page_reads_a_window_at_a_time_and_goes_on_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let db = qbo_core::config::DatabaseConfig {
            url: format!("sqlite://{}/a.db", dir.path().display()),
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(10),
        };
        let store = crate::Store::connect(&db, None).await.unwrap();
        store.migrate().await.unwrap();
        let actor = qbo_core::identity::Actor::daemon(qbo_core::identity::DaemonTask::Scheduler);
        let events: Vec<AuditEvent> =
            (0..2_000)
                .map(|i| {
                    let tenant = if i % 400 == 7 {
                        "rare-co".to_string()
                    } else {
                        format!("t{i}")
                    };
                    AuditEvent::new(chrono::Utc::now(), &actor, Action::Refresh, Outcome::Ok)
                        .target(1, "sandbox", "9130000000000001", &tenant)
                })
                .collect();
        let mut tx = store.begin().await.unwrap();
        let written = tx
            .audit_many(&events.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut expected: Vec<i64> = written
            .iter()
            .filter(|r| r.tenant.as_deref() == Some("rare-co"))
            .map(|r| r.seq)
            .collect();
        expected.reverse();
        assert_eq!(expected.len(), 5);

        let mut q = AuditQuery {
            limit: 200,
            tenant: Some("rare".into()),
            ..AuditQuery::default()
        };
        let (mut found, mut answers) = (Vec::new(), 0);
        loop {
            let page = store.audit_page(&q).await.unwrap();
            answers += 1;
            found.extend(page.events.iter().map(|e| e.seq));
            // Each answer read one window at most.
            if let (Some(from), Some(next)) = (q.before_seq, page.next_before_seq) {
                assert!(from - next <= SCAN_WINDOW, "{from} → {next}");
            }
            match page.next_before_seq {
                Some(next) => q.before_seq = Some(next),
                None => break,
            }
        }
        assert_eq!(found, expected);
        assert!(answers >= 4, "{answers} answers for a log of four windows");
        // Unnarrowed, a page is a page: full, whatever the window.
        let all = store
            .audit_page(&AuditQuery {
                limit: 1_000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(all.events.len(), 1_000);
    }

    #[test]
    fn like_wildcards_in_a_term_are_matched_literally() {
        assert_eq!(contains_pattern("Alice"), "%alice%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
