//! Long values stored in pieces, so that no sled value is longer than
//! [`PIECE`] bytes.
//!
//! sled 0.34 writes a log message longer than a quarter of its segment
//! (128 KiB) to a file of its own, and when that write fails (a full disk)
//! it leaves the log buffer it reserved unfinished: every later flush, and
//! closing the database, then waits forever, so the store could never be
//! reopened in place once space was freed. A tree node holds at most about
//! twenty entries, so entries of at most a few KiB keep every message far
//! below that threshold, whatever the records above store.
//!
//! A value of at least [`PIECE`] bytes keeps its first [`PIECE`] bytes under
//! its own key and the rest in pieces of [`PIECE`] bytes under
//! `\0piece\0 ‖ len(key) ‖ key ‖ n` (n = 1, 2, …, outside every tree), ended
//! by a shorter piece (empty when the length is a multiple of [`PIECE`]). So
//! a value read shorter than [`PIECE`] is whole without another read, and a
//! value of exactly [`PIECE`] bytes is followed by its pieces. Values longer
//! than [`PIECE`] under their own key (written before pieces) are whole as
//! they are. Pieces left over from a longer value written earlier are
//! removed when the key is written again or deleted.

use crate::Result;

/// The longest value sled holds under one key.
pub(crate) const PIECE: usize = 4096;

const PREFIX: &[u8] = b"\0piece\0";

/// How many sled entries a value of `len` bytes takes: its own and its
/// pieces'.
pub fn entries(len: usize) -> u64 {
    match len {
        len if len < PIECE => 1,
        len => 2 + ((len - PIECE) / PIECE) as u64,
    }
}

