//! The scheduler's claim takes the most urgent due connections (refresh token closest to
//! its lapse, unknown expiry first, then id), whether a few are due (the claim sorts
//! them) or a backlog of tens of thousands (the claim walks the urgency index and skips the
//! rows not due). Both ways, on both backends, against the order computed here from every
//! row.

use crate::common::World;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::domain::{Environment, Status};
use qbo_sim::SimOptions;

/// More live rows than the claim's backlog threshold (65,536), with every state's share.
const ROWS: u64 = 72_000;
const BATCH: i64 = 200;

#[derive(Clone, Copy)]
struct Row {
    id: i64,
    refresh_expires_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
}

/// The `n` most urgent rows due at `at`, leaving out `taken`.
fn most_urgent(rows: &[Row], at: DateTime<Utc>, taken: &[i64], n: usize) -> Vec<i64> {
    let mut due: Vec<Row> = rows
        .iter()
        .filter(|r| r.next_attempt_at.is_none_or(|t| t <= at) && !taken.contains(&r.id))
        .copied()
        .collect();
    // Unknown expiry first (NULLS FIRST), then the nearest lapse, then id.
    due.sort_by_key(|r| (r.refresh_expires_at.is_some(), r.refresh_expires_at, r.id));
    due.into_iter().take(n).map(|r| r.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_takes_the_most_urgent_due_rows_with_a_few_due_and_with_a_backlog() {
    let w = World::start(SimOptions::default()).await;
    let d = w.in_process().await;
    let engine = d.service.lifecycle_for_tests().clone();
    let store = &engine.store;
    let now = engine.clock.now();
    store.fill_world(ROWS, now).await.unwrap();
    let mut rows = Vec::new();
    store
        .each_connection(|r| {
            if matches!(r.status, Status::Active | Status::Expiring) {
                rows.push(Row {
                    id: r.id,
                    refresh_expires_at: r.refresh_expires_at,
                    next_attempt_at: r.next_attempt_at,
                })
            }
        })
        .await
        .unwrap();
    assert!(rows.len() > 65_536, "{} live rows", rows.len());
    let envs = [Environment::Sandbox, Environment::Production];
    let owner = engine.lease_owner();
    // A batch claimed at `at`, leased for half an hour.
    let claim = |at: DateTime<Utc>| async move {
        store
            .claim_due(owner, at + ChronoDuration::minutes(30), at, BATCH, &envs)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.record.id)
            .collect::<Vec<i64>>()
    };

    // A few due: the moment the 1,000th row comes due.
    let mut times: Vec<DateTime<Utc>> = rows.iter().filter_map(|r| r.next_attempt_at).collect();
    times.sort();
    let few_at = times[999];
    let claimed = claim(few_at).await;
    let want = most_urgent(&rows, few_at, &[], BATCH as usize);
    assert_eq!(claimed.len(), BATCH as usize);
    assert_eq!(claimed, want, "with about 1,000 due");

    // Everything due (a downtime of hours): the rows just leased are not taken again.
    let late = now + ChronoDuration::hours(3);
    let backlog = claim(late).await;
    let want = most_urgent(&rows, late, &claimed, BATCH as usize);
    assert_eq!(backlog, want, "with every live row due");
    assert!(backlog.iter().all(|id| !claimed.contains(id)));
}
