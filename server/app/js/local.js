// What the device holds, on top of db.js: the tablet protocol of
// client/src/local.rs. Recording validates and commits edits to the outbox
// and the pending overlay in one durable transaction; push results and pull
// pages are each stored in one transaction; what a field shows is its latest
// unsent edit, else the server's value.

import * as db from './db.js';
import * as hlc from './hlc.js';
import { validateValue } from './validate.js';

export const fieldKey = (village, period, field) => `${village}|${period}|${field}`;
export const subKey = (village, period) => `${village}|${period}`;
export const NOTE_MAX = 2000;

/** A refusal of an edit, said in both languages. */
export class EditError extends Error {
  constructor(field, vi, en) {
    super(en);
    this.field = field;
    this.vi = vi;
    this.en = en;
  }
}

/** Every meta key as one object. */
export async function meta() {
  return db.read(['meta'], async (t) => {
    const [keys, values] = [await t.keys('meta'), await t.getAll('meta')];
    const out = {};
    keys.forEach((k, i) => { out[k] = values[i]; });
    return out;
  });
}

export function setMeta(values) {
  return db.write(['meta'], async (t) => {
    for (const [k, v] of Object.entries(values)) await t.put('meta', v, k);
  });
}

export function outboxCount() {
  return db.read(['outbox'], (t) => t.count('outbox'));
}

/** The oldest `limit` unsent edits, in id order. */
export function outbox(limit) {
  return db.read(['outbox'], (t) => t.getAll('outbox', null, limit));
}

/** "2022", "2022-Q3" or "2022-07", years 2000-2100 as the server allows. */
export function validPeriod(p) {
  const m = /^(\d{4})(?:-(Q[1-4]|0[1-9]|1[0-2]))?$/.exec(p);
  return !!m && +m[1] >= 2000 && +m[1] <= 2100;
}

/** A period's first month as one number: "2026" → 202601, "2026-Q3" → 202607, "2026-07" → 202607. */
function firstMonth(p) {
  const m = /^(\d{4})(?:-(?:Q([1-4])|(\d\d)))?$/.exec(p || '');
  if (!m) return NaN;
  const month = m[2] ? (Number(m[2]) - 1) * 3 + 1 : Number(m[3] || 1);
  return Number(m[1]) * 100 + month;
}

/** Whether indicator `ind` is recorded for `period`: not retired from it or from an earlier one. */
export function offeredFor(ind, period) {
  return !ind.retiredFrom || firstMonth(period) < firstMonth(ind.retiredFrom);
}

/** Amount text of a Value, or undefined. */
export const amountOf = (v) => (v && v.amount !== undefined ? v.amount : undefined);

/** Whether two proto3-JSON Values are the same. */
export function sameValue(a, b) {
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}
function norm(v) {
  if (!v || v.deleted) return null;
  if (v.point) return { p: [v.point.latE7 || 0, v.point.lonE7 || 0] };
  return v;
}

/** The Value a typed entry of `field` becomes, or null for "no edit". */
function parseEntry(cat, field, typed, shown, siblings) {
  const had = shown && !shown.deleted;
  if (field === 'note') {
    const text = String(typed ?? '').normalize('NFC');
    if (text.trim() === '') return had ? { deleted: true } : null;
    if ([...text].length > NOTE_MAX) {
      throw new EditError(field, `Ghi chú dài tối đa ${NOTE_MAX} ký tự.`, `A note is at most ${NOTE_MAX} characters.`);
    }
    return { text };
  }
  if (field === 'location') {
    if (typed === null || typed === '' || typed === undefined) return had ? { deleted: true } : null;
    const p = typed.point || typed;
    const lat = Number(p.latE7);
    const lon = Number(p.lonE7);
    if (!Number.isInteger(lat) || !Number.isInteger(lon) || Math.abs(lat) > 900000000 || Math.abs(lon) > 1800000000) {
      throw new EditError(field, 'Vị trí không hợp lệ.', 'The location is not on the globe.');
    }
    return { point: { latE7: lat, lonE7: lon } };
  }
  const ind = cat.byCode.get(field);
  if (!ind) throw new EditError(field, `Không có chỉ tiêu "${field}".`, `There is no indicator "${field}".`);
  const r = validateValue(ind, String(typed ?? ''), siblings, cat.indicators);
  if (!r.ok) throw new EditError(field, `${ind.nameVi}: ${r.vi}`, `${ind.nameEn}: ${r.en}`);
  if (r.amount === null) return had ? { deleted: true } : null;
  return { amount: r.amount };
}

