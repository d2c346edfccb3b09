//! The same expectations of every engine.

use std::path::Path;
use std::sync::Mutex;

use super::*;

fn engines() -> Vec<(&'static str, Box<dyn Engine>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sled = Sled::open(dir.path()).unwrap();
    vec![
        ("memory", Box::new(Memory::new()), None),
        ("faulty", Box::new(Faulty::new()), None),
        ("sled", Box::new(sled), Some(dir)),
    ]
}

#[test]
fn a_faulty_disk_is_stuck_after_a_failure_until_reopened_which_drops_what_was_not_flushed() {
    let e = Faulty::new();
    let put = |k: &[u8]| {
        let mut b = Batch::default();
        b.put("t", k.to_vec(), b"v".to_vec());
        b
    };
    e.commit(put(b"flushed")).unwrap();
    e.write(put(b"written")).unwrap();
    e.fill();
    assert!(e.flush().is_err());
    assert!(e.reopen().is_err(), "a full disk cannot be reopened");
    e.free();
    assert!(e.write(put(b"later")).is_err(), "the failure is sticky");
    e.reopen().unwrap();
    assert_eq!(e.get("t", b"flushed").unwrap(), Some(b"v".to_vec()));
    assert_eq!(e.get("t", b"written").unwrap(), None, "never flushed");
    e.commit(put(b"later")).unwrap();
}

#[test]
fn sled_reopens_in_place_with_what_it_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let e = Sled::open(dir.path()).unwrap();
    let mut b = Batch::default();
    b.put("t", b"k".to_vec(), b"v".to_vec());
    e.commit(b).unwrap();
    e.reopen().unwrap();
    assert_eq!(e.get("t", b"k").unwrap(), Some(b"v".to_vec()));
    let space = e.space().unwrap().expect("a directory on a disk");
    assert!(space.free <= space.total && space.total > 0, "{space:?}");
    // Batches after the reopen carry on the epochs, and the mark follows.
    let mut b = Batch::default();
    b.put("t", b"k2".to_vec(), b"v2".to_vec());
    e.commit(b).unwrap();
    drop(e);
    let e = Sled::open(dir.path()).unwrap();
    assert_eq!(e.get("t", b"k2").unwrap(), Some(b"v2".to_vec()));
}

#[test]
fn batches_apply_in_order_across_trees() {
    for (name, e, _dir) in engines() {
        let mut b = Batch::default();
        b.put("a", b"k1".to_vec(), b"1".to_vec());
        b.put("b", b"k1".to_vec(), b"2".to_vec());
        b.put("a", b"k2".to_vec(), b"3".to_vec());
        b.delete("a", b"k2".to_vec());
        e.commit(b).unwrap();
        assert_eq!(e.get("a", b"k1").unwrap(), Some(b"1".to_vec()), "{name}");
        assert_eq!(e.get("b", b"k1").unwrap(), Some(b"2".to_vec()), "{name}");
        assert_eq!(e.get("a", b"k2").unwrap(), None, "{name}");
        assert_eq!(e.get("c", b"k1").unwrap(), None, "{name}");
    }
}

#[test]
fn scans_are_ordered_bounded_and_limited() {
    for (name, e, _dir) in engines() {
        let mut b = Batch::default();
        for i in 0u8..10 {
            b.put("t", vec![1, i], vec![i]);
        }
        b.put("t", vec![2, 0], vec![99]);
        e.commit(b).unwrap();
        let got = e.scan("t", Bound::Excluded(&[1, 3]), Bound::Unbounded, 3).unwrap();
        let keys: Vec<_> = got.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![vec![1, 4], vec![1, 5], vec![1, 6]], "{name}");
        assert_eq!(scan_prefix(e.as_ref(), "t", &[1], 100).unwrap().len(), 10, "{name}");
        assert_eq!(e.last("t").unwrap().unwrap().1, vec![99], "{name}");
        assert!(e.last("empty").unwrap().is_none(), "{name}");
        let none = e.scan("t", Bound::Included(&[3]), Bound::Excluded(&[1]), 10).unwrap();
        assert!(none.is_empty(), "{name}");
        let none = e.scan("t", Bound::Excluded(&[1, 3]), Bound::Excluded(&[1, 3]), 10).unwrap();
        assert!(none.is_empty(), "{name}");
        let back = e.scan_rev("t", Bound::Included(&[1]), Bound::Excluded(&[1, 7]), 3).unwrap();
        let keys: Vec<_> = back.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![vec![1, 6], vec![1, 5], vec![1, 4]], "{name}");
        let newest = e.scan_rev("t", Bound::Unbounded, Bound::Unbounded, 1).unwrap();
        assert_eq!(newest[0].1, vec![99], "{name}");
        assert!(e.scan_rev("empty", Bound::Unbounded, Bound::Unbounded, 5).unwrap().is_empty());
        assert!(e
            .scan_rev("t", Bound::Included(&[3]), Bound::Excluded(&[1]), 9)
            .unwrap()
            .is_empty());
    }
}

