// tfjs.js — what the TensorFlow importer's tests and benchmark share in
// node: TensorFlow.js 4.22.0 from the npm cache (bench/tf/fetch.sh), a graph
// model loaded from model.json and its shards without tfjs-node (an IOHandler
// that reads the files), .npy files, the fixed inputs, and the comparison.
'use strict';
const fs = require('fs');
const path = require('path');

// The npm cache: $KILN_TFJS_CACHE, else build/npm-cache/tfjs.
const CACHE = path.resolve(process.env.KILN_TFJS_CACHE || 'build/npm-cache/tfjs');
const MODELS = path.join(CACHE, 'node_modules/@vladmandic/human/models');

// Exit status 3 with the reason on the first line of stderr: the tests skip.
function unavailable(why) {
  process.stderr.write(why + '\n');
  process.exit(3);
}

function requireTf(backend) {
  const mods = path.join(CACHE, 'node_modules');
  if (!fs.existsSync(path.join(CACHE, '.stamp')))
    unavailable(`TensorFlow.js is not fetched (${CACHE}/.stamp missing; make tf-ref runs bench/tf/fetch.sh, which needs npm and the network)`);
  const req = (m) => require(path.join(mods, m));
  const tf = req('@tensorflow/tfjs-core');
  req('@tensorflow/tfjs-backend-cpu');
  const conv = req('@tensorflow/tfjs-converter');
  return { tf, conv, req };
}

// A graph model from model.json and its shards (no fetch, no tfjs-node).
async function loadModel(conv, jsonPath) {
  const j = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const dir = path.dirname(jsonPath);
  const specs = [], bufs = [];
  for (const g of j.weightsManifest || []) {
    for (const w of g.weights) specs.push(w);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = {
    load: async () => ({
      modelTopology: j.modelTopology, weightSpecs: specs, weightData, format: j.format,
      generatedBy: j.generatedBy, convertedBy: j.convertedBy, signature: j.signature,
      userDefinedMetadata: j.userDefinedMetadata,
    }),
  };
  const model = await conv.loadGraphModel(handler);
  return { model, json: j };
}

// ---- .npy (version 1.0, little-endian, C order) ----
const NPY = { float32: ['<f4', Float32Array], int32: ['<i4', Int32Array], uint8: ['|u1', Uint8Array], bool: ['|b1', Uint8Array] };

function writeNpy(file, dtype, shape, data) {
  const [descr] = NPY[dtype];
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + h.length + 1;
  h += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(h.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(h, 'latin1'), body]));
}

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = b[6];
  const hl = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = major === 1 ? 10 : 12;
  const h = b.toString('latin1', off, off + hl);
  const descr = /'descr':\s*'([^']+)'/.exec(h)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(h)[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const start = off + hl;
  const entry = Object.entries(NPY).find(([, v]) => v[0] === descr);
  if (!entry) throw new Error(`${file}: dtype ${descr}`);
  const [dtype, [, Arr]] = entry;
  const n = shape.reduce((a, x) => a * x, 1);
  const copy = Buffer.from(b.subarray(start, start + n * Arr.BYTES_PER_ELEMENT));
  return { dtype, shape, data: new Arr(copy.buffer, copy.byteOffset, n) };
}

// ---- fixed inputs: a seeded generator, the same on every machine ----
function fixedInput(dtype, shape, seed) {
  let s = (seed * 2654435761) >>> 0 || 1;
  const n = shape.reduce((a, x) => a * x, 1);
  const Arr = NPY[dtype][1];
  const out = new Arr(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const u = s / 4294967296;
    out[i] = dtype === 'float32' ? u : Math.floor(u * 256);
  }
  return out;
}

// The model's inputs: [{name (the node), dtype, shape (-1 -> 1)}].
function inputsOf(model) {
  return model.inputs.map((t) => ({
    name: t.name.replace(/:0$/, ''), dtype: t.dtype,
    shape: t.shape.map((d) => (d == null || d < 0 ? 1 : d)),
  }));
}

// kiln's name for a TensorFlow tensor (frontends/graphdef/import.c).
function kilnName(tf) {
  let s = tf.replace(/:0$/, '').replace(/:(\d+)$/, '_$1');
  s = s.replace(/[^A-Za-z0-9_/]/g, '_').replace(/\/$/, '_');
  if (!/^[A-Za-z_]/.test(s)) s = 'v' + s;
  return s;
}

// |got - ref| <= rtol * (|ref| + max|ref|) (as tests/onnx_models/onnxref.py).
function compare(name, got, ref, rtol = 1e-4) {
  if (got.data.length !== ref.length) return { ok: false, err: Infinity, msg: `${name}: ${got.data.length} values, TF.js's ${ref.length}` };
  let scale = 1e-30;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  let err = 0, worst = -1;
  for (let i = 0; i < ref.length; i++) {
    const g = got.data[i];
    if (!Number.isFinite(g)) return { ok: false, err: Infinity, msg: `${name}: not finite at ${i}` };
    const e = Math.abs(g - ref[i]) / (Math.abs(ref[i]) + scale);
    if (e > err) { err = e; worst = i; }
  }
  const ok = err <= rtol;
  let msg = `${name}: max error ${err.toExponential(2)} (rtol ${rtol}) over ${ref.length} values`;
  if (!ok) msg += `; worst at ${worst}: kiln ${got.data[worst]}, TF.js ${ref[worst]}`;
  return { ok, err, msg };
}

module.exports = { CACHE, MODELS, unavailable, requireTf, loadModel, writeNpy, readNpy, fixedInput, inputsOf, kilnName, compare };
