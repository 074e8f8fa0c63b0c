// The page's service worker: the page itself (HTML, scripts, styles, web.json) from the network
// when there is one, else from the copy kept at the last visit, so that a second visit starts
// offline. The copy is taken at install (web.json's "shell" lists the files) and refreshed by
// every answer from the network. The runtime's .wasm and the models' .onnx are not handled here:
// the in-browser runtime keeps them in the Cache API by content (engine/worker.js); /api/ is
// never cached.
"use strict";

const SHELL = "neuedit-shell-v1";

self.addEventListener("install", (e) => e.waitUntil((async () => {
  const scope = self.registration.scope;
  const manifest = await (await fetch(new URL("web.json", scope))).json();
  const cache = await caches.open(SHELL);
  await cache.addAll(["./", "web.json", ...manifest.shell].map((u) => new URL(u, scope).href));
  await self.skipWaiting();
})()));
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url), scope = new URL(self.registration.scope);
  if (e.request.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  const rel = url.pathname.slice(scope.pathname.length);
  if (rel.startsWith("api/") || /\.(onnx|wasm)$/.test(rel)) return;
  e.respondWith(fetch(e.request).then((r) => {
    if (r.ok) {
      const copy = r.clone();
      e.waitUntil(caches.open(SHELL).then((c) => c.put(e.request, copy)));
    }
    return r;
  }).catch(() => caches.open(SHELL).then((c) => c.match(e.request, {ignoreSearch: e.request.mode === "navigate"}))
    .then((r) => r || Response.error())));
});
