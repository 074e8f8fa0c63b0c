// The editing core in the browser: the same algorithms as the Python runtime
// (neuedit/runtime/state.py, sketch.py, editing.py), over a backend that runs the graphs
// (onnx.js). Every number it shares with Python (constants, defaults, graph names and axes)
// comes from the manifest web.json, which the server builds from those modules; parity with
// Python is tested (tests/test_web.py). Arrays are Float32Array in row-major order with the
// shapes noted: images [N, 3, R, R] in [-1, 1], sketch [N, 3, R, R], mask [N, 1, R, R].
"use strict";

// graphs a page loads only when a photo first needs them (the encoder and G1 with a photo's detail):
// a generated picture's edits never run them, and they would add to every first visit
export const ON_DEMAND = ["encoder", "g1_detail"];

export class EngineError extends Error {
  constructor(message, code = "bad_request", status = 400) { super(message); this.code = code; this.status = status; }
}

// ---- seeds (state.py: seed_uniforms, seed_state) -----------------------------------------------
function mix32(x) {  // lowbias32, uint32 -> uint32
  x = x >>> 0;
  x ^= x >>> 16; x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15; x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function seedUniforms(seed, start, n) {
  const lo = seed % 4294967296 >>> 0, hi = Math.floor(seed / 4294967296) >>> 0;
  const key = mix32((lo ^ mix32((hi + 0x9e3779b9) >>> 0)) >>> 0);
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const i = 2 * (start + j);
    const a = mix32((key + Math.imul(i >>> 0, 0x9e3779b9)) >>> 0) >>> 5;
    const b = mix32((key + Math.imul((i + 1) >>> 0, 0x9e3779b9)) >>> 0) >>> 6;
    out[j] = (a * 67108864 + b) / 9007199254740992;
  }
  return out;
}

export function slices(schema) {  // [{start, stop, exclusive, k}] per group
  const out = [];
  let i = 0;
  for (const g of schema.groups) {
    out.push({start: i, stop: i + g.attributes.length, exclusive: g.exclusive !== false, k: g.attributes.length,
              prior: g.prior && g.prior.length ? g.prior : null});
    i += g.attributes.length;
  }
  return out;
}

export function seedState(seed, zDim, schema, K, c = null) {
  const z = [];
  let used = 0;
  while (z.length < zDim) {
    const u = seedUniforms(seed, used, 2 * zDim);
    used += 2 * zDim;
    for (let j = 0; j < zDim && z.length < zDim; j++) {
      const r = Math.sqrt(-2 * Math.log(1 - u[2 * j])), t = 2 * Math.PI * u[2 * j + 1];
      for (const v of [r * Math.cos(t), r * Math.sin(t)]) if (Math.abs(v) < K.Z_SAMPLE && z.length < zDim) z.push(v);
    }
  }
  const cDim = slices(schema).reduce((a, s) => a + s.k, 0);
  let cv = c;
  if (cv === null) {
    cv = new Array(cDim).fill(0);
    for (const s of slices(schema)) {
      const u = seedUniforms(seed, used, s.exclusive ? 1 : s.k);
      used += u.length;
      const p = s.prior || new Array(s.exclusive ? s.k + 1 : s.k).fill(s.exclusive ? 1 / (s.k + 1) : 0.5);
      if (s.exclusive) {  // the first choice whose cumulative chance exceeds u (schema.Group.probabilities)
        let pick = 0, acc = p[0];
        while (pick < s.k && acc <= u[0]) acc += p[++pick];
        if (pick < s.k) cv[s.start + pick] = 1;
      } else {
        for (let j = 0; j < s.k; j++) cv[s.start + j] = u[j] < p[j] ? 1 : 0;
      }
    }
  }
  return {z: Float32Array.from(z), c: Float32Array.from(cv), n: 1};
}

