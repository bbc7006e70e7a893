//! The two grant types of the token endpoint as state transitions: code
//! exchange (single use, replay revokes) and refresh (rolling idle window,
//! hard limit, rotation, superseded tokens and their grace).

use chrono::{DateTime, Duration, Utc};

use super::options::{PreviousToken, Rotation};
use super::state::{GrantEnd, State, TokenSet};
use super::tokens::AccessToken;

/// Intuit's samples let a code live about ten minutes.
const CODE_TTL_SECS: i64 = 600;
/// Daily rotation: the same refresh token comes back for 24 h after issue.
const DAILY_ROTATION_SECS: i64 = 86_400;
/// Grace24h: a replaced refresh token keeps working for 24 h.
const GRACE_SECS: i64 = 86_400;

/// A refused grant: rendered as 400 `invalid_grant` with this description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidGrant(pub(crate) &'static str);

impl State {
    /// Whether Intuit would take `token` for a refresh now, and if not why: the same
    /// rules as a refresh, without one (no use recorded, nothing counted).
    pub(crate) fn refresh_usable(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, InvalidGrant> {
        let p = self.policy;
        let Some(rec) = self.refresh.get(token) else {
            return Err(InvalidGrant("refresh token is unknown"));
        };
        let Some(grant) = self.grants.get(rec.grant) else {
            return Err(InvalidGrant("refresh token is unknown"));
        };
        if let Some(end) = grant.ended {
            return Err(InvalidGrant(end.describe()));
        }
        if now >= grant.consented_at + p.hard {
            return Err(InvalidGrant("refresh token has passed its hard expiry"));
        }
        if now >= rec.last_used + p.idle {
            return Err(InvalidGrant(
                "refresh token has expired (not used for 100 days)",
            ));
        }
        match (rec.superseded_at, p.previous_token) {
            (None, _) => Ok(false),
            (Some(_), PreviousToken::InvalidAtOnce) => Err(InvalidGrant(
                "refresh token was replaced by a newer one and is no longer valid",
            )),
            (Some(at), PreviousToken::Grace24h) if now >= at + Duration::seconds(GRACE_SECS) => {
                Err(InvalidGrant(
                    "refresh token was replaced more than 24 hours ago",
                ))
            }
            (Some(_), PreviousToken::Grace24h) => Ok(true),
        }
    }

    pub(crate) fn exchange_code(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
        access: AccessToken,
    ) -> Result<TokenSet, InvalidGrant> {
        let result = self.exchange_code_inner(client_id, code, redirect_uri, now, access);
        match result {
            Ok(_) => self.stats.code_exchanges += 1,
            Err(_) => self.stats.invalid_grants += 1,
        }
        result
    }

    fn exchange_code_inner(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
        access: AccessToken,
    ) -> Result<TokenSet, InvalidGrant> {
        let Some(rec) = self.codes.get(code) else {
            return Err(InvalidGrant("authorization code is unknown"));
        };
        if rec.client_id != client_id {
            return Err(InvalidGrant(
                "authorization code was issued to another client",
            ));
        }
        if let Some(first) = rec.exchanged {
            // Intuit treats a replayed code as an attack and revokes what the
            // first exchange produced.
            self.stats.code_reuses += 1;
            if let Some(g) = self.grants.get_mut(first) {
                if g.ended.is_none() {
                    g.ended = Some(GrantEnd::CodeReplayed);
                }
            }
            tracing::info!("authorization code presented twice; its grant is revoked");
            return Err(InvalidGrant(
                "authorization code was already used; the tokens it produced are revoked",
            ));
        }
        if rec.redirect_uri != redirect_uri {
            return Err(InvalidGrant(
                "redirect_uri differs from the one of the authorization request",
            ));
        }
        if now >= rec.issued_at + Duration::seconds(CODE_TTL_SECS) {
            return Err(InvalidGrant("authorization code has expired"));
        }
        let (scopes, realm) = (rec.scopes, rec.realm_id.clone());
        let (gid, set) = self.create_grant(client_id, realm, scopes, now, now, access);
        if let Some(rec) = self.codes.get_mut(code) {
            rec.exchanged = Some(gid);
        }
        Ok(set)
    }

    /// Marks a refresh token as being processed. Returns whether it is known
    /// (only known tokens are tracked); counts an overlap as a concurrent use.
    pub(crate) fn begin_refresh(&mut self, token: &str) -> bool {
        match self.refresh.get_mut(token) {
            Some(rec) => {
                if rec.in_flight > 0 {
                    self.stats.concurrent_uses += 1;
                }
                rec.in_flight += 1;
                true
            }
            None => false,
        }
    }

    pub(crate) fn end_refresh(&mut self, token: &str) {
        if let Some(rec) = self.refresh.get_mut(token) {
            rec.in_flight = rec.in_flight.saturating_sub(1);
        }
    }

    pub(crate) fn refresh(
        &mut self,
        client_id: &str,
        token: &str,
        now: DateTime<Utc>,
        access: AccessToken,
    ) -> Result<TokenSet, InvalidGrant> {
        let result = self.refresh_inner(client_id, token, now, access);
        match &result {
            Ok(set) => {
                self.stats.refreshes += 1;
                if let Some(realm) = &set.realm_id {
                    match self.stats.refreshes_by_realm.get_mut(realm) {
                        Some(n) => *n += 1,
                        None => {
                            self.stats.refreshes_by_realm.insert(realm.clone(), 1);
                        }
                    }
                }
            }
            Err(_) => self.stats.invalid_grants += 1,
        }
        result
    }

    fn refresh_inner(
        &mut self,
        client_id: &str,
        token: &str,
        now: DateTime<Utc>,
        access: AccessToken,
    ) -> Result<TokenSet, InvalidGrant> {
        let p = self.policy;
        let Some(rec) = self.refresh.get(token) else {
            return Err(InvalidGrant("refresh token is unknown"));
        };
        let (gid, superseded_at, last_used) = (rec.grant, rec.superseded_at, rec.last_used);
        let Some(grant) = self.grants.get(gid) else {
            return Err(InvalidGrant("refresh token is unknown"));
        };
        if grant.client_id != client_id {
            return Err(InvalidGrant("refresh token was issued to another client"));
        }
        if superseded_at.is_some() {
            self.stats.superseded_uses += 1;
            // Whoever presented the token that replaced this one had it stored: a use of
            // this one after that is a stale copy spent, not an answer lost in transit.
            let successor_held = rec
                .replaced_by
                .as_ref()
                .and_then(|t| self.refresh.get(t))
                .is_some_and(|r| r.presented);
            if successor_held {
                self.stats.stale_uses += 1;
            }
        }
        if let Some(rec) = self.refresh.get_mut(token) {
            rec.presented = true;
        }
        if let Some(end) = grant.ended {
            return Err(InvalidGrant(end.describe()));
        }
        if now >= grant.consented_at + p.hard {
            return Err(InvalidGrant(
                "refresh token has passed its hard expiry (five years from consent)",
            ));
        }
        if now >= last_used + p.idle {
            return Err(InvalidGrant(
                "refresh token has expired (not used for 100 days)",
            ));
        }
        let in_grace = match (superseded_at, p.previous_token) {
            (None, _) => false,
            (Some(_), PreviousToken::InvalidAtOnce) => {
                return Err(InvalidGrant(
                    "refresh token was replaced by a newer one and is no longer valid",
                ));
            }
            (Some(at), PreviousToken::Grace24h) => {
                if now >= at + Duration::seconds(GRACE_SECS) {
                    return Err(InvalidGrant(
                        "refresh token was replaced more than 24 hours ago",
                    ));
                }
                true
            }
        };
        let current = grant.current_refresh.clone();
        let idle = (now - last_used).num_seconds();
        self.stats.max_refresh_idle_secs = self.stats.max_refresh_idle_secs.max(idle);
        if let Some(rec) = self.refresh.get_mut(token) {
            rec.last_used = now;
        }
        // A superseded token inside grace is served as a use of the grant's
        // current token, so the caller learns the newest value.
        let current_issued = match self.refresh.get_mut(&current) {
            Some(cur) => {
                cur.last_used = now;
                cur.issued_at
            }
            None => return Err(InvalidGrant("refresh token is unknown")),
        };
        let rotate = match p.rotation {
            Rotation::Daily => now - current_issued >= Duration::seconds(DAILY_ROTATION_SECS),
            Rotation::EveryRefresh => true,
        };
        let returned = if rotate {
            let fresh = self.new_refresh_record(gid, now);
            if let Some(cur) = self.refresh.get_mut(&current) {
                cur.superseded_at = Some(now);
                cur.replaced_by = Some(fresh.clone());
            }
            if let Some(g) = self.grants.get_mut(gid) {
                g.current_refresh = fresh.clone();
            }
            self.stats.rotations += 1;
            fresh
        } else {
            current
        };
        if in_grace {
            self.stats.grace_refreshes += 1;
        }
        Ok(self.token_set(gid, returned, access, now))
    }
}
