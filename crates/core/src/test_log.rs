//! What the daemon's plain log format writes, captured for tests that check what outside
//! text does to a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes `f` logs, formatted as `serve` writes its log file (plain text, no colour),
/// every level included.
pub fn captured(f: impl FnOnce()) -> Vec<u8> {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = out.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    bytes
}

/// The control and bidi characters of a hostile detail, found raw in `log` (a log line's
/// own `\n` aside).
pub fn raw_controls(log: &[u8]) -> Vec<char> {
    String::from_utf8_lossy(log)
        .chars()
        .filter(|&c| c != '\n' && crate::text::is_unsafe(c))
        .collect()
}

/// A detail as hostile as Intuit could send one.
pub const HOSTILE: &str = "bad\r\u{1b}[2J\u{1b}]0;owned\u{7}\0\u{202e}moc.live";
