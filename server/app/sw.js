// The app's service worker: precaches the shell under a cache named with the
// app's version (the server puts a hash of every app file in place of the
// placeholder, so any change installs a new worker and cache), serves the
// shell cache-first so the app opens with no connection, never touches the
// API (POST /fieldsync.v1.*), and removes older caches when it takes over.

const VERSION = '__APP_VERSION__';
const CACHE = `fieldsync-app-${VERSION}`;
const SHELL = [
  './', 'index.html', 'app.css', 'manifest.webmanifest', 'icon.svg',
  'js/app.js', 'js/api.js', 'js/db.js', 'js/hlc.js', 'js/i18n.js', 'js/local.js', 'js/sync.js',
  'js/text.js', 'js/validate.js', 'js/amount.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const path of SHELL) {
      const url = new URL(path, self.registration.scope);
      const res = await fetch(url, { cache: 'reload' });
      // A module another one does not import may be absent; the rest must be there.
      if (res.ok) await cache.put(url, res);
      else if (res.status !== 404) throw new Error(`could not cache ${url}: ${res.status}`);
    }
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('fieldsync-app-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith(new URL(self.registration.scope).pathname)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const shell = req.mode === 'navigate' ? new URL('./', self.registration.scope) : url;
    shell.search = '';
    const hit = await cache.match(shell);
    if (hit) return hit;
    const res = await fetch(req);
    if (res.ok && req.mode !== 'navigate') await cache.put(url, res.clone());
    return res;
  })());
});