#[test]
fn trees_whose_names_share_a_start_stay_apart() {
    for (name, e, _dir) in engines() {
        let mut b = Batch::default();
        b.put("audit", vec![0xFF], b"a".to_vec());
        b.put("audit_by_sub", vec![0x00], b"b".to_vec());
        b.put("auditx", vec![], b"c".to_vec());
        e.commit(b).unwrap();
        let all = e.scan("audit", Bound::Unbounded, Bound::Unbounded, 10).unwrap();
        assert_eq!(all, vec![(vec![0xFF], b"a".to_vec())], "{name}");
        assert_eq!(e.last("audit").unwrap(), Some((vec![0xFF], b"a".to_vec())), "{name}");
        assert_eq!(e.last("audit_by_sub").unwrap().unwrap().1, b"b".to_vec(), "{name}");
        assert_eq!(e.get("auditx", &[]).unwrap(), Some(b"c".to_vec()), "{name}");
        let below = e.scan("audit", Bound::Unbounded, Bound::Excluded(&[0xFF]), 10).unwrap();
        assert!(below.is_empty(), "{name}");
    }
}

#[test]
fn sled_moves_a_database_with_one_tree_per_name_into_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let fields = db.open_tree("fields").unwrap();
        fields.insert(b"k1", b"v1").unwrap();
        fields.insert(b"k2", b"v2").unwrap();
        db.open_tree("meta").unwrap().insert(b"seq", b"7").unwrap();
        db.flush().unwrap();
    }
    let e = Sled::open(dir.path()).unwrap();
    let fields = e.scan("fields", Bound::Unbounded, Bound::Unbounded, 10).unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(e.get("fields", b"k2").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(e.get("meta", b"seq").unwrap(), Some(b"7".to_vec()));
    assert_eq!(e.db().unwrap().tree_names().len(), 1, "the old trees are dropped once moved");
    drop(e);
    let e = Sled::open(dir.path()).unwrap();
    assert_eq!(e.get("fields", b"k1").unwrap(), Some(b"v1".to_vec()));
    drop(e);
    // An older binary writing its own layout into the moved database is
    // refused rather than merged.
    {
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        db.open_tree("meta").unwrap().insert(b"seq", b"0").unwrap();
        db.flush().unwrap();
    }
    let err = Sled::open(dir.path()).err().expect("refused").to_string();
    assert!(err.contains("older fieldsync wrote to it"), "{err}");
}

fn read_all(snap: &mut dyn Snapshot, limit: usize) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    while let Some((tree, chunk)) = snap.next_chunk(limit).unwrap() {
        all.extend(chunk.into_iter().map(|(k, v)| (tree, k, v)));
    }
    all
}