/** The catalogue with lookups. */
export function catalogue(raw) {
  const indicators = (raw && raw.indicators) || [];
  const orgUnits = (raw && raw.orgUnits) || [];
  return {
    indicators,
    orgUnits,
    byCode: new Map(indicators.map((i) => [i.code, i])),
    units: new Map(orgUnits.map((u) => [u.id, u])),
  };
}

/**
 * Records the typed entries `typed` (field → text; "location" → {latE7,
 * lonE7}) of one report, all or none, each validated on the device first.
 * Resolves once the transaction is durable, with the number of edits made.
 */
export async function record(villageId, period, typed, nowMs = Date.now()) {
  const m = await meta();
  if (!m.token && !m.user) throw new EditError('', 'Máy chưa được đăng ký.', 'This device is not enrolled yet.');
  const cat = catalogue(m.catalogue);
  const village = cat.units.get(villageId);
  if (!village || village.level !== 'LEVEL_VILLAGE') {
    throw new EditError('', `Không có thôn "${villageId}" trong danh sách của bạn.`, `There is no village "${villageId}" in your list.`);
  }
  if (!validPeriod(period)) {
    throw new EditError('period', `Kỳ "${period}" không hợp lệ: viết năm (2026), quý (2026-Q3) hoặc tháng (2026-07).`,
      `Period "${period}" is not valid: write a year (2026), a quarter (2026-Q3) or a month (2026-07).`);
  }
  const fields = Object.keys(typed);
  for (const f of fields) {
    const ind = cat.byCode.get(f);
    if (ind && !offeredFor(ind, period)) {
      throw new EditError(f, `${ind.nameVi}: không còn ghi từ kỳ ${ind.retiredFrom} (tiêu chí của chương trình đã thay đổi); các báo cáo trước vẫn giữ số liệu.`,
        `${ind.nameEn || ind.code}: no longer recorded from ${ind.retiredFrom} on (the programme's criteria changed); earlier reports keep their values.`);
    }
  }
  return db.write(['meta', 'outbox', 'pending', 'synced'], async (t) => {
    const sub = subKey(villageId, period);
    const synced = new Map();
    for (const s of await t.getAll('synced', db.prefix(sub + '|'))) synced.set(s.field, s);
    const pending = new Map();
    const pkeys = await t.keys('pending', db.prefix(sub + '|'));
    const pvals = await t.getAll('pending', db.prefix(sub + '|'));
    pkeys.forEach((k, i) => pending.set(k.slice(sub.length + 1), pvals[i]));
    const shown = (f) => (pending.has(f) ? pending.get(f).value : synced.get(f) && synced.get(f).value);
    // What every amount of the report is once this save is in: the parts of
    // a whole are checked against it.
    const after = {};
    for (const ind of cat.indicators) {
      const a = amountOf(shown(ind.code));
      if (a !== undefined) after[ind.code] = a;
    }
    const values = new Map();
    for (const f of fields) {
      const v = parseEntry(cat, f, typed[f], shown(f), {});
      if (v === null) continue;
      values.set(f, v);
      if (cat.byCode.has(f)) {
        if (v.amount !== undefined) after[f] = v.amount;
        else delete after[f];
      }
    }
    // Parts first, so a part typed above its whole is named as the mistake.
    const order = [...values.keys()].filter((f) => cat.byCode.has(f))
      .sort((a, b) => Number(!cat.byCode.get(a).parentCode) - Number(!cat.byCode.get(b).parentCode));
    for (const f of order) {
      const siblings = { ...after };
      delete siblings[f];
      parseEntry(cat, f, typed[f], shown(f), siblings);
    }
    // A part whose whole changes is checked too.
    for (const ind of cat.indicators) {
      if (!ind.parentCode || values.has(ind.code) || !values.has(ind.parentCode)) continue;
      if (after[ind.code] === undefined) continue;
      const siblings = { ...after };
      delete siblings[ind.code];
      parseEntry(cat, ind.code, after[ind.code], shown(ind.code), siblings);
    }
    let next = Number(await t.get('meta', 'next') || 1);
    let clock = BigInt(await t.get('meta', 'hlc') || '0');
    const user = await t.get('meta', 'user');
    const ids = [];
    for (const [f, value] of values) {
      clock = hlc.tick(clock, nowMs);
      const s = synced.get(f);
      const mutation = {
        id: String(next), villageId, period, field: f, value,
        baseVersion: s ? String(s.version || '0') : '0', hlc: String(clock), author: user ? user.name : '',
      };
      await t.put('outbox', { id: next, m: mutation });
      await t.put('pending', { mutationId: next, value }, fieldKey(villageId, period, f));
      ids.push(next);
      next += 1;
    }
    await t.put('meta', next, 'next');
    await t.put('meta', String(clock), 'hlc');
    return ids.length;
  });
}

