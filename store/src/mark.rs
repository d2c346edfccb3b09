//! The high-water mark: a small file beside sled's own that says how many
//! write batches were on disk at the last flush.
//!
//! sled recovers a damaged or truncated log by keeping what it can read and
//! dropping the rest without a word. So every batch [`crate::Sled`] writes
//! carries the next *epoch* inside the database, and after every flush the
//! epoch that flush made durable is written here and synced. When the
//! database comes back with an epoch below the mark, acknowledged writes
//! are gone and the store refuses to open instead of serving what is left.
//!
//! The file holds two 32-byte slots, written in turn, so a write torn by a
//! crash leaves the other slot whole: `magic ‖ epoch ‖ crc32 ‖ padding`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The mark's file name inside the store's directory.
pub const FILE: &str = "high-water.mark";

const MAGIC: &[u8; 8] = b"fsmark\x00\x01";
const SLOT: usize = 32;

/// The mark file, open for writing, and the epoch it holds.
#[derive(Debug)]
pub(crate) struct Mark {
    file: File,
    path: PathBuf,
    epoch: u64,
}

fn slot(epoch: u64) -> [u8; SLOT] {
    let mut s = [0u8; SLOT];
    s[..8].copy_from_slice(MAGIC);
    s[8..16].copy_from_slice(&epoch.to_be_bytes());
    let crc = crc32fast::hash(&s[..16]);
    s[16..20].copy_from_slice(&crc.to_be_bytes());
    s
}

fn parse(s: &[u8]) -> Option<u64> {
    if s.len() != SLOT || &s[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(s[16..20].try_into().ok()?);
    (crc32fast::hash(&s[..16]) == crc)
        .then(|| u64::from_be_bytes(s[8..16].try_into().unwrap_or_default()))
}

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Other(format!("cannot {what} {}: {e}", path.display()))
}

/// Syncs a directory, so that a file just created in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, "sync", e))?;
    Ok(())
}

impl Mark {
    /// Creates the mark of a new store (epoch 0) in `dir`, which must not
    /// hold one yet.
    pub(crate) fn create(dir: &Path) -> Result<Mark> {
        let path = dir.join(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(&path, "create", e))?;
        let mut both = slot(0).to_vec();
        both.extend_from_slice(&slot(0));
        file.write_all(&both).and_then(|()| file.sync_all()).map_err(|e| io(&path, "write", e))?;
        sync_dir(dir)?;
        Ok(Mark { file, path, epoch: 0 })
    }

    /// Reads the mark in `dir`: `None` if there is none.
    pub(crate) fn open(dir: &Path, writable: bool) -> Result<Option<Mark>> {
        let path = dir.join(FILE);
        let mut file = match OpenOptions::new().read(true).write(writable).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, "open", e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io(&path, "read", e))?;
        let epoch = bytes.chunks(SLOT).take(2).filter_map(parse).max().ok_or_else(|| {
            Error::Damaged(format!(
                "{} is unreadable, so nothing tells how much of this store was acknowledged; \
                 restore the last backup (fieldsync-server restore --from FILE --data NEW_DIR)",
                path.display()
            ))
        })?;
        Ok(Some(Mark { file, path, epoch }))
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records that everything up to `epoch` is on disk (a lower epoch than
    /// the mark's is ignored: a concurrent flush got there first).
    pub(crate) fn advance(&mut self, epoch: u64) -> Result<()> {
        if epoch <= self.epoch {
            return Ok(());
        }
        let at = (epoch % 2) * SLOT as u64;
        let path = &self.path;
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(&slot(epoch)))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io(path, "write", e))?;
        self.epoch = epoch;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_keeps_the_highest_whole_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut mark = Mark::create(dir.path()).unwrap();
        for epoch in 1..=5 {
            mark.advance(epoch).unwrap();
        }
        mark.advance(3).unwrap();
        drop(mark);
        assert_eq!(Mark::open(dir.path(), false).unwrap().unwrap().epoch(), 5);
        // A write torn in the newest slot (epoch 5 sits in slot 1) leaves
        // the other one: the mark reads one epoch lower, never garbage.
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT + 9] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Mark::open(dir.path(), false).unwrap().unwrap().epoch(), 4);
        std::fs::write(&path, b"garbage").unwrap();
        let err = Mark::open(dir.path(), false).unwrap_err().to_string();
        assert!(err.contains("unreadable") && err.contains("restore"), "{err}");
    }
}