// ---- c as logits of a softmax per exclusive group (state.py) ----------------------------------------
export function groupMatrix(schema, cDim) {
  const a = new Float64Array(cDim * cDim);
  for (let i = 0; i < cDim; i++) a[i * cDim + i] = 1;
  for (const s of slices(schema)) {
    if (!s.exclusive) continue;
    for (let i = s.start; i < s.stop; i++) for (let j = s.start; j < s.stop; j++) a[i * cDim + j] = 1;
  }
  return a;
}

export function cLogits(c, groups, n, C, K) {
  const out = new Float32Array(n * C), clamp = (v) => Math.min(Math.max(v, K.C_EPS), 1 - K.C_EPS);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < C; i++) {
      let s = 0;
      for (let j = 0; j < C; j++) s += c[r * C + j] * groups[j * C + i];
      const v = Math.log(clamp(c[r * C + i])) - Math.log(clamp(1 - s));
      out[r * C + i] = Math.min(Math.max(v, -K.LOGIT_MAX), K.LOGIT_MAX);
    }
  }
  return out;
}

export function cFromLogits(ct, groups, n, C, K) {
  const out = new Float32Array(n * C);
  for (let r = 0; r < n; r++) {
    const l = [];
    let top = 0;
    for (let i = 0; i < C; i++) { l.push(Math.min(Math.max(ct[r * C + i], -K.LOGIT_MAX), K.LOGIT_MAX)); top = Math.max(top, l[i]); }
    const e = l.map((v) => Math.exp(v - top));
    for (let i = 0; i < C; i++) {
      let s = 0;
      for (let j = 0; j < C; j++) s += e[j] * groups[j * C + i];
      out[r * C + i] = e[i] / (Math.exp(-top) + s);
    }
  }
  return out;
}

export const zTilde = (z, K) => z.map((v) => Math.atanh(Math.min(Math.max(v, -K.Z_MAX), K.Z_MAX)));
export const zFromTilde = (zt, K) => zt.map((v) => Math.min(Math.max(Math.fround(Math.tanh(v)), -K.Z_MAX), K.Z_MAX));

// ---- the state JSON (state.py: EditState.to_dict / from_dict) -----------------------------------------
const rows = (a, n) => { const w = a.length / n, out = []; for (let i = 0; i < n; i++) out.push(Array.from(a.subarray(i * w, (i + 1) * w))); return out; };

export function stateToJSON(s) {  // one row, as the server sends it
  const d = {z: Array.from(s.z), c: Array.from(s.c)};
  if (s.m) Object.assign(d, {m: Array.from(s.m), v: Array.from(s.v), t: s.t});
  if (s.z0) Object.assign(d, {z0: Array.from(s.z0), c0: Array.from(s.c0)});
  if (s.r) d.r = Array.from(s.r);
  return d;
}

export function stateFromJSON(d, zDim, cDim, detail = null) {  // detail: the model's {channels, size} or null
  if (!d || typeof d !== "object" || !d.z || !d.c) throw new EngineError("state needs both 'z' and 'c'", "bad_state");
  const vec = (v, n, name, lo, hi) => {
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === "number" && Number.isFinite(x)))
      throw new EngineError(`${name} must be a list of ${n} finite numbers`, "bad_state");
    if (lo !== undefined && v.some((x) => x < lo || x > hi)) throw new EngineError(`${name} values must lie in [${lo}, ${hi}]`, "bad_state");
    return Float32Array.from(v);
  };
  const s = {n: 1, z: vec(d.z, zDim, "z", -1, 1), c: vec(d.c, cDim, "c", 0, 1), m: null, v: null, t: 0, z0: null, c0: null, r: null};
  if (s.z.some((x) => Math.abs(x) >= 1)) throw new EngineError("z values must lie strictly inside (-1, 1)", "bad_state");
  if ((d.m == null) !== (d.v == null)) throw new EngineError("Adam moments m and v come together", "bad_state");
  if (d.m != null) {
    s.m = vec(d.m, zDim + cDim, "m"); s.v = vec(d.v, zDim + cDim, "v");
    if (s.v.some((x) => x < 0)) throw new EngineError("v (Adam's second moment) cannot be negative", "bad_state");
    s.t = d.t || 0;
    if (!Number.isInteger(s.t) || s.t < 0) throw new EngineError("t must be a non-negative integer", "bad_state");
  }
  if ((d.z0 == null) !== (d.c0 == null)) throw new EngineError("the starting point z0 and c0 come together", "bad_state");
  if (d.z0 != null) { s.z0 = vec(d.z0, zDim, "z0", -1, 1); s.c0 = vec(d.c0, cDim, "c0", 0, 1); }
  if (d.r != null) {
    if (!detail) throw new EngineError("r (a photo's detail) needs a model with a photo encoder; this one has none", "bad_state");
    s.r = vec(d.r, detail.channels * detail.size * detail.size, "r");
  }
  return s;
}

