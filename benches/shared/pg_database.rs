//! A PostgreSQL database of a bench's own on the server the bench was given: created empty,
//! dropped after. Shared by the console and refresh benches.

use anyhow::{Context, Result};

/// Creates database `name` on `server` (a URL ending in /DATABASE), dropping a leftover of
/// that name first, and returns the new database's URL.
pub async fn create(server: &str, name: &str) -> Result<String> {
    let admin = sqlx::PgPool::connect(server)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let (base, _) = server
        .rsplit_once('/')
        .context("a PostgreSQL URL ends in /DATABASE")?;
    Ok(format!("{base}/{name}"))
}

/// Drops database `name` on `server`, its connections with it. A failure leaves it behind:
/// its name carries the bench's process id, so it collides with no later run.
pub async fn drop(server: &str, name: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

/// Brings a freshly filled database to the state a long-lived one is in: vacuumed and
/// analysed. Otherwise autovacuum takes up a new million-row table in the minute after the
/// fill, a core of two for tens of seconds, in the middle of whatever is being measured.
pub async fn settle(url: &str) -> Result<()> {
    let db = sqlx::PgPool::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query("VACUUM (ANALYZE)")
        .execute(&db)
        .await
        .context("VACUUM (ANALYZE) of the filled database")?;
    db.close().await;
    Ok(())
}
