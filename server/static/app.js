// neuedit web client: draw strokes over a generated picture (or a photo) and edit it, on this
// device (the in-browser runtime, engine/: ONNX Runtime Web in a worker) or on the server. Plain
// JavaScript, no build step. Both answer the same requests; the state (z, c and the optimiser's
// moments) lives here and travels with every edit, so either can continue what the other did.
"use strict";

import {Device} from "./engine/device.js";

const CANVAS = 512;             // the stroke canvas' own resolution (CSS scales it to the page)
const HISTORY_MAX = 24;         // results kept in the history strip
const PHOTO_MAX_SIDE = 1024;    // photos are downscaled in the browser before upload
const SWATCHES = ["#111111", "#ffffff", "#e8443a", "#f2a03d", "#f4dc4a", "#4caf50", "#2f6fde", "#8e4ec6",
                  "#f19bc0", "#8b5a2b", "#9e9e9e"];

const $ = (id) => document.getElementById(id);
const el = {
  model: $("model"), status: $("status"), stage: $("stage"), image: $("image"), canvas: $("strokes"),
  undo: $("undo"), redo: $("redo"), clear: $("clear"), toggle: $("toggle-strokes"), regenerate: $("regenerate"),
  submit: $("submit"), error: $("error"), errorText: $("error-text"), errorClose: $("error-close"), info: $("info"),
  history: $("history"), swatches: $("swatches"), colour: $("brush-colour"), width: $("brush-width"),
  widthValue: $("brush-width-value"), twoStage: $("method-two-stage"), latent: $("method-latent"),
  steps: $("steps"), optimizer: $("optimizer"), lr: $("lr"), attrBox: $("attributes-box"),
  attributes: $("attributes"), randomAttrs: $("random-attributes"), photo: $("photo"), download: $("download"),
  photoName: $("photo-name"), run: $("run"), runtime: $("runtime"), progress: $("load-progress"),
};
const ctx = el.canvas.getContext("2d", {willReadFrequently: true});  // read back at every Submit

const S = {
  models: [],
  model: null,            // the model's description from /api/models
  seed: null,             // the seed of the current generated picture
  state: null,            // {z, c[, m, v, t]} as the server returned it
  base: {kind: "state", exact: true},  // what the picture on screen is (submitNow): G1's state, or a photo
  photoName: null,        // the uploaded file the picture comes from (the photo, its projection, their edits)
  image: null,            // data URL of the picture on screen
  strokes: [],            // committed strokes [{colour, width, points: [[x, y], ...]}], canvas units
  undo: [], redo: [],     // earlier / undone stroke lists (each list is never mutated)
  current: null,          // the stroke being drawn
  pointer: null,          // the pointer id drawing it
  showStrokes: true,
  history: [], at: -1,    // results, and which one is on screen
  busy: 0,
  manifest: null,         // web.json: models, graph contract and files (null: an older server without it)
  runMode: "auto",        // "auto" (this device once its runtime has loaded the model), "device", "server"
  device: null,           // the in-browser runtime once started (engine/device.js)
  deviceError: null,      // why it could not start
  firstSeed: null,        // ?seed=N names the first picture (with ?model=NAME: a link to a picture)
};

// ---- where edits run ------------------------------------------------------------------------------
const hasServer = () => !S.manifest || S.manifest.server;

function currentRuntime() {  // decided once per action: the body is built for it
  const ready = S.device && S.model && S.device.loaded.has(S.model.name);
  if (S.runMode === "server" && hasServer()) return "server";
  if (ready) return "device";
  return hasServer() && S.runMode !== "device" ? "server" : "device";
}

function runtimeLabel() {
  if (currentRuntime() === "server") return "on the server";
  const t = S.device ? S.device.info.threads : 1;
  return `on this device (WebAssembly, ${t} thread${t > 1 ? "s" : ""})`;
}

function showProgress(p) {
  el.progress.hidden = false;
  el.progress.max = Math.max(1, p.total || 1);
  el.progress.value = Math.min(p.loaded, el.progress.max);
  el.progress.title = `downloading ${p.what} for this device: ${(p.loaded / 1e6).toFixed(1)} of ${((p.total || 0) / 1e6).toFixed(1)} MB`;
  el.runtime.textContent = `downloading ${p.what}: ${(p.loaded / 1e6).toFixed(1)} / ${((p.total || 0) / 1e6).toFixed(1)} MB`;
}

