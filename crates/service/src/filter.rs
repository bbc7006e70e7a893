//! The filter language, parsed once into a typed [`Filter`] and matched against
//! [`ConnectionView`]s. Nothing here knows a screen: the console filters its table with it,
//! and a command line (`revoke --where`) can select connections with the same words.
//!
//! Free words match the tenant, the realm id or the company name (case-insensitive
//! substring); field terms narrow further. Every part must hold (AND).

use crate::facts::Facts;
use crate::{Condition, ConnectionView, Environment, REFRESH_WINDOW_DAYS};
use chrono::{DateTime, Utc};
use std::fmt;

/// The forms a term can take, shown whenever one is wrong.
pub const VALID_FORMS: &str = "status:S[,S] env:sandbox|production age>N left<N idle>Nd \
hard<N sync:ok|failed|never actor:NAME (comparisons < <= > >= =); other words search tenant, \
realm and company";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Lower-cased free words.
    words: Vec<String>,
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Status(Vec<Condition>),
    Env(Vec<Environment>),
    /// Days used of the 100-day refresh window.
    Age(Cmp, i64),
    /// Days left in the refresh window.
    Left(Cmp, i64),
    /// Days since the last successful refresh (the current refresh token's issue).
    Idle(Cmp, i64),
    /// Days until Intuit's 5-year hard limit.
    Hard(Cmp, i64),
    Sync(Vec<Outcome>),
    /// Lower-cased substring of the account that acted last.
    Actor(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    fn holds(self, value: i64, bound: i64) -> bool {
        match self {
            Cmp::Lt => value < bound,
            Cmp::Le => value <= bound,
            Cmp::Gt => value > bound,
            Cmp::Ge => value >= bound,
            Cmp::Eq => value == bound,
        }
    }
}

/// How the last refresh or the last sync went, read from the view in one place each (the
/// words and glyphs are `present`'s).
pub use qbo_core::present::Outcome;

/// The filter language's words for an outcome (`refresh:failed`, `sync:never`).
fn parse_outcome(s: &str) -> Option<Outcome> {
    match s {
        "ok" => Some(Outcome::Ok),
        "failed" | "fail" => Some(Outcome::Failed),
        "never" | "none" => Some(Outcome::Never),
        _ => None,
    }
}

fn outcome_of(text: Option<&str>) -> Outcome {
    match text {
        None => Outcome::Never,
        Some("ok") => Outcome::Ok,
        Some(_) => Outcome::Failed,
    }
}

/// The last sync's outcome (`verify` records syncs).
pub fn sync_outcome(c: &ConnectionView) -> Outcome {
    outcome_of(c.last_sync_status.map(crate::SyncStatus::as_str))
}

/// The last refresh's outcome.
pub fn refresh_outcome(c: &ConnectionView) -> Outcome {
    outcome_of(c.last_refresh_outcome.map(crate::LastRefresh::as_str))
}

/// Days left in the refresh window at `now` (the view's own figure was computed when it
/// was made; a console lives longer than that).
pub fn refresh_days_left(c: &(impl Facts + ?Sized), now: DateTime<Utc>) -> Option<i64> {
    c.refresh_expires_at()
        .map(|t| (t - now).num_days())
        .or(c.days_left_hint())
}

/// Days used of the refresh window at `now`.
pub fn refresh_days_used(c: &(impl Facts + ?Sized), now: DateTime<Utc>) -> Option<i64> {
    refresh_days_left(c, now)
        .map(|d| (REFRESH_WINDOW_DAYS - d).clamp(0, REFRESH_WINDOW_DAYS))
        .or(c.days_used_hint())
}

/// Days until the 5-year hard limit at `now`.
pub fn hard_days_left(c: &(impl Facts + ?Sized), now: DateTime<Utc>) -> Option<i64> {
    c.hard_expires_at().map(|t| (t - now).num_days())
}

/// Days since the refresh token in hand was issued: the last successful refresh.
pub fn idle_days(c: &(impl Facts + ?Sized), now: DateTime<Utc>) -> Option<i64> {
    c.refresh_issued_at().map(|t| (now - t).num_days())
}

/// A term that does not parse, with what would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub term: String,
    pub problem: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filter term `{}`: {}; valid forms: {VALID_FORMS}",
            self.term, self.problem
        )
    }
}

impl std::error::Error for FilterError {}

