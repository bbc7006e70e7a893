//! Sealing and opening tokens.
//!
//! Every token is sealed with AES-256-GCM under a fresh random nonce. The associated data
//! binds the ciphertext to its connection id and column, so a value copied to another row or
//! column fails to open instead of silently becoming another tenant's credential. Each sealed
//! value starts with the id of the key that sealed it, so old keys can stay configured for
//! opening while new values use the current one.

use crate::config::{ConfigError, SecretSource, VaultConfig};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Intuit says to allow up to 4096 characters for either token (INTUIT.md, "Token endpoint").
pub const MAX_TOKEN_LEN: usize = 4096;
const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("sealed {column} of connection {connection} is damaged or belongs to another row or column (authentication failed)")]
    Tampered {
        connection: i64,
        column: &'static str,
    },
    #[error("sealed {column} of connection {connection} was sealed with key {key_id}, which is not configured; add it to [vault] old_key_files")]
    UnknownKey {
        connection: i64,
        column: &'static str,
        key_id: String,
    },
    #[error("sealed {column} of connection {connection} has an unknown format")]
    Format {
        connection: i64,
        column: &'static str,
    },
    #[error("token is {0} characters; at most {MAX_TOKEN_LEN} are accepted")]
    TooLong(usize),
    #[error("token is empty")]
    Empty,
}

/// Which column a sealed value lives in; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenColumn {
    Access,
    Refresh,
    PreviousRefresh,
}

impl TokenColumn {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenColumn::Access => "access_token",
            TokenColumn::Refresh => "refresh_token",
            TokenColumn::PreviousRefresh => "previous_refresh_token",
        }
    }
}

macro_rules! secret_token {
    ($name:ident, $what:literal) => {
        #[doc = concat!("An Intuit ", $what, ". Zeroed on drop, never printed, never serialized.")]
        pub struct $name(Zeroizing<String>);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, VaultError> {
                let value = Zeroizing::new(value.into());
                let len = value.chars().count();
                if value.trim().is_empty() {
                    return Err(VaultError::Empty);
                }
                if len > MAX_TOKEN_LEN {
                    return Err(VaultError::TooLong(len));
                }
                Ok($name(value))
            }

            /// The raw value, for the one place that must send it to Intuit.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// A deliberate copy; tokens are not `Clone` so copies stay visible in review.
            pub fn duplicate(&self) -> Self {
                $name(self.0.clone())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!(stringify!($name), "(<redacted, {} chars>)"),
                    self.0.len()
                )
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }
    };
}

secret_token!(AccessToken, "access token");
secret_token!(RefreshToken, "refresh token");

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Key {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

/// The open vault: current key, older keys for opening, and the fingerprint key.
pub struct Vault {
    current: Key,
    old: Vec<Key>,
    fingerprint_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current_key_id", &self.current_key_id())
            .field("old_keys", &self.old.len())
            .finish()
    }
}

impl Vault {
    pub fn from_config(
        cfg: &VaultConfig,
        config_path: &std::path::Path,
    ) -> Result<Vault, ConfigError> {
        let load = |src: &SecretSource, what: &str| -> Result<Zeroizing<[u8; 32]>, ConfigError> {
            let label = format!("config {}: {what}", config_path.display());
            let text = src.read(&label)?;
            decode_key(&text).map_err(|m| ConfigError(format!("{label} ({}): {m}", src.describe())))
        };
        let current = load(&cfg.key, "[vault] key")?;
        let mut old = Vec::new();
        for (i, src) in cfg.old_keys.iter().enumerate() {
            old.push(Key::new(&load(
                src,
                &format!("[vault] old key #{}", i + 1),
            )?));
        }
        Ok(Vault::from_keys(&current, old))
    }

    /// A vault from raw key bytes (tests, benchmarks).
    pub fn from_key_bytes(key: &[u8; 32]) -> Vault {
        Vault::from_keys(&Zeroizing::new(*key), Vec::new())
    }

    fn from_keys(current: &Zeroizing<[u8; 32]>, old: Vec<Key>) -> Vault {
        // Fingerprints are keyed so that a leaked audit log cannot be used to confirm a
        // guessed token; derived from the current key so no extra secret is needed.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(current.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(b"qbo-console fingerprint v1");
        let mut fp = Zeroizing::new([0u8; 32]);
        fp.copy_from_slice(&mac.finalize().into_bytes());
        Vault {
            current: Key::new(current),
            old,
            fingerprint_key: fp,
        }
    }

    pub fn current_key_id(&self) -> String {
        hex(&self.current.id)
    }

    fn aad(header: &[u8], connection: i64, column: TokenColumn) -> Vec<u8> {
        let mut aad = header.to_vec();
        aad.extend_from_slice(
            format!("qbo-console|conn={connection}|col={}", column.as_str()).as_bytes(),
        );
        aad
    }