async function startDevice() {
  // the runtime, then the current model; until then an automatic page uses the server
  try {
    if (!S.device) S.device = await Device.start(S.manifest, document.baseURI, showProgress);
    await loadOnDevice(S.model.name);
  } catch (e) {
    console.warn("in-browser runtime unavailable:", e);
    S.deviceError = e;
    if (!hasServer() || S.runMode === "device") showError(new Error(`This browser cannot run the models itself: ${e.message}`));
  } finally {
    el.progress.hidden = true;
    setBusy(0);
  }
}

async function loadOnDevice(name) {
  const total = Object.values(S.manifest.models.find((m) => m.name === name).graphs).reduce((a, f) => a + f.bytes, 0);
  await S.device.load(name, (p) => showProgress({...p, what: `the ${name} model`, loaded: p.loaded, total}));
  el.progress.hidden = true;
}

async function deviceCall(path, body) {
  if (!S.device) {  // a page without a server waits for its runtime
    if (S.deviceError) throw S.deviceError;
    await startDevice();
    if (!S.device) throw S.deviceError;
  }
  if (!S.device.loaded.has(body.model)) await loadOnDevice(body.model);
  return S.device.api(path, body);
}


// ---- server ------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(message, code, status) { super(message); this.code = code; this.status = status; }
}

async function api(path, body, runtime = currentRuntime()) {
  setBusy(+1);
  try {
    if (runtime === "device" && path !== "/api/models") return await deviceCall(path, body);
    let r;
    try {
      r = await fetch(path, body === undefined ? {} : {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    } catch (e) {
      throw new ApiError("Cannot reach the server. Is it running?", "network", 0);
    }
    let data = null;
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) {
      let msg = (data && data.error && data.error.message) || `${r.status} ${r.statusText}`;
      if (r.status === 503) msg = `The server is busy; try again in ${r.headers.get("Retry-After") || "a few"} s.`;
      throw new ApiError(msg, data && data.error && data.error.code, r.status);
    }
    return data;
  } finally {
    setBusy(-1);
  }
}

function setBusy(delta) {
  S.busy += delta;
  const busy = S.busy > 0;
  document.body.classList.toggle("busy", busy);
  el.stage.setAttribute("aria-busy", String(busy));
  el.submit.disabled = busy || !S.image;
  el.regenerate.disabled = busy || !S.model;
  el.status.textContent = busy ? "Working…" : (S.model ? `${S.model.name} · ${S.model.resolution}×${S.model.resolution}` : "");
  if (!busy || !el.runtime.textContent.startsWith("downloading")) el.runtime.textContent = S.model ? runtimeLabel() : "";
  document.body.dataset.runtime = S.model ? currentRuntime() : "";
}

function showError(err) {
  el.errorText.textContent = err instanceof Error ? err.message : String(err);
  el.error.hidden = false;
}
function clearError() { el.error.hidden = true; el.errorText.textContent = ""; }

// Runs an action, showing its failure instead of throwing.
async function attempt(fn) {
  try { await fn(); clearError(); } catch (e) { console.error(e); showError(e); }
}

// ---- strokes -----------------------------------------------------------------------------------------
function brushWidth() { return parseFloat(el.width.value) * CANVAS / (S.model ? S.model.resolution : 64); }

function drawStroke(s) {
  ctx.strokeStyle = ctx.fillStyle = s.colour;
  ctx.lineWidth = s.width;
  ctx.lineCap = ctx.lineJoin = "round";
  const p = s.points;
  if (p.length === 1) {
    ctx.beginPath(); ctx.arc(p[0][0], p[0][1], s.width / 2, 0, 2 * Math.PI); ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(p[0][0], p[0][1]);
  for (let i = 1; i < p.length; i++) ctx.lineTo(p[i][0], p[i][1]);
  ctx.stroke();
}

let frame = 0;
function redraw() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    ctx.clearRect(0, 0, CANVAS, CANVAS);
    for (const s of S.strokes) drawStroke(s);
    if (S.current) drawStroke(S.current);
  });
}

function renderNow() {  // synchronous redraw before reading the canvas
  if (frame) { cancelAnimationFrame(frame); frame = 0; }
  ctx.clearRect(0, 0, CANVAS, CANVAS);
  for (const s of S.strokes) drawStroke(s);
}

