//! An import file cut into pieces of UTF-8 text, to travel to the daemon (or to the
//! service in process) a piece at a time.

/// A file that is not UTF-8 text: the message names the line and the byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotUtf8(pub String);

/// Cuts bytes read from a file into pieces of UTF-8 text, never inside a character, and
/// names the line of the first byte that is not UTF-8.
pub struct TextChunks {
    name: String,
    /// The start of a character cut off at the end of the last block.
    carry: Vec<u8>,
    newlines: usize,
    offset: u64,
}

impl TextChunks {
    pub fn new(name: &str) -> Self {
        TextChunks {
            name: name.to_string(),
            carry: Vec::new(),
            newlines: 0,
            offset: 0,
        }
    }

    /// The text of `block` (after what the last block left), up to its last whole character.
    pub fn push(&mut self, block: &[u8]) -> Result<String, NotUtf8> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(block);
        let whole = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            // Cut inside a character at the end: the rest comes with the next block.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                let at = e.valid_up_to();
                let line = self.newlines + bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
                return Err(NotUtf8(format!(
                    "{}:{line}: not UTF-8 text (bad byte at offset {}); save the file as UTF-8",
                    self.name,
                    self.offset + at as u64
                )));
            }
        };
        self.carry = bytes.split_off(whole);
        self.newlines += bytes.iter().filter(|b| **b == b'\n').count();
        self.offset += bytes.len() as u64;
        // Checked above.
        String::from_utf8(bytes).map_err(|_| NotUtf8("not UTF-8 text".into()))
    }

    /// At the end of the file: refuses a character cut off by it.
    pub fn finish(&self) -> Result<(), NotUtf8> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(NotUtf8(format!(
                "{}:{}: not UTF-8 text (the file ends inside a character at offset {}); save the file as UTF-8",
                self.name,
                self.newlines + 1,
                self.offset
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_between_characters_and_bad_bytes_name_their_line() {
        let mut chunks = TextChunks::new("f.csv");
        let e = "é".as_bytes();
        assert_eq!(chunks.push(&[b'a', b'\n', e[0]]).unwrap(), "a\n");
        assert_eq!(chunks.push(&[e[1], b'b']).unwrap(), "éb");
        chunks.finish().unwrap();
        let mut chunks = TextChunks::new("f.csv");
        chunks.push(b"h\nr1\n").unwrap();
        let err = chunks.push(b"ok\nr\xff\n").unwrap_err().0;
        assert_eq!(
            err,
            "f.csv:4: not UTF-8 text (bad byte at offset 9); save the file as UTF-8"
        );
        let mut cut = TextChunks::new("f.csv");
        cut.push(&[b'x', e[0]]).unwrap();
        assert!(cut
            .finish()
            .unwrap_err()
            .0
            .contains("ends inside a character"));
    }
}
