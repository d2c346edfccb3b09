//! Backups: a consistent snapshot of every tree, streamed to a file, and
//! restoring one into an empty engine.
//!
//! Format (integers big-endian):
//! - header: `fieldsync-backup` (16 bytes), version `1` (u32);
//! - records: tag `1` (u8), tree name length (u16), tree name, key length
//!   (u32), key, value length (u32), value;
//! - trailer: tag `0` (u8), the number of records (u64), then the SHA-256 of
//!   every byte before it (header, records, tag and count).
//!
//! A restore reads the file twice: once to verify it whole (trailer, count,
//! checksum) before anything is written, then to write it in batches.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use fieldsync_store::{Batch, Engine, Scanning, Sled, Snapshot};
use sha2::{Digest, Sha256};

use super::schema::{retired, TREES};
use super::{Error, Result, Store};

/// Trees older stores held and their backups may carry: read (they count in
/// the checksum) but not restored. `changes_by_district` was the change
/// log's cut by district; opening the restored store cuts it by commune.
/// (The older audit trail and results, `retired::MIGRATED`, are restored:
/// opening the restored store moves them.) `entity_seq` found each
/// entity's one entry when the log moved entities to its head; opening the
/// restored store makes the log one entry per commit without it.
const RETIRED_TREES: &[&str] = &[retired::CHANGES_BY_DISTRICT, retired::ENTITY_SEQ];

const MAGIC: &[u8; 16] = b"fieldsync-backup";
const VERSION: u32 = 1;
const TAG_RECORD: u8 = 1;
const TAG_TRAILER: u8 = 0;

/// Entries read per scan when writing a backup.
const CHUNK: usize = 1_024;
/// A restore commits a batch once it holds this many records or bytes.
const BATCH_RECORDS: usize = 2_000;
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Largest key and value a backup may hold (sled's keys are far smaller;
/// values are bounded by the 4 MiB request limit).
const MAX_KEY: u32 = 1024 * 1024;
const MAX_VALUE: u32 = 64 * 1024 * 1024;

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Storage(fieldsync_store::Error::Other(format!("{what}: {e}")))
}

fn damaged(why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("the backup is damaged or truncated: {why}; nothing was restored"))
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.inner.write_all(bytes).map_err(|e| io("cannot write the backup", e))
    }
}

/// One record of a backup: tree, key, value.
type Record = (&'static str, Vec<u8>, Vec<u8>);

/// A reader that hashes what it reads and tells a clean end from a cut one.
struct Reading<R> {
    inner: R,
    hash: Sha256,
    records: u64,
}

impl<R: Read> Reading<R> {
    /// Exactly `n` bytes, or an error naming `what` was cut short.
    fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let got = (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|e| io("cannot read the backup", e))?;
        if got < n {
            return Err(damaged(format!(
                "it ends in the middle of {what} (after {} record(s))",
                self.records
            )));
        }
        self.hash.update(&buf);
        Ok(buf)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_be_bytes(a))
    }

    /// The next record, or `None` once the trailer is read and checked.
    fn next(&mut self) -> Result<Option<Record>> {
        match self.u8("a record")? {
            TAG_RECORD => {}
            TAG_TRAILER => {
                let count = self.u64("the trailer")?;
                let computed: [u8; 32] = self.hash.clone().finalize().into();
                let mut stored = [0u8; 32];
                let got = self.take(32, "the trailer's checksum")?;
                stored.copy_from_slice(&got);
                if stored != computed {
                    return Err(damaged("its SHA-256 checksum does not match its contents"));
                }
                if count != self.records {
                    return Err(damaged(format!(
                        "the trailer counts {count} record(s) but the file holds {}",
                        self.records
                    )));
                }
                let mut extra = [0u8; 1];
                let n = self.inner.read(&mut extra).map_err(|e| io("cannot read the backup", e))?;
                if n > 0 {
                    return Err(damaged("there are bytes after its trailer"));
                }
                return Ok(None);
            }
            tag => {
                return Err(damaged(format!(
                    "record {} starts with an unknown tag {tag}",
                    self.records + 1
                )))
            }
        }
        let n = self.u16("a tree name")?;
        let name = self.take(n as usize, "a tree name")?;
        let known = TREES
            .iter()
            .chain(RETIRED_TREES)
            .chain(&retired::MIGRATED)
            .copied()
            .find(|t| t.as_bytes() == name);
        let Some(tree) = known else {
            return Err(damaged(format!(
                "record {} names an unknown tree {:?}",
                self.records + 1,
                String::from_utf8_lossy(&name)
            )));
        };
        let n = self.u32("a key")?;
        if n > MAX_KEY {
            return Err(damaged(format!("record {} has a {n}-byte key", self.records + 1)));
        }
        let key = self.take(n as usize, "a key")?;
        let n = self.u32("a value")?;
        if n > MAX_VALUE {
            return Err(damaged(format!("record {} has a {n}-byte value", self.records + 1)));
        }
        let value = self.take(n as usize, "a value")?;
        self.records += 1;
        Ok(Some((tree, key, value)))
    }
}

