// The in-browser runtime: a module worker that downloads (and caches) ONNX Runtime Web and a
// model's graphs, then answers the same requests as the server's /api/generate, /api/edit and
// /api/project with the same replies, off the page's main thread. Messages:
//   in:  {id, op: "init", manifest, base, threads?} | {id, op: "load", model} | {id, op: "generate"|"edit"|"project", body}
//   out: {id, progress: {what, loaded, total}} | {id, result} | {id, error: {message, code, status}}
// A sketch travels as {rgba, width, height} (the stroke canvas' pixels, the same bytes the server
// gets as a PNG); a photo as {rgba, size} (already centre-cropped and scaled to the model).
"use strict";

import * as core from "./core.js";
import {OnnxBackend} from "./onnx.js";

const CACHE = "neuedit-models-v1";
const W = {manifest: null, base: null, ort: null, threads: 1, backends: new Map()};

self.onmessage = async (e) => {
  const {id, op} = e.data;
  const progress = (what, loaded, total) => self.postMessage({id, progress: {what, loaded, total}});
  try {
    let result;
    if (op === "init") result = await init(e.data.manifest, e.data.base, progress, e.data.threads);
    else if (op === "load") result = await load(e.data.model, progress);
    else if (op in OPS) result = await OPS[op](e.data.body || {});
    else throw new core.EngineError(`unknown operation ${op}`);
    self.postMessage({id, result});
  } catch (err) {
    const known = err instanceof core.EngineError;
    if (!known) console.error(err);
    self.postMessage({id, error: {message: known ? err.message : `in-browser runtime: ${err && err.message || err}`,
                                  code: known ? err.code : "internal", status: known ? err.status : 500}});
  }
};

// ---- downloads, cached by content ---------------------------------------------------------------
async function fetchCached(url, key, total, what, progress) {
  // the bytes at `url`; the Cache API keeps them under `key` (a URL naming their content), so a
  // second visit reads them without the network
  let cache = null;
  try { cache = await caches.open(CACHE); } catch (e) { /* no Cache API here (not a secure context) */ }
  if (cache) {
    const hit = await cache.match(key);
    if (hit) { const b = await hit.arrayBuffer(); progress(what, b.byteLength, b.byteLength); return b; }
  }
  const r = await fetch(url);
  if (!r.ok) throw new core.EngineError(`cannot download ${url}: ${r.status} ${r.statusText}`, "download", 502);
  const reader = r.body.getReader(), parts = [];
  let loaded = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.byteLength;
    progress(what, loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) { bytes.set(p, at); at += p.byteLength; }
  if (cache) {
    try { await cache.put(key, new Response(bytes)); } catch (e) { /* full or refused: it still runs */ }
  }
  return bytes.buffer;
}

async function init(manifest, base, progress, threads) {
  W.manifest = manifest;
  W.base = base;
  const rt = manifest.runtime, dir = new URL(rt.dir, base).href;
  const wasm = await fetchCached(dir + rt.wasm, `${dir}${rt.wasm}?v=${rt.version}&bytes=${rt.files[rt.wasm]}`,
                                 rt.files[rt.wasm], "the runtime", progress);
  W.ort = await import(dir + rt.entry);
  // threads need cross-origin isolation; by default one core is left to the page and the rest
  // (at most 4) compute: on 2 cores a second thread slows G2 (docs/serving.md, "Speed in the browser")
  const cores = navigator.hardwareConcurrency || 1;
  W.threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, threads || cores - 1)) : 1;
  W.ort.env.wasm.numThreads = W.threads;
  W.ort.env.wasm.wasmPaths = dir;
  W.ort.env.wasm.wasmBinary = wasm;
  W.ort.env.logLevel = "error";
  return {threads: W.threads, version: rt.version, webgpu: "gpu" in navigator};
}

async function load(name, progress) {
  if (W.backends.has(name)) return {model: name, cached: true};
  const model = W.manifest.models.find((m) => m.name === name);
  if (!model) throw new core.EngineError(`unknown model ${name}`, "unknown_model", 404);
  const fetchGraph = (g, report = progress) => {
    const f = model.graphs[g], url = new URL(f.url, W.base).href;
    return fetchCached(url, `${url}?sha256=${f.sha256}`, f.bytes, `${name} ${g}`, report);
  };
  const graphs = {};
  for (const g of Object.keys(model.graphs)) if (!core.ON_DEMAND.includes(g)) graphs[g] = await fetchGraph(g);
  // the photo graphs come with the first photo (a projection), not with the page
  const be = await OnnxBackend.create(W.ort, W.manifest, model, graphs,
                                      {executionProviders: ["wasm"], graphOptimizationLevel: "all"},
                                      (g) => fetchGraph(g, () => {}));
  W.backends.set(name, be);
  return {model: name, cached: false};
}

// ---- the API's operations (server/api.py) -----------------------------------------------------------
function backend(body) {
  const be = W.backends.get(body.model);
  if (!be) throw new core.EngineError(`unknown model ${String(body.model).slice(0, 100)}`, "unknown_model", 404);
  return be;
}

