//! The console's one error type: a problem to show the operator, already phrased for them
//! (a key or colour in `[tui]` they wrote, a filter they typed, an action the daemon
//! refused, explained with what to do). Errors from below arrive as `ClientError` and are
//! explained once, where the runtime receives them.

/// A problem, phrased for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConsoleError(pub String);

impl From<String> for ConsoleError {
    fn from(s: String) -> Self {
        ConsoleError(s)
    }
}

impl From<&str> for ConsoleError {
    fn from(s: &str) -> Self {
        ConsoleError(s.to_string())
    }
}
