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

/// Where the fingerprint key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FingerprintKeySource {
    /// `[vault] fingerprint_key_file` / `_env`: kept across token key rotations.
    Configured,
    /// Derived from the token key (installs from before the fingerprint key existed): it
    /// would change with the token key, so `keys rotate` refuses until one is configured.
    DerivedFromTokenKey,
}

/// The open vault: current key, older keys for opening, and the fingerprint key.
pub struct Vault {
    current: Key,
    old: Vec<Key>,
    fingerprint_key: Zeroizing<[u8; 32]>,
    fingerprint_key_id: [u8; KEY_ID_LEN],
    fingerprint_source: FingerprintKeySource,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current_key_id", &self.current_key_id())
            .field("old_keys", &self.old.len())
            .field("fingerprint_key_id", &self.fingerprint_key_id())
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
        let fingerprint = match &cfg.fingerprint_key {
            Some(src) => Some(load(src, "[vault] fingerprint key")?),
            None => None,
        };
        Ok(Vault::from_keys(&current, old, fingerprint))
    }

    /// A vault from raw key bytes (tests, benchmarks), with a fingerprint key of its own.
    pub fn from_key_bytes(key: &[u8; 32]) -> Vault {
        let mut h = Sha256::new();
        h.update(b"qbo-console test fingerprint key\0");
        h.update(key);
        let mut fp = Zeroizing::new([0u8; 32]);
        fp.copy_from_slice(&h.finalize());
        Vault::from_keys(&Zeroizing::new(*key), Vec::new(), Some(fp))
    }

    fn from_keys(
        current: &Zeroizing<[u8; 32]>,
        old: Vec<Key>,
        fingerprint: Option<Zeroizing<[u8; 32]>>,
    ) -> Vault {
        // Fingerprints are keyed so that a leaked audit log cannot be used to confirm a
        // guessed token. Their key is kept apart from the token key so that it outlives it;
        // without one (older installs) it is derived from the token key as it always was.
        let (fp, source) = match fingerprint {
            Some(k) => (k, FingerprintKeySource::Configured),
            None => (
                legacy_fingerprint_key(current),
                FingerprintKeySource::DerivedFromTokenKey,
            ),
        };
        Vault {
            current: Key::new(current),
            old,
            fingerprint_key_id: key_id(b"qbo-console fingerprint key id v1\0", &fp),
            fingerprint_key: fp,
            fingerprint_source: source,
        }
    }

    /// The id of the fingerprint key (a hash of it, never the key).
    pub fn fingerprint_key_id(&self) -> String {
        hex(&self.fingerprint_key_id)
    }

    pub fn fingerprint_key_source(&self) -> FingerprintKeySource {
        self.fingerprint_source
    }

    /// Ids of the older keys configured for opening.
    pub fn old_key_ids(&self) -> Vec<String> {
        self.old.iter().map(|k| hex(&k.id)).collect()
    }

    /// Whether `sealed` was sealed under the current key; `None` when it is not a sealed
    /// value at all.
    pub fn is_current(&self, sealed: &[u8]) -> Option<bool> {
        sealed_key_id_bytes(sealed).map(|id| id == self.current.id)
    }

    /// The value sealed again under the current key, or `None` when it already is.
    pub fn reseal(
        &self,
        connection: i64,
        column: TokenColumn,
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        if self.is_current(sealed) == Some(true) {
            return Ok(None);
        }
        let plain = self.open(connection, column, sealed)?;
        Ok(Some(self.seal(connection, column, &plain)))
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

/// The id of the key that sealed `sealed`, as shown by `keys status`; `None` when it is
/// not a sealed value of a format this build knows.
pub fn sealed_key_id(sealed: &[u8]) -> Option<String> {
    sealed_key_id_bytes(sealed).map(hex)
}

fn sealed_key_id_bytes(sealed: &[u8]) -> Option<&[u8]> {
    (sealed.len() >= HEADER_LEN && sealed[0] == FORMAT_VERSION).then(|| &sealed[1..HEADER_LEN])
}

fn key_id(label: &[u8], bytes: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(bytes);
    let digest = h.finalize();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// The fingerprint key older installs derive from their token key. `keys generate
/// --fingerprint-from` writes it to a file, so those installs keep their fingerprints.
pub fn legacy_fingerprint_key(token_key: &Zeroizing<[u8; 32]>) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token_key.as_ref())
        .expect("HMAC accepts keys of any length");
    mac.update(b"qbo-console fingerprint v1");
    let mut fp = Zeroizing::new([0u8; 32]);
    fp.copy_from_slice(&mac.finalize().into_bytes());
    fp
}