function commit(strokes) {
  S.undo.push(S.strokes);
  S.strokes = strokes;
  S.redo = [];
  strokesChanged();
}
function undo() {
  if (!S.undo.length) return;
  S.redo.push(S.strokes);
  S.strokes = S.undo.pop();
  strokesChanged();
}
function redo() {
  if (!S.redo.length) return;
  S.undo.push(S.strokes);
  S.strokes = S.redo.pop();
  strokesChanged();
}
function clearStrokes() { if (S.strokes.length) commit([]); }
function strokesChanged() {
  el.undo.disabled = !S.undo.length;
  el.redo.disabled = !S.redo.length;
  el.clear.disabled = !S.strokes.length;
  el.canvas.dataset.strokes = String(S.strokes.length);
  redraw();
}
function setShowStrokes(show) {
  S.showStrokes = show;
  el.canvas.classList.toggle("hidden", !show);
  el.toggle.setAttribute("aria-pressed", String(show));
}

function canvasPoint(e) {
  const r = el.canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * CANVAS / r.width, (e.clientY - r.top) * CANVAS / r.height];
}

el.canvas.addEventListener("pointerdown", (e) => {
  if (S.current || (e.pointerType === "mouse" && e.button !== 0)) return;
  e.preventDefault();
  el.canvas.setPointerCapture(e.pointerId);
  if (!S.showStrokes) setShowStrokes(true);  // drawing blind would be confusing
  S.pointer = e.pointerId;
  S.current = {colour: el.colour.value, width: brushWidth(), points: [canvasPoint(e)]};
  redraw();
});
el.canvas.addEventListener("pointermove", (e) => {
  if (!S.current || e.pointerId !== S.pointer) return;
  e.preventDefault();
  const events = (e.getCoalescedEvents && e.getCoalescedEvents()) || [];
  for (const ev of (events.length ? events : [e])) S.current.points.push(canvasPoint(ev));
  redraw();
});
function endStroke(e) {
  if (!S.current || e.pointerId !== S.pointer) return;
  const s = S.current;
  S.current = null;
  S.pointer = null;
  commit([...S.strokes, s]);
}
el.canvas.addEventListener("pointerup", endStroke);
el.canvas.addEventListener("pointercancel", endStroke);
el.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
// No browser gestures from strokes (touch-action: none already stops scrolling): without this a
// quick stroke counts as a fling, and the tap on Submit right after it only "stops the fling".
for (const t of ["touchstart", "touchmove"]) el.canvas.addEventListener(t, (e) => e.preventDefault(), {passive: false});

// The sketch: the stroke canvas' RGBA pixels (alpha marks strokes), at canvas size: a PNG for the
// server, the pixels themselves for this device (the same bytes). Either downsizes them to the
// model's resolution with area averaging, so thin strokes survive.
function sketchFor(runtime) {
  if (runtime !== "device") return sketchPNG();
  renderNow();
  return {rgba: ctx.getImageData(0, 0, CANVAS, CANVAS).data, width: CANVAS, height: CANVAS};
}

function sketchPNG() {
  renderNow();
  return new Promise((resolve, reject) => {
    el.canvas.toBlob((blob) => {
      if (!blob) { reject(new Error("cannot encode the strokes")); return; }
      blobToBase64(blob).then(resolve, reject);
    }, "image/png");
  });
}
function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(String(fr.result).split(",", 2)[1]);
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(blob);
  });
}

// ---- the picture, history ----------------------------------------------------------------------------
function showImage(src) {
  S.image = src;
  el.image.src = src;
  el.download.href = src;
  el.download.setAttribute("aria-disabled", "false");
  el.download.download = `neuedit-${S.model ? S.model.name : "image"}${S.seed !== null ? "-" + S.seed : ""}.png`;
  el.submit.disabled = S.busy > 0;
}

function pushHistory(label) {
  S.history = S.history.slice(0, HISTORY_MAX - 1);
  S.history.unshift({label, image: S.image, state: S.state, seed: S.seed, base: S.base, strokes: S.strokes,
                     model: S.model.name, photoName: S.photoName, info: el.info.textContent, infoTitle: el.info.title});
  S.at = 0;
  renderHistory();
}

