// The surveyors' app: enrollment, the village picker, the report form, the
// list of reports, and sync, over local.js (what the device holds) and
// sync.js (the tablet protocol). Every screen is drawn from IndexedDB, so
// what it shows is what is stored.

import * as api from './api.js';
import * as local from './local.js';
import * as syncer from './sync.js';
import { fold } from './text.js';
import { t, setLang, getLang, number, when, bytes, translate, reason } from './i18n.js';

const $ = (sel) => document.querySelector(sel);
const SYNC_EVERY_MS = 5 * 60 * 1000;
const MAX_VILLAGES_SHOWN = 100;
const CODE = /^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{10}$/;

const ui = {
  view: 'home',
  village: null,
  period: null,
  dirty: new Set(),
  shownText: new Map(),
  gps: null,
  status: { state: 'idle', key: '', args: [] },
  installPrompt: null,
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** Puts `nodes` into `box`, unless it already shows exactly them (so an
 * element someone is about to press is not swapped for a copy). */
function replaceIfChanged(box, nodes) {
  const next = document.createElement(box.tagName);
  next.append(...nodes);
  if (next.innerHTML !== box.innerHTML) box.replaceChildren(...next.childNodes);
}

function show(id, on) { const e = document.getElementById(id); if (e) e.hidden = !on; }

// ---- What a value and a state look like ----------------------------------

function valueText(v) {
  if (!v || v.deleted) return t('empty');
  if (v.amount !== undefined) return number(v.amount);
  if (v.text !== undefined) return `"${v.text}"`;
  if (v.point) return `${((v.point.latE7 || 0) / 1e7).toFixed(5)}, ${((v.point.lonE7 || 0) / 1e7).toFixed(5)}`;
  return '';
}

function inputText(v) {
  if (!v || v.deleted) return '';
  if (v.amount !== undefined) return number(v.amount);
  if (v.text !== undefined) return v.text;
  return '';
}

const REVIEW = {
  REVIEW_STATE_SUBMITTED: 'submitted', REVIEW_STATE_RETURNED: 'returned', REVIEW_STATE_REJECTED: 'rejected',
  REVIEW_STATE_APPROVED: 'approved', REVIEW_STATE_ACCEPTED: 'accepted',
};
const reviewState = (r) => (r && REVIEW[r.state]) || 'none';
const isLocked = (r) => ['approved', 'accepted'].includes(reviewState(r));

/** The state of one field: local, sending, refused, conflict, locked, synced (or ''). */
function fieldState(rep, field) {
  const p = rep.pending.get(field);
  if (p) return syncer.inFlight.has(p.mutationId) ? 'sending' : 'local';
  if (rep.refusals.has(field)) return 'refused';
  const c = rep.conflicts.get(field);
  if (c && c.open) return 'conflict';
  if (isLocked(rep.review) && rep.synced.has(field)) return 'locked';
  if (rep.synced.has(field)) return 'synced';
  return '';
}

function fieldStatusText(rep, field, state) {
  if (state === 'conflict') {
    const c = rep.conflicts.get(field);
    const all = (c.candidates || []).map((k) => t('candidate', valueText(k.value), k.author || k.deviceId, when(k.receivedAtMs)));
    return t('conflictWith', all.join(' · '));
  }
  if (state === 'refused') {
    const r = rep.refusals.get(field);
    return t('refusedWhy', valueText(r.m.value), reason(r.reason));
  }
  return state ? t(`st_${state}`) : '';
}

/** A report's state in the list: the worst of its fields, or its review. */
function reportState(s) {
  if (s.conflicts > 0) return 'conflict';
  if (s.refusals > 0) return 'refused';
  const review = reviewState(s.review);
  if (review === 'approved' || review === 'accepted') return review;
  if (review === 'returned' || review === 'rejected') return review;
  if (s.pending.some((id) => !syncer.inFlight.has(id))) return 'local';
  if (s.pending.length > 0) return 'sending';
  return 'synced';
}

// ---- Drawing ----------------------------------------------------------------

let drawing = null;
let again = false;

/** Draws every screen from what is stored; calls made meanwhile draw once more after. */
function render() {
  if (drawing) { again = true; return drawing; }
  drawing = (async () => {
    do {
      again = false;
      await draw();
    } while (again);
  })().finally(() => { drawing = null; });
  return drawing;
}

async function draw() {
  const m = await local.meta();
  const count = await local.outboxCount();
  const pc = $('#pending-count');
  pc.textContent = String(count);
  pc.dataset.count = String(count);
  const enrolled = !!m.token;
  show('syncbar', enrolled);
  show('pending-line', enrolled);
  show('enroll', !enrolled);
  show('reenroll', enrolled && !!m.auth);
  const form = $('#code-form');
  const slot = enrolled ? $('#reenroll .slot') : $('#enroll .slot');
  if (form.parentElement !== slot) slot.append(form);
  form.hidden = enrolled && !m.auth;
  if (enrolled && m.auth) {
    $('#reenroll-reason').textContent = t('reenrollReason', m.auth, count, m.user ? m.user.name : '');
  }
  drawStatus(m);
  show('picker', enrolled);
  show('home', enrolled && ui.view === 'home');
  show('report', enrolled && ui.view === 'report');
  if (!enrolled) return;
  $('#who').textContent = t('who', m.user ? m.user.name : '');
  const cat = local.catalogue(m.catalogue);
  ui.cat = cat;
  if (ui.view === 'home') {
    drawVillages(cat);
    await drawReports(cat);
    await drawStorage();
  } else {
    await drawReport(cat);
  }
}

function drawStatus(m) {
  const s = $('#sync-status');
  let { state } = ui.status;
  const args = ui.status.args.map((a) => (a instanceof Date ? when(a.getTime()) : a));
  let text = t(ui.status.key, ...args);
  if (state === 'idle') text = m.lastSyncMs ? t('ok', when(m.lastSyncMs)) : t('idle');
  if (m.auth && state !== 'syncing') { state = 'auth'; text = t('auth'); }
  s.dataset.state = state;
  s.textContent = text;
  $('#sync-button').disabled = state === 'syncing';
}

function villagesOf(cat) {
  const out = [];
  for (const u of cat.orgUnits) {
    if (u.level !== 'LEVEL_VILLAGE') continue;
    const commune = cat.units.get(u.parentId);
    const district = commune && cat.units.get(commune.parentId);
    out.push({ unit: u, commune, district, key: fold(`${u.name} ${commune ? commune.name : ''} ${district ? district.name : ''}`) });
  }
  return out;
}

function communeHeading(commune, district) {
  if (!commune) return '';
  return district ? t('whereCommune', commune.name, district.name) : commune.name;
}

function drawVillages(cat) {
  const words = fold($('#village-search').value).split(/\s+/).filter(Boolean);
  const hits = villagesOf(cat).filter((v) => words.every((w) => v.key.includes(w)));
  const box = $('#villages');
  const out = [];
  if (hits.length === 0) { replaceIfChanged(box, [el('p', { class: 'small', text: t('noVillages') })]); return; }
  const groups = new Map();
  for (const v of hits.slice(0, MAX_VILLAGES_SHOWN)) {
    const k = v.commune ? v.commune.id : '';
    if (!groups.has(k)) groups.set(k, { head: communeHeading(v.commune, v.district), items: [] });
    groups.get(k).items.push(v);
  }
  for (const g of groups.values()) {
    const list = el('div', { class: 'villages' });
    for (const v of g.items) list.append(el('button', { type: 'button', 'data-village': v.unit.id, text: v.unit.name }));
    out.push(el('h3', { text: g.head }), list);
  }
  if (hits.length > MAX_VILLAGES_SHOWN) out.push(el('p', { class: 'small', text: t('more', hits.length - MAX_VILLAGES_SHOWN) }));
  replaceIfChanged(box, out);
}

async function drawReports(cat) {
  const subs = await local.reports();
  const list = $('#reports');
  const items = [];
  const rows = [...subs.values()].map((s) => {
    const u = cat.units.get(s.village);
    const commune = u && cat.units.get(u.parentId);
    return { s, name: u ? u.name : s.village, commune: commune ? commune.name : '' };
  });
  rows.sort((a, b) => (a.commune + a.name + a.s.period).localeCompare(b.commune + b.name + b.s.period, 'vi'));
  if (rows.length === 0) items.push(el('li', { class: 'small', text: t('noReports') }));
  for (const { s, name, commune } of rows) {
    const state = reportState(s);
    const waiting = s.pending.length ? ` · ${t('unsent')} ${s.pending.length}` : '';
    items.push(el('li', { 'data-submission': `${s.village}|${s.period}`, 'data-state': state },
      el('button', { type: 'button', class: 'report-link', 'data-open': `${s.village}|${s.period}` },
        el('strong', { text: `${name}${commune ? `, ${commune}` : ''} — ${s.period}` }),
        el('span', { class: `badge ${state}`, text: `${t(`st_${state}`)}${waiting}` }))));
  }
  replaceIfChanged(list, items);
}

async function drawStorage() {
  const box = $('#storage-state');
  if (!navigator.storage || !navigator.storage.estimate) { box.textContent = ''; return; }
  const [persisted, est] = await Promise.all([
    navigator.storage.persisted ? navigator.storage.persisted() : false, navigator.storage.estimate()]);
  box.dataset.persistent = persisted ? '1' : '0';
  box.textContent = persisted ? t('storagePersistent', bytes(est.usage)) : t('storageNot', bytes(est.usage));
}

/** The indicators in form order: each whole followed by its "of which" parts. */
function formOrder(cat) {
  const out = [];
  const parts = (code) => cat.indicators.filter((i) => i.parentCode === code);
  const add = (ind, depth) => { out.push({ ind, depth }); for (const p of parts(ind.code)) add(p, depth + 1); };
  for (const ind of cat.indicators) if (!ind.parentCode || !cat.byCode.has(ind.parentCode)) add(ind, 0);
  return out;
}

function unitText(unit) {
  if (!unit || unit === 'count') return '';
  return unit;
}

function buildForm(cat) {
  const box = $('#fields');
  box.replaceChildren();
  for (const { ind, depth } of formOrder(cat)) {
    if (!local.offeredFor(ind, ui.period)) continue;
    const name = getLang() === 'en' ? ind.nameEn || ind.nameVi : ind.nameVi;
    const unit = unitText(ind.unit);
    const integer = ind.kind !== 'VALUE_KIND_DECIMAL';
    box.append(el('label', { class: depth ? 'field part' : 'field' },
      el('span', { class: 'name', text: name }),
      el('span', { class: 'entry' },
        el('input', { 'data-field': ind.code, inputmode: integer ? 'numeric' : 'decimal', autocomplete: 'off' }),
        unit ? el('span', { class: 'unit', text: unit }) : null),
      el('span', { class: 'status', 'data-field-status': ind.code })));
  }
  ui.built = `${ui.village}|${ui.period}|${getLang()}`;
}

async function drawReport(cat) {
  const key = `${ui.village}|${ui.period}|${getLang()}`;
  if (ui.built !== key) {
    // Typed but unsaved entries survive a redraw of the form (a language switch).
    const typed = new Map();
    for (const f of ui.dirty) {
      const input = document.querySelector(`#report-form [data-field="${f}"]`);
      if (input) typed.set(f, input.value);
    }
    buildForm(cat);
    for (const [f, v] of typed) {
      const input = document.querySelector(`#report-form [data-field="${f}"]`);
      if (input) input.value = v;
    }
  }
  const u = cat.units.get(ui.village);
  const commune = u && cat.units.get(u.parentId);
  const district = commune && cat.units.get(commune.parentId);
  $('#report-title').textContent = `${u ? u.name : ui.village} — ${ui.period}`;
  $('#report-where').textContent = communeHeading(commune, district);
  const rep = await local.report(ui.village, ui.period);
  const review = rep.review;
  const rs = reviewState(review);
  const rv = $('#review-state');
  rv.dataset.state = rs;
  rv.textContent = rs === 'none' ? '' : t(`rv_${rs}`, review.reason || '', review.userName || review.userId || '', when(review.atMs));
  const locked = isLocked(review);
  show('locked-reason', locked);
  $('#locked-reason').textContent = locked ? t('lockedWhy') : '';
  const shown = (f) => (rep.pending.has(f) ? rep.pending.get(f).value : rep.synced.get(f) && rep.synced.get(f).value);
  for (const input of document.querySelectorAll('#report-form [data-field]')) {
    const f = input.dataset.field;
    const text = inputText(shown(f));
    ui.shownText.set(f, text);
    if (!ui.dirty.has(f)) input.value = text;
    input.disabled = locked;
  }
  for (const s of document.querySelectorAll('#report-form [data-field-status]')) {
    const f = s.dataset.fieldStatus;
    const state = fieldState(rep, f);
    s.dataset.state = state;
    s.textContent = fieldStatusText(rep, f, state);
  }
  $('#gps').disabled = locked;
  $('#save').disabled = locked;
  const loc = shown('location');
  if (!ui.gps) $('#gps-state').textContent = loc && loc.point ? t('gpsShown', ...valueText(loc).split(', ')) : '';
}

// ---- Actions ------------------------------------------------------------------

function openReport(village, period) {
  ui.view = 'report';
  ui.village = village;
  ui.period = period;
  ui.dirty.clear();
  ui.gps = null;
  ui.built = null;
  // The last report's inputs go at once, so nothing types into them.
  $('#fields').replaceChildren();
  $('#report-form textarea[data-field="note"]').value = '';
  $('#report-title').textContent = '';
  show('home', false);
  show('report', true);
  $('#form-error').textContent = '';
  const saved = $('#saved-state');
  saved.textContent = '';
  saved.dataset.saved = '0';
  window.scrollTo(0, 0);
  return render();
}

async function askPersistence() {
  try {
    if (navigator.storage && navigator.storage.persist && !(await navigator.storage.persisted())) await navigator.storage.persist();
  } catch { /* the browser may refuse; the state line says so */ }
}

/** Saves typed entries of one report (the form and the test hook both come here). */
async function saveReport(village, period, typed) {
  const made = await local.record(village, period, typed);
  askPersistence();
  render();
  return made;
}

async function onSave(ev) {
  ev.preventDefault();
  const typed = {};
  for (const input of document.querySelectorAll('#report-form [data-field]')) {
    const f = input.dataset.field;
    if (input.value !== (ui.shownText.get(f) ?? '')) typed[f] = input.value;
  }
  if (ui.gps) typed.location = ui.gps;
  const err = $('#form-error');
  const saved = $('#saved-state');
  saved.dataset.saved = '0';
  saved.textContent = '';
  if (Object.keys(typed).length === 0) { err.textContent = t('nothingToSave'); return; }
  try {
    await saveReport(ui.village, ui.period, typed);
    err.textContent = '';
    ui.dirty.clear();
    ui.gps = null;
    await render();
    saved.textContent = t('saved');
    saved.dataset.saved = '1';
  } catch (e) {
    err.textContent = e instanceof local.EditError ? (getLang() === 'en' ? e.en : e.vi) : String(e && e.message || e);
    const bad = e && e.field && document.querySelector(`#report-form [data-field="${e.field}"]`);
    if (bad) bad.focus();
  }
}

/** Shows the sync state `state` with the words `key` (filled from `args`). */
function setStatus(state, key, ...args) {
  ui.status = { state, key, args };
  local.meta().then(drawStatus, () => {});
}

function progress(ev) {
  if (ev.kind === 'pushing') { setStatus('syncing', 'pushing', ev.done, ev.total); render(); }
  if (ev.kind === 'pulling') setStatus('syncing', 'pulling', ev.changes);
  if (ev.kind === 'retrying') setStatus('syncing', 'retrying', Math.round(ev.delayMs / 1000));
}

/** One sync with its progress and result shown; resolves with what it did. */
async function runSync() {
  const m = await local.meta();
  if (!m.token) return { ok: false, error: 'unauthenticated', message: 'not enrolled' };
  setStatus('syncing', 'syncing');
  try {
    const s = await syncer.sync(progress);
    setStatus('ok', 'okSummary', new Date(), s.pushed, s.pulled);
    return { ok: true, ...s };
  } catch (e) {
    const code = e instanceof api.ApiError ? e.code : 'error';
    if (code === 'network') setStatus('offline', 'offline');
    else if (code === 'unauthenticated') setStatus('auth', 'auth');
    else setStatus('error', 'error', e.message || String(e));
    return { ok: false, error: code, message: e.message || String(e), ...(e.summary || {}) };
  } finally {
    await render();
  }
}

function deviceLabel() {
  const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '';
  return `${t('title')} · ${platform}`.slice(0, 200);
}

async function enrollWith(code) {
  const err = $('#enroll-error');
  const clean = String(code).toUpperCase().replace(/[\s-]/g, '');
  if (!CODE.test(clean)) { err.textContent = t('codeShape'); return false; }
  const m = await local.meta();
  const unsent = await local.outboxCount();
  const request = { schemaVersion: 1, code: clean, deviceLabel: deviceLabel() };
  if (unsent > 0 && m.user) request.expectedUserId = m.user.id;
  err.textContent = t('enrolling');
  $('#enroll-submit').disabled = true;
  try {
    const reply = await api.unary('Enroll', 'Redeem', request);
    await local.enroll(reply, location.origin);
    try {
      const boot = await api.unary('Sync', 'Bootstrap', { schemaVersion: 1 }, reply.token);
      await local.setMeta({ catalogue: { indicators: boot.indicators || [], orgUnits: boot.orgUnits || [] } });
    } catch { /* the next sync takes the catalogue */ }
    err.textContent = '';
    $('#enroll-code').value = '';
    ui.status = { state: 'idle', key: '', args: [] };
    ui.view = 'home';
    await render();
    runSync();
    return true;
  } catch (e) {
    const c = e instanceof api.ApiError ? e.code : '';
    if (c === 'unauthenticated') err.textContent = t('codeRefused');
    else if (c === 'resource_exhausted') err.textContent = `${t('codeTooMany')} (${e.message})`;
    else if (c === 'failed_precondition') err.textContent = t('codeOtherUser', m.user ? m.user.name : '');
    else if (c === 'network') err.textContent = t('codeOffline');
    else err.textContent = t('codeOther', e.message || String(e));
    return false;
  } finally {
    $('#enroll-submit').disabled = false;
  }
}

function takeGps() {
  const box = $('#gps-state');
  if (!navigator.geolocation) { box.textContent = t('gpsNone'); return; }
  box.textContent = t('gpsWorking');
  navigator.geolocation.getCurrentPosition((pos) => {
    const c = pos.coords;
    ui.gps = { latE7: Math.round(c.latitude * 1e7), lonE7: Math.round(c.longitude * 1e7) };
    box.textContent = t('gpsGot', c.latitude.toFixed(5), c.longitude.toFixed(5), Math.round(c.accuracy));
    $('#saved-state').dataset.saved = '0';
  }, (e) => {
    box.textContent = t('gpsRefused', e.message || e.code);
  }, { enableHighAccuracy: true, timeout: 30000, maximumAge: 60000 });
}

/** The unsent-edits file: exactly the outbox the app would push. */
async function unsentFile() {
  const m = await local.meta();
  const entries = await local.outbox();
  return {
    format: 'fieldsync-unsent-edits/1', server: m.server || location.origin,
    userId: m.user ? m.user.id : '', userName: m.user ? m.user.name : '', deviceId: m.device || '',
    exportedAtMs: String(Date.now()), mutations: entries.map((e) => e.m),
  };
}

async function exportUnsent() {
  const file = await unsentFile();
  const blob = new Blob([JSON.stringify(file, null, 1)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-');
  const a = el('a', { href: url, download: `fieldsync-unsent-${stamp}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  setStatus(ui.status.state === 'syncing' ? 'syncing' : ui.status.state, 'exported', file.mutations.length);
}

function currentYear() { return String(new Date().getFullYear()); }

function readPeriod() {
  const p = $('#period').value.trim().toUpperCase();
  const ok = local.validPeriod(p);
  $('#period-error').textContent = ok ? '' : t('periodShape');
  return ok ? p : null;
}

// ---- Start --------------------------------------------------------------------

function wire() {
  $('#code-form').addEventListener('submit', (ev) => { ev.preventDefault(); enrollWith($('#enroll-code').value); });
  $('#sync-button').addEventListener('click', () => runSync());
  $('#lang').addEventListener('click', async () => {
    setLang(getLang() === 'vi' ? 'en' : 'vi');
    await local.setMeta({ lang: getLang() });
    retranslate();
  });
  // Searching again, from a report too, shows the villages found.
  $('#village-search').addEventListener('input', () => {
    if (ui.view === 'home' && ui.cat && !drawing) drawVillages(ui.cat);
    else { ui.view = 'home'; render(); }
  });
  $('#villages').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-village]');
    if (!b) return;
    const p = readPeriod();
    if (p) openReport(b.dataset.village, p);
  });
  $('#period').addEventListener('input', () => {
    readPeriod();
    if (ui.view === 'report') { ui.view = 'home'; render(); }
  });
  $('#reports').addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-open]');
    if (!b) return;
    const [v, p] = b.dataset.open.split('|');
    openReport(v, p);
  });
  $('#back').addEventListener('click', () => { ui.view = 'home'; render(); });
  $('#report-form').addEventListener('submit', onSave);
  $('#report-form').addEventListener('input', (ev) => {
    const f = ev.target.dataset && ev.target.dataset.field;
    if (f) ui.dirty.add(f);
    $('#saved-state').dataset.saved = '0';
    $('#saved-state').textContent = '';
  });
  $('#gps').addEventListener('click', takeGps);
  $('#export-unsent').addEventListener('click', exportUnsent);
  $('#install').addEventListener('click', async () => {
    if (!ui.installPrompt) return;
    ui.installPrompt.prompt();
    ui.installPrompt = null;
    show('install', false);
  });
  window.addEventListener('beforeinstallprompt', (ev) => {
    ev.preventDefault();
    ui.installPrompt = ev;
    show('install', true);
  });
  window.addEventListener('online', () => runSync());
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') runSync(); });
  setInterval(() => { if (document.visibilityState === 'visible') runSync(); }, SYNC_EVERY_MS);
}

function retranslate() {
  translate();
  $('#lang').textContent = t('langButton');
  document.title = t('title');
  ui.built = null;
  render();
}

/** `#enroll=CODE` from a QR code or link: taken, then removed from the address. */
function codeFromAddress() {
  const m = /(?:^#|&)enroll=([^&]*)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  try { return decodeURIComponent(m[1]); } catch { return m[1]; }
}

async function start() {
  if ('serviceWorker' in navigator) {
    // A new version took over (not the first install): load it, unless the
    // surveyor is typing into the form.
    const updating = !!navigator.serviceWorker.controller;
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      if (updating && ui.dirty.size === 0 && !ui.gps) location.reload();
    });
    navigator.serviceWorker.register('sw.js').catch(() => {});
  }
  const code = codeFromAddress();
  const m = await local.meta();
  setLang(m.lang || 'vi');
  $('#period').value = currentYear();
  wire();
  retranslate();
  await render();
  if (code) {
    $('#enroll-code').value = code;
    if (!m.token || m.auth) await enrollWith(code);
  }
  if (m.token) runSync();
}

const ready = start();

globalThis.fieldsyncApp = {
  ready,
  record: async (villageId, period, fields) => { await ready; return saveReport(villageId, period, fields); },
  sync: async () => { await ready; return runSync(); },
  pending: async () => { await ready; return local.outboxCount(); },
  unsent: async () => { await ready; return unsentFile(); },
  state: async () => {
    await ready;
    const m = await local.meta();
    const s = await local.summary();
    return {
      enrolled: !!m.token, deviceId: m.device || null, userId: m.user ? m.user.id : null, userName: m.user ? m.user.name : null,
      nextMutationId: m.next || 1, acknowledgedThrough: m.ack || 0, cursor: m.cursor || '0', hlc: m.hlc || '0',
      auth: m.auth || null, lastSyncMs: m.lastSyncMs || null, pending: s.outbox, synced: s.synced,
      conflicts: s.conflicts, refusals: s.refusals, reviews: s.reviews,
      status: $('#sync-status').dataset.state, serviceWorker: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
    };
  },
};
