//! Where an export's rows go: stdout, noticing when its reader goes away,
//! or a file written beside its final name and renamed once complete.

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};

/// Stdout that notices when its reader goes away (`fieldsync export | head`).
pub(super) struct Stdout {
    out: BufWriter<std::io::Stdout>,
    gone: Arc<AtomicBool>,
}

impl Stdout {
    fn noticed<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            if e.kind() == ErrorKind::BrokenPipe {
                self.gone.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(buf);
        self.noticed(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.out.flush();
        self.noticed(flushed)
    }
}

/// Where the rows go: stdout, or a file written beside its final name
/// (`FILE.part`) and renamed once complete, so that a failed export leaves no
/// half a file behind.
pub(super) struct Out {
    pub(super) writer: Box<dyn Write + Send>,
    file: Option<(PathBuf, PathBuf)>,
    /// Set when stdout's reader went away.
    pub(super) gone: Arc<AtomicBool>,
}

impl Out {
    /// Stdout, or `path.part` created new: a file or link already there is
    /// never written through (`force` removes it first), and `path` itself
    /// is replaced only with `force`.
    pub(super) fn open(path: Option<&Path>, force: bool) -> anyhow::Result<Out> {
        let gone = Arc::new(AtomicBool::new(false));
        let Some(path) = path else {
            let out = BufWriter::new(std::io::stdout());
            let writer = Box::new(Stdout { out, gone: Arc::clone(&gone) });
            return Ok(Out { writer, file: None, gone });
        };
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        if !force && path.exists() {
            bail!("{} exists: give --force to replace it, or another --out", path.display());
        }
        if force && part.symlink_metadata().is_ok() {
            std::fs::remove_file(&part)
                .with_context(|| format!("cannot remove the old {}", part.display()))?;
        }
        let file = File::options().write(true).create_new(true).open(&part).map_err(|e| match e
            .kind()
        {
            ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} exists (left by an export that did not finish?): remove it, or give \
                     --force",
                part.display()
            ),
            _ => anyhow::Error::new(e).context(format!("cannot create {}", part.display())),
        })?;
        let writer = Box::new(BufWriter::new(file));
        Ok(Out { writer, file: Some((part, path.to_owned())), gone })
    }

    /// Renames the finished file into place, or removes it after a failure.
    pub(super) fn close(self, ok: bool) -> anyhow::Result<()> {
        drop(self.writer);
        if let Some((part, path)) = self.file {
            if !ok {
                let _ = std::fs::remove_file(&part);
                return Ok(());
            }
            std::fs::rename(&part, &path)
                .with_context(|| format!("cannot move {} to {}", part.display(), path.display()))?;
        }
        Ok(())
    }
}
