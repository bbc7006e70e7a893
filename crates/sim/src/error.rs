//! The emulator's one error type: something given to it (a flag, an admin request, a form,
//! a seed) that it cannot use, phrased for whoever gave it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError(pub String);

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}

impl From<String> for SimError {
    fn from(s: String) -> Self {
        SimError(s)
    }
}

impl From<&str> for SimError {
    fn from(s: &str) -> Self {
        SimError(s.to_string())
    }
}
