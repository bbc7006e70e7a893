//! Checks an audit event against its catalogue entry (`qbo_console::audit::CATALOGUE`).
//!
//! Every catalogue entry must be checked by at least one test through
//! `assert_catalogued(…, Action::X, …)`: the suite's catalogue test reads the test sources
//! and fails for an entry no test names this way.

use qbo_console::audit::{Action, Field, Target};
use serde_json::Value;

/// Asserts that `ev` (one line of `audit tail --json`) is exactly what the catalogue
/// documents for `action`, recorded for `account`: the action's name, an allowed outcome,
/// a connection named when (and only when) the entry says so, no optional field the entry
/// does not list, only documented fingerprint labels, and an intact hash.
pub fn assert_catalogued(ev: &Value, action: Action, account: &str) {
    let spec = action.spec();
    let s = |k: &str| ev.get(k).and_then(Value::as_str).map(str::to_string);
    assert_eq!(s("action").as_deref(), Some(action.as_str()), "action of {ev}");
    assert_eq!(s("actor_account").as_deref(), Some(account), "actor of {ev}");
    let outcome = s("outcome").unwrap_or_default();
    assert!(
        spec.outcomes.iter().any(|o| o.as_str() == outcome),
        "outcome {outcome:?} is not documented for {action}: {ev}"
    );
    let names_connection = ev.get("connection_id").is_some_and(|v| !v.is_null());
    for k in ["environment", "realm_id", "tenant"] {
        assert_eq!(
            ev.get(k).is_some_and(|v| !v.is_null()),
            names_connection,
            "{k} must be set exactly when connection_id is: {ev}"
        );
    }
    match spec.target {
        Target::Connection => assert!(names_connection, "{action} must name a connection: {ev}"),
        Target::None => assert!(!names_connection, "{action} must not name a connection: {ev}"),
        Target::Optional => {}
    }
    for (field, key) in [
        (Field::ErrorClass, "error_class"),
        (Field::Reason, "reason"),
        (Field::IntuitTid, "intuit_tid"),
    ] {
        if ev.get(key).is_some_and(|v| !v.is_null()) {
            assert!(
                spec.fields.contains(&field),
                "{action} sets {key}, which its catalogue entry does not list: {ev}"
            );
        }
    }
    let fps = s("fingerprints").unwrap_or_default();
    for pair in fps.split_whitespace() {
        let (label, value) = pair.split_once('=').expect("fingerprints are label=value pairs");
        assert!(
            spec.fingerprints.contains(&label),
            "{action} carries fingerprint {label:?}, which its catalogue entry does not list: {ev}"
        );
        assert!(value.starts_with("fp:"), "fingerprint {pair} is not a keyed fingerprint");
    }
    let record: qbo_console::audit::AuditRecord =
        serde_json::from_value(ev.clone()).expect("an audit event parses as a record");
    assert_eq!(record.compute_hash(), record.hash, "the event's hash covers its fields");
}
