//! The console's window on every connection: a compact copy of the table in the daemon
//! (`Table`, about 130 bytes a connection), kept in step with the database by the change
//! feed, that answers "rows `offset`.. of what this filter selects in this order, and the
//! counts" without moving the table. A console's cost then follows its screen: the first
//! frame of a million connections is one window, not a million rows (see BENCHMARKS.md,
//! "Console at scale", for why the work sits here and not in the database or the console).
//!
//! Freshness: a change is told after its commit; the feed notes the connection's id, and
//! every query first reads the noted rows again. A console that heard of a change and then
//! asks for its window therefore sees it.

mod brief;
mod ids;
mod packed;
mod table;

use crate::filter::Filter;
use crate::sort::Sort;
use crate::{Condition, ConnectionView, Result, Service};
use qbo_core::audit::Action;
use qbo_core::identity::{Actor, Permission};
use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use table::Table;
use tokio::sync::broadcast::error::TryRecvError;

/// The most rows one window holds: a few screens of the tallest terminal.
pub const MAX_WINDOW_ROWS: u32 = 1000;

/// What a screen shows: a filter in the console's language, an order, and which rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowQuery {
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub sort: Sort,
    #[serde(default)]
    pub offset: u64,
    pub rows: u32,
    /// The connection the cursor is on, to be found wherever it now is.
    #[serde(default)]
    pub selected: Option<i64>,
}

/// One window: its rows in order, how many connections the filter selects, the counts of
/// the whole table, and where the selected connection stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowPage {
    /// Every connection.
    pub total: u64,
    /// Connections per condition (`failing` apart from `active`), of the whole table.
    pub counts: Vec<(Condition, u64)>,
    /// Connections the filter selects.
    pub matching: u64,
    pub offset: u64,
    pub rows: Vec<ConnectionView>,
    /// The selected connection's place among those the filter selects, if it is one.
    pub selected_at: Option<u64>,
    /// The first filter term that did not parse (left out of the filter).
    #[serde(default)]
    pub filter_error: Option<String>,
}

/// The roster and what keeps it current.
#[derive(Default)]
pub(crate) struct Roster {
    /// Shared with the task that brings it up to date (see [`Service::roster_current`]).
    table: std::sync::Arc<tokio::sync::Mutex<Table>>,
    /// The orders kept sorted whatever consoles ask for, pinned again in a table read
    /// afresh.
    pins: Mutex<Vec<Sort>>,
    /// Connections changed since the table last read them, as a compressed bitmap of their
    /// ids: with no console asking, a daemon catching up on a million connections notes a
    /// million changes, a bit each here where a hash set took about 20 MB (see
    /// BENCHMARKS.md, the catch-up).
    noted: Mutex<RoaringTreemap>,
    /// The change feed. Drained by every query before it reads (a change committed before
    /// the query arrived is in it already: commits are told before their callers are
    /// answered), and ten times a second in between, so that it does not overflow.
    changes: Mutex<Option<tokio::sync::broadcast::Receiver<qbo_core::domain::Change>>>,
    /// The feed fell behind: the table must be read whole again.
    stale: AtomicBool,
    started: tokio::sync::OnceCell<()>,
}

impl Roster {
    fn note(&self, id: i64) {
        self.noted.lock().expect("noted ids").insert(bits(id));
    }

    fn take_noted(&self) -> RoaringTreemap {
        std::mem::take(&mut *self.noted.lock().expect("noted ids"))
    }

    /// Notes every change waiting in the feed; false once the feed has ended.
    fn drain(&self) -> bool {
        let mut feed = self.changes.lock().expect("change feed");
        let Some(rx) = feed.as_mut() else {
            return false;
        };
        loop {
            match rx.try_recv() {
                Ok(c) => {
                    if let Some(id) = c.connection_id {
                        self.note(id);
                    }
                }
                Err(TryRecvError::Lagged(_)) => self.stale.store(true, Ordering::SeqCst),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Closed) => {
                    *feed = None;
                    return false;
                }
            }
        }
    }
}

