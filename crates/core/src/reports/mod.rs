//! What the layers below the service report back, in the shapes the service hands to
//! every interface: the outcome of a refresh, revocation or verification, an import's
//! rows, the keys' status, the forecast, alerts and service keys. The store and the engine
//! fill them; no interface sees a row or a lifecycle type of theirs.

mod alerts;
mod api_keys;
mod forecast;
mod import;
mod keys;
mod outcomes;

pub use alerts::AlertDelivery;
pub use api_keys::ApiKeyRecord;
pub use forecast::{Cause, CauseSummary, Forecast, ForecastFrame, ForecastItem, Group, Risk};
pub use import::{ImportPass, ImportProgress, ImportReport, ImportTally};
pub use keys::{KeyStatus, KeyUse, RotationFailure, RotationReport};
pub use outcomes::{describe_refresh, outcome_name, RefreshOutcome, RevokeOutcome, VerifyOutcome};
