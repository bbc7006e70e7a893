//! Group commit for the refresh hot path. Refresh outcomes are handed to one writer task
//! per process, which applies everything that arrived meanwhile in a single transaction:
//! one fsync and one pass over the audit chain head for many refreshes. Each caller still
//! waits for the commit that contains its write before the new access token is handed to
//! anyone, so "persist before use" holds exactly as before; under no load a write is
//! committed alone, at once.

use chrono::{DateTime, Utc};
use qbo_core::domain::ErrorClass;
use qbo_store::audit::AuditEvent;
use qbo_store::{Change, Lease, Store, TokenUpdate};
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed together.
const MAX_BATCH: usize = 256;

/// A write the refresh path makes.
pub(crate) enum Op {
    /// New tokens, clocks and the audit event; the lease is released.
    RefreshSuccess {
        lease: Lease,
        update: TokenUpdate,
        event: AuditEvent,
    },
    /// A failed attempt that keeps the tokens; the lease is released.
    RefreshFailure {
        lease: Lease,
        /// Intuit answered (the token was not used), so the unanswered mark goes.
        answered: bool,
        class: ErrorClass,
        detail: String,
        intuit_tid: Option<String>,
        next_attempt: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
        event: AuditEvent,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    Done,
    /// The lease was no longer ours (another holder, or another fence): nothing was
    /// written for this op.
    LeaseLost,
}

type Reply = anyhow::Result<(Applied, Vec<Change>)>;

struct Job {
    op: Op,
    reply: oneshot::Sender<Reply>,
}

#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    pub(crate) fn start(store: Store) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Writer { tx }
    }

    /// Applies `op` and returns once the transaction holding it has committed.
    pub(crate) async fn write(&self, op: Op) -> Reply {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { op, reply })
            .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the database writer stopped before committing"))?
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Job>) {
    // Events held by an earlier process join the chain with this one's first write.
    let mut held = store.held_audit_events().await.map_or(true, |n| n > 0);
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let ops: Vec<&Op> = jobs.iter().map(|j| &j.op).collect();
        match apply(&store, &ops, held).await {
            Ok(results) => {
                held = false;
                for (job, r) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(r));
                }
            }
            // One bad write must not sink the others: retry each in a transaction of its
            // own, so only the culprit reports the error; and a refresh's new tokens are
            // kept even then, their event held for the chain (`audit/held.rs`).
            Err(first_error) => {
                let alone = jobs.len() == 1;
                for job in jobs {
                    let r = if alone {
                        Err(anyhow::anyhow!("{first_error:#}"))
                    } else {
                        apply(&store, &[&job.op], held)
                            .await
                            .map(|mut v| v.remove(0))
                    };
                    let r = match r {
                        Ok(done) => {
                            held = false;
                            Ok(done)
                        }
                        Err(e) => match keep_tokens(&store, &job.op).await {
                            Ok(Some(kept)) => {
                                held = true;
                                tracing::error!(
                                    error = %qbo_core::text::Safe(&format!("{e:#}")),
                                    "a refresh's audit event could not join the chain: its new tokens are stored and the event is held until the audit log can be written"
                                );
                                Ok(kept)
                            }
                            Ok(None) | Err(_) => Err(e),
                        },
                    };
                    let _ = job.reply.send(r);
                }
            }
        }
    }
}

/// Stores a successful refresh's new tokens with its event held out of the chain, when
/// the write with its event in the chain failed: Intuit has already rotated, so dropping
/// the tokens would kill the connection. `None` for any other write (nothing was spent).
async fn keep_tokens(store: &Store, op: &Op) -> anyhow::Result<Option<(Applied, Vec<Change>)>> {
    let Op::RefreshSuccess {
        lease,
        update,
        event,
    } = op
    else {
        return Ok(None);
    };
    let mut tx = store.begin().await?;
    let written = tx.apply_refresh_successes(&[(lease, update)]).await?;
    if written.is_empty() {
        tx.rollback().await?;
        return Ok(Some((Applied::LeaseLost, Vec::new())));
    }
    tx.hold_audit(&[event]).await?;
    tx.commit().await?;
    Ok(Some((Applied::Done, Vec::new())))
}

async fn apply(
    store: &Store,
    ops: &[&Op],
    held: bool,
) -> anyhow::Result<Vec<(Applied, Vec<Change>)>> {
    let mut tx = store.begin().await?;
    // Held events first, so the chain keeps the order things happened in. Their changes
    // are told with the first op's, apart from the ops' own, which follow in op order.
    let mut flushed = Vec::new();
    if held {
        tx.flush_held_audit().await?;
        flushed = tx.take_changes();
    }
    // Successes (the bulk of the traffic) go in multi-row statements; failures one by one.
    let successes: Vec<(&Lease, &TokenUpdate)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::RefreshSuccess { lease, update, .. } => Some((lease, update)),
            Op::RefreshFailure { .. } => None,
        })
        .collect();
    let written: HashSet<i64> = tx
        .apply_refresh_successes(&successes)
        .await?
        .into_iter()
        .collect();
    let mut applied = Vec::with_capacity(ops.len());
    for op in ops {
        applied.push(match op {
            Op::RefreshSuccess { lease, .. } if written.contains(&lease.id) => Applied::Done,
            Op::RefreshSuccess { .. } => Applied::LeaseLost,
            Op::RefreshFailure {
                lease,
                answered,
                class,
                detail,
                intuit_tid,
                next_attempt,
                at,
                ..
            } => {
                let written = tx
                    .apply_refresh_failure(
                        lease,
                        *answered,
                        *class,
                        detail,
                        intuit_tid.as_deref(),
                        *next_attempt,
                        *at,
                    )
                    .await?;
                if written {
                    Applied::Done
                } else {
                    Applied::LeaseLost
                }
            }
        });
    }
    // Every op that wrote records one event; the chain head is visited once for all.
    let events: Vec<&AuditEvent> = ops
        .iter()
        .zip(&applied)
        .filter(|(_, a)| **a == Applied::Done)
        .map(|(op, _)| op.event())
        .collect();
    tx.audit_many(&events).await?;
    let mut changes = tx.commit().await?.into_iter();
    let mut results: Vec<(Applied, Vec<Change>)> = applied
        .into_iter()
        .map(|a| {
            let mine = if a == Applied::Done {
                changes.next().into_iter().collect()
            } else {
                Vec::new()
            };
            (a, mine)
        })
        .collect();
    if let Some((_, first)) = results.first_mut() {
        flushed.append(first);
        *first = flushed;
    }
    Ok(results)
}

impl Op {
    fn event(&self) -> &AuditEvent {
        match self {
            Op::RefreshSuccess { event, .. } | Op::RefreshFailure { event, .. } => event,
        }
    }
}
