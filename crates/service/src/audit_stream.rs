//! `audit tail -n N` for any N: the latest N events read and sent a page at a time, oldest
//! first, so neither the daemon nor the CLI holds more than a page of a long log. The read
//! is on the record before the first event leaves (fail-closed, as `list`).

use crate::{AuditRecord, Result, Service};
use qbo_core::audit::Action;
use qbo_core::identity::{Actor, Permission};
use serde::{Deserialize, Serialize};

/// Events read from the database per page.
const PAGE: i64 = 1000;

/// One frame of a streamed tail: events, then the end with how many were sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditFrame {
    Events { events: Vec<AuditRecord> },
    End { count: u64 },
}

/// Where a streamed tail is: the events after `after` up to `through`, the newest when it
/// began (what is appended meanwhile, this read's own record among it, is not its tail).
pub struct AuditTailCursor {
    after: i64,
    through: i64,
    ended: bool,
    pub sent: u64,
}

impl Service {
    /// Authorizes and records the read of the latest `n` events, and returns the cursor
    /// that reads them.
    pub async fn audit_tail_begin(&self, caller: &Actor, n: i64) -> Result<AuditTailCursor> {
        self.authorize(caller, Permission::ReadAudit, Action::AuditTail)
            .await?;
        let n = n.max(1);
        let bounds = self.store().audit_tail_bounds(n).await?;
        let shown = format!("reading the latest {n} audit events page by page");
        self.record_view(caller, Action::AuditTail, None, shown)
            .await?;
        Ok(match bounds {
            Some((first, last)) => AuditTailCursor {
                after: first - 1,
                through: last,
                ended: false,
                sent: 0,
            },
            None => AuditTailCursor {
                after: 0,
                through: 0,
                ended: false,
                sent: 0,
            },
        })
    }

    /// The next frame of the tail: its events a page at a time, then the end with the
    /// count, then `None`.
    pub async fn audit_tail_next_frame(
        &self,
        c: &mut AuditTailCursor,
    ) -> Result<Option<AuditFrame>> {
        if c.ended {
            return Ok(None);
        }
        Ok(Some(match self.audit_tail_next(c).await? {
            Some(events) => AuditFrame::Events { events },
            None => {
                c.ended = true;
                AuditFrame::End { count: c.sent }
            }
        }))
    }

    /// The next events of the tail, oldest first, or `None` once it is complete.
    pub async fn audit_tail_next(
        &self,
        c: &mut AuditTailCursor,
    ) -> Result<Option<Vec<AuditRecord>>> {
        if c.after >= c.through {
            return Ok(None);
        }
        let events = self.store().audit_between(c.after, c.through, PAGE).await?;
        match events.last() {
            None => {
                c.after = c.through;
                Ok(None)
            }
            Some(last) => {
                c.after = last.seq;
                c.sent += events.len() as u64;
                Ok(Some(events))
            }
        }
    }
}