/// Opens a backup for reading and checks its header.
fn open_backup<R: Read>(input: R) -> Result<Reading<R>> {
    let mut r = Reading { inner: input, hash: Sha256::new(), records: 0 };
    let magic = r.take(MAGIC.len(), "the header")?;
    if magic != MAGIC {
        return Err(Error::Invalid("this file is not a fieldsync backup".into()));
    }
    let version = r.u32("the header")?;
    if version != VERSION {
        return Err(Error::Invalid(format!(
            "this backup is format version {version}; this server reads version {VERSION}"
        )));
    }
    Ok(r)
}

/// Reads a whole backup and checks its structure, count and checksum
/// without writing anything. Returns the number of records.
fn verify_backup(input: impl Read) -> Result<u64> {
    let mut r = open_backup(input)?;
    while r.next()?.is_some() {}
    Ok(r.records)
}

/// Writes a verified backup into `engine`, which must be empty. Returns the
/// number of records.
pub(in crate::db) fn restore_into(input: impl Read, engine: &dyn Engine) -> Result<u64> {
    for tree in TREES {
        if engine.last(tree)?.is_some() {
            return Err(Error::Invalid(format!(
                "the target store is not empty (tree {tree} has records): restore into a new \
                 directory"
            )));
        }
    }
    let mut r = open_backup(input)?;
    let mut batch = Batch::default();
    let mut bytes = 0;
    while let Some((tree, key, value)) = r.next()? {
        if RETIRED_TREES.contains(&tree) {
            continue; // rebuilt from the rest when the store is opened
        }
        bytes += key.len() + value.len();
        batch.put(tree, key, value);
        if batch.len() >= BATCH_RECORDS || bytes >= BATCH_BYTES {
            engine.commit(std::mem::take(&mut batch))?;
            bytes = 0;
        }
    }
    engine.commit(batch)?;
    engine.flush()?;
    Ok(r.records)
}

impl Store {
    /// Writes a consistent snapshot of every tree to `out`, as the store
    /// stood when the backup began: writers go on meanwhile (the engine's
    /// snapshot keeps what they change out of it; an engine without one is
    /// read under the store's read lock). Everything in the snapshot is
    /// flushed before it is written out. Returns the number of records.
    pub fn backup(&self, out: impl Write) -> Result<u64> {
        self.backup_trees(TREES, out)
    }

