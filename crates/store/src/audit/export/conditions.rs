//! Which rows of the log an export reads: the filter's terms as SQL conditions.

use crate::audit::page::contains_pattern;
use qbo_core::audit::ExportFilter;

/// Appends ` AND …` conditions to `sql`, numbering parameters from `first`; returns
/// the values to bind, in order.
pub(super) fn conditions(f: &ExportFilter, sql: &mut String, first: usize) -> Vec<String> {
    let mut binds = Vec::new();
    let mut push = |sql: &mut String, cond: String, value: String| {
        let n = first + binds.len();
        sql.push_str(&cond.replace("$?", &format!("${n}")));
        binds.push(value);
    };
    if let Some(s) = &f.since {
        push(sql, " AND at >= $?".into(), s.clone());
    }
    if let Some(u) = &f.until {
        push(sql, " AND at < $?".into(), u.clone());
    }
    for (column, v) in [
        ("tenant", &f.tenant),
        ("actor_account", &f.actor),
        ("action", &f.action),
    ] {
        if let Some(v) = v {
            push(
                sql,
                format!(" AND lower(COALESCE({column}, '')) LIKE $? ESCAPE '\\'"),
                contains_pattern(v),
            );
        }
    }
    if let Some(r) = &f.realm {
        push(sql, " AND realm_id = $?".into(), r.trim().to_string());
    }
    if let Some(o) = &f.outcome {
        push(sql, " AND outcome = $?".into(), o.clone());
    }
    binds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_become_bound_conditions_with_like_wildcards_taken_literally() {
        let mut sql = String::new();
        let binds = conditions(
            &ExportFilter {
                tenant: Some("Ac_me".into()),
                outcome: Some("ok".into()),
                ..Default::default()
            },
            &mut sql,
            3,
        );
        assert_eq!(binds, vec!["%ac\\_me%".to_string(), "ok".to_string()]);
        assert!(sql.contains("$3") && sql.contains("outcome = $4"), "{sql}");
    }
}