// ---- strokes: RGBA -> (sketch, mask) (sketch.py: from_rgba) ---------------------------------------------
function areaWeights(size, r) {  // PIL's BOX filter: each output pixel averages its input footprint
  // -> {start [r], count [r], idx, w} flattened: output o reads idx[start[o] .. start[o] + count[o])
  const scale = size / r, idx = [], w = [], start = new Int32Array(r), count = new Int32Array(r);
  for (let o = 0; o < r; o++) {
    const a = o * scale, b = (o + 1) * scale;
    start[o] = idx.length;
    for (let i = Math.floor(a); i < Math.min(size, Math.ceil(b)); i++) {
      const cover = Math.min(b, i + 1) - Math.max(a, i);
      if (cover > 0) { idx.push(i); w.push(cover / scale); }
    }
    count[o] = idx.length - start[o];
  }
  return {start, count, idx: Int32Array.from(idx), w: Float64Array.from(w)};
}

function areaResize(ch, width, height, R) {  // [H, W] -> [R, R], separable (rows, then columns)
  const wx = areaWeights(width, R), wy = areaWeights(height, R), tmp = new Float64Array(height * R), out = new Float32Array(R * R);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < R; x++) {
      let s = 0;
      for (let j = wx.start[x], e = j + wx.count[x]; j < e; j++) s += ch[row + wx.idx[j]] * wx.w[j];
      tmp[y * R + x] = s;
    }
  }
  for (let y = 0; y < R; y++) {
    for (let x = 0; x < R; x++) {
      let s = 0;
      for (let j = wy.start[y], e = j + wy.count[y]; j < e; j++) s += tmp[wy.idx[j] * R + x] * wy.w[j];
      out[y * R + x] = s;
    }
  }
  return out;
}

function blockMeans(rgba, width, height, R) {  // a whole factor smaller: one pass over the pixels
  const fx = width / R, fy = height / R, A = new Float32Array(R * R), C = [0, 1, 2].map(() => new Float32Array(R * R));
  const acc = new Float64Array(4 * R * R);
  for (let y = 0; y < height; y++) {
    const oy = ((y / fy) | 0) * R;
    for (let x = 0, q = 4 * y * width; x < width; x++, q += 4) {
      const al = rgba[q + 3];
      if (!al) continue;
      const o = 4 * (oy + ((x / fx) | 0)), a = al / 255;
      acc[o] += a; acc[o + 1] += rgba[q] * a; acc[o + 2] += rgba[q + 1] * a; acc[o + 3] += rgba[q + 2] * a;
    }
  }
  const area = fx * fy;
  for (let p = 0; p < R * R; p++) { A[p] = acc[4 * p] / area; for (let k = 0; k < 3; k++) C[k][p] = acc[4 * p + 1 + k] / area; }
  return [A, C];
}

