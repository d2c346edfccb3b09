//! [`Faulty`]: an in-memory engine whose disk fills, fails or holds its
//! flushes and writes on demand, for failure tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::{poisoned, Batch, Engine, Entries, Error, Memory, Result, Space};
use std::ops::Bound;

/// An in-memory engine whose disk can fail, for tests of what a store does
/// when a write or a flush fails. It keeps what was flushed apart from what
/// was only written, as a real disk does: a failure is sticky, as sled's
/// I/O errors are (every later write and flush fails too), until
/// [`Engine::reopen`], which drops what was not flushed. Its free space is
/// whatever the test sets, and its flushes or its writes can be held (a
/// disk that is slow to answer; a held write keeps its writer, and whatever
/// lock the writer holds, waiting inside [`Engine::write`]).
#[derive(Debug, Default)]
pub struct Faulty {
    /// What readers see: everything written.
    live: Memory,
    /// What survives a reopen: everything flushed.
    disk: Memory,
    /// Written since the last flush, in order.
    unflushed: Mutex<Vec<Batch>>,
    /// The disk refuses writes (it is full).
    full: AtomicBool,
    /// A write or flush failed; nothing more is written until reopened.
    stuck: AtomicBool,
    space: Mutex<Option<Space>>,
    /// Flushes wait while this is set.
    held: Mutex<bool>,
    released: std::sync::Condvar,
    /// Writes wait while this is set; how many wait now.
    writes_held: Mutex<bool>,
    writes_released: std::sync::Condvar,
    writes_waiting: std::sync::atomic::AtomicUsize,
}

impl Faulty {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on flushes wait (writes do not) until [`Faulty::release`].
    pub fn hold(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Lets the held flushes go on (failing, if the disk was filled meanwhile).
    pub fn release(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.released.notify_all();
    }

    /// From now on writes wait inside [`Engine::write`] until
    /// [`Faulty::release_writes`].
    pub fn hold_writes(&self) {
        *self.writes_held.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Lets the held writes go on.
    pub fn release_writes(&self) {
        *self.writes_held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.writes_released.notify_all();
    }

    /// How many writes are waiting for [`Faulty::release_writes`] now.
    pub fn waiting_writes(&self) -> usize {
        self.writes_waiting.load(Ordering::SeqCst)
    }

    /// From now on every write and flush fails, and so does reopening.
    pub fn fill(&self) {
        self.full.store(true, Ordering::SeqCst);
    }

    /// The disk takes writes again (space was freed); the engine still
    /// fails until it is reopened if a write or flush failed meanwhile.
    pub fn free(&self) {
        self.full.store(false, Ordering::SeqCst);
    }

    /// What [`Engine::space`] reports from now on.
    pub fn set_space(&self, space: Option<Space>) {
        *self.space.lock().unwrap_or_else(|e| e.into_inner()) = space;
    }

    fn refuse(&self) -> Result<()> {
        if self.full.load(Ordering::SeqCst) {
            self.stuck.store(true, Ordering::SeqCst);
        }
        match self.stuck.load(Ordering::SeqCst) {
            true => Err(Error::Other("No space left on device (os error 28)".into())),
            false => Ok(()),
        }
    }
}

impl Engine for Faulty {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.live.get(tree, key)
    }

    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        self.live.scan(tree, from, to, limit)
    }

    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.live.last(tree)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let held = self.writes_held.lock().map_err(poisoned)?;
        self.writes_waiting.fetch_add(1, Ordering::SeqCst);
        let waited = self.writes_released.wait_while(held, |held| *held).map_err(poisoned);
        self.writes_waiting.fetch_sub(1, Ordering::SeqCst);
        drop(waited?);
        let mut unflushed = self.unflushed.lock().map_err(poisoned)?;
        self.refuse()?;
        self.live.write(batch.clone())?;
        unflushed.push(batch);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let held = self.held.lock().map_err(poisoned)?;
        drop(self.released.wait_while(held, |held| *held).map_err(poisoned)?);
        let mut unflushed = self.unflushed.lock().map_err(poisoned)?;
        self.refuse()?;
        for batch in unflushed.drain(..) {
            self.disk.write(batch)?;
        }
        Ok(())
    }

    fn space(&self) -> Result<Option<Space>> {
        Ok(*self.space.lock().map_err(poisoned)?)
    }

    fn reopen(&self) -> Result<()> {
        let mut unflushed = self.unflushed.lock().map_err(poisoned)?;
        if self.full.load(Ordering::SeqCst) {
            return Err(Error::Other("No space left on device (os error 28)".into()));
        }
        let disk = self.disk.trees.read().map_err(poisoned)?.clone();
        *self.live.trees.write().map_err(poisoned)? = disk;
        unflushed.clear();
        self.stuck.store(false, Ordering::SeqCst);
        Ok(())
    }
}