#[test]
fn a_snapshot_reads_the_trees_as_they_were_while_writes_go_on() {
    for (name, e, _dir) in engines() {
        let mut b = Batch::default();
        for i in 0u8..50 {
            b.put("a", vec![i], vec![i]);
            b.put("b", vec![i], vec![i, i]);
        }
        b.put("c", vec![1], vec![1]);
        e.commit(b).unwrap();
        let expected: Vec<_> = ["a", "b"]
            .into_iter()
            .flat_map(|t| {
                let entries = e.scan(t, Bound::Unbounded, Bound::Unbounded, 1000).unwrap();
                entries.into_iter().map(move |(k, v)| (t, k, v))
            })
            .collect();
        let Some(mut snap) = e.snapshot(&["a", "b"]).unwrap() else {
            assert_eq!(name, "faulty", "memory and sled keep snapshots");
            continue;
        };
        let mut seen = Vec::new();
        let (tree, first) = snap.next_chunk(10).unwrap().unwrap();
        seen.extend(first.into_iter().map(|(k, v)| (tree, k, v)));
        // Writes behind the reader, ahead of it, deletes, new keys, and
        // a tree that is not in the snapshot: none shows in it.
        let mut b = Batch::default();
        b.put("a", vec![2], b"changed behind".to_vec());
        b.put("a", vec![30], b"changed ahead".to_vec());
        b.delete("a", vec![31]);
        b.put("a", vec![200], b"new".to_vec());
        b.delete("b", vec![0]);
        b.put("b", vec![7], b"changed".to_vec());
        b.put("c", vec![1], b"other".to_vec());
        e.commit(b).unwrap();
        let mut b = Batch::default();
        b.put("a", vec![30], b"changed twice".to_vec());
        b.put("b", vec![7], b"changed twice".to_vec());
        e.commit(b).unwrap();
        seen.extend(read_all(snap.as_mut(), 7));
        assert_eq!(seen, expected, "{name}");
        drop(snap);
        // The writes themselves all landed.
        assert_eq!(e.get("a", &[30]).unwrap(), Some(b"changed twice".to_vec()), "{name}");
        assert_eq!(e.get("a", &[31]).unwrap(), None, "{name}");
        // Closed, a new snapshot sees them.
        let mut snap = e.snapshot(&["a"]).unwrap().unwrap();
        let now = read_all(snap.as_mut(), 1000);
        assert!(now.iter().any(|(_, k, v)| k == &vec![200] && v == b"new"), "{name}");
    }
}

/// A store of `batches` flushed batches in `dir`.
fn filled(dir: &Path, batches: u32) {
    let e = Sled::open(dir).unwrap();
    for i in 0..batches {
        let mut b = Batch::default();
        b.put("t", i.to_be_bytes().to_vec(), vec![7u8; 2_000]);
        e.commit(b).unwrap();
    }
}

#[test]
fn sled_refuses_a_database_cut_behind_its_mark() {
    for keep in [0.5, 0.99] {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 600);
        let db = dir.path().join("db");
        let len = std::fs::metadata(&db).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        file.set_len((len as f64 * keep) as u64).unwrap();
        drop(file);
        for (how, err) in [
            ("open", Sled::open(dir.path()).err()),
            ("open_existing", Sled::open_existing(dir.path()).err()),
        ] {
            let err = err.unwrap_or_else(|| panic!("{how} served a db cut to {keep}"));
            let text = err.to_string();
            assert!(matches!(err, Error::Damaged(_)), "{how} at {keep}: {text}");
            assert!(text.contains("restore"), "{how} at {keep}: {text}");
        }
    }
}

fn copy_files(from: &Path, to: &Path, skip: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_name() == skip {
            continue;
        }
        match entry.file_type().unwrap().is_dir() {
            true => copy_files(&entry.path(), &target, skip),
            false => drop(std::fs::copy(entry.path(), target).unwrap()),
        }
    }
}

#[test]
fn sled_refuses_older_files_put_back_under_a_newer_mark() {
    let root = tempfile::tempdir().unwrap();
    let (dir, old) = (root.path().join("store"), root.path().join("old"));
    filled(&dir, 5);
    copy_files(&dir, &old, MARK_FILE);
    {
        let e = Sled::open(&dir).unwrap();
        let mut b = Batch::default();
        b.put("t", b"later".to_vec(), b"acknowledged".to_vec());
        e.commit(b).unwrap();
    }
    // sled's files as they were before the last commit, the mark as it is.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with(MARK_FILE) {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    copy_files(&old, &dir, MARK_FILE);
    for err in [Sled::open(&dir).err(), Sled::open_existing(&dir).err()] {
        let text = err.expect("refused").to_string();
        assert!(text.contains("holds 5 of the 6 write batches"), "{text}");
        assert!(text.contains("restore the last backup"), "{text}");
    }
}

