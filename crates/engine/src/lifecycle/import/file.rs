//! An import file opened: a regular file only.

use super::ImportError;
use std::path::Path;

/// Opens an import file: a regular file only. Returns it with its size (for the progress
/// line's time left).
pub fn open_file(path: &Path) -> Result<(std::fs::File, u64), ImportError> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| ImportError(format!("cannot read {name}: {e}"));
    // Looked at before opening: opening some devices has effects of its own.
    let kind = std::fs::metadata(path).map_err(cannot)?.file_type();
    if !kind.is_file() {
        return Err(not_regular(&name, kind));
    }
    // O_NONBLOCK: if a FIFO took the file's place since, opening it does not wait for a
    // writer; the check on the open file below then refuses it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(&name, meta.file_type()));
    }
    Ok((file, meta.len()))
}

fn not_regular(name: &str, kind: std::fs::FileType) -> ImportError {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    ImportError(format!(
        "{name} is {what}; import reads a regular CSV or JSON file: save the data to a file first and import that"
    ))
}