async function png(image, R) {
  const c = new OffscreenCanvas(R, R);
  c.getContext("2d").putImageData(new ImageData(core.imageToRGBA(image, R), R, R), 0, 0);
  const bytes = new Uint8Array(await (await c.convertToBlob({type: "image/png"})).arrayBuffer());
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function finite(a) {
  for (const v of a) if (!Number.isFinite(v)) throw new core.EngineError(
    "the model produced NaN or infinity for this input; try a smaller lr or fewer steps", "numerical_error", 422);
  return a;
}

function intField(body, name, dflt, lo, hi) {
  const v = body[name] == null ? dflt : body[name];
  if (!Number.isInteger(v)) throw new core.EngineError(`${name} must be an integer`, "bad_field");
  if (v < lo || v > hi) {
    throw new core.EngineError(name === "steps" ? `steps is ${v}; at most ${hi}` : `${name} must lie in [${lo}, ${hi}], got ${v}`,
                               v > hi && name === "steps" ? "too_many_steps" : "bad_field");
  }
  return v;
}

async function reply(be, image, extra) {
  return {model: be.name, ...extra, image: await png(finite(image), be.R), raw: image};
}

const OPS = {
  async generate(body) {
    const be = backend(body);
    const seed = body.seed == null ? Math.floor(Math.random() * 2 ** 53) : intField(body, "seed", 0, 0, 2 ** 53 - 1);
    let c = null;
    if (body.c != null) {
      if (!Array.isArray(body.c) || body.c.length !== be.cDim || body.c.some((v) => typeof v !== "number" || !(v >= 0 && v <= 1)))
        throw new core.EngineError(`c must be a list of ${be.cDim} numbers in [0, 1]`, "bad_field");
      c = body.c;
    }
    const st = core.seedState(seed, be.zDim, be.schema, be.K, c);
    return reply(be, await be.generate(st.z, st.c, 1), {state: core.stateToJSON(st), seed, resolution: be.R});
  },

  async edit(body) {
    const be = backend(body), method = body.method == null ? "two-stage" : body.method;
    if (method !== "two-stage" && method !== "latent") throw new core.EngineError(`unknown method ${String(method).slice(0, 50)}`, "unknown_method");
    if (!be.has(method === "latent" ? "latent_step" : "g2"))
      throw new core.EngineError(`model ${be.name} has no ${method === "latent" ? "latent-editor graph" : "stage-two generator"}`, "method_unavailable");
    const hasState = body.state != null, hasImage = body.image != null;
    if (!hasState && !hasImage) throw new core.EngineError("send 'state' (from generate) or 'image' (a photo)", "missing_field");
    if (hasState && hasImage && method !== "latent") throw new core.EngineError(
      "a two-stage edit takes one of 'state' or 'image'; both together continue a latent edit of a photo", "bad_request");
    const st = hasState ? core.stateFromJSON(body.state, be.zDim, be.cDim, be.detail) : null;
    const s = body.sketch;
    if (!s || !s.rgba) throw new core.EngineError("missing field 'sketch'", "missing_field");
    const {sketch, mask} = core.sketchFromRGBA(s.rgba, s.width, s.height, be.R);
    if (method === "latent") {
      const steps = intField(body, "steps", 1, 0, be.K.MAX_STEPS);
      const optimizer = body.optimizer == null ? be.defaults.optimizer : body.optimizer;
      if (optimizer !== "adam" && optimizer !== "gd") throw new core.EngineError("optimizer must be 'gd' or 'adam'", "bad_field");
      if (body.lr != null && !(typeof body.lr === "number" && body.lr > 0 && Number.isFinite(body.lr)))
        throw new core.EngineError("lr must be a positive number", "bad_field");
      if (optimizer === "gd" && st) { st.m = st.v = null; st.t = 0; }
      const cfg = {...be.defaults, optimizer, lr: body.lr == null ? null : body.lr, steps};
      const r = hasImage ? await core.latentPhotoEdit(be, photo(body.image, be.R), sketch, mask, cfg, steps, st)
        : await core.latentEdit(be, st, sketch, mask, cfg, steps);
      finite(r.state.z); finite(r.state.c);
      return reply(be, r.image, {method, dist: r.dist, state: core.stateToJSON(r.state), steps});
    }
    const source = st ? {state: st} : {image: photo(body.image, be.R)};
    const image = await core.twoStage(be, source, sketch, mask);
    const out = {method, dist: core.dist(image, sketch, mask, 1, be.R)[0]};
    if (st) out.state = body.state;
    return reply(be, image, out);
  },

  async project(body) {
    const be = backend(body);
    if (!be.has("latent_step")) throw new core.EngineError(`model ${be.name} has no latent-editor graph`, "method_unavailable");
    const steps = intField(body, "steps", be.hasEncoder ? 0 : be.K.PROJECT_STEPS, 0, 1000);
    const r = await core.project(be, photo(body.image, be.R), steps);
    return reply(be, r.image, {state: core.stateToJSON(r.state), dist: r.dist, steps});
  },
};

// ms per call of one graph alone, on the contract's shapes (bench/browser.py: the runtime without the page)
OPS.time = async function (body) {
  const be = backend(body), graph = body.graph, values = {};
  for (const p of be.ports(graph, "inputs")) {
    const n = be.shape(p, 1).reduce((a, b) => a * b, 1);
    values[p.name] = p.axes.length ? new Float32Array(n).fill(p.name === "mask" ? 1 : 0.1) : (p.name === "adam" ? 1 : 0.05);
  }
  const ms = [];
  for (let i = 0; i < (body.reps || 10) + 1; i++) {
    const t = performance.now();
    await be.run(graph, values, 1);
    ms.push(performance.now() - t);
  }
  return {ms: ms.slice(1)};  // the first call warms up
};

function photo(p, R) {
  if (!p || !p.rgba || p.size !== R) throw new core.EngineError(`image must be the photo's pixels at ${R}x${R}`, "bad_image");
  return core.imageFromRGBA(p.rgba, R);
}