#[test]
fn sled_never_initialises_a_directory_that_holds_files() {
    // Someone else's files.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    let err = Sled::open(dir.path()).err().expect("refused");
    assert!(matches!(err, Error::NoStore(_)), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing was created");
    // sled's files without a record and without a mark: damaged, not new.
    let dir = tempfile::tempdir().unwrap();
    drop(sled::Config::new().path(dir.path()).open().unwrap());
    let err = Sled::open(dir.path()).err().expect("refused");
    assert!(matches!(err, Error::Damaged(_)), "{err}");
    // The mark without sled's files: everything acknowledged is gone.
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 3);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with(MARK_FILE) {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    let err = Sled::open(dir.path()).err().expect("refused");
    assert!(matches!(err, Error::Damaged(_)), "{err}");
}

#[test]
fn opening_an_existing_store_to_read_it_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("typo");
    let err = Sled::open_existing(&missing).err().expect("refused");
    assert!(matches!(err, Error::NoStore(_)), "{err}");
    assert!(!missing.exists(), "a mistyped directory is not created");
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(Sled::open_existing(&empty).is_err());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    let dir = root.path().join("store");
    filled(&dir, 5);
    let mark = std::fs::read(dir.join(MARK_FILE)).unwrap();
    let e = Sled::open_existing(&dir).unwrap();
    assert_eq!(e.get("t", &4u32.to_be_bytes()).unwrap(), Some(vec![7u8; 2_000]));
    drop(e);
    assert_eq!(std::fs::read(dir.join(MARK_FILE)).unwrap(), mark);
    // The writable open that follows finds the store as it was.
    let e = Sled::open(&dir).unwrap();
    assert_eq!(e.scan("t", Bound::Unbounded, Bound::Unbounded, 100).unwrap().len(), 5);
}

#[test]
fn sled_keeps_commits_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = Sled::open(dir.path()).unwrap();
        let mut b = Batch::default();
        b.put("t", b"k".to_vec(), b"v".to_vec());
        e.commit(b).unwrap();
    }
    let e = Sled::open(dir.path()).unwrap();
    assert_eq!(e.get("t", b"k").unwrap(), Some(b"v".to_vec()));
}

/// An engine that records the scans asked of it, to show that an iterator
/// reads lazily and in bounded chunks.
#[derive(Default)]
struct Counting {
    inner: Memory,
    /// The `limit` of every scan, in order.
    scans: Mutex<Vec<usize>>,
}

impl Engine for Counting {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(tree, key)
    }
    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        self.scans.lock().unwrap().push(limit);
        self.inner.scan(tree, from, to, limit)
    }
    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.inner.last(tree)
    }
    fn write(&self, batch: Batch) -> Result<()> {
        self.inner.write(batch)
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

fn keys(entries: impl IntoIterator<Item = Result<(Vec<u8>, Vec<u8>)>>) -> Vec<Vec<u8>> {
    entries.into_iter().map(|e| e.unwrap().0).collect()
}

#[test]
fn iterators_return_what_one_scan_returns_whatever_their_chunk() {
    for (name, e, _dir) in engines() {
        let mut b = Batch::default();
        for i in 0u8..50 {
            b.put("t", vec![1, i], vec![i]);
        }
        b.put("t", vec![0], vec![0]);
        b.put("t", vec![2, 0], vec![99]);
        b.put("u", vec![1, 0], vec![7]);
        e.commit(b).unwrap();
        type Range<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);
        let ranges: [Range; 5] = [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Excluded(&[1, 3]), Bound::Included(&[1, 40])),
            (Bound::Included(&[1, 3]), Bound::Excluded(&[2])),
            (Bound::Included(&[3]), Bound::Excluded(&[1])),
            (Bound::Excluded(&[1, 3]), Bound::Excluded(&[1, 3])),
        ];
        for (from, to) in ranges {
            let whole = e.scan("t", from, to, usize::MAX).unwrap();
            let expected: Vec<_> = whole.into_iter().map(|(k, _)| k).collect();
            let mut backwards = expected.clone();
            backwards.reverse();
            for chunk in [1, 2, 7, 50, 51, 1_024] {
                let got = keys(e.iter("t", from, to).chunk(chunk));
                assert_eq!(got, expected, "{name}: {from:?}..{to:?} in chunks of {chunk}");
                let got = keys(e.iter_rev("t", from, to).chunk(chunk));
                assert_eq!(got, backwards, "{name}: {from:?}..{to:?} reversed, by {chunk}");
            }
        }
        let values: Vec<_> = e.iter_prefix("t", &[1]).map(|e| e.unwrap().1).collect();
        assert_eq!(values, (0u8..50).map(|i| vec![i]).collect::<Vec<_>>(), "{name}");
        assert_eq!(keys(e.iter_all("t")).len(), 52, "{name}");
        assert_eq!(keys(e.iter_all("u")), vec![vec![1, 0]], "{name}");
        assert!(e.iter_all("empty").next().is_none(), "{name}");
        let ends: Vec<u8> = vec![0xff, 0xff];
        let mut b = Batch::default();
        b.put("t", ends.clone(), vec![1]);
        e.commit(b).unwrap();
        assert_eq!(keys(e.iter_prefix("t", &[0xff])), vec![ends], "{name}: a prefix with no end");
    }
}