function renderHistory() {
  el.history.replaceChildren(...S.history.map((h, i) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.title = `${h.label} — click to go back to this picture`;
    b.setAttribute("aria-current", String(i === S.at));
    const img = document.createElement("img");
    img.src = h.image;
    img.alt = h.label;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = h.label;
    b.append(img, tag);
    b.addEventListener("click", () => restore(i));
    li.append(b);
    return li;
  }));
}

function restore(i) {
  const h = S.history[i];
  if (!h || h.model !== S.model.name) return;
  S.state = h.state;
  S.seed = h.seed;
  S.base = h.base;
  setAttributes(h.state ? h.state.c : null);
  setPhotoName(h.photoName);
  el.info.textContent = h.info;  // what the line said about this result
  el.info.title = h.infoTitle;
  showImage(h.image);
  if (h.strokes !== S.strokes) commit(h.strokes);
  S.at = i;
  updateMethods();
  renderHistory();
}

function updateInfo(extra, title = "") {
  const parts = [];
  if (S.base.kind === "photo" && S.photoName) parts.push("editing an uploaded photo");
  else if (S.seed !== null) parts.push(`seed ${S.seed}`);
  if (extra) parts.push(extra);
  el.info.textContent = parts.join(" · ");
  el.info.title = title;
}

// The server's `dist` (neuedit/runtime/sketch.py): the mean L1 distance per pixel, summed over
// R, G and B on the [-1, 1] scale, so 0 (the very colours) .. 6 (black against white in every
// channel). As a person reads it: the share of the whole colour range the picture is off by.
function percentOff(dist) {
  const p = Math.min(100, Math.max(0, dist) / 6 * 100);
  return `${p < 10 ? p.toFixed(1) : p.toFixed(0)} %`;
}
const STROKES_OFF_TITLE = "How far the picture's colours under your strokes are from the strokes' colours, "
  + "as a share of the whole colour range: 0 % = exactly the strokes' colours, 100 % = as far off as possible "
  + "(black for white). The model trades this against keeping a plausible picture.";

function setPhotoName(name) {
  S.photoName = name || null;
  el.photoName.textContent = S.photoName || "";
  el.photoName.title = S.photoName ? `This picture comes from ${S.photoName}` : "";
}

// ---- attributes ------------------------------------------------------------------------------------------
function buildAttributes(schema) {
  el.attributes.replaceChildren();
  let offset = 0;
  for (const g of schema.groups) {
    const box = document.createElement("div");
    box.className = "group";
    const title = document.createElement("span");
    title.textContent = g.name.replace(/_/g, " ");
    if (g.exclusive && g.attributes.length > 1) {
      const sel = document.createElement("select");
      sel.dataset.offset = offset;
      sel.dataset.size = g.attributes.length;
      sel.setAttribute("aria-label", title.textContent);
      sel.append(new Option("—", "-1"));
      g.attributes.forEach((a, k) => sel.append(new Option(a.replace(/_/g, " "), String(k))));
      sel.addEventListener("change", attributesEdited);
      box.append(title, sel);
    } else {
      const checks = document.createElement("div");
      checks.className = "checks";
      g.attributes.forEach((a, k) => {
        const lab = document.createElement("label");
        const cb = document.createElement("input");
        cb.type = "checkbox";
        cb.dataset.index = offset + k;
        cb.addEventListener("change", attributesEdited);
        lab.append(cb, " " + a.replace(/_/g, " "));
        checks.append(lab);
      });
      box.append(title, checks);
    }
    el.attributes.append(box);
    offset += g.attributes.length;
  }
  if (!schema.groups.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "This model has no attributes.";
    el.attributes.append(p);
  }
  el.randomAttrs.disabled = !schema.groups.length;
}

function readAttributes() {
  const c = new Array(S.model.c_dim).fill(0);
  for (const sel of el.attributes.querySelectorAll("select")) {
    const k = parseInt(sel.value, 10);
    if (k >= 0) c[parseInt(sel.dataset.offset, 10) + k] = 1;
  }
  for (const cb of el.attributes.querySelectorAll("input[type=checkbox]")) {
    if (cb.checked) c[parseInt(cb.dataset.index, 10)] = 1;
  }
  return c;
}

