//! Checks an audit event against its catalogue entry (`qbo_store::audit::CATALOGUE`).
//!
//! Every catalogue entry must be checked by at least one test through
//! `assert_catalogued(…, Action::X, …)`: the suite's catalogue test reads the test sources
//! and fails for an entry no test names this way.

use qbo_core::identity::{Kind, NO_UID};
use qbo_store::audit::{Action, Field, Target};
use serde_json::Value;

/// Asserts that `ev` (one line of `audit tail --json`) is exactly what the catalogue
/// documents for `action`, recorded for `account`: the action's name, an allowed outcome,
/// a connection named when (and only when) the entry says so (never for `denied`), no optional field the entry
/// does not list, only documented fingerprint labels, and an intact hash.
pub fn assert_catalogued(ev: &Value, action: Action, account: &str) {
    check_catalogued(ev, action, account)
}

/// `assert_catalogued` for an action known only at run time (a scan of every event); the
/// suite's count of which entries are checked reads `assert_catalogued(…, Action::X, …)`
/// calls only.
pub fn check_catalogued(ev: &Value, action: Action, account: &str) {
    let spec = action.spec();
    let s = |k: &str| ev.get(k).and_then(Value::as_str).map(str::to_string);
    assert_eq!(
        s("action").as_deref(),
        Some(action.as_str()),
        "action of {ev}"
    );
    assert_eq!(
        s("actor_account").as_deref(),
        Some(account),
        "actor of {ev}"
    );
    // Who acted: a kind the entry allows, and a role only for an operator.
    let kind_word = s("actor_kind").unwrap_or_default();
    let kind = Kind::parse(&kind_word)
        .unwrap_or_else(|| panic!("actor_kind {kind_word:?} is not a kind of actor: {ev}"));
    assert!(
        spec.actors.contains(&kind),
        "{action} may not be recorded by {kind} (its catalogue entry allows {:?}): {ev}",
        spec.actors
    );
    assert_actor_honest(ev);
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
        // A role refusal comes before the connection is looked up: it never names one.
        // (Other denials, such as a callback's rejected state, may name theirs.)
        _ if outcome == "denied"
            && s("reason").is_some_and(|r| r.contains("lacks permission for")) =>
        {
            assert!(
                !names_connection,
                "a role refusal of {action} must not name a connection: {ev}"
            )
        }
        Target::Connection => assert!(names_connection, "{action} must name a connection: {ev}"),
        Target::None => assert!(
            !names_connection,
            "{action} must not name a connection: {ev}"
        ),
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
        let (label, value) = pair
            .split_once('=')
            .expect("fingerprints are label=value pairs");
        assert!(
            spec.fingerprints.contains(&label),
            "{action} carries fingerprint {label:?}, which its catalogue entry does not list: {ev}"
        );
        assert!(
            value.starts_with("fp:"),
            "fingerprint {pair} is not a keyed fingerprint"
        );
    }
    let record: qbo_store::audit::AuditRecord =
        serde_json::from_value(ev.clone()).expect("an audit event parses as a record");
    assert_eq!(
        record.compute_hash(),
        record.hash,
        "the event's hash covers its fields"
    );
}

/// Asserts that an event (one line of `audit tail --json`) names its actor honestly: a
/// kind is stored; an operator has a role and acted through cli or tui; anything else has
/// no role, no OS account (uid `NO_UID`), and the door its kind comes through.
pub fn assert_actor_honest(ev: &Value) {
    let s = |k: &str| {
        ev.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let kind = Kind::parse(&s("actor_kind"))
        .unwrap_or_else(|| panic!("no actor kind on a new event: {ev}"));
    let role = s("role");
    let interface = s("interface");
    if kind == Kind::Operator {
        assert!(
            ["viewer", "auditor", "support", "admin", "unmapped"].contains(&role.as_str()),
            "an operator's event carries its role: {ev}"
        );
        assert!(
            ["cli", "tui"].contains(&interface.as_str()),
            "an operator acts through cli or tui: {ev}"
        );
        assert!(ev["actor_uid"].as_i64().is_some_and(|u| u >= 0), "{ev}");
    } else {
        assert_eq!(
            role, "",
            "{kind} acted: no operator role may be recorded: {ev}"
        );
        assert_eq!(
            ev["actor_uid"].as_i64(),
            Some(NO_UID),
            "{kind} has no OS account: {ev}"
        );
        let door = match kind {
            Kind::Service => "token_api",
            Kind::Customer | Kind::Intuit => "callback",
            _ => "scheduler",
        };
        assert_eq!(interface, door, "{ev}");
        let account = s("actor_account");
        let named = match kind {
            Kind::Service => account.starts_with("service:"),
            Kind::Customer => account == "customer" || account.starts_with("customer:fp:"),
            Kind::Intuit => account == "intuit",
            daemon => account == daemon.as_str(),
        };
        assert!(named, "{kind} is named {account:?}: {ev}");
        if kind != Kind::Customer {
            assert!(
                ev["actor_ssh"].is_null(),
                "only a customer's address is kept: {ev}"
            );
        }
    }
}