#[test]
fn iterators_read_lazily_one_bounded_chunk_at_a_time() {
    let e = Counting::default();
    let mut b = Batch::default();
    for i in 0u8..10 {
        b.put("t", vec![i], vec![i]);
    }
    e.write(b).unwrap();
    let engine: &dyn Engine = &e;
    let mut it = engine.iter_all("t").chunk(4);
    assert!(e.scans.lock().unwrap().is_empty(), "nothing is read before the first entry");
    assert_eq!(it.next().unwrap().unwrap().0, vec![0]);
    assert_eq!(*e.scans.lock().unwrap(), vec![4]);
    for _ in 0..3 {
        it.next().unwrap().unwrap();
    }
    assert_eq!(e.scans.lock().unwrap().len(), 1, "a chunk is read once");
    assert_eq!(keys(it).len(), 6);
    assert_eq!(*e.scans.lock().unwrap(), vec![4, 4, 4], "10 entries: three reads of at most 4");
}

#[test]
fn an_iterator_sees_entries_written_after_it_started_beyond_its_position() {
    for (name, e, _dir) in engines() {
        let mut b = Batch::default();
        for i in 0u8..4 {
            b.put("t", vec![i * 2], vec![]);
        }
        e.commit(b).unwrap();
        let mut it = e.iter_all("t").chunk(2);
        assert_eq!(it.next().unwrap().unwrap().0, vec![0]);
        let mut b = Batch::default();
        b.put("t", vec![1], vec![]);
        b.put("t", vec![5], vec![]);
        e.commit(b).unwrap();
        let rest = keys(it);
        assert_eq!(rest, vec![vec![2], vec![4], vec![5], vec![6]], "{name}");
    }
}

#[test]
fn long_values_read_back_whole_everywhere_and_in_a_snapshot_while_they_change() {
    let long = |len: usize, seed: u8| (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
    for (name, e, _dir) in engines() {
        let sizes = [10, 4095, 4096, 4097, 8192, 200_000];
        let mut b = Batch::default();
        for (i, len) in sizes.into_iter().enumerate() {
            b.put("t", vec![i as u8], long(len, 3));
        }
        e.commit(b).unwrap();
        let expected: Entries =
            sizes.into_iter().enumerate().map(|(i, len)| (vec![i as u8], long(len, 3))).collect();
        let snapshot = e.snapshot(&["t"]).unwrap();
        let mut b = Batch::default();
        b.put("t", vec![5], long(9000, 7));
        b.put("t", vec![4], long(3, 7));
        b.delete("t", vec![3]);
        e.commit(b).unwrap();
        if let Some(mut snap) = snapshot {
            assert_eq!(
                read_all(snap.as_mut(), 2),
                expected.iter().map(|(k, v)| ("t", k.clone(), v.clone())).collect::<Vec<_>>(),
                "{name}"
            );
        }
        let now = e.scan("t", Bound::Unbounded, Bound::Unbounded, 100).unwrap();
        let lens: Vec<usize> = now.iter().map(|(_, v)| v.len()).collect();
        assert_eq!(lens, [10, 4095, 4096, 3, 9000], "{name}");
        assert_eq!(e.get("t", &[5]).unwrap(), Some(long(9000, 7)), "{name}");
        assert_eq!(e.get("t", &[3]).unwrap(), None, "{name}");
        let rev = e.scan_rev("t", Bound::Unbounded, Bound::Unbounded, 1).unwrap();
        assert_eq!(rev, vec![(vec![5], long(9000, 7))], "{name}");
        assert_eq!(e.last("t").unwrap(), Some((vec![5], long(9000, 7))), "{name}");
    }
}

/// The name of sled's newest snapshot file in `dir` (it names the log
/// position it covers).
fn newest_snapshot(dir: &Path) -> Option<String> {
    let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name());
    names.map(|n| n.to_string_lossy().into_owned()).filter(|n| n.starts_with("snap.")).max()
}