/// A connection id as the bitmap keeps it: the same 64 bits, so every id (a sequence's
/// are positive) has its own.
fn bits(id: i64) -> u64 {
    id as u64
}

fn id_of(bits: u64) -> i64 {
    bits as i64
}

impl Service {
    /// Starts the roster now rather than at the first console's first window: reading a
    /// million connections takes seconds, which a daemon spends at start.
    pub async fn warm_roster(&self) -> anyhow::Result<()> {
        let pins = [
            Sort::default(),
            Sort {
                key: crate::sort::SortKey::Tenant,
                descending: false,
            },
        ];
        self.roster.pins.lock().expect("pins").extend(pins);
        let mut table = self.roster_current().await?;
        for sort in pins {
            table.pin(sort);
        }
        Ok(())
    }

    /// The roster, locked and up to date. The catch-up runs in a task of its own: a caller
    /// that goes away meanwhile (a `/metrics` scrape that timed out while a million rows
    /// were read) cannot stop it half way, which would leave the table partly read, or the
    /// noted ids taken but not read, with nothing marked to read them again.
    async fn roster_current(&self) -> anyhow::Result<tokio::sync::OwnedMutexGuard<Table>> {
        self.roster_started().await?;
        let svc = self.clone();
        tokio::spawn(async move {
            let mut table = svc.roster.table.clone().lock_owned().await;
            svc.roster_catch_up(&mut table).await?;
            anyhow::Ok(table)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the roster's catch-up stopped: {e}"))?
    }

    /// As if the change feed had fallen behind (65,536 changes unread): the next query reads
    /// the table whole. Tests reach the re-read this way without a burst that size.
    #[cfg(feature = "test-support")]
    pub fn roster_fell_behind_for_tests(&self) {
        self.roster.stale.store(true, Ordering::SeqCst);
    }

    async fn roster_started(&self) -> anyhow::Result<()> {
        let roster = self.roster.clone();
        let engine = self.engine.clone();
        self.roster
            .started
            .get_or_try_init(|| async move {
                // Subscribed before the first read, so nothing committed in between is
                // missed; the first catch-up reads the table whole.
                *roster.changes.lock().expect("change feed") = Some(engine.subscribe());
                roster.stale.store(true, Ordering::SeqCst);
                let feed = std::sync::Arc::downgrade(&roster);
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(std::time::Duration::from_millis(100));
                    loop {
                        every.tick().await;
                        match feed.upgrade() {
                            Some(r) if r.drain() => {}
                            _ => break,
                        }
                    }
                });
                anyhow::Ok(())
            })
            .await?;
        Ok(())
    }