const NUMERIC_FIELDS: [&str; 4] = ["age", "left", "idle", "hard"];
const WORD_FIELDS: [&str; 4] = ["status", "env", "sync", "actor"];

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for raw in text.split_whitespace() {
            f.add(raw)?;
        }
        Ok(f)
    }

    /// As [`Filter::parse`], but a term that does not parse is left out, so a console
    /// filtering as the operator types keeps showing what the rest selects (typing `age>8`
    /// passes through `age>`). The first mistake comes back to be shown.
    pub fn parse_lenient(text: &str) -> (Filter, Option<FilterError>) {
        let mut f = Filter::default();
        let mut first = None;
        for raw in text.split_whitespace() {
            if let Err(e) = f.add(raw) {
                first.get_or_insert(e);
            }
        }
        (f, first)
    }

    fn add(&mut self, raw: &str) -> Result<(), FilterError> {
        let bad = |problem: String| FilterError {
            term: raw.to_string(),
            problem,
        };
        let lower = raw.to_lowercase();
        // A field name is letters up to the first ':' or comparison sign.
        let split = lower.find([':', '<', '>', '=']);
        let Some(at) =
            split.filter(|&i| i > 0 && lower[..i].bytes().all(|b| b.is_ascii_alphabetic()))
        else {
            self.words.push(lower);
            return Ok(());
        };
        let (field, rest) = lower.split_at(at);
        if NUMERIC_FIELDS.contains(&field) {
            let (cmp, number) = parse_comparison(rest).ok_or_else(|| {
                bad(format!(
                    "expected a comparison and a number of days after `{field}`, as in {field}>30 or {field}<=10d"
                ))
            })?;
            let n = number
                .strip_suffix('d')
                .unwrap_or(number)
                .parse::<i64>()
                .map_err(|_| {
                    bad(format!(
                        "{number:?} is not a whole number of days (as in {field}>30 or {field}>30d)"
                    ))
                })?;
            self.terms.push(match field {
                "age" => Term::Age(cmp, n),
                "left" => Term::Left(cmp, n),
                "idle" => Term::Idle(cmp, n),
                _ => Term::Hard(cmp, n),
            });
            return Ok(());
        }
        if WORD_FIELDS.contains(&field) {
            let Some(value) = rest.strip_prefix(':').filter(|v| !v.is_empty()) else {
                return Err(bad(format!("expected `{field}:` and a value")));
            };
            let values = || value.split(',').filter(|v| !v.is_empty());
            let term = match field {
                "status" => Term::Status(
                    values()
                        .map(|v| v.parse::<Condition>().map_err(|e| bad(e.0)))
                        .collect::<Result<_, _>>()?,
                ),
                "env" => Term::Env(
                    values()
                        .map(|v| match v {
                            "prod" => Ok(Environment::Production),
                            "sbox" => Ok(Environment::Sandbox),
                            v => v.parse::<Environment>().map_err(|e| bad(e.0)),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                "sync" => Term::Sync(
                    values()
                        .map(|v| {
                            parse_outcome(v).ok_or_else(|| {
                                bad(format!(
                                    "unknown sync state {v:?}: expected ok, failed or never"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => Term::Actor(value.to_string()),
            };
            self.terms.push(term);
            return Ok(());
        }
        Err(bad(format!(
            "unknown field `{field}`; fields are {}",
            WORD_FIELDS
                .iter()
                .chain(NUMERIC_FIELDS.iter())
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.terms.is_empty()
    }

    /// Whether the answer can change while nothing but the clock moves.
    pub fn depends_on_time(&self) -> bool {
        self.terms.iter().any(|t| {
            matches!(
                t,
                Term::Age(..) | Term::Left(..) | Term::Idle(..) | Term::Hard(..)
            )
        })
    }

    /// The text a connection's free words are searched in, lower-cased. A caller filtering
    /// many times over the same rows keeps these and calls [`Filter::matches_with`].
    pub fn haystack(c: &ConnectionView) -> String {
        let mut h = String::with_capacity(
            c.tenant.len() + c.realm_id.len() + c.company_name.as_ref().map_or(0, String::len) + 2,
        );
        h.push_str(&c.tenant.to_lowercase());
        // A separator no word can contain, so no word matches across two fields.
        h.push('\n');
        h.push_str(&c.realm_id);
        h.push('\n');
        if let Some(n) = &c.company_name {
            h.push_str(&n.to_lowercase());
        }
        h
    }

    pub fn matches(&self, c: &ConnectionView, now: DateTime<Utc>) -> bool {
        if self.words.is_empty() {
            return self.matches_with(c, "", now);
        }
        self.matches_with(c, &Self::haystack(c), now)
    }

    /// As [`Filter::matches`], with the connection's [`Filter::haystack`] computed already.
    pub fn matches_with(
        &self,
        c: &(impl Facts + ?Sized),
        haystack: &str,
        now: DateTime<Utc>,
    ) -> bool {
        self.words.iter().all(|w| haystack.contains(w.as_str()))
            && self.terms.iter().all(|t| term_holds(t, c, now))
    }

    /// The filter made ready for many haystacks: each free word's searcher is built once,
    /// not once per row (a million rows searched for one letter took 200 ms, most of it
    /// setting up the same search again).
    pub fn prepared(&self) -> Prepared<'_> {
        Prepared {
            finders: self
                .words
                .iter()
                .map(|w| memchr::memmem::Finder::new(w.as_bytes()))
                .collect(),
            terms: &self.terms,
        }
    }
}

/// A [`Filter`] ready to match many rows (see [`Filter::prepared`]).
pub struct Prepared<'a> {
    finders: Vec<memchr::memmem::Finder<'a>>,
    terms: &'a [Term],
}

impl Prepared<'_> {
    pub fn matches_with(
        &self,
        c: &(impl Facts + ?Sized),
        haystack: &str,
        now: DateTime<Utc>,
    ) -> bool {
        self.finders
            .iter()
            .all(|f| f.find(haystack.as_bytes()).is_some())
            && self.terms.iter().all(|t| term_holds(t, c, now))
    }
}

fn term_holds(t: &Term, c: &(impl Facts + ?Sized), now: DateTime<Utc>) -> bool {
    let days = |v: Option<i64>, cmp: Cmp, n: i64| v.is_some_and(|v| cmp.holds(v, n));
    match t {
        Term::Status(s) => s.contains(&c.condition()),
        Term::Env(e) => e.contains(&c.environment()),
        Term::Age(cmp, n) => days(refresh_days_used(c, now), *cmp, *n),
        Term::Left(cmp, n) => days(refresh_days_left(c, now), *cmp, *n),
        Term::Idle(cmp, n) => days(idle_days(c, now), *cmp, *n),
        Term::Hard(cmp, n) => days(hard_days_left(c, now), *cmp, *n),
        Term::Sync(o) => o.contains(&c.sync_outcome()),
        Term::Actor(a) => c
            .last_actor()
            .is_some_and(|who| who.to_lowercase().contains(a.as_str())),
    }
}

fn parse_comparison(rest: &str) -> Option<(Cmp, &str)> {
    let (cmp, n) = if let Some(n) = rest.strip_prefix("<=") {
        (Cmp::Le, n)
    } else if let Some(n) = rest.strip_prefix(">=") {
        (Cmp::Ge, n)
    } else if let Some(n) = rest.strip_prefix('<') {
        (Cmp::Lt, n)
    } else if let Some(n) = rest.strip_prefix('>') {
        (Cmp::Gt, n)
    } else if let Some(n) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':')) {
        (Cmp::Eq, n)
    } else {
        return None;
    };
    (!n.is_empty()).then_some((cmp, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{at, conn, NOW};

    fn hits(filter: &str, rows: &[ConnectionView]) -> Vec<String> {
        let f = Filter::parse(filter).unwrap_or_else(|e| panic!("{e}"));
        rows.iter()
            .filter(|c| f.matches(c, at(NOW)))
            .map(|c| c.tenant.clone())
            .collect()
    }

    fn rows() -> Vec<ConnectionView> {
        crate::fixtures::every_state()
    }

    #[test]
    fn free_words_match_tenant_realm_and_company_ignoring_case() {
        let rows = rows();
        assert_eq!(hits("ACME", &rows), ["acme-corp"]);
        assert_eq!(hits("9130000000000003", &rows), ["globex"]);
        assert_eq!(hits("initech llc", &rows), Vec::<String>::new());
        assert_eq!(hits("Initech", &rows), ["initech"]);
        assert_eq!(hits("INITECH payroll", &rows), ["initech"]);
    }

    #[test]
    fn a_word_does_not_match_across_two_fields() {
        let mut c = conn(1, "abc", crate::Status::Active);
        c.realm_id = "123".into();
        let f = Filter::parse("c1").unwrap();
        assert!(!f.matches(&c, at(NOW)));
    }

    #[test]
    fn status_takes_underscores_dashes_and_several_values() {
        let rows = rows();
        assert_eq!(hits("status:needs_reconnect", &rows), ["globex"]);
        assert_eq!(hits("status:needs-reconnect", &rows), ["globex"]);
        assert_eq!(
            hits("status:revoked,pending", &rows),
            ["hooli", "pied-piper"]
        );
    }

    #[test]
    fn env_selects_sandbox_or_production() {
        let rows = rows();
        assert_eq!(hits("env:sandbox", &rows), ["umbrella", "hooli"]);
        assert_eq!(hits("env:production", &rows).len(), rows.len() - 2);
        assert_eq!(hits("env:sbox", &rows), ["umbrella", "hooli"]);
    }

    #[test]
    fn age_compares_days_used_of_the_refresh_window() {
        let rows = rows();
        assert_eq!(hits("age>80", &rows), ["stark"]);
        assert_eq!(hits("age>=85", &rows), ["stark"]);
        assert_eq!(hits("age>85", &rows), Vec::<String>::new());
        assert!(hits("age<2", &rows).contains(&"acme-corp".to_string()));
    }

    #[test]
    fn left_compares_days_left_in_the_refresh_window() {
        let rows = rows();
        assert_eq!(hits("left<16", &rows), ["stark"]);
        assert_eq!(hits("left<=15", &rows), ["stark"]);
        assert_eq!(hits("left=15", &rows), ["stark"]);
    }

    #[test]
    fn idle_counts_days_since_the_last_successful_refresh_with_a_day_suffix() {
        let rows = rows();
        assert_eq!(hits("idle>80d", &rows), ["stark"]);
        assert_eq!(hits("idle>80", &rows), ["stark"]);
        assert_eq!(hits("idle>90d", &rows), Vec::<String>::new());
    }

    #[test]
    fn hard_compares_days_to_the_five_year_limit() {
        let rows = rows();
        assert_eq!(hits("hard<30", &rows), ["wayne"]);
        assert_eq!(hits("hard<10d", &rows), Vec::<String>::new());
    }

    #[test]
    fn sync_selects_failed_ok_or_never_synced() {
        let rows = rows();
        assert_eq!(hits("sync:failed", &rows), ["initech"]);
        assert!(hits("sync:ok", &rows).contains(&"acme-corp".to_string()));
        assert!(hits("sync:never", &rows).contains(&"pied-piper".to_string()));
        assert_eq!(
            hits("sync:failed,ok", &rows).len() + hits("sync:never", &rows).len(),
            rows.len()
        );
    }

    #[test]
    fn actor_matches_who_acted_last() {
        let rows = rows();
        assert_eq!(hits("actor:alice", &rows), ["acme-corp"]);
        assert_eq!(hits("actor:ALI", &rows), ["acme-corp"]);
        assert_eq!(hits("actor:mallory", &rows), Vec::<String>::new());
    }

    #[test]
    fn terms_and_words_combine_with_and() {
        let rows = rows();
        assert_eq!(hits("env:sandbox status:revoked", &rows), ["hooli"]);
        assert_eq!(hits("env:sandbox hooli", &rows), ["hooli"]);
        assert_eq!(hits("env:sandbox acme", &rows), Vec::<String>::new());
        assert_eq!(hits("", &rows).len(), rows.len());
    }

    #[test]
    fn a_missing_figure_matches_no_comparison() {
        let rows = rows();
        // pending holds no tokens: no window, no hard limit, no idle figure.
        for f in ["age>=0", "left>=-1000", "idle>=0", "hard>=-1000"] {
            assert!(!hits(f, &rows).contains(&"pied-piper".to_string()), "{f}");
        }
    }

    #[test]
    fn bad_terms_are_named_with_the_valid_forms() {
        let cases = [
            ("age>x", "\"x\" is not a whole number of days"),
            ("age", ""),
            ("foo>3", "unknown field `foo`"),
            ("age>", "expected a comparison"),
            ("status:dead", "unknown status \"dead\""),
            ("env:staging", "unknown environment \"staging\""),
            ("sync:maybe", "unknown sync state \"maybe\""),
            ("colour:red", "unknown field `colour`"),
            ("actor:", "expected `actor:` and a value"),
        ];
        for (text, expected) in cases {
            match Filter::parse(&format!("acme {text}")) {
                // `age` alone is a free word: a tenant may be called that.
                Ok(_) if expected.is_empty() => {}
                Ok(f) => panic!("{text} parsed as {f:?}"),
                Err(e) => {
                    let shown = e.to_string();
                    assert!(shown.contains(&format!("`{text}`")), "{shown}");
                    assert!(shown.contains(expected), "{shown}");
                    assert!(shown.contains("valid forms: status:S"), "{shown}");
                }
            }
        }
    }

    #[test]
    fn leniently_a_bad_term_is_left_out_and_the_rest_applies() {
        let (f, e) = Filter::parse_lenient("env:sandbox age> hooli");
        assert_eq!(e.unwrap().term, "age>");
        assert_eq!(f, Filter::parse("env:sandbox hooli").unwrap());
        assert!(Filter::parse("env:sandbox age> hooli").is_err());
    }

    #[test]
    fn time_terms_are_known_to_depend_on_the_clock() {
        assert!(Filter::parse("acme idle>3").unwrap().depends_on_time());
        assert!(!Filter::parse("acme status:active")
            .unwrap()
            .depends_on_time());
    }
}