const bigger = (a, b) => BigInt(a || 0) >= BigInt(b || 0);

/** Stores a push's results in one transaction (client/src/local.rs apply_push). */
export function applyPush(results, serverHlc) {
  return db.write(['meta', 'outbox', 'pending', 'synced', 'refusals'], async (t) => {
    let clock = BigInt(await t.get('meta', 'hlc') || '0');
    let ack = Number(await t.get('meta', 'ack') || 0);
    const refusals = await t.getAll('refusals');
    for (const r of results) {
      const id = Number(r.id || 0);
      const entry = await t.get('outbox', id);
      if (!entry) continue; // stored before
      const m = entry.m;
      await t.delete('outbox', id);
      if (r.outcome === 'OUTCOME_REJECTED') {
        const refusal = { id, m, reason: r.reason || '' };
        await t.put('refusals', refusal);
        refusals.push(refusal);
      } else {
        for (const old of refusals) {
          if (old.id < id && old.m.villageId === m.villageId && old.m.period === m.period && old.m.field === m.field && !old.gone) {
            old.gone = true;
            await t.delete('refusals', old.id);
          }
        }
      }
      const fkey = fieldKey(m.villageId, m.period, m.field);
      const p = await t.get('pending', fkey);
      if (p && p.mutationId === id) await t.delete('pending', fkey);
      if (r.current) {
        clock = hlc.observe(clock, r.current.hlc);
        const known = await t.get('synced', fkey);
        if (!known || bigger(r.current.version, known.version)) await t.put('synced', r.current, fkey);
      }
      ack = Math.max(ack, id);
    }
    clock = hlc.observe(clock, serverHlc);
    await t.put('meta', String(clock), 'hlc');
    await t.put('meta', ack, 'ack');
  });
}

/**
 * Gives the unsent edits from id `from` on the ids after `last` (the
 * server's last id for this device), keeping all else about them; one
 * transaction. Returns how many moved.
 */
export function renumber(from, last) {
  return db.write(['meta', 'outbox', 'pending'], async (t) => {
    const moved = await t.getAll('outbox', IDBKeyRange.lowerBound(from));
    const first = last + 1;
    for (const e of moved) await t.delete('outbox', e.id);
    const ids = new Map();
    moved.forEach((e, i) => {
      ids.set(e.id, first + i);
    });
    for (const e of moved) {
      const id = ids.get(e.id);
      await t.put('outbox', { id, m: { ...e.m, id: String(id) } });
    }
    const keys = await t.keys('pending');
    const vals = await t.getAll('pending');
    for (let i = 0; i < keys.length; i += 1) {
      if (ids.has(vals[i].mutationId)) await t.put('pending', { ...vals[i], mutationId: ids.get(vals[i].mutationId) }, keys[i]);
    }
    const next = Number(await t.get('meta', 'next') || 1);
    await t.put('meta', Math.max(next, first + moved.length), 'next');
    return moved.length;
  });
}

/** Stores one pull page and its cursor together. Returns the number of changes. */
export function applyPage(page, nowMs = Date.now()) {
  return db.write(['meta', 'synced', 'conflicts', 'reviews'], async (t) => {
    let clock = BigInt(await t.get('meta', 'hlc') || '0');
    const changes = page.changes || [];
    for (const c of changes) {
      if (c.field) {
        const s = c.field;
        const fkey = fieldKey(s.villageId, s.period, s.field);
        const known = await t.get('synced', fkey);
        if (!known || bigger(s.version, known.version)) await t.put('synced', s, fkey);
        clock = hlc.observe(clock, s.hlc);
      } else if (c.conflict) {
        const k = c.conflict;
        await t.put('conflicts', k, fieldKey(k.villageId, k.period, k.field));
      } else if (c.review) {
        const r = c.review;
        await t.put('reviews', r, subKey(r.villageId, r.period));
      }
    }
    const cursor = BigInt(await t.get('meta', 'cursor') || '0');
    const got = BigInt(page.cursor || '0');
    await t.put('meta', String(got > cursor ? got : cursor), 'cursor');
    clock = hlc.observe(clock, page.serverHlc);
    await t.put('meta', String(clock), 'hlc');
    if (page.caughtUp) await t.put('meta', nowMs, 'lastSyncMs');
    return changes.length;
  });
}

