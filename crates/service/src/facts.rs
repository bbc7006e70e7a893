//! What the filter language and the sort orders read of a connection, behind one trait, so
//! that the same words select and order both a full [`ConnectionView`] (a `list`, a test)
//! and the daemon's compact copy of a million connections (`roster`), which keeps only
//! these figures.

use crate::filter::Outcome;
use crate::{Condition, ConnectionView, Environment, Status};
use chrono::{DateTime, Utc};

pub trait Facts {
    fn id(&self) -> i64;
    fn tenant(&self) -> &str;
    fn realm_id(&self) -> &str;
    fn environment(&self) -> Environment;
    fn status(&self) -> Status;
    fn consecutive_failures(&self) -> i64;
    /// How the connection is (`failing` for a live one whose refreshes fail).
    fn condition(&self) -> Condition {
        Condition::of(self.status(), self.consecutive_failures())
    }
    fn access_expires_at(&self) -> Option<DateTime<Utc>>;
    fn refresh_expires_at(&self) -> Option<DateTime<Utc>>;
    fn refresh_issued_at(&self) -> Option<DateTime<Utc>>;
    fn hard_expires_at(&self) -> Option<DateTime<Utc>>;
    fn last_refresh_at(&self) -> Option<DateTime<Utc>>;
    fn last_sync_at(&self) -> Option<DateTime<Utc>>;
    fn sync_outcome(&self) -> Outcome;
    fn last_actor(&self) -> Option<&str>;
    /// Day figures a view carries for when its times are absent (an older daemon's).
    fn days_left_hint(&self) -> Option<i64> {
        None
    }
    fn days_used_hint(&self) -> Option<i64> {
        None
    }
}

impl Facts for ConnectionView {
    fn id(&self) -> i64 {
        self.id
    }
    fn tenant(&self) -> &str {
        &self.tenant
    }
    fn realm_id(&self) -> &str {
        &self.realm_id
    }
    fn environment(&self) -> Environment {
        self.environment
    }
    fn status(&self) -> Status {
        self.status
    }
    fn consecutive_failures(&self) -> i64 {
        self.consecutive_failures
    }
    fn access_expires_at(&self) -> Option<DateTime<Utc>> {
        self.access_expires_at
    }
    fn refresh_expires_at(&self) -> Option<DateTime<Utc>> {
        self.refresh_expires_at
    }
    fn refresh_issued_at(&self) -> Option<DateTime<Utc>> {
        self.refresh_issued_at
    }
    fn hard_expires_at(&self) -> Option<DateTime<Utc>> {
        self.hard_expires_at
    }
    fn last_refresh_at(&self) -> Option<DateTime<Utc>> {
        self.last_refresh_at
    }
    fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.last_sync_at
    }
    fn sync_outcome(&self) -> Outcome {
        crate::filter::sync_outcome(self)
    }
    fn last_actor(&self) -> Option<&str> {
        self.last_actor.as_deref()
    }
    fn days_left_hint(&self) -> Option<i64> {
        self.refresh_days_left
    }
    fn days_used_hint(&self) -> Option<i64> {
        self.refresh_window_age_days
    }
}
