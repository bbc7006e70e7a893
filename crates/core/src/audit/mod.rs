//! The audit log's vocabulary, shared by every layer: the catalogue of actions, an event
//! and its sealed record, the damage a verification names, a page and its query, an
//! export's filter and format. The store keeps and chains the records; the service and
//! every interface read them in these shapes and no other.

mod catalogue;
mod damage;
mod event;
mod export_filter;
mod manifest;
mod query;
mod verify;

pub use catalogue::{
    markdown_table, Action, EventSpec, Field, Target, CATALOGUE, README_END, README_START,
};
pub use damage::Damage;
pub use event::{AuditEvent, AuditRecord, Outcome};
pub use export_filter::{manifest_path, parse_time, ExportFilter, ExportFormat};
pub use manifest::{ExportedBy, Manifest, MANIFEST_FORMAT};
pub use query::{AuditPage, AuditQuery, MAX_PAGE};
pub use verify::{FileReport, QuarantineReport, RemovedRow, RepairNote, VerifyReport};
