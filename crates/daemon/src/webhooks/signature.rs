//! `intuit-signature`: base64 of the HMAC-SHA256 of the raw body, keyed by the app's
//! verifier token. Checked in constant time (`Mac::verify_slice`).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Whether `header` is the signature of `body` under `verifier_token`.
pub fn verify(verifier_token: &[u8], body: &[u8], header: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(verifier_token) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The signature Intuit would send: for tests, the emulator and the benchmark.
pub fn sign(verifier_token: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(verifier_token).expect("HMAC takes any key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_its_body_and_token() {
        let sig = sign(b"verifier", b"{\"a\":1}");
        assert!(verify(b"verifier", b"{\"a\":1}", &sig));
        assert!(!verify(b"verifier", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(b"verifier", b"{\"a\":1}", "not base64!"));
        assert!(!verify(b"verifier", b"{\"a\":1}", ""));
    }
}
