// neuedit web client: draw strokes over a generated picture (or a photo) and send them to the
// server. Plain JavaScript, no build step. The server is stateless: the state (z, c and the
// optimiser's moments) lives here and travels with every edit request.
"use strict";

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
};
const ctx = el.canvas.getContext("2d");

const S = {
  models: [],
  model: null,            // the model's description from /api/models
  seed: null,             // the seed of the current generated picture
  state: null,            // {z, c[, m, v, t]} as the server returned it
  base: {kind: "state"},  // what edits start from: the state's picture, or {kind: "photo", data, preview}
  image: null,            // data URL of the picture on screen
  strokes: [],            // committed strokes [{colour, width, points: [[x, y], ...]}], canvas units
  undo: [], redo: [],     // earlier / undone stroke lists (each list is never mutated)
  current: null,          // the stroke being drawn
  pointer: null,          // the pointer id drawing it
  showStrokes: true,
  history: [], at: -1,    // results, and which one is on screen
  busy: 0,
};

// ---- server ------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(message, code, status) { super(message); this.code = code; this.status = status; }
}

async function api(path, body) {
  setBusy(+1);
  try {
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

// The sketch: the stroke canvas as an RGBA PNG (alpha marks strokes). It goes at canvas size;
// the server downsizes it to the model's resolution with area averaging, so thin strokes survive.
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
                     model: S.model.name});
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
  if (h.state && h.state.c) setAttributes(h.state.c);
  showImage(h.image);
  if (h.strokes !== S.strokes) commit(h.strokes);
  S.at = i;
  updateMethods();
  renderHistory();
}

function updateInfo(extra) {
  const parts = [];
  if (S.base.kind === "photo") parts.push("editing an uploaded photo");
  else if (S.seed !== null) parts.push(`seed ${S.seed}`);
  if (extra) parts.push(extra);
  el.info.textContent = parts.join(" · ");
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

function setAttributes(c) {
  for (const sel of el.attributes.querySelectorAll("select")) {
    const off = parseInt(sel.dataset.offset, 10), n = parseInt(sel.dataset.size, 10);
    let best = -1, bestV = 0.5;
    for (let k = 0; k < n; k++) if (c[off + k] > bestV) { best = k; bestV = c[off + k]; }
    sel.value = String(best);
  }
  for (const cb of el.attributes.querySelectorAll("input[type=checkbox]")) {
    cb.checked = c[parseInt(cb.dataset.index, 10)] > 0.5;
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
  const body = {model: S.model.name};
  if (keepSeed && S.seed !== null) body.seed = S.seed;
  if (S.model.c_dim && !el.randomAttrs.checked) body.c = readAttributes();
  const r = await api("/api/generate", body);
  if (r.model !== S.model.name) return;  // the model changed meanwhile
  S.seed = r.seed;
  S.state = r.state;
  S.base = {kind: "state"};
  setAttributes(r.state.c);
  showImage("data:image/png;base64," + r.image);
  updateMethods();
  updateInfo();
  pushHistory(label);
}

async function project() {
  // the latent editor starts from a state: a photo is first projected into the latent space
  // (the picture becomes G1's reconstruction of it, which is what the latent editor can change)
  const r = await api("/api/project", {model: S.model.name, image: S.base.data});
  if (r.model !== S.model.name) return false;
  S.state = r.state;
  S.seed = null;
  S.base = {kind: "state"};
  if (r.state.c && r.state.c.length) setAttributes(r.state.c);
  showImage("data:image/png;base64," + r.image);
  updateInfo(`projected photo · distance to it ${r.dist.toFixed(3)}`);
  pushHistory("projected");
  return true;
}

async function submit() {
  if (!S.model || !S.image || S.busy) return;
  const m = method();
  if (m === "latent" && S.base.kind === "photo" && !(await project())) return;
  const body = {model: S.model.name, method: m, sketch: await sketchPNG()};
  if (S.base.kind === "photo") body.image = S.base.data;
  else body.state = S.state;
  if (m === "latent") {
    body.steps = Math.max(0, Math.min(parseInt(el.steps.value, 10) || 1, parseInt(el.steps.max, 10) || 50));
    body.optimizer = el.optimizer.value;
    const lr = parseFloat(el.lr.value);
    if (lr > 0) body.lr = lr;
  }
  const r = await api("/api/edit", body);
  if (r.model !== S.model.name) return;
  if (r.state) S.state = r.state;
  showImage("data:image/png;base64," + r.image);
  updateInfo(r.dist !== undefined ? `distance to strokes ${r.dist.toFixed(3)}` : "");
  pushHistory(m === "latent" ? `latent ×${r.steps}` : "two-stage");
}

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
  S.base = {kind: "photo", data};
  S.state = null;
  S.seed = null;
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
  S.base = {kind: "state"};
  renderHistory();
  updateMethods();
  setBusy(0);
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
  if (e.key === "Enter" && t.tagName !== "BUTTON" && t.tagName !== "A") { e.preventDefault(); attempt(submit); }
  else if (key === "r" && !S.busy) attempt(() => generate());
  else if (key === "c") clearStrokes();
  else if (key === "h") setShowStrokes(!S.showStrokes);
  else if (key === "[" || key === "]") {
    const v = parseFloat(el.width.value) + (key === "]" ? 0.5 : -0.5);
    el.width.value = String(Math.min(8, Math.max(0.5, v)));
    el.widthValue.textContent = `${el.width.value} px`;
  }
}

async function main() {
  wire();
  strokesChanged();
  try {
    const r = await api("/api/models");
    S.models = r.models;
    if (!S.models.length) throw new Error("The server has no models.");
    el.model.replaceChildren(...S.models.map((m) => new Option(`${m.name} (${m.domain})`, m.name)));
    el.model.disabled = S.models.length < 2;
    await selectModel(S.models[0].name);
    clearError();
  } catch (e) {
    console.error(e);
    showError(e);
  }
  document.body.dataset.ready = "1";
}

main();
