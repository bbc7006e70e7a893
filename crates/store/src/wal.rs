//! SQLite's write-ahead log kept short. SQLite moves the log into the database by itself
//! (a passive checkpoint every thousand pages), but it can only start the log again from
//! its beginning at a moment when no reader still needs its older frames. A daemon that
//! writes all the time while its consoles, health checks and forecast read all the time
//! may never meet such a moment: the log then grows without end (750 MB in five minutes
//! of catching up a million connections), and every read searches it.

use super::Store;

/// What one checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCheckpoint {
    /// The log was moved whole into the database and emptied.
    pub emptied: bool,
    /// Frames the log held.
    pub frames: i64,
}

impl Store {
    /// On SQLite: moves the whole log into the database and empties it, waiting up to a
    /// second for readers still on older frames (the process's writers wait at their gate
    /// meanwhile, as behind any write). `emptied` is false when a reader held on longer:
    /// the next call tries again. `None` on PostgreSQL, whose server does this itself.
    pub async fn checkpoint_wal(&self) -> anyhow::Result<Option<WalCheckpoint>> {
        let Store::Sqlite(s) = self else {
            return Ok(None);
        };
        let _turn = s.write_turn().await;
        let mut c = s.pool.acquire().await?;
        sqlx::query("PRAGMA busy_timeout = 1000")
            .execute(&mut *c)
            .await?;
        let done: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *c)
                .await;
        // The pool's connections wait 30 s for a lock (see `Store::connect`).
        sqlx::query("PRAGMA busy_timeout = 30000")
            .execute(&mut *c)
            .await?;
        let (busy, frames, _moved) = done?;
        Ok(Some(WalCheckpoint {
            emptied: busy == 0,
            frames,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_empties_the_log_once_no_reader_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = qbo_core::config::DatabaseConfig {
            url: format!("sqlite://{}/wal.db", dir.path().display()),
            max_connections: 4,
            connect_timeout: std::time::Duration::from_secs(10),
        };
        let store = Store::connect(&db, None).await.unwrap();
        store.migrate().await.unwrap();
        store.fill_world(2_000, chrono::Utc::now()).await.unwrap();
        let Store::Sqlite(s) = &store else {
            unreachable!("a SQLite store")
        };
        let wal = dir.path().join("wal.db-wal");
        // A reader on the table as it is now, then writes after it.
        let mut reader = s.pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connections")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        sqlx::query("UPDATE connections SET updated_at = created_at")
            .execute(&s.pool)
            .await
            .unwrap();
        let held = store.checkpoint_wal().await.unwrap().unwrap();
        assert!(!held.emptied, "{held:?}");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        reader.rollback().await.unwrap();
        let done = store.checkpoint_wal().await.unwrap().unwrap();
        assert!(done.emptied, "{done:?}");
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    }
}