export function sketchFromRGBA(rgba, width, height, R) {
  // rgba: Uint8ClampedArray [H, W, 4] (a canvas' ImageData) -> {sketch [1, 3, R, R], mask [1, 1, R, R]};
  // colour is area-averaged premultiplied by alpha (sketch.py: from_rgba)
  if (width % R === 0 && height % R === 0 && width > R) return sketchFrom(...blockMeans(rgba, width, height, R), R);
  const n = width * height, a = new Float32Array(n), rgb = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  for (let p = 0, q = 0; p < n; p++, q += 4) {
    const al = rgba[q + 3] / 255;
    a[p] = al;
    if (al) { rgb[0][p] = rgba[q] * al; rgb[1][p] = rgba[q + 1] * al; rgb[2][p] = rgba[q + 2] * al; }
  }
  const same = width === R && height === R;
  return sketchFrom(same ? a : areaResize(a, width, height, R), rgb.map((ch) => (same ? ch : areaResize(ch, width, height, R))), R);
}

function sketchFrom(A, C, R) {  // mean alpha [R, R], mean premultiplied colour [3][R, R] -> {sketch, mask}
  const sketch = new Float32Array(3 * R * R), mask = new Float32Array(R * R);
  for (let p = 0; p < R * R; p++) {
    const on = A[p] > 1e-3;
    mask[p] = on ? 1 : 0;
    for (let k = 0; k < 3; k++) sketch[k * R * R + p] = on ? (C[k][p] / Math.max(A[p], 1e-6)) / 127.5 - 1 : 0;
  }
  return {sketch, mask};
}

// a photo's pixels (RGBA [R, R, 4], already cropped and scaled) -> image [1, 3, R, R] in [-1, 1]
export function imageFromRGBA(rgba, R) {
  const out = new Float32Array(3 * R * R);
  for (let p = 0; p < R * R; p++) for (let k = 0; k < 3; k++) out[k * R * R + p] = rgba[4 * p + k] / 127.5 - 1;
  return out;
}

// image [3, R, R] in [-1, 1] -> RGBA bytes [R, R, 4] (datasets.py: to_uint8)
export function imageToRGBA(img, R, offset = 0) {
  const out = new Uint8ClampedArray(4 * R * R);
  for (let p = 0; p < R * R; p++) {
    for (let k = 0; k < 3; k++) out[4 * p + k] = Math.floor(Math.min(Math.max((img[offset + k * R * R + p] + 1) * 127.5 + 0.5, 0), 255));
    out[4 * p + 3] = 255;
  }
  return out;
}

// ---- the edit distance (sketch.py: dist) -------------------------------------------------------------------
export function dist(image, sketch, mask, n, R) {  // -> Float64Array [n]
  const P = R * R, out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let num = 0, den = 0;
    for (let p = 0; p < P; p++) {
      const m = mask[i * P + p];
      den += Math.abs(m);
      if (m) for (let k = 0; k < 3; k++) num += Math.abs((image[(i * 3 + k) * P + p] - sketch[(i * 3 + k) * P + p]) * m);
    }
    out[i] = num / (1 + den);
  }
  return out;
}

// ---- paste (editing.py: _lab, _blur, paste_region, paste) ---------------------------------------------------
function lab(x, i, R, K) {  // image i of [N, 3, R, R] -> Float64Array [R*R*3] CIELAB (D65)
  const P = R * R, out = new Float64Array(3 * P), M = K.SRGB_TO_XYZ, W = K.D65_WHITE;
  const f = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  for (let p = 0; p < P; p++) {
    const lin = [0, 1, 2].map((k) => {
      const v = Math.min(Math.max((x[(i * 3 + k) * P + p] + 1) / 2, 0), 1);
      return v > 0.04045 ? ((v + 0.055) / 1.055) ** 2.4 : v / 12.92;
    });
    const xyz = [0, 1, 2].map((j) => (lin[0] * M[0][j] + lin[1] * M[1][j] + lin[2] * M[2][j]) / W[j]).map(f);
    out[3 * p] = 116 * xyz[1] - 16; out[3 * p + 1] = 500 * (xyz[0] - xyz[1]); out[3 * p + 2] = 200 * (xyz[1] - xyz[2]);
  }
  return out;
}

