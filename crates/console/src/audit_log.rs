//! The audit view's state: the pages read so far (newest first), a filter over tenant,
//! actor, action and outcome, and the cursor. The filter narrows what is loaded as it is
//! typed; its field terms also go to the daemon with each page asked for (`query`), so
//! older pages hold only matching events.

use crate::ConsoleError;
use qbo_service::{AuditQuery, AuditRecord};

/// Events asked for per page.
pub const PAGE: usize = 200;

#[derive(Debug, Default)]
pub struct AuditLog {
    records: Vec<AuditRecord>,
    visible: Vec<usize>,
    filter: AuditFilter,
    pub filter_text: String,
    pub filter_error: Option<String>,
    pub cursor: usize,
    pub offset: usize,
    /// A page has been asked for and has not arrived.
    pub loading: bool,
    /// The daemon said there is nothing older.
    pub exhausted: bool,
    /// Where the next older page starts: below the last event read, or, for a narrowed
    /// page that read its whole window without filling, below that window.
    next: Option<i64>,
    /// The field terms the loaded pages were asked with.
    asked: Terms,
}

/// The field terms of a filter, as the daemon takes them (one text per field).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Terms {
    tenant: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct AuditFilter {
    /// (field, lower-cased value); field `None` searches all four.
    parts: Vec<(Option<Field>, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Tenant,
    Actor,
    Action,
    Outcome,
}

impl AuditFilter {
    fn parse(text: &str) -> Result<AuditFilter, ConsoleError> {
        let mut parts = Vec::new();
        for word in text.split_whitespace() {
            let lower = word.to_lowercase();
            let part = match lower.split_once(':') {
                Some((f, v)) => {
                    let field = match f {
                        "tenant" => Field::Tenant,
                        "actor" => Field::Actor,
                        "action" => Field::Action,
                        "outcome" => Field::Outcome,
                        _ => {
                            return Err(ConsoleError::from(format!(
                                "audit filter term `{word}`: unknown field `{f}`; valid forms: \
                                 tenant:T actor:A action:X outcome:ok|failed|denied, or words \
                                 searching all four"
                            )))
                        }
                    };
                    (Some(field), v.to_string())
                }
                None => (None, lower),
            };
            parts.push(part);
        }
        Ok(AuditFilter { parts })
    }

    /// What the daemon can narrow by: the field terms (the last one of a field when it is
    /// repeated; the local filter still applies them all). Free words stay local: they
    /// search all four fields at once.
    fn terms(&self) -> Terms {
        let mut t = Terms::default();
        for (f, v) in &self.parts {
            let slot = match f {
                Some(Field::Tenant) => &mut t.tenant,
                Some(Field::Actor) => &mut t.actor,
                Some(Field::Action) => &mut t.action,
                Some(Field::Outcome) => &mut t.outcome,
                None => continue,
            };
            *slot = Some(v.clone());
        }
        t
    }

    fn matches(&self, r: &AuditRecord) -> bool {
        let has = |field: Field, v: &str| {
            let text = match field {
                Field::Tenant => r.tenant.as_deref().unwrap_or(""),
                Field::Actor => &r.actor_account,
                Field::Action => &r.action,
                Field::Outcome => &r.outcome,
            };
            text.to_lowercase().contains(v)
        };
        self.parts.iter().all(|(f, v)| match f {
            Some(f) => has(*f, v),
            None => [Field::Tenant, Field::Actor, Field::Action, Field::Outcome]
                .into_iter()
                .any(|f| has(f, v)),
        })
    }
}

impl AuditLog {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Adds an older page below what is shown; `next` is where the one after it starts
    /// (`None`: nothing older).
    pub(crate) fn append(&mut self, page: Vec<AuditRecord>, next: Option<i64>) {
        self.loading = false;
        self.exhausted = next.is_none();
        self.next = next;
        let start = self.records.len();
        self.records.extend(page);
        for i in start..self.records.len() {
            if self.filter.matches(&self.records[i]) {
                self.visible.push(i);
            }
        }
    }

    /// The page of events older than `before` (the newest when `None`), narrowed by the
    /// filter's field terms; remembered as what the loaded pages answer.
    pub fn query(&mut self, before: Option<i64>) -> AuditQuery {
        self.asked = self.filter.terms();
        AuditQuery {
            before_seq: before,
            limit: PAGE as i64,
            tenant: self.asked.tenant.clone(),
            actor: self.asked.actor.clone(),
            action: self.asked.action.clone(),
            outcome: self.asked.outcome.clone(),
        }
    }

    /// Takes a page if it answers the last query asked (the next page of the same filter);
    /// one asked under a filter since replaced is dropped.
    pub fn answer(&mut self, query: &AuditQuery, page: Vec<AuditRecord>, next: Option<i64>) {
        let same_terms = query.tenant == self.asked.tenant
            && query.actor == self.asked.actor
            && query.action == self.asked.action
            && query.outcome == self.asked.outcome;
        if same_terms && query.before_seq == self.next {
            self.append(page, next);
        }
    }

    /// How far back the narrowed reading has looked without filling the screen (the event
    /// number it goes on below), while it goes on.
    pub fn searched_to(&self) -> Option<i64> {
        self.next.filter(|_| self.loading)
    }

    /// Where the next older page starts, once a page has been read and more remain.
    pub fn next_before(&self) -> Option<i64> {
        self.next.filter(|_| !self.exhausted)
    }

    /// Whether the filter's field terms differ from those the loaded pages were asked with.
    pub fn needs_reload(&self) -> bool {
        self.filter.terms() != self.asked
    }

    /// Forgets the loaded pages (the filter stays), to read them again from the newest.
    pub fn restart(&mut self) {
        self.records.clear();
        self.visible.clear();
        self.cursor = 0;
        self.offset = 0;
        self.exhausted = false;
        self.loading = false;
        self.next = None;
    }

    /// The sequence number to ask for events before, for the next page.
    pub fn oldest_seq(&self) -> Option<i64> {
        self.records.last().map(|r| r.seq)
    }

    pub fn set_filter(&mut self, text: &str) {
        self.filter_text = text.to_string();
        match AuditFilter::parse(text) {
            Ok(f) => {
                self.filter = f;
                self.filter_error = None;
                self.visible = (0..self.records.len())
                    .filter(|&i| self.filter.matches(&self.records[i]))
                    .collect();
                self.cursor = self.cursor.min(self.visible.len().saturating_sub(1));
            }
            Err(e) => self.filter_error = Some(e.0),
        }
    }

    pub fn visible_len(&self) -> usize {
        self.visible.len()
    }

    pub fn window(&self, start: usize, n: usize) -> impl Iterator<Item = &AuditRecord> {
        self.visible
            .iter()
            .skip(start)
            .take(n)
            .map(|&i| &self.records[i])
    }

    pub fn selected(&self) -> Option<&AuditRecord> {
        self.visible.get(self.cursor).map(|&i| &self.records[i])
    }

    pub fn move_by(&mut self, delta: isize) {
        self.cursor = self
            .cursor
            .saturating_add_signed(delta)
            .min(self.visible.len().saturating_sub(1));
    }

    /// The filter as an export takes it: the field terms. Free words search the four
    /// fields at once on screen, which an export cannot, so a filter with any is refused
    /// (naming the fix) rather than exporting more than is shown.
    pub fn export_filter(&self) -> Result<qbo_service::ExportFilter, ConsoleError> {
        if let Some(e) = &self.filter_error {
            return Err(ConsoleError::from(format!(
                "the filter has a mistake, nothing exported: {e}"
            )));
        }
        if let Some((_, word)) = self.filter.parts.iter().find(|(f, _)| f.is_none()) {
            return Err(ConsoleError::from(format!(
                "the export takes field terms only; write `{word}` as tenant:{word}, actor:{word}, action:{word} or outcome:{word}; nothing exported"
            )));
        }
        let t = self.filter.terms();
        Ok(qbo_service::ExportFilter {
            tenant: t.tenant,
            actor: t.actor,
            action: t.action,
            outcome: t.outcome,
            ..Default::default()
        })
    }

    /// Whether the cursor is on the last row shown and older events may exist.
    pub fn wants_more(&self) -> bool {
        !self.loading && !self.exhausted && self.cursor + 1 >= self.visible.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qbo_service::fixtures::audit_records;

    #[test]
    fn the_audit_filter_narrows_by_field_and_by_word() {
        let mut log = AuditLog::default();
        log.append(audit_records(), None);
        let all = log.visible_len();
        log.set_filter("actor:alice");
        assert!(log.window(0, 99).all(|r| r.actor_account == "alice"));
        assert!(log.visible_len() < all);
        log.set_filter("outcome:denied");
        assert_eq!(log.visible_len(), 1);
        log.set_filter("globex refresh");
        assert!(log
            .window(0, 99)
            .all(|r| r.tenant.as_deref() == Some("globex") && r.action == "refresh"));
        log.set_filter("colour:red");
        assert!(log
            .filter_error
            .as_deref()
            .unwrap()
            .contains("`colour:red`"));
        // A bad term keeps the last good filter.
        assert!(log.window(0, 99).all(|r| r.action == "refresh"));
    }

    #[test]
    fn the_export_takes_the_field_terms_and_refuses_free_words() {
        let mut log = AuditLog::default();
        log.set_filter("tenant:acme outcome:denied");
        let f = log.export_filter().unwrap();
        assert_eq!(
            (f.tenant.as_deref(), f.outcome.as_deref(), f.actor),
            (Some("acme"), Some("denied"), None)
        );
        log.set_filter("acme");
        let e = log.export_filter().unwrap_err().0;
        assert!(
            e.contains("tenant:acme") && e.contains("nothing exported"),
            "{e}"
        );
    }

    #[test]
    fn a_narrowed_page_that_read_its_window_asks_on_from_where_it_stopped() {
        let mut log = AuditLog::default();
        log.set_filter("tenant:nobody");
        let first = log.query(None);
        // Nothing matched in the newest window: no events, but older ones remain.
        log.answer(&first, Vec::new(), Some(4_900_000));
        assert!(!log.exhausted);
        assert!(log.wants_more(), "an empty screen asks on");
        assert_eq!(log.next_before(), Some(4_900_000));
        let second = log.query(log.next_before());
        assert_eq!(second.before_seq, Some(4_900_000));
        // An answer to the first query again is not taken twice.
        log.answer(&first, audit_records(), None);
        assert_eq!(log.visible_len(), 0);
        log.answer(&second, Vec::new(), None);
        assert!(log.exhausted && !log.wants_more());
    }

    #[test]
    fn a_short_page_means_nothing_older() {
        let mut log = AuditLog::default();
        log.append(audit_records(), None);
        assert!(log.exhausted);
        assert!(!log.wants_more());
    }
}
