// The fieldsync.v1 services over the Connect protocol's JSON form, on the
// app's own origin: unary calls POST proto3 JSON, Pull reads a stream of
// enveloped JSON pages. The token goes only in the Authorization header.

/** A failed call: `code` is the Connect code ("unauthenticated", ...), or
 * "network" when no answer came; `headers` the reply's headers. */
export class ApiError extends Error {
  constructor(code, message, headers) {
    super(message || code);
    this.code = code;
    this.headers = headers || new Headers();
  }
  get offline() { return this.code === 'network'; }
}

const HTTP_CODES = {
  400: 'invalid_argument', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found',
  429: 'resource_exhausted', 501: 'unimplemented', 503: 'unavailable', 504: 'deadline_exceeded',
};

const UNARY_TIMEOUT_MS = 60_000;
const PULL_IDLE_MS = 60_000;

function headers(token, type, timeoutMs) {
  const h = { 'Content-Type': type, 'Connect-Protocol-Version': '1' };
  // The server gives up when this phone does, instead of working for nobody.
  if (timeoutMs) h['Connect-Timeout-Ms'] = String(timeoutMs);
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function post(path, token, type, body, signal, timeoutMs) {
  try {
    return await fetch(path, {
      method: 'POST', headers: headers(token, type, timeoutMs), body, signal,
      cache: 'no-store', credentials: 'omit', redirect: 'error',
    });
  } catch (e) {
    throw new ApiError('network', String(e && e.message || e));
  }
}

async function failure(res) {
  let body = {};
  try { body = JSON.parse(await res.text()); } catch { /* not JSON */ }
  return new ApiError(body.code || HTTP_CODES[res.status] || 'unknown', body.message || `HTTP ${res.status}`, res.headers);
}

/** One unary call: `service` "Sync", "Enroll"; resolves with the reply's JSON. */
export async function unary(service, method, message, token) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), UNARY_TIMEOUT_MS);
  try {
    const res = await post(`/fieldsync.v1.${service}/${method}`, token, 'application/json', JSON.stringify(message), abort.signal, UNARY_TIMEOUT_MS);
    if (!res.ok) throw await failure(res);
    try {
      return JSON.parse(await res.text());
    } catch (e) {
      throw new ApiError('network', `the answer was cut: ${e && e.message}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

function envelope(message) {
  const json = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(5 + json.length);
  new DataView(out.buffer).setUint32(1, json.length);
  out.set(json, 5);
  return out;
}

/**
 * Sync.Pull: calls `onPage(page)` for each PullPage and awaits it before
 * reading on (so each page is stored before the next is taken).
 */
export async function pull(request, token, onPage) {
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), PULL_IDLE_MS);
  const alive = () => { clearTimeout(timer); timer = setTimeout(() => abort.abort(), PULL_IDLE_MS); };
  try {
    const res = await post('/fieldsync.v1.Sync/Pull', token, 'application/connect+json', envelope(request), abort.signal);
    if (!res.ok) throw await failure(res);
    const reader = res.body.getReader();
    let buf = new Uint8Array(0);
    const decoder = new TextDecoder();
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new ApiError('network', `the connection was cut: ${e && e.message}`);
      }
      alive();
      if (chunk.done) throw new ApiError('network', 'the connection was cut before the end of the pull');
      const joined = new Uint8Array(buf.length + chunk.value.length);
      joined.set(buf);
      joined.set(chunk.value, buf.length);
      buf = joined;
      while (buf.length >= 5) {
        const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
        const flags = view.getUint8(0);
        const len = view.getUint32(1);
        if (buf.length < 5 + len) break;
        const body = JSON.parse(decoder.decode(buf.subarray(5, 5 + len)));
        buf = buf.slice(5 + len);
        if (flags & 2) {
          if (body.error) {
            const h = new Headers();
            for (const [k, v] of Object.entries(body.metadata || {})) h.set(k, Array.isArray(v) ? v[0] : v);
            throw new ApiError(body.error.code || 'unknown', body.error.message, h);
          }
          return;
        }
        await onPage(body);
        alive();
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