function blur(a, R, kernel) {  // [R, R] Float64Array, separable kernel, edges clamped
  const sum = kernel.reduce((s, v) => s + v, 0), k = kernel.map((v) => v / sum), h = (k.length - 1) / 2;
  let src = a;
  for (const axis of [0, 1]) {
    const out = new Float64Array(R * R);
    for (let y = 0; y < R; y++) for (let x = 0; x < R; x++) {
      let s = 0;
      for (let j = 0; j < k.length; j++) {
        const yy = axis === 0 ? Math.min(Math.max(y + j - h, 0), R - 1) : y, xx = axis === 1 ? Math.min(Math.max(x + j - h, 0), R - 1) : x;
        s += k[j] * src[yy * R + xx];
      }
      out[y * R + x] = s;
    }
    src = out;
  }
  return src;
}

function median(v) {
  const s = Float64Array.from(v).sort(), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

export function pasteRegion(source, mask, edited, tol, n, R, K, reference = null) {  // -> weights [N, 1, R, R]
  const before = reference || source;
  const P = R * R, out = new Float32Array(n * P);
  for (let i = 0; i < n; i++) {
    const L = lab(source, i, R, K), on = [];
    for (let p = 0; p < P; p++) if (mask[i * P + p] > 0) on.push(p);
    let w = new Float64Array(P);
    if (on.length) {
      const ref = [0, 1, 2].map((k) => median(on.map((p) => L[3 * p + k])));
      for (let p = 0; p < P; p++) {
        const d = Math.sqrt((L[3 * p] - ref[0]) ** 2 + (L[3 * p + 1] - ref[1]) ** 2 + (L[3 * p + 2] - ref[2]) ** 2);
        w[p] = Math.min(Math.max(1.5 - d / tol, 0), 1);
      }
    }
    const moved = new Float64Array(P);
    for (let p = 0; p < P; p++) {
      let m = 0;
      for (let k = 0; k < 3; k++) m = Math.max(m, Math.abs(edited[(i * 3 + k) * P + p] - before[(i * 3 + k) * P + p]));
      moved[p] = m > K.PASTE_CHANGED ? 1 : 0;
    }
    const bm = blur(moved, R, K.BLUR_KERNEL), bw = blur(w, R, K.BLUR_KERNEL);
    for (let p = 0; p < P; p++) {
      const v = Math.min(Math.max(1.5 * bw[p] * Math.min(Math.max(2 * bm[p], 0), 1), 0), 1);
      out[i * P + p] = Math.max(v, mask[i * P + p] > 0 ? 1 : 0);
    }
  }
  return out;
}

function smoothChange(edited, before, i, k, R, K) {  // editing.py smooth_change: channel k of image i
  const P = R * R;
  let d = new Float64Array(P);
  for (let p = 0; p < P; p++) d[p] = edited[(i * 3 + k) * P + p] - before[(i * 3 + k) * P + p];
  for (let s = 0; s < K.PASTE_SMOOTH; s++) d = blur(d, R, K.BLUR_KERNEL);
  return d;
}

export function paste(source, edited, mask, tol, n, R, K, reference = null) {
  // the edit's smoothed change (edited - reference for a photo, else edited - source) added inside the
  // region, the picture's own pixels elsewhere
  if (!reference && tol <= 0) return edited;
  const before = reference || source;
  const w = tol > 0 ? pasteRegion(source, mask, edited, tol, n, R, K, reference) : new Float32Array(n * R * R).fill(1);
  const P = R * R, out = new Float32Array(source.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) {
    const d = smoothChange(edited, before, i, k, R, K);
    for (let p = 0; p < P; p++) {
      const j = (i * 3 + k) * P + p, wi = w[i * P + p];
      out[j] = wi > 0 ? Math.min(Math.max(source[j] + wi * d[p], -1), 1) : source[j];
    }
  }
  return out;
}

// ---- the editors (editing.py: two_stage, choose_c, latent_edit, project) ----------------------------------
export function stepSizes(cfg, defaults) {  // EditConfig.step_sizes, from the manifest's table
  const d = defaults.step_sizes[cfg.optimizer];
  const lr = cfg.lr != null ? cfg.lr : d.lr;
  const lrC = cfg.lr_c != null ? cfg.lr_c : (d.lr_c_follows_lr ? lr : d.lr_c);
  return [lr, lrC];
}

export function pull(cfg, defaults) {  // EditConfig.pull: the anchor's weight, from the manifest's table
  return cfg.anchor != null ? cfg.anchor : defaults.step_sizes[cfg.optimizer].anchor;
}

export async function chooseC(be, st, sketch, mask) {  // one row: the state's c or its best single swap
  const C = be.cDim, cands = [Float32Array.from(st.c)];
  for (const s of slices(be.schema)) {
    if (!s.exclusive || s.k < 2) continue;
    for (let k = s.start; k < s.stop; k++) {
      const c = Float32Array.from(st.c);
      c.fill(0, s.start, s.stop);
      c[k] = 1;
      cands.push(c);
    }
  }
  const K = cands.length, z = new Float32Array(K * be.zDim), c = new Float32Array(K * C);
  cands.forEach((cc, j) => { z.set(st.z, j * be.zDim); c.set(cc, j * C); });
  const img = await be.generate(z, c, K);
  const P = be.R * be.R, sk = new Float32Array(K * 3 * P), mk = new Float32Array(K * P);
  for (let j = 0; j < K; j++) { sk.set(sketch, j * 3 * P); mk.set(mask, j * P); }
  const d = dist(img, sk, mk, K, be.R);
  let best = 0;
  for (let j = 1; j < K; j++) if (d[j] < d[best]) best = j;
  return cands[best];
}

export function draw(be, z, c, r) {  // editing.py: draw. One row's picture, with a photo's detail r when it has one
  return r ? be.generateDetail(z, c, r) : be.generate(z, c, 1);
}

export async function twoStage(be, source, sketch, mask) {  // source: {state} or {image}
  const i1 = source.image || await draw(be, source.state.z, source.state.c, source.state.r);
  return be.edit2(i1, sketch, mask);
}

export async function latentEdit(be, st, sketch, mask, cfg, steps) {
  // st: one row {z, c, m, v, t, z0, c0, r}; -> {state, image, dist}. A photo's detail r rides along:
  // the steps move (z, c) on G1 alone
  const K = be.K, Z = be.zDim, C = be.cDim, W = Z + C, adam = cfg.optimizer === "adam";
  if (!(steps >= 0)) throw new EngineError("steps must be >= 0");
  if (cfg.project_c || cfg.restarts > 1) throw new EngineError("project_c and restarts are not offered in the browser");
  const origin = st.z0 ? [st.z0, st.c0] : [st.z, st.c];
  let c = st.c;
  if (cfg.choose_c && cfg.edit_c && steps && C) c = await chooseC(be, st, sketch, mask);
  const feeds = {
    z_t: zTilde(st.z, K), c_t: cLogits(c, be.groups, 1, C, K), sketch, mask,
    m: adam && st.m ? st.m : new Float32Array(W), v: adam && st.m ? st.v : new Float32Array(W),
    t: adam && st.m ? st.t : 0, adam: adam ? 1 : 0, anchor: pull(cfg, be.defaults), edit_c: cfg.edit_c ? 1 : 0,
  };
  [feeds.lr, feeds.lr_c] = stepSizes(cfg, be.defaults);
  feeds.z_anchor = feeds.z_t;
  for (let i = 0; i < steps; i++) {
    const out = await be.step(feeds);
    feeds.z_t = out.z_t_next; feeds.m = out.m_next; feeds.v = out.v_next; feeds.t = out.t_next;
    if (C) feeds.c_t = out.c_t_next;
  }
  const next = {n: 1, z: zFromTilde(feeds.z_t, K), c: cFromLogits(feeds.c_t, be.groups, 1, C, K),
                m: adam ? feeds.m : null, v: adam ? feeds.v : null, t: adam ? Math.round(feeds.t) : 0, z0: null, c0: null,
                r: st.r || null};
  if (!(cfg.edit_c && steps)) next.c = Float32Array.from(c);
  let image;
  if (cfg.paste > 0 && steps) {  // a photo's state: G1's own change carried onto the photo's picture
    const g1 = await be.generate(next.z, next.c, 1);
    image = next.r ? paste(await draw(be, origin[0], origin[1], next.r), g1, mask, cfg.paste, 1, be.R, K,
                           await be.generate(origin[0], origin[1], 1))
      : paste(await be.generate(origin[0], origin[1], 1), g1, mask, cfg.paste, 1, be.R, K);
    next.z0 = Float32Array.from(origin[0]); next.c0 = Float32Array.from(origin[1]);
  } else {
    image = await draw(be, next.z, next.c, next.r);
  }
  return {state: next, image, dist: dist(image, sketch, mask, 1, be.R)[0]};
}

export async function project(be, image, steps) {
  // a photo [1, 3, R, R] -> {state, image, dist}: the encoder's guess and the photo's detail r when
  // the model has one, else the nearest of PROJECT_CANDIDATES random starts (the pictures of seeds
  // 0..; editing.py: _best_random_start), then `steps` Adam steps toward the photo (null: none after
  // the encoder, else PROJECT_STEPS)
  const K = be.K, Z = be.zDim, C = be.cDim, P = be.R * be.R;
  let start;
  if (be.hasEncoder) {
    const e = await be.encode(image);
    start = {n: 1, z: zFromTilde(e.z_t, K), c: cFromLogits(e.c_t || new Float32Array(0), be.groups, 1, C, K), m: null, v: null,
             t: 0, z0: null, c0: null, r: e.r};
  } else {
    const n = K.PROJECT_CANDIDATES, z = new Float32Array(n * Z), c = new Float32Array(n * C);
    for (let j = 0; j < n; j++) {
      const s = seedState(j, Z, be.schema, K);
      z.set(s.z, j * Z);
      c.set(s.c, j * C);
    }
    const rec = await be.generate(z, c, n), whole = new Float32Array(n * P).fill(1), x = new Float32Array(n * 3 * P);
    for (let j = 0; j < n; j++) x.set(image, j * 3 * P);
    const d = dist(rec, x, whole, n, be.R);
    let best = 0;
    for (let j = 1; j < n; j++) if (d[j] < d[best]) best = j;
    start = {n: 1, z: z.slice(best * Z, (best + 1) * Z), c: c.slice(best * C, (best + 1) * C), m: null, v: null, t: 0,
             z0: null, c0: null, r: null};
  }
  if (steps == null) steps = be.hasEncoder ? 0 : K.PROJECT_STEPS;
  const cfg = {...be.defaults, optimizer: "adam", lr: K.PROJECT_LR, lr_c: K.PROJECT_LR, anchor: 0, paste: 0};
  return latentEdit(be, start, image, new Float32Array(P).fill(1), cfg, steps);
}

export async function latentPhotoEdit(be, photo, sketch, mask, cfg, steps, st = null) {
  // editing.py: latent_photo_edit. A photo [1, 3, R, R]: its projection (unless `st` continues an
  // earlier photo edit) edited, G1's change carried onto the photo where the strokes concern it
  const start = st || (await project(be, photo, null)).state;
  // edited without its detail, so r.image is G1's own picture of the new (z, c)
  const r = await latentEdit(be, {...start, r: null}, sketch, mask, {...cfg, paste: 0}, steps);
  const z0 = start.z0 || start.z, c0 = start.z0 ? start.c0 : start.c;
  r.state.z0 = Float32Array.from(z0); r.state.c0 = Float32Array.from(c0); r.state.r = start.r;
  const image = paste(photo, r.image, mask, cfg.paste, 1, be.R, be.K, await be.generate(z0, c0, 1));
  return {state: r.state, image, dist: dist(image, sketch, mask, 1, be.R)[0]};
}
