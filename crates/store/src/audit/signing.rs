//! The key that signs export manifests: an Ed25519 key whose seed is a key file like the
//! token key (`[audit] signing_key_file`, base64 of 32 random bytes, mode-checked), held by
//! the daemon. Whoever receives an export needs only the public key (`audit pubkey`).

use crate::InputError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use qbo_core::config::{ConfigError, SecretSource};

/// The daemon's signing key. Not `Clone`, not printable: only the public half leaves it.
pub struct ManifestSigner {
    key: SigningKey,
}

impl std::fmt::Debug for ManifestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestSigner")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl ManifestSigner {
    pub fn from_source(
        src: &SecretSource,
        config_path: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let what = format!("config {}: [audit] signing key", config_path.display());
        let seed = qbo_core::vault::read_key_source(src, &what)?;
        Ok(ManifestSigner::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> ManifestSigner {
        ManifestSigner {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key as `audit pubkey` prints it and `--pubkey` takes it.
    pub fn public_key(&self) -> String {
        encode_public(&self.key.verifying_key())
    }

    /// Base64 of the 64-byte signature over `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).to_bytes())
    }
}

fn encode_public(k: &VerifyingKey) -> String {
    format!("ed25519:{}", B64.encode(k.as_bytes()))
}

/// A public key as printed by `audit pubkey` (`ed25519:` then base64 of 32 bytes).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, InputError> {
    let t = text.trim();
    let b64 = t.strip_prefix("ed25519:").unwrap_or(t);
    let bytes = B64
        .decode(b64)
        .map_err(|_| format!("public key {t:?} is not base64; expected what `qbo-console audit pubkey` prints (ed25519:…)"))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!("public key {t:?} is {} bytes; an Ed25519 public key is 32 (see `qbo-console audit pubkey`)", b.len())
    })?;
    VerifyingKey::from_bytes(&arr).map_err(|_| InputError(format!("public key {t:?} is not a valid Ed25519 point; copy it again from `qbo-console audit pubkey`")))
}

/// Whether `signature` (base64) is `key`'s over `message`.
pub fn signature_valid(key: &VerifyingKey, message: &[u8], signature: &str) -> bool {
    let Ok(bytes) = B64.decode(signature.trim()) else {
        return false;
    };
    let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    key.verify(message, &Signature::from_bytes(&arr)).is_ok()
}

/// The canonical text of a public key, for comparing two spellings of one.
pub fn canonical_public_key(text: &str) -> Result<String, InputError> {
    parse_public_key(text).map(|k| encode_public(&k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_under_its_own_key_only() {
        let a = ManifestSigner::from_seed(&[7u8; 32]);
        let b = ManifestSigner::from_seed(&[8u8; 32]);
        let sig = a.sign(b"manifest");
        let ka = parse_public_key(&a.public_key()).unwrap();
        let kb = parse_public_key(&b.public_key()).unwrap();
        assert!(signature_valid(&ka, b"manifest", &sig));
        assert!(!signature_valid(&ka, b"manifesto", &sig));
        assert!(!signature_valid(&kb, b"manifest", &sig));
        assert!(!format!("{a:?}").contains(&B64.encode([7u8; 32])));
        assert!(parse_public_key("ed25519:nope").is_err());
    }
}
