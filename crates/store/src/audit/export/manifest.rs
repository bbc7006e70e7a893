//! The manifest beside each export (`FILE.manifest.json`): what the file holds and the
//! proof of it, signed by the daemon's key.

use super::{ExportFilter, ExportFormat, Tally};
use crate::audit::signing::{self, ManifestSigner};
pub use qbo_core::audit::manifest_path;
use qbo_core::identity::Actor;

pub use qbo_core::audit::{ExportedBy, Manifest, MANIFEST_FORMAT};

/// The manifest of an export whose rows `tally` counted, signed by `signer`. Signing and
/// checking live here, with the keys and Ed25519; the manifest's shape is the core's.
pub fn signed_manifest(
    filter: &ExportFilter,
    format: ExportFormat,
    tally: &Tally,
    exported_at: chrono::DateTime<chrono::Utc>,
    by: &Actor,
    signer: &ManifestSigner,
) -> anyhow::Result<Manifest> {
    let mut m = Manifest {
        format: MANIFEST_FORMAT.into(),
        file_format: format,
        filters: filter.clone(),
        contiguous: !filter.picks_rows(),
        rows: tally.rows,
        first_seq: tally.first_seq,
        last_seq: tally.last_seq,
        first_prev_hash: tally.first_prev_hash.clone(),
        last_hash: tally.last_hash.clone(),
        sha256: tally.sha256(),
        bytes: tally.bytes,
        exported_at: exported_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        exported_by: ExportedBy::of(by),
        public_key: signer.public_key(),
        signature: String::new(),
    };
    m.signature = signer.sign(&m.signed_bytes()?);
    Ok(m)
}

/// Whether `m`'s signature is `public_key`'s over the rest of the manifest.
pub fn signed_by(m: &Manifest, public_key: &str) -> bool {
    let Ok(key) = signing::parse_public_key(public_key) else {
        return false;
    };
    let Ok(bytes) = m.signed_bytes() else {
        return false;
    };
    signing::signature_valid(&key, &bytes, &m.signature)
}