/** Everything about one report the form shows. */
export function report(villageId, period) {
  const sub = subKey(villageId, period);
  const range = db.prefix(sub + '|');
  return db.read(['synced', 'pending', 'conflicts', 'refusals', 'reviews'], async (t) => {
    const byField = async (store) => {
      const out = new Map();
      const keys = await t.keys(store, range);
      const vals = await t.getAll(store, range);
      keys.forEach((k, i) => out.set(k.slice(sub.length + 1), vals[i]));
      return out;
    };
    const refusals = new Map();
    for (const r of await t.getAll('refusals')) {
      if (r.m.villageId === villageId && r.m.period === period) refusals.set(r.m.field, r);
    }
    return {
      synced: await byField('synced'),
      pending: await byField('pending'),
      conflicts: await byField('conflicts'),
      refusals,
      review: await t.get('reviews', sub),
    };
  });
}

/** Every report the device holds something of: key → {synced, pending, conflicts, refusals, review}. */
export function reports() {
  return db.read(['synced', 'pending', 'conflicts', 'refusals', 'reviews'], async (t) => {
    const subs = new Map();
    const at = (key) => {
      const [v, p] = key.split('|');
      const k = subKey(v, p);
      if (!subs.has(k)) subs.set(k, { village: v, period: p, synced: 0, pending: [], conflicts: 0, refusals: 0, review: null });
      return subs.get(k);
    };
    for (const k of await t.keys('synced')) at(k).synced += 1;
    const pk = await t.keys('pending');
    const pv = await t.getAll('pending');
    pk.forEach((k, i) => at(k).pending.push(pv[i].mutationId));
    const ck = await t.keys('conflicts');
    const cv = await t.getAll('conflicts');
    ck.forEach((k, i) => { if (cv[i].open) at(k).conflicts += 1; });
    for (const r of await t.getAll('refusals')) at(fieldKey(r.m.villageId, r.m.period, r.m.field)).refusals += 1;
    const rk = await t.keys('reviews');
    const rv = await t.getAll('reviews');
    rk.forEach((k, i) => { at(k + '|').review = rv[i]; });
    return subs;
  });
}

/** The open conflicts, refusals and reviews, and counts (for the test hook). */
export function summary() {
  return db.read(['outbox', 'synced', 'conflicts', 'refusals', 'reviews'], async (t) => ({
    outbox: await t.count('outbox'),
    synced: await t.count('synced'),
    conflicts: (await t.getAll('conflicts')).filter((c) => c.open),
    refusals: (await t.getAll('refusals')).map((r) => ({ id: r.id, field: r.m.field, villageId: r.m.villageId, period: r.m.period, reason: r.reason })),
    reviews: await t.getAll('reviews'),
  }));
}

/** Starts the device over for a newly enrolled user, or keeps everything for the same one. */
export function enroll(reply, origin) {
  return db.write(db.STORES, async (t) => {
    const old = await t.get('meta', 'user');
    const same = old && reply.user && old.id === reply.user.id && (await t.get('meta', 'device'));
    if (!same) {
      const lang = await t.get('meta', 'lang');
      for (const s of db.STORES) await t.clear(s);
      if (lang) await t.put('meta', lang, 'lang');
      await t.put('meta', reply.deviceId, 'device');
      await t.put('meta', 1, 'next');
      await t.put('meta', '0', 'hlc');
      await t.put('meta', '0', 'cursor');
      await t.put('meta', 0, 'ack');
    }
    await t.put('meta', reply.token, 'token');
    await t.put('meta', reply.user, 'user');
    await t.put('meta', origin, 'server');
    await t.put('meta', null, 'auth');
    return !same;
  });
}
