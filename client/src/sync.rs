//! The sync engine: push the outbox in batches, then pull until caught up,
//! retrying with backoff when the server cannot be reached. Safe to interrupt
//! at any point and run again: every step is stored before the next, pushes
//! are idempotent, and pulls resume from the stored cursor.

use std::future::Future;
use std::time::{Duration, Instant};

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
pub(crate) fn wire_size(m: &fieldsync::sync::Mutation) -> usize {
    use fieldsync::sync::RawValue;
    let value = match &m.value {
        RawValue::Amount(t) | RawValue::Text(t) => t.len(),
        RawValue::Point(_) | RawValue::Deleted => 16,
    };
    64 + m.village_id.len() + m.period.len() + m.field.len() + m.author.len() + value
}

/// How hard to try when the server cannot be reached or does not answer.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Retries after the first attempt of each step.
    pub retries: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// The longest one sync keeps trying, waits included: past it the sync
    /// gives up (the edits stay on the tablet) instead of hanging on a dead
    /// link.
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            retries: 5,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            give_up_after: Duration::from_secs(120),
        }
    }
}

impl Retry {
    /// No waiting between attempts (tests).
    pub fn immediate(retries: u32) -> Self {
        Retry {
            retries,
            first_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..Retry::default()
        }
    }

    fn delay(&self, attempt: u32) -> Duration {
        self.first_delay.saturating_mul(2u32.saturating_pow(attempt)).min(self.max_delay)
    }
}

/// The attempts of one sync: how many were made, and when to give up.
pub(crate) struct Attempts<'a> {
    retry: &'a Retry,
    until: Instant,
    made: u32,
}

impl<'a> Attempts<'a> {
    pub(crate) fn new(retry: &'a Retry) -> Self {
        let until = Instant::now().checked_add(retry.give_up_after).unwrap_or_else(far_future);
        Attempts { retry, until, made: 0 }
    }

    /// Runs one attempt, cut off when the sync's time is up.
    pub(crate) async fn run<T>(&self, attempt: impl Future<Output = Result<T>>) -> Result<T> {
        let left = self.until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, attempt).await {
            Ok(done) => done,
            Err(_) => Err(Error::Unreachable("no answer in time".into())),
        }
    }

    /// Before attempt number `made + 1` of a step: sleeps, saying so through
    /// `progress`, or gives `err` back if it is not worth retrying, the
    /// retries are used up or the time is.
    pub(crate) async fn pause(
        &mut self,
        err: Error,
        progress: &mut (dyn FnMut(Event) + Send),
    ) -> Result<()> {
        let delay = self.retry.delay(self.made);
        let too_late = Instant::now() + delay >= self.until;
        if !err.is_transient() || self.made >= self.retry.retries || too_late {
            return Err(match err {
                Error::Unreachable(why) if self.made > 0 => {
                    Error::Unreachable(format!("{why} (gave up after {} tries)", self.made + 1))
                }
                err => err,
            });
        }
        self.made += 1;
        tracing::warn!(attempt = self.made, ?delay, error = %err, "retrying");
        progress(Event::Retrying { delay, why: err.to_string() });
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// A step succeeded: the next one gets its own retries (not more time).
    pub(crate) fn reset(&mut self) {
        self.made = 0;
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Progress of a sync, for a progress bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `done` of `total` outbox edits pushed.
    Pushed { done: usize, total: usize },
    /// Another page stored, `changes` made elsewhere in all so far.
    Pulled { changes: usize },
    /// The server did not answer (`why`); trying again after `delay`.
    Retrying { delay: Duration, why: String },
    /// The server holds other mutations under ids this tablet used (its
    /// store was restored from an older copy): `edits` unsent edits now
    /// follow the server's last id, `after`, and are sent again.
    Renumbered { edits: usize, after: u64 },
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

/// How many times one push renumbers the outbox before it stops: more than
/// once means two copies of this tablet are syncing at the same time.
const MAX_RENUMBERS: u32 = 3;

/// Pushes everything pending, then pulls until caught up, giving up after
/// `retry.give_up_after` in all.
pub async fn sync<R: Remote>(
    tablet: &Tablet,
    remote: &mut R,
    retry: &Retry,
    progress: &mut (dyn FnMut(Event) + Send),
) -> Result<Report> {
    let mut attempts = Attempts::new(retry);
    let mut report = push_with(tablet, remote, &mut attempts, progress).await?;
    attempts.reset();
    report.pulled = pull_with(tablet, remote, &mut attempts, progress).await?;
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
    push_with(tablet, remote, &mut Attempts::new(retry), progress).await
}

async fn push_with<R: Remote>(
    tablet: &Tablet,
    remote: &mut R,
    attempts: &mut Attempts<'_>,
    progress: &mut (dyn FnMut(Event) + Send),
) -> Result<Report> {
    let mut report = Report::default();
    let total = tablet.outbox_len()?;
    let mut renumbered = 0;
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
        // Ids in a push are consecutive; after a renumbering the replays
        // below the gap go first.
        let run =
            batch.windows(2).position(|w| w[0].id + 1 != w[1].id).map_or(batch.len(), |i| i + 1);
        batch.truncate(run);
        let meta = tablet.meta();
        let pushed = loop {
            let sent = remote.push(meta.device, batch.clone(), meta.acknowledged_through);
            match attempts.run(sent).await {
                Ok(p) => break Some(p),
                Err(Error::Reused { id, last, .. }) if renumbered < MAX_RENUMBERS => {
                    // Same tablet, same user: its new edits go after the server's.
                    renumbered += 1;
                    let edits = tablet.renumber(id, last)?;
                    progress(Event::Renumbered { edits, after: last });
                    break None;
                }
                Err(e) => attempts.pause(e, progress).await?,
            }
        };
        attempts.reset();
        let Some(pushed) = pushed else {
            continue;
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
    pull_with(tablet, remote, &mut Attempts::new(retry), progress).await
}

async fn pull_with<R: Remote>(
    tablet: &Tablet,
    remote: &mut R,
    attempts: &mut Attempts<'_>,
    progress: &mut (dyn FnMut(Event) + Send),
) -> Result<usize> {
    let device = tablet.meta().device;
    let mut pulled = 0;
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
        let result = attempts.run(remote.pull(device, cursor, &mut on_page)).await;
        match result {
            Ok(()) => return Ok(pulled),
            Err(e) => attempts.pause(e, progress).await?,
        }
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
