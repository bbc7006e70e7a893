//! `list --json` and `list --jsonl`: the connections written as the daemon sends them, a
//! page at a time, so the CLI's memory is a page's whatever the number of connections.
//! `--json` writes exactly what printing the whole array at once would (an array of the
//! same pretty-printed objects); `--jsonl` one compact object per line.

use super::{exit, Failure};
use qbo_service::{Client, ConnectionView, ListQuery};
use std::io::Write;

/// The objects of a pretty-printed array (or JSON lines), written one by one.
pub(super) struct Array<W: Write> {
    pub out: W,
    pub lines: bool,
    pub written: u64,
}

impl<W: Write> Array<W> {
    pub fn row(&mut self, c: &impl serde::Serialize) -> std::io::Result<()> {
        if self.lines {
            serde_json::to_writer(&mut self.out, c)?;
            self.out.write_all(b"\n")?;
        } else {
            self.out
                .write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
            let pretty = serde_json::to_string_pretty(c)?;
            for (i, line) in pretty.lines().enumerate() {
                if i > 0 {
                    self.out.write_all(b"\n")?;
                }
                self.out.write_all(b"  ")?;
                self.out.write_all(line.as_bytes())?;
            }
        }
        self.written += 1;
        Ok(())
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        if !self.lines {
            self.out
                .write_all(if self.written == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
}

pub(super) async fn print(
    client: &dyn Client,
    query: ListQuery,
    lines: bool,
) -> Result<u8, Failure> {
    let mut array = Array {
        out: std::io::BufWriter::new(std::io::stdout()),
        lines,
        written: 0,
    };
    let mut sink = |c: &ConnectionView| array.row(c);
    client.list_each(query, &mut sink).await?;
    array.finish().map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("cannot write the listing: {e}"),
    })?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qbo_service::fixtures::every_state;

    fn written(rows: &[ConnectionView], lines: bool) -> String {
        let mut a = Array {
            out: Vec::new(),
            lines,
            written: 0,
        };
        for r in rows {
            a.row(r).unwrap();
        }
        a.finish().unwrap();
        String::from_utf8(a.out).unwrap()
    }

    #[test]
    fn the_array_written_row_by_row_is_byte_for_byte_the_array_printed_whole() {
        let rows = every_state();
        assert_eq!(
            written(&rows, false),
            format!("{}\n", serde_json::to_string_pretty(&rows).unwrap())
        );
        assert_eq!(
            written(&[], false),
            format!(
                "{}\n",
                serde_json::to_string_pretty(&Vec::<ConnectionView>::new()).unwrap()
            )
        );
        let jsonl = written(&rows, true);
        assert_eq!(jsonl.lines().count(), rows.len());
        for (line, row) in jsonl.lines().zip(&rows) {
            let back: ConnectionView = serde_json::from_str(line).unwrap();
            assert_eq!(back.id, row.id);
        }
    }
}
