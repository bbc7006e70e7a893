//! CSV rows per RFC 4180 (CRLF, fields quoted when they hold a comma, quote or line
//! break), with formula injection neutralised: a spreadsheet runs a cell that begins with
//! `=`, `+`, `-`, `@`, a tab or a carriage return as a formula, so such a cell is written
//! with a leading `'` (shown as text, and taken off again by the verifier). A cell that
//! itself begins with `'` gets one more, so taking one off is always exact.

use crate::audit::AuditRecord;
use crate::InputError;

/// Whether a cell must be written behind a `'`.
fn needs_guard(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'')
    )
}

fn push_cell(out: &mut Vec<u8>, cell: &str) {
    let guard = needs_guard(cell);
    let quote = cell.contains([',', '"', '\r', '\n']);
    if quote {
        out.push(b'"');
    }
    if guard {
        out.push(b'\'');
    }
    if quote {
        for b in cell.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// The cell as it was before `push_cell` guarded it.
pub(super) fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_guard(rest) => rest,
        _ => cell,
    }
}

pub(super) fn write_row(r: &AuditRecord, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let opt = |v: &Option<String>| v.as_deref().unwrap_or("").to_string();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let cells: [String; 21] = [
        r.seq.to_string(),
        r.at.clone(),
        r.actor_account.clone(),
        r.actor_uid.to_string(),
        opt(&r.actor_ssh),
        r.interface.clone(),
        r.role.clone(),
        r.action.clone(),
        num(r.connection_id),
        opt(&r.environment),
        opt(&r.realm_id),
        opt(&r.tenant),
        r.outcome.clone(),
        opt(&r.error_class),
        opt(&r.reason),
        opt(&r.intuit_tid),
        opt(&r.request_id),
        r.fingerprints.clone(),
        r.prev_hash.clone(),
        r.hash.clone(),
        opt(&r.actor_kind),
    ];
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_cell(out, c);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// A record back from a CSV row (cells unguarded; an empty optional cell is absent). A
/// file written before `actor_kind` existed has 20 cells a row (`columns`, from its
/// header); a newer one 21.
pub(super) fn read_row(row: &csv::StringRecord, columns: usize) -> Result<AuditRecord, InputError> {
    if row.len() != columns {
        return Err(InputError::from(format!(
            "a row has {} cells; an event has {columns}",
            row.len()
        )));
    }
    let cell = |i: usize| unguard(&row[i]).to_string();
    let opt = |i: usize| {
        let c = cell(i);
        (!c.is_empty()).then_some(c)
    };
    let int = |i: usize| -> Result<i64, String> {
        cell(i).parse().map_err(|_| {
            format!(
                "cell {:?} of column {} is not a number",
                cell(i),
                super::CSV_COLUMNS[i]
            )
        })
    };
    Ok(AuditRecord {
        seq: int(0)?,
        at: cell(1),
        actor_account: cell(2),
        actor_uid: int(3)?,
        actor_ssh: opt(4),
        interface: cell(5),
        role: cell(6),
        action: cell(7),
        connection_id: match opt(8) {
            None => None,
            Some(_) => Some(int(8)?),
        },
        environment: opt(9),
        realm_id: opt(10),
        tenant: opt(11),
        outcome: cell(12),
        error_class: opt(13),
        reason: opt(14),
        intuit_tid: opt(15),
        request_id: opt(16),
        fingerprints: cell(17),
        prev_hash: cell(18),
        hash: cell(19),
        actor_kind: if columns > 20 { opt(20) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_guarded_and_come_back_exactly() {
        for cell in [
            "=1+1",
            "+cmd",
            "-2",
            "@SUM(A1)",
            "\tx",
            "'=x",
            "'plain",
            "a,\"b\"\nc",
            "plain",
        ] {
            let mut out = Vec::new();
            push_cell(&mut out, cell);
            let text = String::from_utf8(out).unwrap();
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(text.as_bytes());
            let rec = rdr.records().next().unwrap().unwrap();
            let written = &rec[0];
            if needs_guard(cell) {
                assert!(written.starts_with('\''), "{cell:?} written as {written:?}");
            } else {
                assert_eq!(written, cell);
            }
            assert_eq!(unguard(written), cell);
        }
    }
}