    pub fn seal(&self, connection: i64, column: TokenColumn, plaintext: &str) -> Vec<u8> {
        let mut header = [0u8; HEADER_LEN];
        header[0] = FORMAT_VERSION;
        header[1..].copy_from_slice(&self.current.id);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(&header, connection, column);
        let ct = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            // AES-GCM encryption only fails for inputs beyond 64 GiB; tokens are ≤ 4096 chars.
            .expect("AES-GCM encryption of a short token cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(
        &self,
        connection: i64,
        column: TokenColumn,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, VaultError> {
        let col = column.as_str();
        if sealed.len() < HEADER_LEN + NONCE_LEN + 16 || sealed[0] != FORMAT_VERSION {
            return Err(VaultError::Format {
                connection,
                column: col,
            });
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let key_id = &header[1..];
        let key = std::iter::once(&self.current)
            .chain(self.old.iter())
            .find(|k| k.id == key_id)
            .ok_or_else(|| VaultError::UnknownKey {
                connection,
                column: col,
                key_id: hex(key_id),
            })?;
        let aad = Self::aad(header, connection, column);
        let mut plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| VaultError::Tampered {
                connection,
                column: col,
            })?;
        let text = String::from_utf8(std::mem::take(&mut plain)).map_err(|e| {
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            VaultError::Format {
                connection,
                column: col,
            }
        })?;
        Ok(Zeroizing::new(text))
    }

    pub fn open_refresh(
        &self,
        connection: i64,
        column: TokenColumn,
        sealed: &[u8],
    ) -> Result<RefreshToken, VaultError> {
        RefreshToken::new(self.open(connection, column, sealed)?.as_str())
    }

    pub fn open_access(&self, connection: i64, sealed: &[u8]) -> Result<AccessToken, VaultError> {
        AccessToken::new(self.open(connection, TokenColumn::Access, sealed)?.as_str())
    }

    /// A keyed, non-reversible label for a token: safe for logs, audit and screens, and the
    /// same for the same token, so support can match "which token was that" across events.
    pub fn fingerprint(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.fingerprint_key.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(token.as_bytes());
        format!("fp:{}", &hex(&mac.finalize().into_bytes())[..16])
    }
}

impl Key {
    fn new(bytes: &Zeroizing<[u8; 32]>) -> Key {
        let mut h = Sha256::new();
        h.update(b"qbo-console key id v1\0");
        h.update(bytes.as_ref());
        let digest = h.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Key {
            id,
            cipher: Aes256Gcm::new_from_slice(bytes.as_ref())
                .expect("a 32-byte key is valid for AES-256"),
        }
    }
}

fn decode_key(text: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let bytes = Zeroizing::new(
        B64.decode(text.trim())
            .map_err(|_| "not valid base64; expected base64 of 32 random bytes (make one with `qbo-console keys generate --out FILE`)".to_string())?,
    );
    if bytes.len() != 32 {
        return Err(format!(
            "key decodes to {} bytes; expected 32 (make one with `qbo-console keys generate --out FILE`)",
            bytes.len()
        ));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// A new key: base64 of 32 bytes from the operating system's CSPRNG.
pub fn generate_key() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(B64.encode(bytes.as_ref()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(seed: u8) -> Vault {
        Vault::from_key_bytes(&[seed; 32])
    }

    #[test]
    fn sealed_values_open_only_in_their_own_row_and_column() {
        let v = vault(7);
        let sealed = v.seal(1, TokenColumn::Refresh, "RT1-secret");
        assert_eq!(
            v.open(1, TokenColumn::Refresh, &sealed).unwrap().as_str(),
            "RT1-secret"
        );
        assert!(matches!(
            v.open(2, TokenColumn::Refresh, &sealed),
            Err(VaultError::Tampered { .. })
        ));
        assert!(matches!(
            v.open(1, TokenColumn::Access, &sealed),
            Err(VaultError::Tampered { .. })
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(v.open(1, TokenColumn::Refresh, &flipped).is_err());
    }

    #[test]
    fn nonces_are_fresh_and_plaintext_never_appears() {
        let v = vault(7);
        let a = v.seal(1, TokenColumn::Access, "same-token-value");
        let b = v.seal(1, TokenColumn::Access, "same-token-value");
        assert_ne!(a, b);
        assert!(!a.windows(16).any(|w| w == b"same-token-value"));
    }

    #[test]
    fn old_keys_still_open_and_unknown_keys_are_named() {
        let old = vault(1);
        let sealed = old.seal(3, TokenColumn::Access, "tok");
        let rotated = Vault::from_keys(
            &Zeroizing::new([2; 32]),
            vec![Key::new(&Zeroizing::new([1; 32]))],
        );
        assert_eq!(
            rotated
                .open(3, TokenColumn::Access, &sealed)
                .unwrap()
                .as_str(),
            "tok"
        );
        assert!(matches!(
            vault(9).open(3, TokenColumn::Access, &sealed),
            Err(VaultError::UnknownKey { .. })
        ));
    }

    #[test]
    fn tokens_are_redacted_in_debug_and_bounded() {
        let t = RefreshToken::new("RT1-abc").unwrap();
        assert!(!format!("{t:?}").contains("abc"));
        assert!(RefreshToken::new("x".repeat(4096)).is_ok());
        assert!(matches!(
            RefreshToken::new("x".repeat(4097)),
            Err(VaultError::TooLong(4097))
        ));
        assert!(matches!(AccessToken::new("  "), Err(VaultError::Empty)));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(decode_key(&generate_key()).is_ok());
        assert!(decode_key(&B64.encode([0u8; 31]))
            .unwrap_err()
            .contains("31 bytes"));
        assert!(decode_key("not base64!").is_err());
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        assert_eq!(vault(1).fingerprint("t"), vault(1).fingerprint("t"));
        assert_ne!(vault(1).fingerprint("t"), vault(2).fingerprint("t"));
        assert!(!vault(1).fingerprint("RT1-abcdef").contains("abcdef"));
    }
}