    /// [`Store::backup`] of the given trees.
    pub(in crate::db) fn backup_trees(
        &self,
        trees: &[&'static str],
        out: impl Write,
    ) -> Result<u64> {
        let (mut snapshot, _guard): (Box<dyn Snapshot + '_>, _) =
            match self.engine.snapshot(trees)? {
                Some(snapshot) => {
                    self.engine.flush()?;
                    (snapshot, None)
                }
                None => {
                    let guard = self.read_lock();
                    (Box::new(Scanning::new(self.engine.as_ref(), trees)), Some(guard))
                }
            };
        let mut w = Hashing { inner: out, hash: Sha256::new() };
        w.put(MAGIC)?;
        w.put(&VERSION.to_be_bytes())?;
        let mut count = 0u64;
        while let Some((tree, chunk)) = snapshot.next_chunk(CHUNK)? {
            for (key, value) in &chunk {
                let too_big = key.len() > MAX_KEY as usize || value.len() > MAX_VALUE as usize;
                if too_big {
                    return Err(Error::Corrupt {
                        tree,
                        why: format!("a record of {} bytes is too large", value.len()),
                    });
                }
                w.put(&[TAG_RECORD])?;
                w.put(&(tree.len() as u16).to_be_bytes())?;
                w.put(tree.as_bytes())?;
                w.put(&(key.len() as u32).to_be_bytes())?;
                w.put(key)?;
                w.put(&(value.len() as u32).to_be_bytes())?;
                w.put(value)?;
                count += 1;
            }
        }
        w.put(&[TAG_TRAILER])?;
        w.put(&count.to_be_bytes())?;
        let sum: [u8; 32] = w.hash.clone().finalize().into();
        w.put(&sum)?;
        w.inner.flush().map_err(|e| io("cannot write the backup", e))?;
        Ok(count)
    }

    /// Backs the store up to the file `out`, written beside it first
    /// (`OUT.partial`, created new: a planted file or link there is refused,
    /// never followed) and renamed into place once complete and synced. An
    /// existing `out` is refused unless `replace`. Returns the number of
    /// records.
    pub fn backup_to_file(&self, out: &Path, replace: bool) -> Result<u64> {
        if !replace && std::fs::symlink_metadata(out).is_ok() {
            return Err(Error::Invalid(format!(
                "{} already exists: choose a new file name (or --force to replace it)",
                out.display()
            )));
        }
        let mut partial = out.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let file =
            std::fs::OpenOptions::new().write(true).create_new(true).open(&partial).map_err(
                |e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::Invalid(format!(
                        "{} already exists (an interrupted backup, or a file planted there): look \
                     at it, remove it, and try again",
                        partial.display()
                    )),
                    _ => io(&format!("cannot create {}", partial.display()), e),
                },
            )?;
        let result = (|| {
            let mut w = BufWriter::new(file);
            let count = self.backup(&mut w)?;
            let file = w.into_inner().map_err(|e| io("cannot write the backup", e.into_error()))?;
            file.sync_all().map_err(|e| io("cannot write the backup", e))?;
            std::fs::rename(&partial, out)
                .map_err(|e| io(&format!("cannot write {}", out.display()), e))?;
            Ok(count)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }

    /// Restores the backup file `from` into a new store in `data`, which
    /// must not exist or be an empty directory. The file is verified whole
    /// before anything is written; the store is written into a new sibling
    /// directory and renamed to `data` only once complete and flushed, so an
    /// interrupted restore leaves no store at `data` that could be served as
    /// a new one. Returns the number of records.
    pub fn restore_from_file(from: &Path, data: &Path) -> Result<u64> {
        let open = || {
            File::open(from)
                .map(BufReader::new)
                .map_err(|e| io(&format!("cannot open {}", from.display()), e))
        };
        let existed = match std::fs::read_dir(data) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(Error::Invalid(format!(
                        "{} is not empty: restore into a new or empty directory",
                        data.display()
                    )));
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(&format!("cannot use {}", data.display()), e)),
        };
        verify_backup(open()?)?;
        let name = data.file_name().ok_or_else(|| {
            Error::Invalid(format!("{} does not name a directory", data.display()))
        })?;
        let parent = match data.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .map_err(|e| io(&format!("cannot create {}", parent.display()), e))?;
        let mut prefix = name.to_owned();
        prefix.push(".restoring-");
        let staging = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&parent)
            .map_err(|e| io(&format!("cannot create a directory in {}", parent.display()), e))?;
        let count = {
            let engine = Arc::new(Sled::open(staging.path())?);
            restore_into(open()?, engine.as_ref())?
        };
        if existed {
            std::fs::remove_dir(data)
                .map_err(|e| io(&format!("cannot replace {}", data.display()), e))?;
        }
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, data) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(io(&format!("cannot move the restored store to {}", data.display()), e));
        }
        fieldsync_store::sync_dir(&parent)?;
        Ok(count)
    }
}

#[cfg(test)]
pub(in crate::db) mod tests {
    use super::*;
    use fieldsync::access::{Role, User};
    use fieldsync::sync::{Mutation, RawValue};
    use fieldsync_store::Memory;
    use std::ops::Bound;

