//! Copying text to the operator's clipboard with OSC 52: the terminal emulator on the
//! operator's own machine sets its clipboard, so it works over SSH. Inside tmux the
//! sequence is wrapped in tmux's DCS passthrough (`ESC P tmux; … ESC \\`, every ESC inside
//! doubled), which tmux forwards to the outer terminal (with `allow-passthrough on`, or
//! tmux's own `set-clipboard` handling the bare sequence when passthrough is off).

use base64::Engine;

/// The bytes to write to the terminal to put `text` on the clipboard.
pub fn osc52(text: &str, inside_tmux: bool) -> String {
    let payload = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let osc = format!("\x1b]52;c;{payload}\x07");
    if inside_tmux {
        format!("\x1bPtmux;{}\x1b\\", osc.replace('\x1b', "\x1b\x1b"))
    } else {
        osc
    }
}

#[cfg(test)]
mod tests {
    use super::osc52;

    #[test]
    fn the_link_travels_base64_encoded_and_through_tmux_in_a_passthrough() {
        let plain = osc52("https://c.example.com/connect/abc", false);
        assert_eq!(
            plain,
            "\x1b]52;c;aHR0cHM6Ly9jLmV4YW1wbGUuY29tL2Nvbm5lY3QvYWJj\x07"
        );
        let wrapped = osc52("https://c.example.com/connect/abc", true);
        assert_eq!(
            wrapped,
            "\x1bPtmux;\x1b\x1b]52;c;aHR0cHM6Ly9jLmV4YW1wbGUuY29tL2Nvbm5lY3QvYWJj\x07\x1b\\"
        );
    }
}