// c: the state's attributes; null when they are unknown (a photo): every menu shows "—"
function setAttributes(c) {
  for (const sel of el.attributes.querySelectorAll("select")) {
    const off = parseInt(sel.dataset.offset, 10), n = parseInt(sel.dataset.size, 10);
    let best = -1, bestV = 0.5;
    for (let k = 0; c && k < n; k++) if (c[off + k] > bestV) { best = k; bestV = c[off + k]; }
    sel.value = String(best);
  }
  for (const cb of el.attributes.querySelectorAll("input[type=checkbox]")) {
    cb.checked = !!c && c[parseInt(cb.dataset.index, 10)] > 0.5;
    cb.indeterminate = !c;
  }
}

function attributesEdited() {
  el.randomAttrs.checked = false;  // the person chose: keep their choice on "New" too
  if (S.base.kind === "state") attempt(() => generate({keepSeed: true, label: "attributes"}));
}

// ---- actions --------------------------------------------------------------------------------------------
function method() { return el.latent.checked ? "latent" : "two-stage"; }

function updateMethods() {
  const m = S.model ? S.model.methods : [];
  el.twoStage.disabled = !m.includes("two-stage");
  el.latent.disabled = !m.includes("latent");
  if (el.latent.checked && el.latent.disabled) el.twoStage.checked = true;
  if (el.twoStage.checked && el.twoStage.disabled && !el.latent.disabled) el.latent.checked = true;
  document.body.classList.toggle("method-two-stage", method() === "two-stage");
  el.submit.disabled = S.busy > 0 || !S.image || (el.twoStage.disabled && el.latent.disabled);
}

async function generate({keepSeed = false, label = "new"} = {}) {
  if (!keepSeed) clearStrokes();  // a new picture: the old strokes are not for it (Undo brings them back)
  const body = {model: S.model.name};
  if (keepSeed && S.seed !== null) body.seed = S.seed;
  else if (S.firstSeed !== null) body.seed = S.firstSeed;  // a link's ?seed=: its first picture
  S.firstSeed = null;
  if (S.model.c_dim && !el.randomAttrs.checked) body.c = readAttributes();
  const r = await api("/api/generate", body);
  if (r.model !== S.model.name) return;  // the model changed meanwhile
  S.seed = r.seed;
  S.state = r.state;
  S.base = {kind: "state", exact: true};
  setPhotoName(null);
  setAttributes(r.state.c);
  showImage("data:image/png;base64," + r.image);
  updateMethods();
  updateInfo();
  pushHistory(label);
}

async function submit() {
  if (!S.model || !S.image || S.busy) return;
  setBusy(+1);  // from the first step: between the projection and the edit the page is not idle
  try { await submitNow(); } finally { setBusy(-1); }
}

// The picture is the state: an edit starts from whatever is on screen. S.base says what that is:
//   {kind: "state", exact}: G1(S.state) (exact) or a latent edit of it (its state continues it);
//   {kind: "photo", data, pixels, latent}: an upload or an earlier result taken as a photo, and
//   `latent` the state of the latent edit of that photo now on screen (null: the photo itself).
// Two-stage edits the picture itself; a latent edit continues its own state, else starts from the
// picture as a photo (projected, edited, the change carried onto it).
async function pictureAsPhoto() {
  await el.image.decode();
  const R = S.model.resolution, c = document.createElement("canvas");
  c.width = c.height = R;
  const g = c.getContext("2d", {willReadFrequently: true});
  g.drawImage(el.image, 0, 0, R, R);
  return {kind: "photo", data: S.image.split(",", 2)[1], pixels: {rgba: g.getImageData(0, 0, R, R).data, size: R},
          latent: null};
}

async function submitNow() {
  const m = method();
  let base = S.base;
  const onScreen = base.kind === "photo" ? base.latent === null : base.exact;  // the picture is the base itself
  if (m === "two-stage" && !(base.kind === "state" && base.exact) && !(base.kind === "photo" && onScreen)) {
    base = await pictureAsPhoto();
  }
  const rt = currentRuntime();
  const body = {model: S.model.name, method: m, sketch: await sketchFor(rt)};
  if (base.kind === "photo") {
    body.image = photoFor(rt, base);
    if (m === "latent" && base.latent) body.state = base.latent;
  } else {
    body.state = S.state;
  }
  if (m === "latent") {
    body.steps = Math.max(0, Math.min(parseInt(el.steps.value, 10) || 1, parseInt(el.steps.max, 10) || 50));
    body.optimizer = el.optimizer.value;
    const lr = parseFloat(el.lr.value);
    if (lr > 0) body.lr = lr;
  }
  const r = await api("/api/edit", body, rt);
  if (r.model !== S.model.name) return;
  if (r.state) S.state = r.state;
  if (r.state && r.state.c) setAttributes(r.state.c);  // a latent edit may change the attributes too
  showImage("data:image/png;base64," + r.image);
  if (m === "two-stage") S.base = await pictureAsPhoto();  // the result is the next edit's picture
  else S.base = base.kind === "photo" ? {...base, latent: r.state} : {kind: "state", exact: false};
  if (r.dist !== undefined) updateInfo(`colour under the strokes: ${percentOff(r.dist)} off (0 % = exact)`, STROKES_OFF_TITLE);
  else updateInfo();
  pushHistory(m === "latent" ? `latent ×${r.steps}` : "two-stage");
}

