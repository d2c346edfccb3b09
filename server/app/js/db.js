// The app's one IndexedDB database. Stores:
// - meta: key → value (device id, token, user, next mutation id, HLC,
//   pull cursor, catalogue, acknowledged-through, language, last sync).
// - outbox: {id, m}: mutation id → the mutation as proto3 JSON, in id order.
// - pending: field key → {mutationId, value}: the latest unsent edit of a field.
// - synced: field key → FieldState JSON, as the server last said.
// - conflicts: field key → Conflict JSON.
// - refusals: {id, m, reason}: edits the server refused, kept with its reason.
// - reviews: "village|period" → SubmissionReview JSON.
// A field key is "village|period|field".
//
// Every write is one transaction opened with durability "strict"; it
// resolves only once the browser says it committed (`oncomplete`). A
// connection the browser closes (`onclose`, a version change) is reopened,
// and a transaction refused on a dead connection is retried once.

const NAME = 'fieldsync';
const VERSION = 1;
export const STORES = ['meta', 'outbox', 'pending', 'synced', 'conflicts', 'refusals', 'reviews'];

let connection = null;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function open() {
  if (connection) return connection;
  connection = new Promise((resolve, reject) => {
    const req = indexedDB.open(NAME, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const name of STORES) {
        if (db.objectStoreNames.contains(name)) continue;
        if (name === 'outbox' || name === 'refusals') db.createObjectStore(name, { keyPath: 'id' });
        else db.createObjectStore(name);
      }
    };
    req.onsuccess = () => {
      const db = req.result;
      db.onclose = () => { connection = null; };
      db.onversionchange = () => { db.close(); connection = null; };
      resolve(db);
    };
    req.onerror = () => { connection = null; reject(req.error); };
    req.onblocked = () => {};
  });
  return connection;
}

/** Forgets the connection so the next transaction opens a new one. */
function drop() {
  const old = connection;
  connection = null;
  if (old) old.then((db) => { try { db.close(); } catch { /* already closed */ } }, () => {});
}

/** What a transaction function is given: promise-returning reads and writes. */
class Tx {
  constructor(t) { this.t = t; }
  get(store, key) { return request(this.t.objectStore(store).get(key)); }
  getAll(store, range, count) { return request(this.t.objectStore(store).getAll(range, count)); }
  keys(store, range) { return request(this.t.objectStore(store).getAllKeys(range)); }
  count(store) { return request(this.t.objectStore(store).count()); }
  put(store, value, key) {
    const s = this.t.objectStore(store);
    return request(key === undefined ? s.put(value) : s.put(value, key));
  }
  delete(store, key) { return request(this.t.objectStore(store).delete(key)); }
  clear(store) { return request(this.t.objectStore(store).clear()); }
}

async function attempt(stores, mode, fn) {
  const db = await open();
  const t = db.transaction(stores, mode, { durability: mode === 'readwrite' ? 'strict' : 'default' });
  const done = new Promise((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new DOMException('transaction aborted', 'AbortError'));
  });
  let result;
  try {
    result = await fn(new Tx(t));
  } catch (e) {
    try { t.abort(); } catch { /* already finished */ }
    done.catch(() => {});
    throw e;
  }
  await done;
  return result;
}

/**
 * Runs `fn(tx)` in one transaction over `stores` and resolves with its
 * result once the transaction committed (for writes: durably). `fn` may
 * await only the reads and writes of `tx`. If it throws, nothing is written.
 */
export async function tx(stores, mode, fn) {
  try {
    return await attempt(stores, mode, fn);
  } catch (e) {
    if (e && (e.name === 'InvalidStateError' || e.name === 'UnknownError')) {
      drop();
      return attempt(stores, mode, fn);
    }
    throw e;
  }
}

export const read = (stores, fn) => tx(stores, 'readonly', fn);
export const write = (stores, fn) => tx(stores, 'readwrite', fn);

/** Every key of `store` starting with `prefix`. */
export function prefix(p) {
  return IDBKeyRange.bound(p, p + '\uffff');
}