    /// Reads the table whole if the feed fell behind, then the rows changed since.
    async fn roster_catch_up(&self, table: &mut Table) -> anyhow::Result<()> {
        let now = self.engine.clock.now();
        self.roster.drain();
        if self.roster.stale.swap(false, Ordering::SeqCst) {
            // Whatever changes while the table is read is noted, and read again below.
            if let Err(e) = self.roster_reload(table, now).await {
                self.roster.stale.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        let noted = self.roster.take_noted();
        let mut ids = noted.iter().map(id_of);
        let mut piece = Vec::with_capacity(512);
        loop {
            piece.clear();
            piece.extend(ids.by_ref().take(512));
            if piece.is_empty() {
                break;
            }
            let rows = match self.store().connections_by_id(&piece).await {
                Ok(rows) => rows,
                Err(e) => {
                    // This piece and the ones after it are read at the next query.
                    let mut noted = self.roster.noted.lock().expect("noted ids");
                    noted.extend(piece.iter().copied().chain(ids).map(bits));
                    return Err(e);
                }
            };
            let mut gone: HashSet<i64> = piece.iter().copied().collect();
            for r in rows {
                gone.remove(&r.id);
                table.upsert(&ConnectionView::from_record(r, now));
            }
            for id in gone {
                table.remove(id);
            }
        }
        Ok(())
    }

    /// Reads the table whole into `table` and pins the roster's orders in it. The old rows
    /// go first: a re-read after the feed fell behind then holds a million rows once, not
    /// twice (about 150 MB more at the peak). Nothing reads the table meanwhile (its lock
    /// is held), and a failed read leaves it stale, to be read again by the next query.
    async fn roster_reload(
        &self,
        table: &mut Table,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        // From the roster, not the table: a reload that failed half way left a table
        // without them.
        let pinned = self.roster.pins.lock().expect("pins").clone();
        *table = Table::default();
        let total: i64 = self
            .store()
            .count_by_status()
            .await?
            .iter()
            .map(|(_, _, n)| n)
            .sum();
        table.reserve(usize::try_from(total).unwrap_or(0));
        self.store()
            .each_connection(|r| table.upsert(&ConnectionView::from_record(r, now)))
            .await?;
        table.trim();
        for sort in pinned {
            table.pin(sort);
        }
        Ok(())
    }

    /// A window on the connections (`ViewConnections`). Not recorded per call: a console
    /// asks for one per scroll and per keystroke; its opening and closing are recorded.
    pub async fn window(&self, caller: &Actor, q: &WindowQuery) -> Result<WindowPage> {
        self.authorize(caller, Permission::ViewConnections, Action::List)
            .await?;
        if q.rows == 0 || q.rows > MAX_WINDOW_ROWS {
            return Err(crate::ServiceError::Input(format!(
                "a window holds 1 to {MAX_WINDOW_ROWS} rows, not {}",
                q.rows
            )));
        }
        let (filter, filter_error) = Filter::parse_lenient(&q.filter);
        let now = self.engine.clock.now();
        let (found, total, counts) = {
            let mut table = self.roster_current().await?;
            let found = table.find(
                &filter,
                q.sort,
                q.offset,
                u64::from(q.rows),
                q.selected,
                now,
            );
            (found, table.len(), table.counts())
        };
        let mut by_id: std::collections::HashMap<i64, ConnectionView> = self
            .store()
            .connections_by_id(&found.ids)
            .await?
            .into_iter()
            .map(|r| (r.id, ConnectionView::from_record(r, now)))
            .collect();
        Ok(WindowPage {
            total,
            counts,
            matching: found.matching,
            offset: q.offset,
            rows: found.ids.iter().filter_map(|id| by_id.remove(id)).collect(),
            selected_at: found.selected_at,
            filter_error: filter_error.map(|e| e.to_string()),
        })
    }

    /// The ids of every connection `filter` selects now, most urgent first, as windows show
    /// them: what a bulk action over a filter acts on.
    pub(crate) async fn matching_ids(&self, filter: &Filter) -> Result<Vec<i64>> {
        let now = self.engine.clock.now();
        let mut table = self.roster_current().await?;
        Ok(table
            .find(filter, Sort::default(), 0, u64::MAX, None, now)
            .ids)
    }

    /// The counts by environment and condition, and the live refresh token closest to its
    /// lapse: what `/metrics` shows of the connections, from the roster, so a scrape costs
    /// the same at a million connections as at ten.
    pub async fn roster_gauges(
        &self,
    ) -> Result<(
        Vec<(qbo_core::domain::Environment, Condition, u64)>,
        Option<chrono::DateTime<chrono::Utc>>,
    )> {
        let table = self.roster_current().await?;
        Ok((table.counts_by_environment(), table.nearest_lapse()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_is_noted_as_itself_and_taken_once() {
        let roster = Roster::default();
        let ids = [1, 2, 70_000, 4_294_967_297, i64::MAX, 0, -1, i64::MIN];
        for id in ids.iter().chain(&ids) {
            roster.note(*id);
        }
        let mut taken: Vec<i64> = roster.take_noted().iter().map(id_of).collect();
        taken.sort_unstable();
        let mut want = ids.to_vec();
        want.sort_unstable();
        assert_eq!(taken, want);
        assert!(roster.take_noted().is_empty());
    }
}
