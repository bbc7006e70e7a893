//! Whether the chain can take another event. A row stored past the chain head (written by
//! hand, by a restore, by someone with database access) holds a sequence number the next
//! writer needs, so every audited action after it would fail on its own record. The check
//! here finds that before anything is done, and names the row and the verb that repairs it
//! (`audit quarantine`), so callers refuse with that message instead of acting and then
//! failing to record what they did (a refresh token spent at Intuit with its answer
//! thrown away).

use crate::{Store, Tx, TxInner};

pub use qbo_core::domain::ChainBlocked;

/// `(head, first past it, last past it)`: one row of the head and two index lookups, cheap
/// enough to run before every credential action and every refresh.
const PAST_HEAD: &str = "SELECT h.last_seq, \
     (SELECT MIN(seq) FROM audit_events WHERE seq > h.last_seq), \
     (SELECT MAX(seq) FROM audit_events WHERE seq > h.last_seq) \
     FROM audit_head h WHERE h.id = 1";

fn blocked(row: (i64, Option<i64>, Option<i64>)) -> Option<ChainBlocked> {
    let (head_seq, first, last) = row;
    first.map(|first_seq| ChainBlocked {
        head_seq,
        first_seq,
        last_seq: last.unwrap_or(first_seq),
    })
}

impl Store {
    /// What blocks the chain, if anything (for `/healthz`, alerts and the console).
    pub async fn audit_blocked(&self) -> anyhow::Result<Option<ChainBlocked>> {
        let row: (i64, Option<i64>, Option<i64>) =
            crate::dispatch!(self, p => sqlx::query_as(PAST_HEAD).fetch_one(p).await)?;
        Ok(blocked(row))
    }

    /// `Ok` when the next audit event can be written; otherwise an error that downcasts to
    /// `ChainBlocked` (or a database error). Call it before doing anything that cannot be
    /// undone and must be recorded: a call to Intuit with a refresh token above all.
    pub async fn audit_appendable(&self) -> anyhow::Result<()> {
        match self.audit_blocked().await? {
            None => Ok(()),
            Some(b) => Err(b.into()),
        }
    }
}

impl Tx {
    /// `audit_appendable` inside a transaction (after the head is locked, so the answer
    /// holds until it commits).
    pub async fn audit_appendable(&mut self) -> anyhow::Result<()> {
        let row: (i64, Option<i64>, Option<i64>) = match &mut self.inner {
            TxInner::Sqlite(t) => sqlx::query_as(PAST_HEAD).fetch_one(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(PAST_HEAD).fetch_one(&mut **t).await?,
        };
        match blocked(row) {
            None => Ok(()),
            Some(b) => Err(b.into()),
        }
    }
}

/// The chain block behind an error, if that is what it is.
pub fn chain_blocked(e: &anyhow::Error) -> Option<&ChainBlocked> {
    e.chain().find_map(|c| c.downcast_ref::<ChainBlocked>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_row_the_damage_and_the_verb_that_repairs_it() {
        let b = ChainBlocked {
            head_seq: 41,
            first_seq: 42,
            last_seq: 44,
        };
        let text = b.to_string();
        assert!(
            text.contains("event 42 is stored past the chain head (sequence 41)"),
            "{text}"
        );
        assert!(text.contains("inserted, rows 42..44"), "{text}");
        assert!(
            text.contains("qbo-console audit quarantine --from 42"),
            "{text}"
        );
        let e: anyhow::Error = anyhow::Error::from(b.clone()).context("refreshing acme");
        assert_eq!(chain_blocked(&e), Some(&b));
    }
}

/// The chain's head as stored beside the last event it names: `doctor`'s quick look (a full
/// `audit verify` reads every event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadCheck {
    pub head_seq: i64,
    pub head_hash: String,
    /// The hash of the event at `head_seq`, if there is one.
    pub event_hash: Option<String>,
}

impl HeadCheck {
    /// Whether the head names its last event truly (an empty log has head 0).
    pub fn consistent(&self) -> bool {
        match &self.event_hash {
            Some(h) => *h == self.head_hash,
            None => self.head_seq == 0,
        }
    }
}

impl crate::Store {
    pub async fn audit_head_check(&self) -> anyhow::Result<HeadCheck> {
        let (head_seq, head_hash): (i64, String) = crate::dispatch!(self, p => sqlx::query_as(
            "SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetch_one(p).await)?;
        let event_hash: Option<String> = crate::dispatch!(self, p => sqlx::query_scalar(
            "SELECT hash FROM audit_events WHERE seq = $1").bind(head_seq).fetch_optional(p).await)?;
        Ok(HeadCheck {
            head_seq,
            head_hash,
            event_hash,
        })
    }
}
