//! Files that hold credentials or their traces: the SQLite database (with its WAL, SHM and
//! journal), the log, the key and the client secret files. The ones this program creates
//! are owner-only whatever the umask (0600, or 0640 for `[daemon] file_group`); the ones it
//! finds are refused when another account could read them, because the operators' roles
//! mean nothing to someone who can read the database or the key directly.

use crate::config::ConfigError;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file this program creates: the mode it gets and the group that may read it.
#[derive(Debug, Clone, Copy)]
pub struct NewFiles<'a> {
    /// `[daemon] file_group`: the group given read access, if any.
    pub group: Option<&'a str>,
}

impl NewFiles<'_> {
    pub fn mode(&self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }

    /// Creates `path`, which must not exist yet, with exactly this mode and group.
    fn create_new(&self, path: &Path, append: bool) -> std::io::Result<File> {
        let file = OpenOptions::new()
            .write(true)
            .append(append)
            .create_new(true)
            .mode(self.mode())
            .open(path)?;
        // The mode given to open() passes through the umask; set it again so a stricter
        // umask cannot take the group's read bit away, nor a looser one matter at all.
        file.set_permissions(std::fs::Permissions::from_mode(self.mode()))?;
        Ok(file)
    }

    fn give_to_group(&self, file: &File, path: &Path) -> Result<(), ConfigError> {
        let Some(group) = self.group else {
            return Ok(());
        };
        let gid = crate::identity::group_id(group).ok_or_else(|| {
            ConfigError(format!(
                "[daemon] file_group {group:?} is not a group on this machine; create it or \
                 remove file_group (files are then owner-only)"
            ))
        })?;
        std::os::unix::fs::fchown(file, None, Some(gid)).map_err(|e| {
            ConfigError(format!(
                "cannot give {} to group {group} ([daemon] file_group): {e}; run as root or \
                 as a member of {group}",
                path.display()
            ))
        })
    }

    /// The SQLite database: created empty with this mode and group if absent, so that
    /// SQLite, which gives its WAL, SHM and journal the database file's mode, creates those
    /// owner-only too; refused if it, or a WAL, SHM or journal beside it, is open to others.
    pub fn prepare_database(&self, db: &Path) -> Result<(), ConfigError> {
        match self.create_new(db, false) {
            Ok(file) => self.give_to_group(&file, db)?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(ConfigError(format!(
                    "cannot create the SQLite database {}: {e}; check [database] url and that \
                     its directory exists and is writable",
                    db.display()
                )))
            }
        }
        refuse_if_open_to_others(db, "the database")?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let side = PathBuf::from(name);
            if side.exists() {
                refuse_if_open_to_others(&side, "the database")?;
            }
        }
        Ok(())
    }

    /// The log file, opened for appending: created with this mode and group if absent,
    /// refused if it exists and is open to others. The inner error is a file that cannot be
    /// opened at all (another account's log, a missing directory): the caller then logs to
    /// stderr, as before.
    pub fn open_log(&self, path: &Path) -> Result<Result<File, std::io::Error>, ConfigError> {
        loop {
            match OpenOptions::new().append(true).open(path) {
                Ok(file) => {
                    check_open_to_others(&file, path, "the log file ([log] file)")?;
                    return Ok(Ok(file));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => match self.create_new(path, true) {
                    Ok(file) => {
                        self.give_to_group(&file, path)?;
                        return Ok(Ok(file));
                    }
                    // Created by another process in between: open that one.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                    Err(e) => return Ok(Err(e)),
                },
                Err(e) => return Ok(Err(e)),
            }
        }
    }
}

/// The permission bits of `mode` as `chmod` writes them.
fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A data file (database, WAL, log) may be shared with its group (`[daemon] file_group`),
/// never with every account.
pub fn refuse_if_open_to_others(path: &Path, what: &str) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigError(format!("cannot inspect {what} {}: {e}", path.display())))?;
    data_mode_ok(meta.mode(), path, what)
}

fn check_open_to_others(file: &File, path: &Path, what: &str) -> Result<(), ConfigError> {
    let meta = file
        .metadata()
        .map_err(|e| ConfigError(format!("cannot inspect {what} {}: {e}", path.display())))?;
    data_mode_ok(meta.mode(), path, what)
}

fn data_mode_ok(mode: u32, path: &Path, what: &str) -> Result<(), ConfigError> {
    if mode & 0o007 == 0 {
        return Ok(());
    }
    Err(ConfigError(format!(
        "{what} {} is open to every account on this machine (mode {}); run `chmod 600 {}` \
         (or 640 with [daemon] file_group)",
        path.display(),
        octal(mode),
        path.display()
    )))
}

/// A key or client secret is for this account alone: refused when its group or others
/// have any access. `file` was opened through any symlinks, so this is the target's mode.
pub fn refuse_shared_secret(file: &File, path: &Path, what: &str) -> Result<(), ConfigError> {
    let mode = file
        .metadata()
        .map_err(|e| {
            ConfigError(format!(
                "{what}: cannot inspect secret file {}: {e}",
                path.display()
            ))
        })?
        .mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(ConfigError(format!(
        "{what}: secret file {} is readable by group or others (mode {}); run `chmod 600 {}`",
        path.display(),
        octal(mode),
        path.display()
    )))
}

/// Creates a new file readable and writable by its owner only (0600): never an existing
/// one, whose contents and readers are someone else's to decide.
pub fn create_secret_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}