/// Reads a key file as `[vault]` would (mode checked), for `keys` verbs that take one.
pub fn read_key_file(
    path: &std::path::Path,
    what: &str,
) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let src = SecretSource::File(path.to_path_buf());
    let text = src.read(what)?;
    decode_key(&text).map_err(|m| ConfigError(format!("{what} ({}): {m}", path.display())))
}

/// Reads a 32-byte key (base64, as `keys generate` writes it) from wherever the
/// configuration says it lives; a file is mode-checked like the other key files.
pub fn read_key_source(src: &SecretSource, what: &str) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let text = src.read(what)?;
    decode_key(&text).map_err(|m| ConfigError(format!("{what} ({}): {m}", src.describe())))
}

/// The id a key file's key would have as a token key.
pub fn token_key_id(bytes: &Zeroizing<[u8; 32]>) -> String {
    hex(&key_id(b"qbo-console key id v1\0", bytes))
}

/// Base64 of a key, as key files hold it.
pub fn encode_key(bytes: &Zeroizing<[u8; 32]>) -> Zeroizing<String> {
    Zeroizing::new(B64.encode(bytes.as_ref()))
}

impl Key {
    fn new(bytes: &Zeroizing<[u8; 32]>) -> Key {
        Key {
            id: key_id(b"qbo-console key id v1\0", bytes),
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
            None,
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
    fn a_configured_fingerprint_key_outlives_the_token_key() {
        let fp = || Some(Zeroizing::new([5u8; 32]));
        let before = Vault::from_keys(&Zeroizing::new([1; 32]), Vec::new(), fp());
        let after = Vault::from_keys(
            &Zeroizing::new([2; 32]),
            vec![Key::new(&Zeroizing::new([1; 32]))],
            fp(),
        );
        assert_eq!(before.fingerprint("RT1"), after.fingerprint("RT1"));
        assert_eq!(before.fingerprint_key_id(), after.fingerprint_key_id());
        assert_eq!(
            after.fingerprint_key_source(),
            FingerprintKeySource::Configured
        );
        // Without one, the derived key moves with the token key: what `keys rotate` refuses.
        let old = Vault::from_keys(&Zeroizing::new([1; 32]), Vec::new(), None);
        let new = Vault::from_keys(&Zeroizing::new([2; 32]), Vec::new(), None);
        assert_ne!(old.fingerprint("RT1"), new.fingerprint("RT1"));
        // The derived key written to a file keeps an older install's fingerprints.
        let kept = Vault::from_keys(
            &Zeroizing::new([2; 32]),
            Vec::new(),
            Some(legacy_fingerprint_key(&Zeroizing::new([1; 32]))),
        );
        assert_eq!(old.fingerprint("RT1"), kept.fingerprint("RT1"));
    }

    #[test]
    fn reseal_moves_a_value_to_the_current_key_and_leaves_current_ones_alone() {
        let old = vault(1);
        let sealed = old.seal(4, TokenColumn::Refresh, "RT-x");
        let rotated = Vault::from_keys(
            &Zeroizing::new([2; 32]),
            vec![Key::new(&Zeroizing::new([1; 32]))],
            None,
        );
        assert_eq!(rotated.is_current(&sealed), Some(false));
        let moved = rotated
            .reseal(4, TokenColumn::Refresh, &sealed)
            .unwrap()
            .unwrap();
        assert_eq!(sealed_key_id(&moved), Some(rotated.current_key_id()));
        assert_eq!(
            rotated
                .open(4, TokenColumn::Refresh, &moved)
                .unwrap()
                .as_str(),
            "RT-x"
        );
        assert!(rotated
            .reseal(4, TokenColumn::Refresh, &moved)
            .unwrap()
            .is_none());
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        assert_eq!(vault(1).fingerprint("t"), vault(1).fingerprint("t"));
        assert_ne!(vault(1).fingerprint("t"), vault(2).fingerprint("t"));
        assert!(!vault(1).fingerprint("RT1-abcdef").contains("abcdef"));
    }
}
