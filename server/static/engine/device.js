// The page's handle on the in-browser runtime (worker.js): the same calls as the server's API,
// answered on this device. `Device.start(manifest, base, onProgress)` downloads the runtime;
// `load(model, onProgress)` a model's graphs; `api(path, body)` then answers /api/generate,
// /api/edit and /api/project bodies with the server's replies.
"use strict";

export class DeviceError extends Error {
  constructor(message, code, status) { super(message); this.code = code; this.status = status; }
}

const PATHS = {"/api/generate": "generate", "/api/edit": "edit", "/api/project": "project"};

export class Device {
  static async start(manifest, base, onProgress, threads = null) {  // threads: null, the worker's choice
    const d = new Device();
    d.worker = new Worker(new URL("./worker.js", import.meta.url), {type: "module"});
    d.pending = new Map();
    d.next = 1;
    d.loaded = new Set();
    d.worker.onmessage = (e) => d.receive(e.data);
    d.failed = null;
    d.worker.onerror = (e) => {  // the worker itself could not start (no module workers, CSP, a missing file)
      d.failed = new DeviceError(`the in-browser runtime did not start (${e.message || "worker error"})`, "runtime", 500);
      for (const p of d.pending.values()) p.reject(d.failed);
      d.pending.clear();
    };
    d.info = await d.call("init", {manifest, base, threads}, onProgress);
    return d;
  }

  receive(m) {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.progress) { if (p.onProgress) p.onProgress(m.progress); return; }
    this.pending.delete(m.id);
    if (m.error) p.reject(new DeviceError(m.error.message, m.error.code, m.error.status));
    else p.resolve(m.result);
  }

  call(op, payload, onProgress) {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {resolve, reject, onProgress});
      this.worker.postMessage({id, op, ...payload});
    });
  }

  async load(model, onProgress) {
    if (this.loaded.has(model)) return;
    await this.call("load", {model}, onProgress);
    this.loaded.add(model);
  }

  api(path, body) {
    const op = PATHS[path];
    if (!op) return Promise.reject(new DeviceError(`${path} runs on the server only`, "not_here", 400));
    return this.call(op, {body});
  }
}
