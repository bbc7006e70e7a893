//! What happens to a connection: the Intuit client on the wire, the lifecycle (refresh,
//! verify, revoke, import, key rotation) with its single flight and leases, the forecast of
//! what will lapse, and the metrics the daemon exports. Above the store, below the service.

pub mod forecast;
pub mod intuit;
pub mod lifecycle;
pub mod metrics;