/// `\0piece\0 ‖ len(key) ‖ key`: the prefix of the pieces of `key` (the
/// length keeps one key's pieces apart from a longer key's that starts the
/// same way).
fn pieces_of(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(PREFIX.len() + 4 + key.len() + 4);
    k.extend_from_slice(PREFIX);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn piece_key(key: &[u8], n: u32) -> Vec<u8> {
    let mut k = pieces_of(key);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// Adds to `batch` the writes that store `value` under `key` (a delete
/// when `None`), removing the pieces of what `key` held before that the new
/// value does not overwrite, unless the key is `fresh` (never held a value:
/// then nothing is read). A read stops at the new value's last piece, so a
/// piece left over is unread space, never a wrong value.
pub(crate) fn write(
    db: &sled::Db,
    batch: &mut sled::Batch,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    fresh: bool,
) -> Result<()> {
    let (first, rest) = match &value {
        Some(v) if v.len() >= PIECE => {
            let mut rest: Vec<&[u8]> = v[PIECE..].chunks(PIECE).collect();
            if rest.last().is_none_or(|last| last.len() == PIECE) {
                rest.push(&[]);
            }
            (Some(&v[..PIECE]), rest)
        }
        Some(v) => (Some(&v[..]), Vec::new()),
        None => (None, Vec::new()),
    };
    let pieces = rest.len() as u32;
    // A key's pieces are always 1..=m: some are left over from a longer
    // value only if piece `pieces + 1` exists.
    if !fresh && db.contains_key(piece_key(&key, pieces + 1))? {
        for old in db.scan_prefix(pieces_of(&key)).keys() {
            let old = old?;
            let n = u32::from_be_bytes(old[old.len() - 4..].try_into().expect("4 bytes"));
            if n > pieces {
                batch.remove(old);
            }
        }
    }
    for (n, piece) in rest.into_iter().enumerate() {
        batch.insert(piece_key(&key, n as u32 + 1), piece);
    }
    match first {
        Some(first) => batch.insert(key, first),
        None => batch.remove(key),
    }
    Ok(())
}

/// The whole value of `key`, whose own entry was read as `first`, as one
/// batch left it: sled makes each read atomic with a batch but not several
/// reads, so the pieces are read between two reads of `epoch` (which every
/// batch writes), again until no batch landed in between.
pub(crate) fn whole(
    db: &sled::Db,
    epoch: &[u8],
    key: &[u8],
    first: &[u8],
) -> Result<Option<Vec<u8>>> {
    if first.len() != PIECE {
        return Ok(Some(first.to_vec()));
    }
    loop {
        let before = db.get(epoch)?;
        let Some(first) = db.get(key)? else {
            return Ok(None);
        };
        let value = joined(db, key, &first)?;
        if db.get(epoch)? == before {
            return Ok(Some(value));
        }
    }
}

/// `first` and the pieces that follow it, read as they are now.
fn joined(db: &sled::Db, key: &[u8], first: &[u8]) -> Result<Vec<u8>> {
    let mut value = first.to_vec();
    if first.len() != PIECE {
        return Ok(value);
    }
    for n in 1.. {
        match db.get(piece_key(key, n))? {
            Some(piece) => {
                value.extend_from_slice(&piece);
                if piece.len() < PIECE {
                    break;
                }
            }
            // A value of exactly PIECE bytes written before pieces.
            None => break,
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(db: &sled::Db) -> Vec<(Vec<u8>, usize)> {
        db.iter().map(|e| e.unwrap()).map(|(k, v)| (k.to_vec(), v.len())).collect()
    }

    fn put(db: &sled::Db, key: &[u8], value: Option<Vec<u8>>) {
        written(db, key, value, false);
    }

    fn written(db: &sled::Db, key: &[u8], value: Option<Vec<u8>>, fresh: bool) {
        let mut batch = sled::Batch::default();
        write(db, &mut batch, key.to_vec(), value, fresh).unwrap();
        db.apply_batch(batch).unwrap();
    }

    fn read(db: &sled::Db, key: &[u8]) -> Option<Vec<u8>> {
        let first = db.get(key).unwrap()?;
        whole(db, b"epoch", key, &first).unwrap()
    }

    #[test]
    fn long_values_read_back_whole_and_no_stored_value_is_longer_than_a_piece() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let value = |len: usize| (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
        for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, 2 * PIECE, 300_000] {
            put(&db, b"k", Some(value(len)));
            assert_eq!(read(&db, b"k"), Some(value(len)), "length {len}");
            // A key that the first one begins keeps its own pieces.
            put(&db, b"k2", Some(value(len + 7)));
            assert_eq!(read(&db, b"k"), Some(value(len)), "length {len} beside a longer key");
            assert!(stored(&db).iter().all(|(_, l)| *l <= PIECE), "length {len}");
            let k_entries = stored(&db)
                .iter()
                .filter(|(k, _)| k.starts_with(&pieces_of(b"k")) || k == b"k")
                .count();
            assert_eq!(k_entries as u64, entries(len), "length {len}");
        }
        // Shorter values and deletes leave no pieces behind.
        put(&db, b"k", Some(value(3 * PIECE)));
        put(&db, b"k", Some(value(PIECE + 5)));
        assert_eq!(read(&db, b"k"), Some(value(PIECE + 5)));
        put(&db, b"k", Some(value(10)));
        put(&db, b"k2", None);
        assert_eq!(read(&db, b"k2"), None);
        assert_eq!(stored(&db), vec![(b"k".to_vec(), 10)], "only the short value is left");
    }

    /// A key said to be fresh that held a longer value reads as written:
    /// the old pieces are only space left behind.
    #[test]
    fn a_key_wrongly_called_fresh_still_reads_what_was_written_last() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let value = |len: usize, b: u8| vec![b; len];
        put(&db, b"k", Some(value(5 * PIECE + 3, 1)));
        for (len, b) in [(2 * PIECE + 1, 2), (PIECE, 3), (PIECE - 1, 4), (3 * PIECE, 5), (0, 6)] {
            written(&db, b"k", Some(value(len, b)), true);
            assert_eq!(read(&db, b"k"), Some(value(len, b)), "length {len}");
        }
        let left = stored(&db).iter().filter(|(k, _)| k.starts_with(&pieces_of(b"k"))).count();
        assert!(left > 0, "the longer value's pieces are left, unread");
    }

    #[test]
    fn a_long_value_written_before_pieces_reads_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        for len in [PIECE, PIECE + 1, 50_000] {
            db.insert(b"old", vec![9u8; len]).unwrap();
            assert_eq!(read(&db, b"old"), Some(vec![9u8; len]));
        }
        put(&db, b"old", Some(vec![1u8; 3 * PIECE]));
        assert_eq!(read(&db, b"old"), Some(vec![1u8; 3 * PIECE]));
    }
}
