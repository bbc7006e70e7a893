//! Generation of codes, tokens, realm ids and transaction ids.
//!
//! Everything secret comes from `rand::thread_rng()`, a CSPRNG (ChaCha12
//! reseeded from the operating system). Access tokens are long (about 750
//! characters, like Intuit's today); to keep the emulator cheap under a
//! benchmark they are derived from a 32-byte random seed, so the emulator
//! stores the seed and a SHA-256 lookup key instead of the whole text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Bytes of pseudo-random material behind an access token: base64url of 560
/// bytes is 747 characters, plus the `eyJ` prefix makes 750.
const ACCESS_BODY_BYTES: usize = 560;

pub(crate) type AccessSeed = [u8; 32];
pub(crate) type AccessKey = [u8; 32];

pub(crate) struct AccessToken {
    pub(crate) seed: AccessSeed,
    pub(crate) text: String,
    pub(crate) key: AccessKey,
}

pub(crate) fn new_access_token() -> AccessToken {
    let seed: AccessSeed = rand::thread_rng().gen();
    let text = access_text(&seed);
    let key = access_key(&text);
    AccessToken { seed, text, key }
}

/// Expands a seed into the token text (SHA-256 in counter mode, a PRF, so the
/// text is as unguessable as the 256-bit seed).
pub(crate) fn access_text(seed: &AccessSeed) -> String {
    let mut body = Vec::with_capacity(ACCESS_BODY_BYTES + 32);
    let mut counter: u32 = 0;
    while body.len() < ACCESS_BODY_BYTES {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        body.extend_from_slice(&h.finalize());
        counter += 1;
    }
    body.truncate(ACCESS_BODY_BYTES);
    format!("eyJ{}", URL_SAFE_NO_PAD.encode(body))
}

pub(crate) fn access_key(text: &str) -> AccessKey {
    Sha256::digest(text.as_bytes()).into()
}

fn alnum(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// `RT1-<2 digits>-H0-<10 digits><24 random>`: 44 characters; the last 24 are
/// lower-case alphanumerics (36 symbols), about 124 bits.
pub(crate) fn new_refresh_token(now: DateTime<Utc>) -> String {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..24)
        .map(|_| char::from(LOWER[rng.gen_range(0..LOWER.len())]))
        .collect();
    format!(
        "RT1-{}-H0-{:010}{}",
        digits(2),
        now.timestamp().rem_euclid(10_000_000_000),
        tail
    )
}

/// `AB11<10 digits><36 random>`, like Intuit's codes.
pub(crate) fn new_code(now: DateTime<Utc>) -> String {
    format!(
        "AB11{:010}{}",
        now.timestamp().rem_euclid(10_000_000_000),
        alnum(36)
    )
}

/// A company id: 16 digits for sandbox companies, 15 for production ones,
/// never starting with 0.
pub(crate) fn new_realm_id(sandbox: bool) -> String {
    let first = char::from(b'1' + rand::thread_rng().gen_range(0..9u8));
    let len = if sandbox { 15 } else { 14 };
    format!("{first}{}", digits(len))
}

/// `1-<8 hex seconds>-<24 hex random>`, the shape of Intuit's `intuit_tid`.
pub(crate) fn new_tid() -> String {
    let r: [u8; 12] = rand::thread_rng().gen();
    let mut s = format!("1-{:08x}-", Utc::now().timestamp() as u32);
    for b in r {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A stable opaque subject for the userinfo endpoint.
pub(crate) fn subject_for(grant_seed: &str) -> String {
    let h = Sha256::digest(grant_seed.as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let a = new_access_token();
        assert_eq!(a.text.len(), 750);
        assert!(a.text.starts_with("eyJ"));
        assert_eq!(access_text(&a.seed), a.text);
        assert_eq!(access_key(&a.text), a.key);
        let rt = new_refresh_token(Utc::now());
        assert!(rt.starts_with("RT1-"));
        assert_eq!(&rt[6..10], "-H0-");
        assert_eq!(rt.len(), 4 + 2 + 4 + 10 + 24);
        assert_ne!(rt, new_refresh_token(Utc::now()));
        let c = new_code(Utc::now());
        assert!(c.starts_with("AB11") && c.len() == 50);
        assert_eq!(new_realm_id(true).len(), 16);
        assert_eq!(new_realm_id(false).len(), 15);
        let tid = new_tid();
        assert_eq!(tid.len(), 2 + 8 + 1 + 24);
        assert_eq!(subject_for("x").len(), 36);
    }
}