// a photo for the runtime: the JPEG for the server (it crops and scales it itself), the pixels
// of the centre crop at the model's resolution for this device
function photoFor(runtime, base = S.base) { return runtime === "device" ? base.pixels : base.data; }

async function loadPhoto(file) {
  if (!S.model.methods.includes("two-stage")) throw new Error(`${S.model.name} cannot edit photos (no two-stage model).`);
  let bmp;
  try { bmp = await createImageBitmap(file); } catch (e) {
    throw new Error(`Cannot read ${file.name}: not an image this browser can decode.`);
  }
  const scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(bmp.width, bmp.height));
  const up = document.createElement("canvas");
  up.width = Math.max(1, Math.round(bmp.width * scale));
  up.height = Math.max(1, Math.round(bmp.height * scale));
  up.getContext("2d").drawImage(bmp, 0, 0, up.width, up.height);
  const data = up.toDataURL("image/jpeg", 0.92).split(",", 2)[1];
  // what the server will see: a centre crop, resized to the model's resolution
  const R = S.model.resolution, side = Math.min(bmp.width, bmp.height);
  const pv = document.createElement("canvas");
  pv.width = pv.height = R;
  const pctx = pv.getContext("2d");
  pctx.imageSmoothingQuality = "high";
  pctx.drawImage(bmp, (bmp.width - side) / 2, (bmp.height - side) / 2, side, side, 0, 0, R, R);
  bmp.close && bmp.close();
  S.base = {kind: "photo", data, pixels: {rgba: pctx.getImageData(0, 0, R, R).data, size: R}, latent: null};
  S.state = null;
  S.seed = null;
  setPhotoName(file.name);
  setAttributes(null);  // unknown until a projection gives a state
  showImage(pv.toDataURL("image/png"));
  clearStrokes();
  updateMethods();
  updateInfo();
  pushHistory("photo");
}

async function selectModel(name) {
  S.model = S.models.find((m) => m.name === name) || S.models[0];
  el.model.value = S.model.name;
  buildAttributes(S.model.schema);
  el.attrBox.hidden = !S.model.c_dim;
  document.body.classList.toggle("no-latent", !S.model.methods.includes("latent"));
  S.history = [];
  S.at = -1;
  S.seed = null;
  S.base = {kind: "state", exact: true};
  setPhotoName(null);
  clearStrokes();
  renderHistory();
  updateMethods();
  setBusy(0);
  if (S.device && S.runMode !== "server" && !S.device.loaded.has(S.model.name)) {
    // an automatic page goes on with the server while this device downloads the model
    const loading = loadOnDevice(S.model.name).then(() => setBusy(0), (e) => { console.warn(e); el.progress.hidden = true; });
    if (!hasServer() || S.runMode === "device") await loading;
  }
  await generate();
}

