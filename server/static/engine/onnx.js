// The browser's backend: a model's graphs in ONNX Runtime Web sessions, fed and read by the
// graph contract of web.json (neuedit/runtime/graphs.py: names, order, axes; inputs whose axes
// hold "C" are absent when the model has no condition), like the Python engine's OnnxBackend.
"use strict";

import {EngineError, groupMatrix} from "./core.js";

export class OnnxBackend {
  // ort: the onnxruntime-web module; model: web.json's entry; graphs: {name: ArrayBuffer}
  // fetchGraph(name) -> ArrayBuffer: a graph of the model left out of `graphs` (core.ON_DEMAND), loaded when first run
  static async create(ort, manifest, model, graphs, options, fetchGraph = null) {
    const be = new OnnxBackend();
    be.ort = ort;
    be.contract = manifest.contract;
    be.K = manifest.constants;
    be.name = model.name;
    be.R = model.resolution; be.zDim = model.z_dim; be.cDim = model.c_dim;
    be.schema = model.schema;
    be.defaults = model.defaults;
    be.groups = groupMatrix(model.schema, model.c_dim);
    be.detail = model.detail || null;  // {channels, size} of a photo's detail map r, with an encoder
    be.files = model.graphs;
    be.options = options;
    be.fetchGraph = fetchGraph;
    be.sessions = {};
    for (const [name, bytes] of Object.entries(graphs)) await be.open(name, bytes);
    be.hasEncoder = be.has("encoder") && be.has("g1_detail") && !!be.detail;
    return be;
  }

  async open(name, bytes) {
    this.sessions[name] = await this.ort.InferenceSession.create(new Uint8Array(bytes), this.options);
    this.check(name);
  }

  async session(graph) {  // a loaded graph's session; one left for later (core.ON_DEMAND) is fetched now
    if (!this.sessions[graph] && this.files[graph] && this.fetchGraph) {
      this.pending = this.pending || {};
      this.pending[graph] = this.pending[graph] || this.fetchGraph(graph).then((b) => this.open(graph, b));
      await this.pending[graph];
    }
    return this.sessions[graph];
  }

  ports(graph, side) {  // the contract's ports of `graph` for this model
    return this.contract[graph][side].filter((p) => this.cDim || !(p.axes.includes("C") || p.name === "c_t_next"));
  }

  check(graph) {  // the session's names are the contract's (the Python engine checks the same at load)
    const s = this.sessions[graph], want = (side) => this.ports(graph, side).map((p) => p.name);
    const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (!same([...s.inputNames].sort(), [...want("inputs")].sort()) || !same(s.outputNames, want("outputs")))
      throw new EngineError(`${this.name}: ${graph} does not match the graph contract (inputs ${s.inputNames}, ` +
                            `outputs ${s.outputNames}); re-export the bundle`, "bad_model", 500);
  }

  shape(p, n) {
    const d = this.detail || {};
    const sizes = {N: n, Z: this.zDim, C: this.cDim, W: this.zDim + this.cDim, R: this.R, F: d.channels, S: d.size};
    return p.axes.map((a) => (typeof a === "string" ? sizes[a] : a));
  }

  async run(graph, values, n) {
    const s = await this.session(graph);
    if (!s) throw new EngineError(`model ${this.name} has no ${this.contract[graph].file}`, "method_unavailable");
    const feeds = {};
    for (const p of this.ports(graph, "inputs")) {
      const v = values[p.name];
      const data = v instanceof Float32Array ? v : Float32Array.of(v);
      feeds[p.name] = new this.ort.Tensor("float32", data, this.shape(p, n));
    }
    const out = await s.run(feeds), res = {};
    for (const p of this.ports(graph, "outputs")) res[p.name] = p.axes.length ? out[p.name].data : out[p.name].data[0];
    return res;
  }

  async generate(z, c, n) {
    // G1 of one state is asked for again and again (the picture on screen is the source of the next
    // two-stage edit and of every paste): the last few single pictures are kept
    if (n !== 1) return (await this.run("g1", {z, c}, n)).image;
    const key = Array.prototype.join.call(z) + "|" + Array.prototype.join.call(c);
    this.memo = this.memo || new Map();
    if (this.memo.has(key)) return this.memo.get(key);
    const image = (await this.run("g1", {z, c}, 1)).image;
    this.memo.set(key, image);
    if (this.memo.size > 8) this.memo.delete(this.memo.keys().next().value);
    return image;
  }
  edit2(image, sketch, mask) { return this.run("g2", {image, sketch, mask}, 1).then((o) => o.edited); }
  encode(image) { return this.run("encoder", {image}, 1); }
  generateDetail(z, c, r) { return this.run("g1_detail", {z, c, r}, 1).then((o) => o.image); }
  step(feeds) { return this.run("latent_step", feeds, 1); }
  has(graph) { return graph in this.sessions || graph in this.files; }
}
