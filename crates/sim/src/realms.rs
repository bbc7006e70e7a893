//! Companies (realms): creation and reconnection rules, the per-realm QBO
//! throttle, and the customer's "disconnect app" inside QuickBooks.

use crate::SimError;
use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use super::options::SimEnvironment;
use super::state::{GrantEnd, GrantId, State};
use super::tokens;

/// Intuit's per-realm QBO API throttle: 500 requests per minute.
const THROTTLE_LIMIT: usize = 500;
const THROTTLE_WINDOW_SECS: i64 = 60;

pub(crate) struct Realm {
    pub(crate) company_name: String,
    pub(crate) environment: SimEnvironment,
    pub(crate) grants: Vec<GrantId>,
    /// Times of recent QBO API calls, for the per-minute throttle.
    pub(crate) recent: VecDeque<DateTime<Utc>>,
}

impl State {
    /// Finds or creates the company a consent is for. An existing realm must
    /// belong to the client's environment: a production app never sees a
    /// sandbox company.
    pub(crate) fn ensure_realm(
        &mut self,
        realm_id: Option<&str>,
        environment: SimEnvironment,
        company_name: Option<&str>,
    ) -> Result<String, SimError> {
        let id = match realm_id {
            Some(id) => {
                if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SimError::from(format!(
                        "realm id {id:?} is not 1 to 19 digits"
                    )));
                }
                if let Some(r) = self.realms.get(id) {
                    if r.environment != environment {
                        return Err(SimError::from(format!(
                            "company {id} is a {} company; this app uses {environment} keys",
                            r.environment
                        )));
                    }
                    return Ok(id.to_string());
                }
                id.to_string()
            }
            None => loop {
                let id = tokens::new_realm_id(environment == SimEnvironment::Sandbox);
                if !self.realms.contains_key(&id) {
                    break id;
                }
            },
        };
        self.company_counter += 1;
        let name = match (company_name, environment) {
            (Some(n), _) => n.to_string(),
            (None, SimEnvironment::Sandbox) => {
                format!("Sandbox Company_US_{}", self.company_counter)
            }
            (None, SimEnvironment::Production) => format!("Sim Company {}", self.company_counter),
        };
        self.realms.insert(
            id.clone(),
            Realm {
                company_name: name,
                environment,
                grants: Vec::new(),
                recent: VecDeque::new(),
            },
        );
        Ok(id)
    }

    /// Counts one QBO API call against the realm's per-minute budget; false
    /// when the budget is spent.
    pub(crate) fn throttle_admit(&mut self, realm_id: &str, now: DateTime<Utc>) -> bool {
        let Some(realm) = self.realms.get_mut(realm_id) else {
            return true;
        };
        let window_start = now - Duration::seconds(THROTTLE_WINDOW_SECS);
        while realm.recent.front().is_some_and(|t| *t <= window_start) {
            realm.recent.pop_front();
        }
        if realm.recent.len() >= THROTTLE_LIMIT {
            return false;
        }
        realm.recent.push_back(now);
        true
    }

    /// The customer disconnects the app inside QuickBooks: every live grant
    /// for the company ends. Returns how many ended.
    pub(crate) fn disconnect(&mut self, realm_id: &str) -> usize {
        let Some(realm) = self.realms.get(realm_id) else {
            return 0;
        };
        let mut ended = 0;
        for gid in &realm.grants {
            if let Some(g) = self.grants.get_mut(*gid) {
                if g.ended.is_none() {
                    g.ended = Some(GrantEnd::Disconnected);
                    ended += 1;
                }
            }
        }
        self.stats.disconnects += 1;
        ended
    }
}
