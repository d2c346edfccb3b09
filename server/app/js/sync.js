// One sync, as client/src/sync.rs: push the outbox in batches (each batch's
// results stored before the next is sent), then pull from the stored cursor
// until caught up (each page stored with its cursor), then take a changed
// catalogue. One sync at a time across every tab of the app (Web Locks).
// Nothing here deletes an unsent edit on an error: a failed step leaves the
// outbox as it was, and the next sync sends the same batch again.

import * as api from './api.js';
import * as local from './local.js';

/** Most mutations per push, and about the most bytes. */
export const PUSH_BATCH = 500;
export const PUSH_BYTES = 1024 * 1024;
const MAX_RENUMBERS = 3;
const RETRY_DELAYS_MS = [1000, 3000];
const PULL_PAGE = 500;

/** Ids of the edits in a push that has not been answered yet. */
export const inFlight = new Set();

const transient = (e) => e instanceof api.ApiError && ['network', 'unavailable', 'deadline_exceeded'].includes(e.code);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function retrying(step, progress) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await step();
    } catch (e) {
      if (!transient(e) || attempt >= RETRY_DELAYS_MS.length || !navigator.onLine) throw e;
      progress({ kind: 'retrying', delayMs: RETRY_DELAYS_MS[attempt], why: e.message });
      await sleep(RETRY_DELAYS_MS[attempt]);
    }
  }
}

/** The next push: the oldest edits, at most PUSH_BATCH and about PUSH_BYTES, consecutive ids. */
async function nextBatch() {
  const entries = await local.outbox(PUSH_BATCH);
  let bytes = 0;
  let n = 0;
  for (const e of entries) {
    bytes += JSON.stringify(e.m).length + 16;
    if (bytes > PUSH_BYTES && n > 0) break;
    n += 1;
  }
  let run = 1;
  while (run < n && entries[run].id === entries[run - 1].id + 1) run += 1;
  return entries.slice(0, Math.min(n, run));
}

async function push(m, summary, progress) {
  const total = await local.outboxCount();
  let renumbered = 0;
  for (;;) {
    const batch = await nextBatch();
    if (batch.length === 0) return;
    const ack = Number((await local.meta()).ack || 0);
    batch.forEach((e) => inFlight.add(e.id));
    progress({ kind: 'pushing', done: summary.pushed, total });
    let reply;
    try {
      reply = await retrying(() => api.unary('Sync', 'Push', {
        schemaVersion: 1, deviceId: m.device, mutations: batch.map((e) => e.m), acknowledgedThrough: String(ack),
      }, m.token), progress);
    } catch (e) {
      const reused = e instanceof api.ApiError && e.code === 'failed_precondition' && e.headers.get('fieldsync-reused-id');
      if (reused && renumbered < MAX_RENUMBERS) {
        renumbered += 1;
        const last = Number(e.headers.get('fieldsync-last-mutation-id'));
        summary.renumbered += await local.renumber(Number(reused), last);
        continue;
      }
      throw e;
    } finally {
      inFlight.clear();
    }
    const results = reply.results || [];
    await local.applyPush(results, reply.serverHlc || '0');
    for (const r of results) {
      const o = r.outcome;
      if (o === 'OUTCOME_APPLIED' || o === 'OUTCOME_FORGOTTEN') summary.applied += 1;
      else if (o === 'OUTCOME_UNCHANGED') summary.unchanged += 1;
      else if (o === 'OUTCOME_CONFLICT') summary.conflicts += 1;
      else if (o === 'OUTCOME_REJECTED') summary.rejected += 1;
    }
    summary.pushed += results.length;
    progress({ kind: 'pushing', done: Math.min(summary.pushed, total), total });
  }
}

async function pull(m, summary, progress) {
  await retrying(async () => {
    const cursor = (await local.meta()).cursor || '0';
    await api.pull({ schemaVersion: 1, deviceId: m.device, cursor, pageSize: PULL_PAGE }, m.token, async (page) => {
      summary.pulled += await local.applyPage(page);
      progress({ kind: 'pulling', changes: summary.pulled });
    });
  }, progress);
}

async function refreshCatalogue(m) {
  const boot = await api.unary('Sync', 'Bootstrap', { schemaVersion: 1 }, m.token);
  const fresh = { indicators: boot.indicators || [], orgUnits: boot.orgUnits || [] };
  if (JSON.stringify(fresh) !== JSON.stringify(m.catalogue)) await local.setMeta({ catalogue: fresh });
}

async function once(progress) {
  const m = await local.meta();
  if (!m.token) throw new api.ApiError('unauthenticated', 'not enrolled');
  const summary = { pushed: 0, applied: 0, unchanged: 0, conflicts: 0, rejected: 0, pulled: 0, renumbered: 0 };
  try {
    if (!m.catalogue) await refreshCatalogue(m);
    await push(m, summary, progress);
    await pull(m, summary, progress);
    await refreshCatalogue(m);
    if (m.auth) await local.setMeta({ auth: null });
  } catch (e) {
    if (e instanceof api.ApiError && e.code === 'unauthenticated') {
      await local.setMeta({ auth: e.message || 'unauthenticated' });
    }
    e.summary = summary;
    throw e;
  }
  return summary;
}

let running = null;

/** Runs one sync (or joins the one this tab is running); `progress(event)` hears each step. */
export function sync(progress = () => {}) {
  if (running) return running;
  const run = () => once(progress);
  running = (navigator.locks ? navigator.locks.request('fieldsync-sync', run) : run())
    .finally(() => { running = null; });
  return running;
}

export const busy = () => running !== null;