#[test]
fn sled_takes_a_fresh_snapshot_after_enough_writes_and_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Sled::open(dir.path()).unwrap();
    e.snapshot_every = 64 * 1024;
    let first = newest_snapshot(dir.path());
    for i in 0u32..40 {
        let mut b = Batch::default();
        b.put("t", i.to_be_bytes().to_vec(), vec![i as u8; 3000]);
        e.commit(b).unwrap();
    }
    let later = newest_snapshot(dir.path());
    assert!(later > first, "a snapshot after 120 KB written: {first:?} then {later:?}");
    // Not while a backup is being read: it would be cut short.
    let snap = e.snapshot(&["t"]).unwrap().unwrap();
    for i in 40u32..80 {
        let mut b = Batch::default();
        b.put("t", i.to_be_bytes().to_vec(), vec![i as u8; 3000]);
        e.commit(b).unwrap();
    }
    assert_eq!(newest_snapshot(dir.path()), later, "no reopen while a backup is read");
    drop(snap);
    drop(e);
    let e = Sled::open(dir.path()).unwrap();
    for i in 0u32..80 {
        assert_eq!(e.get("t", &i.to_be_bytes()).unwrap(), Some(vec![i as u8; 3000]), "value {i}");
    }
}

#[test]
fn a_long_value_is_never_read_half_old_half_new_while_it_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let e = std::sync::Arc::new(Sled::open(dir.path()).unwrap());
    let version = |n: u8| vec![n; 5 * 4096 + 100];
    let put = |e: &Sled, n: u8| {
        let mut b = Batch::default();
        b.put("t", b"long".to_vec(), version(n));
        e.write(b).unwrap();
    };
    put(&e, 0);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (e, done) = (e.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let got = e.get("t", b"long").unwrap().unwrap();
                    assert!(got.iter().all(|b| *b == got[0]), "a torn read after {reads}");
                    assert_eq!(got.len(), 5 * 4096 + 100);
                    let scanned = e.scan("t", Bound::Unbounded, Bound::Unbounded, 10).unwrap();
                    assert!(scanned[0].1.iter().all(|b| *b == scanned[0].1[0]), "a torn scan");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for n in 1..=200u8 {
        put(&e, n);
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn a_long_value_written_then_deleted_in_one_batch_leaves_no_piece() {
    let dir = tempfile::tempdir().unwrap();
    let e = Sled::open(dir.path()).unwrap();
    let mut b = Batch::default();
    b.put("t", b"k".to_vec(), vec![1u8; 3 * 4096]);
    b.delete("t", b"k".to_vec());
    b.put("t", b"j".to_vec(), vec![2u8; 3 * 4096]);
    b.put("t", b"j".to_vec(), vec![3u8; 10]);
    e.commit(b).unwrap();
    assert_eq!(e.get("t", b"k").unwrap(), None);
    assert_eq!(e.get("t", b"j").unwrap(), Some(vec![3u8; 10]));
    let pieces = e.db().unwrap().scan_prefix(b"\0piece").count();
    assert_eq!(pieces, 0, "no piece is left without its value");
}
