//! The OAuth scopes the emulator knows, as a small bit set.

use crate::SimError;

/// Scope names Intuit accepts for the apps this project builds.
const KNOWN: [&str; 7] = [
    "com.intuit.quickbooks.accounting",
    "com.intuit.quickbooks.payment",
    "openid",
    "profile",
    "email",
    "phone",
    "address",
];

const ACCOUNTING: u8 = 1 << 0;
const PAYMENT: u8 = 1 << 1;
const OPENID: u8 = 1 << 2;
const EMAIL: u8 = 1 << 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ScopeSet(u8);

impl ScopeSet {
    pub(crate) const ACCOUNTING: ScopeSet = ScopeSet(ACCOUNTING);

    /// Parses Intuit's space-separated scope list; every name must be known
    /// and at least one must be present.
    pub(crate) fn parse(list: &str) -> Result<ScopeSet, SimError> {
        let mut bits = 0u8;
        for name in list.split(' ').filter(|s| !s.is_empty()) {
            match KNOWN.iter().position(|k| *k == name) {
                Some(i) => bits |= 1 << i,
                None => return Err(SimError::from(format!("unknown scope {name:?}"))),
            }
        }
        if bits == 0 {
            return Err(SimError::from("no scope requested"));
        }
        Ok(ScopeSet(bits))
    }

    /// `realmId` is only part of the grant with the accounting or payment scope.
    pub(crate) fn reaches_company(self) -> bool {
        self.0 & (ACCOUNTING | PAYMENT) != 0
    }

    pub(crate) fn has_openid(self) -> bool {
        self.0 & OPENID != 0
    }

    pub(crate) fn has_email(self) -> bool {
        self.0 & EMAIL != 0
    }

    pub(crate) fn names(self) -> Vec<&'static str> {
        KNOWN
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, k)| *k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_query() {
        let s = ScopeSet::parse("com.intuit.quickbooks.accounting openid").unwrap();
        assert!(s.reaches_company() && s.has_openid() && !s.has_email());
        assert_eq!(s.names(), ["com.intuit.quickbooks.accounting", "openid"]);
        assert!(!ScopeSet::parse("openid email").unwrap().reaches_company());
        assert!(ScopeSet::parse("com.intuit.quickbooks.payroll").is_err());
        assert!(ScopeSet::parse("  ").is_err());
    }
}