    /// A backup of `store`'s trees, the retired ones and `extra`, restored
    /// into an engine of its own (not yet opened, so not yet migrated).
    pub(in crate::db) fn restored_copy(store: &Store, extra: &[&'static str]) -> Arc<Memory> {
        let mut trees = TREES.to_vec();
        trees.extend(retired::MIGRATED);
        trees.extend(extra);
        let mut bytes = Vec::new();
        store.backup_trees(&trees, &mut bytes).unwrap();
        let copy = Arc::new(Memory::new());
        restore_into(bytes.as_slice(), copy.as_ref()).unwrap();
        copy
    }

    /// A store with one value pushed by its surveyor, on an engine the
    /// caller keeps.
    fn one_value_pushed() -> (Arc<Memory>, Store, User) {
        let engine = Arc::new(Memory::new());
        let store = Store::open(engine.clone(), fieldsync::demo::catalogue).unwrap();
        let surveyor = User {
            id: "an".into(),
            name: "An".into(),
            role: Role::Surveyor,
            areas: vec![fieldsync::demo::SAMPLE_COMMUNE.into()],
            disabled: false,
        };
        let m = Mutation {
            id: 1,
            village_id: fieldsync::demo::SAMPLE_VILLAGE.into(),
            period: "2022".into(),
            field: "road_km".into(),
            value: RawValue::Amount("4".into()),
            base_version: 0,
            hlc: fieldsync::Hlc(1),
            author: "An".into(),
        };
        let device = fieldsync::DeviceId(uuid::Uuid::from_u128(1));
        store.push(&surveyor, device, &[m], 0, 1).unwrap();
        (engine, store, surveyor)
    }

    /// A backup of a store from before the change log was cut by commune
    /// (a `changes_by_district` tree, no `cut` marker) restores, and the
    /// restored store is cut by commune when opened.
    #[test]
    fn a_backup_with_the_retired_district_cut_restores() {
        let (engine, store, surveyor) = one_value_pushed();
        let expected = store.pull(&surveyor, 0, 100).unwrap();
        crate::db::migrate::write_per_record_layout(engine.as_ref());
        let mut old = Batch::default();
        old.delete(super::super::schema::META, super::super::schema::CUT_KEY.to_vec());
        for (key, entity) in
            engine.scan("changes_by_commune", Bound::Unbounded, Bound::Unbounded, 100).unwrap()
        {
            old.delete("changes_by_commune", key.clone());
            let mut district = b"ha-tinh.huong-khe".to_vec();
            district.extend_from_slice(&key[key.len() - 9..]);
            old.put("changes_by_district", district, entity);
        }
        engine.commit(old).unwrap();
        let copy = restored_copy(&store, &["changes_by_district"]);
        let restored = Store::open(copy.clone(), fieldsync::demo::catalogue).unwrap();
        assert_eq!(restored.check().unwrap(), Vec::<String>::new());
        assert_eq!(restored.pull(&surveyor, 0, 100).unwrap(), expected);
        assert!(copy.last("changes_by_district").unwrap().is_none());
    }

    /// A backup of a store in the earlier layout of the trail (a record per
    /// audit entry, result and digest) restores them, and the restored
    /// store is migrated when opened and answers as the original did.
    #[test]
    fn a_backup_of_the_earlier_trail_layout_restores_and_is_migrated() {
        use super::super::trail::tests::{answers, busy_store, to_old_layout};
        let engine = Arc::new(Memory::new());
        let (store, sub) = busy_store(engine.clone());
        let before = answers(&store, &sub);
        to_old_layout(engine.as_ref());
        let copy = restored_copy(&store, &[]);
        assert!(copy.last(retired::AUDIT).unwrap().is_some(), "the old trail is restored");
        let restored = Store::open(copy.clone(), fieldsync::demo::catalogue).unwrap();
        assert_eq!(restored.check().unwrap(), Vec::<String>::new());
        assert_eq!(answers(&restored, &sub), before);
        for tree in retired::MIGRATED {
            assert!(copy.last(tree).unwrap().is_none(), "{tree} is emptied");
        }
    }

    /// A backup of a store in the layout that moved each entity to the
    /// head of the log (with `entity_seq`) restores, and the restored store
    /// gets one entry per commit when opened, and pulls the same.
    #[test]
    fn a_backup_of_the_old_log_layout_restores_and_is_migrated() {
        let (engine, store, surveyor) = one_value_pushed();
        let expected = store.pull(&surveyor, 0, 100).unwrap();
        crate::db::log::tests::write_old_layout(engine.as_ref(), &store.catalogue());
        assert!(engine.last(retired::ENTITY_SEQ).unwrap().is_some());
        let copy = restored_copy(&store, &[retired::ENTITY_SEQ]);
        let restored = Store::open(copy.clone(), fieldsync::demo::catalogue).unwrap();
        assert_eq!(restored.check().unwrap(), Vec::<String>::new());
        assert_eq!(restored.pull(&surveyor, 0, 100).unwrap(), expected);
        assert!(copy.last(retired::ENTITY_SEQ).unwrap().is_none());
    }

    /// A tree added to `schema.rs` but not to `TREES` would silently be
    /// left out of every backup.
    #[test]
    fn every_tree_constant_is_backed_up() {
        let source = include_str!("schema.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| {
                let declaration = l.strip_prefix("pub(super) const ")?;
                declaration.split_once(": &str = \"")?.1.split('"').next()
            })
            .collect();
        assert!(declared.len() >= 18, "{declared:?}");
        for tree in declared {
            assert!(TREES.contains(&tree), "tree {tree:?} is missing from TREES");
        }
    }
}
