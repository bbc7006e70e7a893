//! Reading an import file as it arrives: a JSON array or a CSV file with a header, row by
//! row, each checked and handed on with the line it starts on, in memory that does not
//! grow with the file.

use super::rows::{strip_position, validate, RawRow};
use super::{ImportEntry, ImportError};
use qbo_core::domain::Environment;
use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

/// UTF-8's byte-order mark, which spreadsheets write at the start of a CSV file.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Why reading stopped before the end of the file.
#[derive(Debug)]
pub enum ReadError {
    /// The file is wrong at a line: the message names it.
    Bad(ImportError),
    /// Whoever took the rows stopped taking them (they met an error of their own).
    Stopped,
}

impl From<ImportError> for ReadError {
    fn from(e: ImportError) -> Self {
        ReadError::Bad(e)
    }
}

/// The (environment, realm) pairs a file has named so far, 16 bytes each: a realm id is 1
/// to 20 digits, so its value and its length (leading zeros count) fit one `u128` beside
/// the environment, exactly. A million rows hold some 32 MB here.
#[derive(Default)]
pub struct SeenRealms(HashSet<u128>);

impl SeenRealms {
    /// False if the pair was named before.
    fn insert(&mut self, env: Environment, realm: &str) -> bool {
        let value = realm
            .bytes()
            .fold(0u128, |v, d| v * 10 + u128::from(d - b'0'));
        let env_bit = match env {
            Environment::Sandbox => 0u128,
            Environment::Production => 1,
        };
        self.0
            .insert(env_bit << 127 | (realm.len() as u128) << 120 | value)
    }
}

/// Reads every row of `src`, handing each valid one to `each` in file order. Rows that
/// start before `from_line` were imported by an earlier run: they are read for their
/// framing only. `seen`, when given, refuses a pair named twice.
pub fn read_rows<R: Read>(
    src: R,
    file: &str,
    from_line: usize,
    mut seen: Option<&mut SeenRealms>,
    mut each: impl FnMut(ImportEntry) -> Result<(), ReadError>,
) -> Result<u64, ReadError> {
    let mut src = BufReader::with_capacity(256 * 1024, src);
    let cannot = |e: std::io::Error| unreadable(file, None, e);
    // Past a byte-order mark and blank space to the first byte, which tells the format.
    let mut lines_before = 0usize;
    // How much of a byte-order mark has been passed (it may arrive a byte at a time).
    let mut bom = 0;
    let first = loop {
        let buf = src.fill_buf().map_err(cannot)?;
        if buf.is_empty() {
            return Err(ImportError(format!("{file}: no connections to import")).into());
        }
        let mut skip = 0;
        while bom < BOM.len() && skip < buf.len() && buf[skip] == BOM[bom] {
            bom += 1;
            skip += 1;
        }
        if skip < buf.len() {
            // Past the first byte that is not the mark's: none is to come.
            bom = BOM.len();
        }
        let blank = buf[skip..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        lines_before += buf[skip..skip + blank]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        let used = skip + blank;
        let next = buf.get(used).copied();
        src.consume(used);
        if let Some(b) = next {
            break b;
        }
    };
    let mut handed = 0u64;
    let mut hand = |e: ImportEntry| -> Result<(), ReadError> {
        if let Some(seen) = seen.as_deref_mut() {
            if !seen.insert(e.environment, e.realm_id.as_str()) {
                return Err(ImportError(format!(
                    "{file}:{}: {} realm {} appears twice in the file",
                    e.line, e.environment, e.realm_id
                ))
                .into());
            }
        }
        handed += 1;
        each(e)
    };
    if first == b'[' {
        read_json(src, file, lines_before, from_line, &mut hand)?;
    } else {
        read_csv(src, file, lines_before, from_line, &mut hand)?;
    }
    if handed == 0 && from_line <= 1 {
        return Err(ImportError(format!("{file}: no connections to import")).into());
    }
    Ok(handed)
}

fn read_json<R: BufRead>(
    src: R,
    file: &str,
    lines_before: usize,
    from_line: usize,
    hand: &mut dyn FnMut(ImportEntry) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
    use serde_json::value::RawValue;

    /// Counts the line breaks serde_json has taken: it reads a byte at a time and never
    /// past the end of an object, so after an element the count is where the element ends.
    struct Counted<R> {
        inner: R,
        newlines: Rc<Cell<usize>>,
    }
    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            let k = buf[..n].iter().filter(|b| **b == b'\n').count();
            self.newlines.set(self.newlines.get() + k);
            Ok(n)
        }
    }

    struct Rows<'a> {
        newlines: Rc<Cell<usize>>,
        lines_before: usize,
        file: &'a str,
        from_line: usize,
        hand: &'a mut dyn FnMut(ImportEntry) -> Result<(), ReadError>,
        /// The real reason an element was refused; serde only carries its own errors.
        failed: &'a RefCell<Option<ReadError>>,
    }
    impl<'de> Visitor<'de> for Rows<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
                let text = raw.get();
                let inside = text.bytes().filter(|b| *b == b'\n').count();
                let line = self.lines_before + self.newlines.get() - inside + 1;
                if line < self.from_line {
                    continue;
                }
                let outcome = serde_json::from_str::<RawRow>(text)
                    .map_err(|e| strip_position(&e.to_string()))
                    .and_then(|row| validate(row, line).map_err(|p| p.0))
                    .map_err(|m| ReadError::Bad(ImportError(format!("{}:{line}: {m}", self.file))))
                    .and_then(|entry| (self.hand)(entry));
                if let Err(e) = outcome {
                    *self.failed.borrow_mut() = Some(e);
                    return Err(A::Error::custom("row refused"));
                }
            }
            Ok(())
        }
    }

    let newlines = Rc::new(Cell::new(0));
    let failed = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_reader(Counted {
        inner: src,
        newlines: newlines.clone(),
    });
    let read = (&mut de)
        .deserialize_seq(Rows {
            newlines: newlines.clone(),
            lines_before,
            file,
            from_line,
            hand,
            failed: &failed,
        })
        .and_then(|()| de.end());
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    read.map_err(|e| {
        let line = lines_before + e.line();
        if e.is_io() {
            return ReadError::Bad(unreadable(file, Some(line), e.into()));
        }
        ReadError::Bad(ImportError(format!(
            "{file}:{line}: not a JSON array of objects: {}",
            strip_position(&e.to_string())
        )))
    })
}