// ---- wiring --------------------------------------------------------------------------------------------
function wire() {
  for (const c of SWATCHES) {
    const b = document.createElement("button");
    b.type = "button";
    b.style.background = c;
    b.title = c;
    b.setAttribute("aria-label", `colour ${c}`);
    b.setAttribute("aria-pressed", String(c === el.colour.value));
    b.addEventListener("click", () => { el.colour.value = c; markSwatch(); });
    el.swatches.append(b);
  }
  el.colour.addEventListener("input", markSwatch);
  el.width.addEventListener("input", () => { el.widthValue.textContent = `${el.width.value} px`; });
  el.undo.addEventListener("click", undo);
  el.redo.addEventListener("click", redo);
  el.clear.addEventListener("click", clearStrokes);
  el.toggle.addEventListener("click", () => setShowStrokes(!S.showStrokes));
  el.submit.addEventListener("click", () => attempt(submit));
  el.regenerate.addEventListener("click", () => attempt(() => generate()));
  el.twoStage.addEventListener("change", updateMethods);
  el.latent.addEventListener("change", updateMethods);
  el.model.addEventListener("change", () => attempt(() => selectModel(el.model.value)));
  el.errorClose.addEventListener("click", clearError);
  el.photo.addEventListener("change", () => {
    const f = el.photo.files && el.photo.files[0];
    el.photo.value = "";
    if (f) attempt(() => loadPhoto(f));
  });
  el.download.addEventListener("click", (e) => { if (!S.image) e.preventDefault(); });
  el.run.addEventListener("change", () => attempt(async () => {
    S.runMode = el.run.value;
    localStorage.setItem("neuedit-run", S.runMode);
    if (S.runMode !== "server" && S.manifest && !S.deviceError) await startDevice();
    setBusy(0);
  }));
  document.addEventListener("keydown", onKey);
}

function markSwatch() {
  for (const b of el.swatches.children) b.setAttribute("aria-pressed", String(b.title === el.colour.value));
}

function onKey(e) {
  const t = e.target;
  const typing = (t.tagName === "INPUT" && !["checkbox", "radio", "range", "color", "button", "file"].includes(t.type))
    || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  if (mod && !typing && key === "z" && !e.shiftKey) { e.preventDefault(); undo(); return; }
  if (mod && !typing && (key === "y" || (key === "z" && e.shiftKey))) { e.preventDefault(); redo(); return; }
  if (typing || mod || e.altKey) return;
  if (e.key === "Enter" && t.tagName !== "BUTTON" && t.tagName !== "A" && t.type !== "file") { e.preventDefault(); attempt(submit); }
  else if (key === "r" && !S.busy) attempt(() => generate());
  else if (key === "c") clearStrokes();
  else if (key === "h") setShowStrokes(!S.showStrokes);
  else if (key === "[" || key === "]") {
    const v = parseFloat(el.width.value) + (key === "]" ? 0.5 : -0.5);
    el.width.value = String(Math.min(8, Math.max(0.5, v)));
    el.widthValue.textContent = `${el.width.value} px`;
  }
}

async function loadManifest() {
  // web.json: next to the page on a static site, answered by the server otherwise; an older
  // server without it still serves the page (server only)
  try {
    const r = await fetch("web.json");
    if (r.ok) return await r.json();
  } catch (e) { /* unreachable: handled below */ }
  return null;
}

function chooseRunMode() {
  const asked = new URLSearchParams(location.search).get("run") || localStorage.getItem("neuedit-run");
  const modes = hasServer() ? ["auto", "device", "server"] : ["device"];
  S.runMode = modes.includes(asked) ? asked : modes[0];
  el.run.replaceChildren(...modes.map((m) => new Option({auto: "Automatic", device: "On this device", server: "On the server"}[m], m)));
  el.run.value = S.runMode;
  el.run.disabled = modes.length < 2;
  el.run.parentElement.hidden = !S.manifest;
}

async function main() {
  wire();
  strokesChanged();
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("sw.js").catch((e) => console.warn("no offline copy of the page:", e));
  }
  try {
    S.manifest = await loadManifest();
    chooseRunMode();
    if (!S.manifest && !hasServer()) throw new Error("web.json is missing: this site was not written by neuedit export-web.");
    const r = S.manifest ? {models: S.manifest.models} : await api("/api/models", undefined, "server");
    S.models = r.models;
    if (!S.models.length) throw new Error("The server has no models.");
    const q = new URLSearchParams(location.search), seed = Number(q.get("seed"));
    S.model = S.models.find((m) => m.name === q.get("model")) || S.models[0];
    if (q.get("seed") !== null && Number.isSafeInteger(seed) && seed >= 0) S.firstSeed = seed;
    if (S.manifest && S.runMode !== "server") {
      const started = startDevice();
      if (!hasServer() || S.runMode === "device") await started;
    }
    el.model.replaceChildren(...S.models.map((m) => new Option(`${m.name} (${m.domain})`, m.name)));
    el.model.disabled = S.models.length < 2;
    await selectModel(S.model.name);
    clearError();
  } catch (e) {
    console.error(e);
    showError(e);
  }
  document.body.dataset.ready = "1";
}

main();
