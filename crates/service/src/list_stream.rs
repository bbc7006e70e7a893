//! `list --json` for any number of connections: the listing read and sent a page at a time,
//! so neither the daemon nor the CLI ever holds more than a page, whatever the table's size.
//! The read is on the record before the first row leaves (fail-closed, as `list`).

use crate::filter::Filter;
use crate::{ConnectionView, ListQuery, Result, Service};
use qbo_core::audit::Action;
use qbo_core::domain::ConnectionFilter;
use qbo_core::identity::{Actor, Permission};
use qbo_store::ListMark;
use serde::{Deserialize, Serialize};

/// Rows read from the database per page.
const PAGE: u32 = 1000;

/// One frame of a streamed listing: rows, then the end with how many were sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ListFrame {
    Rows { rows: Vec<ConnectionView> },
    End { count: u64 },
}

/// Where a streamed listing is.
pub struct ListCursor {
    stored: ConnectionFilter,
    filter: Option<Filter>,
    left: u64,
    after: Option<ListMark>,
    done: bool,
    ended: bool,
    pub sent: u64,
}

impl Service {
    /// Checks the query, authorizes and records the read, and returns the cursor that
    /// reads it: nothing is sent before the read is on the record.
    pub async fn list_begin(&self, caller: &Actor, query: &ListQuery) -> Result<ListCursor> {
        let filter = query.checked_filter()?;
        self.authorize(caller, Permission::ViewConnections, Action::List)
            .await?;
        let shown = format!("listing connections page by page {}", query.described());
        self.record_view(caller, Action::List, None, shown).await?;
        Ok(ListCursor {
            stored: ConnectionFilter {
                status: query.status,
                environment: query.environment,
            },
            filter,
            left: query.limit.unwrap_or(u64::MAX),
            after: None,
            done: false,
            ended: false,
            sent: 0,
        })
    }

    /// The next frame of the listing: its rows a page at a time, then the end with the
    /// count, then `None`.
    pub async fn list_next_frame(&self, c: &mut ListCursor) -> Result<Option<ListFrame>> {
        if c.ended {
            return Ok(None);
        }
        Ok(Some(match self.list_next(c).await? {
            Some(rows) => ListFrame::Rows { rows },
            None => {
                c.ended = true;
                ListFrame::End { count: c.sent }
            }
        }))
    }

    /// The next rows of the listing, or `None` once it is complete.
    pub async fn list_next(&self, c: &mut ListCursor) -> Result<Option<Vec<ConnectionView>>> {
        while !c.done && c.left > 0 {
            let page = self
                .store()
                .list_page(&c.stored, c.after.as_ref(), PAGE)
                .await?;
            if (page.len() as u32) < PAGE {
                c.done = true;
            }
            let Some(last) = page.last() else {
                break;
            };
            c.after = Some(ListMark::after(last));
            let now = self.engine.clock.now();
            let rows: Vec<ConnectionView> = page
                .into_iter()
                .map(|r| ConnectionView::from_record(r, now))
                .filter(|v| c.filter.as_ref().is_none_or(|f| f.matches(v, now)))
                .take(usize::try_from(c.left).unwrap_or(usize::MAX))
                .collect();
            c.left -= rows.len() as u64;
            c.sent += rows.len() as u64;
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
        Ok(None)
    }
}