const CSV_COLUMNS: &str = "expected tenant, realm_id, environment, refresh_token \
     and optionally access_token, access_expires_at, refresh_expires_at, company_name";

fn read_csv<R: Read>(
    src: R,
    file: &str,
    lines_before: usize,
    from_line: usize,
    hand: &mut dyn FnMut(ImportEntry) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let marks = Rc::new(RefCell::new(LineMarks::default()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(Marked {
            inner: src,
            marks: marks.clone(),
        });
    let at = |pos: Option<&csv::Position>| match pos {
        Some(p) => lines_before + marks.borrow_mut().line_at(p.byte()),
        None => lines_before + 1,
    };
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            let line = at(e.position());
            return Err(ImportError(format!(
                "{file}:{line}: cannot read the CSV header: {}",
                csv_error(&e)
            ))
            .into());
        }
    };
    for required in ["tenant", "realm_id", "environment", "refresh_token"] {
        if !headers.iter().any(|h| h == required) {
            return Err(ImportError(format!(
                "{file}:{}: the CSV header has no `{required}` column; {CSV_COLUMNS}",
                lines_before + 1
            ))
            .into());
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                let line = at(e.position());
                if let csv::ErrorKind::Io(_) = e.kind() {
                    let csv::ErrorKind::Io(io) = e.into_kind() else {
                        unreachable!("matched above")
                    };
                    return Err(unreadable(file, Some(line), io).into());
                }
                return Err(ImportError(format!("{file}:{line}: {}", csv_error(&e))).into());
            }
        }
        let line = at(record.position());
        if line < from_line {
            continue;
        }
        let row: RawRow = record.deserialize(Some(&headers)).map_err(|e| {
            let msg = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
                _ => "malformed record".into(),
            };
            ImportError(format!("{file}:{line}: {msg}"))
        })?;
        let entry = validate(row, line).map_err(|m| ImportError(format!("{file}:{line}: {m}")))?;
        hand(entry)?;
    }
}

/// A file that could not be read on: as its feeder said (naming the line), or the I/O error.
fn unreadable(file: &str, line: Option<usize>, e: std::io::Error) -> ImportError {
    if let Some(u) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<super::run::Unreadable>())
    {
        return ImportError(u.0.clone());
    }
    match line {
        Some(line) => ImportError(format!("{file}:{line}: cannot read: {e}")),
        None => ImportError(format!("{file}: cannot read: {e}")),
    }
}

/// What a CSV error says, without quoting the record (it may hold a token).
fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text; save the file as UTF-8".into(),
        csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("malformed CSV record: {len} fields where the header has {expected_len}"),
        _ => "malformed CSV record".into(),
    }
}

/// Where lines start and end in the bytes the CSV reader has taken, kept only as far back
/// as the record being read: the reader reads ahead, so a count of line breaks taken so far
/// would run past the record it has just handed out.
#[derive(Default)]
struct LineMarks {
    /// Bytes seen so far.
    offset: u64,
    /// The last byte seen was CR or LF (or nothing has been seen yet).
    after_break: bool,
    /// Line feeds, and first bytes of a line's content, in order, not yet passed.
    marks: VecDeque<(u64, Mark)>,
    /// Line feeds before the first mark kept.
    newlines: usize,
    started: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Newline,
    Content,
}

impl LineMarks {
    fn saw(&mut self, bytes: &[u8]) {
        if !self.started {
            self.started = true;
            self.after_break = true;
        }
        for &b in bytes {
            let brk = matches!(b, b'\r' | b'\n');
            if b == b'\n' {
                self.marks.push_back((self.offset, Mark::Newline));
            } else if !brk && self.after_break {
                self.marks.push_back((self.offset, Mark::Content));
            }
            self.after_break = brk;
            self.offset += 1;
        }
    }

    /// The line of the record the CSV reader says starts at `byte`: the line of the first
    /// content at or after it (the reader counts blank lines and CR LF endings into the
    /// record's start, and its own line count is short by one for each CR LF).
    fn line_at(&mut self, byte: u64) -> usize {
        while let Some(&(at, mark)) = self.marks.front() {
            if at >= byte {
                break;
            }
            if mark == Mark::Newline {
                self.newlines += 1;
            }
            self.marks.pop_front();
        }
        let blank = self
            .marks
            .iter()
            .take_while(|(_, m)| *m == Mark::Newline)
            .count();
        self.newlines + blank + 1
    }
}

struct Marked<R> {
    inner: R,
    marks: Rc<RefCell<LineMarks>>,
}

impl<R: Read> Read for Marked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.marks.borrow_mut().saw(&buf[..n]);
        Ok(n)
    }
}
