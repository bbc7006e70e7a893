//! Counters of what clients did to the emulator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters since start or the last reset. Requests answered by an injected
/// fault (other than `lost_response`, which is processed first) count only in
/// `faults_injected` and `token_requests`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimStats {
    /// Successful `refresh_token` grants (including ones served within grace).
    pub refreshes: u64,
    /// Successful `authorization_code` grants.
    pub code_exchanges: u64,
    /// 400 `invalid_grant` answers of the token endpoint.
    pub invalid_grants: u64,
    /// 401 `invalid_client` answers of the token and revoke endpoints.
    pub invalid_clients: u64,
    /// 400 `invalid_request` / `unsupported_grant_type` answers of the token and revoke endpoints.
    pub invalid_requests: u64,
    /// Refresh requests presenting a refresh token that had already been replaced.
    pub superseded_uses: u64,
    /// Of those, the ones presented after the token that replaced them had itself been
    /// presented: the presenter spent a stale copy while a newer token was already held
    /// (stored) elsewhere. An answer lost with its process never counts here, since its
    /// new token was never presented by anyone.
    pub stale_uses: u64,
    /// Of the superseded uses, the ones that succeeded because the token was still inside grace.
    pub grace_refreshes: u64,
    /// The longest a refresh token sat unused before a successful use (seconds, sim clock):
    /// how close anyone came to the 100-day idle limit.
    pub max_refresh_idle_secs: i64,
    /// Refresh requests presenting a refresh token another request was processing at that moment.
    pub concurrent_uses: u64,
    /// New refresh tokens issued by refreshes (rotations).
    pub rotations: u64,
    /// Authorization codes presented a second time (the grant they produced is revoked).
    pub code_reuses: u64,
    /// Revoke requests answered 200.
    pub revocations: u64,
    /// Grants that a revoke request actually ended.
    pub revoked_grants: u64,
    /// Customer disconnects (`SimHandle::disconnect` or the control API).
    pub disconnects: u64,
    /// Consent decisions: approvals and denials on the authorize endpoint.
    pub authorizations_approved: u64,
    pub authorizations_denied: u64,
    /// companyinfo requests that were not answered by a fault.
    pub company_info_calls: u64,
    /// The most companyinfo calls held at once (see `SimHandle::set_company_info_latency`).
    pub company_info_max_in_flight: u64,
    /// companyinfo 401 (3200) answers.
    pub company_info_unauthorized: u64,
    /// companyinfo 403 (3100) answers.
    pub company_info_forbidden: u64,
    /// 429 answers of the per-realm throttle (500 requests per minute).
    pub throttled: u64,
    pub faults_injected: u64,
    /// Every request reaching the token endpoint, faulted or not.
    pub token_requests: u64,
    /// Successful refreshes per realm id (grants without a realm are not listed).
    pub refreshes_by_realm: BTreeMap<String, u64>,
}
