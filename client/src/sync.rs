//! The sync engine: push the outbox in batches, then pull until caught up,
//! retrying with backoff when the server cannot be reached. Safe to interrupt
//! at any point and run again: every step is stored before the next, pushes
//! are idempotent, and pulls resume from the stored cursor.

use std::time::Duration;

use fieldsync::sync::{Change, Outcome};

use crate::error::{Error, Result};
use crate::local::Tablet;
use crate::remote::Remote;

/// Most mutations per push.
pub const PUSH_BATCH: usize = 500;
/// A push stops growing past about this many bytes, well under the server's
/// 4 MiB message limit even when notes are long.
pub const PUSH_BYTES: usize = 1024 * 1024;

/// A generous estimate of a mutation's size on the wire.
fn wire_size(m: &fieldsync::sync::Mutation) -> usize {
    use fieldsync::sync::RawValue;
    let value = match &m.value {
        RawValue::Amount(t) | RawValue::Text(t) => t.len(),
        RawValue::Point(_) | RawValue::Deleted => 16,
    };
    64 + m.village_id.len() + m.period.len() + m.field.len() + m.author.len() + value
}

/// How hard to try when the server cannot be reached.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Retries after the first attempt of each step.
    pub retries: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            retries: 5,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl Retry {
    /// No waiting between attempts (tests).
    pub fn immediate(retries: u32) -> Self {
        Retry { retries, first_delay: Duration::ZERO, max_delay: Duration::ZERO }
    }

    /// Sleeps before retry number `attempt` (0-based), or gives `err` back if
    /// it is not worth retrying or attempts are used up.
    async fn pause(&self, attempt: u32, err: Error) -> Result<()> {
        if !err.is_transient() || attempt >= self.retries {
            return Err(err);
        }
        let delay =
            self.first_delay.saturating_mul(2u32.saturating_pow(attempt)).min(self.max_delay);
        tracing::warn!(attempt = attempt + 1, ?delay, error = %err, "retrying");
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Progress of a sync, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `done` of `total` outbox edits pushed.
    Pushed { done: usize, total: usize },
    /// Another page stored, `changes` made elsewhere in all so far.
    Pulled { changes: usize },
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: usize,
    pub unchanged: usize,
    pub conflicts: usize,
    pub rejected: usize,
    pub pulled: usize,
}

impl Report {
    pub fn pushed(&self) -> usize {
        self.applied + self.unchanged + self.conflicts + self.rejected
    }
}

/// Pushes everything pending, then pulls until caught up.
pub async fn sync<R: Remote>(
    tablet: &Tablet,
    remote: &mut R,
    retry: &Retry,
    progress: &mut (dyn FnMut(Event) + Send),
) -> Result<Report> {
    let mut report = push(tablet, remote, retry, progress).await?;
    report.pulled = pull(tablet, remote, retry, progress).await?;
    Ok(report)
}

/// Pushes the outbox in batches; each batch's results are stored before the
/// next is sent.
pub async fn push<R: Remote>(
    tablet: &Tablet,
    remote: &mut R,
    retry: &Retry,
    progress: &mut (dyn FnMut(Event) + Send),
) -> Result<Report> {
    let mut report = Report::default();
    let total = tablet.outbox_len()?;
    loop {
        let mut batch = tablet.outbox(PUSH_BATCH)?;
        if batch.is_empty() {
            return Ok(report);
        }
        let mut bytes = 0;
        let fits = batch
            .iter()
            .position(|m| {
                bytes += wire_size(m);
                bytes > PUSH_BYTES
            })
            .unwrap_or(batch.len());
        batch.truncate(fits.max(1));
        let meta = tablet.meta();
        let mut attempt = 0;
        let pushed = loop {
            match remote.push(meta.device, batch.clone(), meta.acknowledged_through).await {
                Ok(p) => break p,
                Err(e) => retry.pause(attempt, e).await?,
            }
            attempt += 1;
        };
        tablet.apply_push(&pushed.results, pushed.server_hlc)?;
        for r in &pushed.results {
            match r.outcome {
                Outcome::Applied | Outcome::Forgotten => report.applied += 1,
                Outcome::Unchanged => report.unchanged += 1,
                Outcome::Conflict => report.conflicts += 1,
                Outcome::Rejected => report.rejected += 1,
            }
        }
        progress(Event::Pushed { done: report.pushed().min(total), total });
    }
}

/// Pulls from the stored cursor until caught up, storing each page with its
/// cursor. Returns how many changes arrived that were made elsewhere (this
/// tablet's own edits coming back are not counted).
pub async fn pull<R: Remote>(
    tablet: &Tablet,
    remote: &mut R,
    retry: &Retry,
    progress: &mut (dyn FnMut(Event) + Send),
) -> Result<usize> {
    let device = tablet.meta().device;
    let mut pulled = 0;
    let mut attempt = 0;
    loop {
        let cursor = tablet.meta().cursor;
        let mut on_page = |page: fieldsync::sync::Page, hlc| {
            tablet.apply_page(&page, hlc, crate::now_ms())?;
            pulled += page
                .changes
                .iter()
                .filter(|(_, c)| !matches!(c, Change::Field(f) if f.stamp.device == device))
                .count();
            progress(Event::Pulled { changes: pulled });
            Ok(())
        };
        match remote.pull(device, cursor, &mut on_page).await {
            Ok(()) => return Ok(pulled),
            Err(e) => retry.pause(attempt, e).await?,
        }
        attempt += 1;
    }
}

/// Takes the catalogue and org units the server gives this tablet now (org
/// units or indicators added, the surveyor's areas changed) if they differ
/// from what it holds. Returns whether anything changed.
pub async fn refresh_catalogue<R: Remote>(tablet: &mut Tablet, remote: &mut R) -> Result<bool> {
    let catalogue = remote.bootstrap().await?;
    if &catalogue == tablet.catalogue() {
        return Ok(false);
    }
    tablet.set_catalogue(catalogue)?;
    Ok(true)
}
