#!/usr/bin/env node
// ort_run.js — runs an ONNX model in ONNX Runtime (onnxruntime-node, from
// bench/onnx/fetch.sh) on .npy feeds: the reference of the ONNX agreement
// tests (tests/onnx_models/agree.py) and ORT's side of `make bench`
// (bench/onnx/bench.py).
//
//   node bench/onnx/ort_run.js MODEL.onnx --feed NAME=FILE.npy... [options]
//
//   --threads N         intraOpNumThreads (default 1); interOpNumThreads 1,
//                       executionMode 'sequential', graphOptimizationLevel 'all'
//   --chunked NAME      NAME's .npy holds one feed per chunk along axis 0; every
//                       chunk is one run, in order
//   --carry OUT=IN      output OUT of one run is input IN of the next (the
//                       recurrent state of Silero VAD); IN's --feed is the first
//   --save DIR          writes each output as DIR/OUT.npy (with --chunked: the
//                       outputs of all chunks stacked along a new axis 0)
//   --time N            then times N more runs after --warmup W (default 20)
//                       runs (chunked: cycling through the chunks, the state
//                       carried on) and prints one JSON line: median_ms and
//                       min_ms of the binding's synchronous run (the C++
//                       session's Run plus the N-API marshalling of feeds and
//                       fetches), async_median_ms and async_min_ms of
//                       `await session.run()` (the public API)
//
// onnxruntime-node is looked up in $KILN_NPM_CACHE/node_modules (default
// build/npm-cache, relative to the working directory), then as usual.
// Exit status: 0, 1 on failure, 2 on a wrong command line, 3 when
// onnxruntime-node cannot be loaded.
'use strict';
const fs = require('fs');
const path = require('path');

function usage(msg) {
  process.stderr.write(`ort_run.js: ${msg}\n`);
  process.exit(2);
}

let ortPath = null; // what require() resolved onnxruntime-node to

function loadOrt() {
  const cache = process.env.KILN_NPM_CACHE || path.join('build', 'npm-cache');
  const tries = [path.resolve(cache, 'node_modules', 'onnxruntime-node'), 'onnxruntime-node'];
  for (const t of tries) {
    try {
      const ort = require(t);
      ortPath = t;
      return ort;
    } catch (e) {
      if (t === tries[tries.length - 1]) {
        process.stderr.write(`ort_run.js: cannot load onnxruntime-node (run bench/onnx/fetch.sh): ${e.message}\n`);
        process.exit(3);
      }
    }
  }
  return null;
}

// ---- .npy (version 1/2/3, little-endian, C order) ----
const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array],
  '<u1': ['uint8', Uint8Array], '|u1': ['uint8', Uint8Array],
  '|i1': ['int8', Int8Array], '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: unreadable .npy header ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran order is not supported`);
  const t = NPY_TYPES[descr[1]];
  if (!t) throw new Error(`${file}: dtype ${descr[1]} is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const start = hstart + hlen;
  const bytes = buf.subarray(start, start + n * t[1].BYTES_PER_ELEMENT);
  if (bytes.length !== n * t[1].BYTES_PER_ELEMENT) throw new Error(`${file}: truncated`);
  const data = new t[1](n);
  new Uint8Array(data.buffer).set(bytes);
  return { type: t[0], data, dims };
}

const NPY_DESCR = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1', int8: '|i1', bool: '|b1' };

function writeNpy(file, type, dims, data) {
  const descr = NPY_DESCR[type];
  if (!descr) throw new Error(`${file}: cannot write dtype ${type}`);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
  fs.renameSync(tmp, file);
}

// ---- command line ----
function parseArgs(argv) {
  const o = { model: null, feeds: [], threads: 1, chunked: null, carry: [], save: null, time: 0, warmup: 20 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    const pair = (s, what) => {
      const eq = s.indexOf('=');
      if (eq <= 0 || eq === s.length - 1) usage(`${a} expects ${what}, got '${s}'`);
      return [s.slice(0, eq), s.slice(eq + 1)];
    };
    const int = (s) => {
      if (!/^\d+$/.test(s)) usage(`${a} needs a non-negative integer, got '${s}'`);
      return Number(s);
    };
    if (a === '--feed') o.feeds.push(pair(val(), 'NAME=FILE.npy'));
    else if (a === '--threads') o.threads = int(val());
    else if (a === '--chunked') o.chunked = val();
    else if (a === '--carry') o.carry.push(pair(val(), 'OUT=IN'));
    else if (a === '--save') o.save = val();
    else if (a === '--time') o.time = int(val());
    else if (a === '--warmup') o.warmup = int(val());
    else if (a.startsWith('--')) usage(`unknown option '${a}'`);
    else if (o.model) usage(`more than one model: '${o.model}' and '${a}'`);
    else o.model = a;
  }
  if (!o.model) usage('no model given');
  if (o.threads < 1) usage('--threads must be at least 1');
  if (o.chunked && !o.feeds.some(([n]) => n === o.chunked)) usage(`--chunked ${o.chunked}: no --feed of that name`);
  return o;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const sessOpts = {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    logSeverityLevel: 3, // errors only: not Silero's unused initializers
  };
  const session = await ort.InferenceSession.create(o.model, sessOpts);

  const feeds = {};
  let chunks = null; // [{data, dims}] of the chunked input
  for (const [name, file] of o.feeds) {
    if (!session.inputNames.includes(name)) usage(`the model has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
    const t = readNpy(file);
    if (name === o.chunked) {
      const n = t.dims[0];
      const inner = t.dims.slice(1);
      const per = t.data.length / n;
      chunks = [];
      for (let k = 0; k < n; k++) chunks.push(new ort.Tensor(t.type, t.data.slice(k * per, (k + 1) * per), inner));
      feeds[name] = chunks[0];
    } else {
      feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    }
  }
  for (const name of session.inputNames) if (!(name in feeds)) usage(`missing --feed ${name}=FILE.npy`);
  for (const [out, inp] of o.carry) {
    if (!session.outputNames.includes(out)) usage(`--carry: the model has no output '${out}'`);
    if (!session.inputNames.includes(inp)) usage(`--carry: the model has no input '${inp}'`);
  }
  const nChunks = chunks ? chunks.length : 1;
  const initial = { ...feeds };

  // One run: chunk k (when chunked), then the carried outputs become inputs.
  let k = 0;
  const step = async () => {
    if (chunks) feeds[o.chunked] = chunks[k % nChunks];
    const r = await session.run(feeds);
    for (const [out, inp] of o.carry) feeds[inp] = r[out];
    k++;
    return r;
  };

  if (o.save) {
    fs.mkdirSync(o.save, { recursive: true });
    const saved = {};
    for (let c = 0; c < nChunks; c++) {
      const r = await step();
      for (const name of session.outputNames) (saved[name] = saved[name] || []).push(r[name]);
    }
    for (const name of session.outputNames) {
      const ts = saved[name];
      const first = ts[0];
      const per = first.data.length;
      const all = new first.data.constructor(per * ts.length);
      ts.forEach((t, c) => all.set(t.data, c * per));
      const dims = chunks ? [ts.length, ...first.dims] : first.dims;
      writeNpy(path.join(o.save, `${name}.npy`), first.type, dims, all);
    }
  }

  if (o.time) {
    // Two timings, each after its own warm-up and from the first chunk and
    // the initial state: `await session.run()` (the public API: the run goes
    // through setImmediate and a Promise), then the binding's synchronous
    // run on a second session made with the same options (what the public
    // API calls inside; the N-API marshalling of feeds and fetches remains,
    // a few microseconds).  median_ms is the synchronous one.
    const timeLoop = async (runOnce) => {
      Object.assign(feeds, initial);
      k = 0;
      for (let i = 0; i < o.warmup; i++) await runOnce();
      const ms = [];
      for (let i = 0; i < o.time; i++) {
        const t0 = process.hrtime.bigint();
        await runOnce();
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return ms;
    };
    const asyncMs = await timeLoop(step);
    const { binding, initOrt } = require(path.join(path.dirname(require.resolve(ortPath)), 'binding'));
    initOrt();
    const sync = new binding.InferenceSession();
    sync.loadModel(path.resolve(o.model), sessOpts);
    const fetches = {};
    for (const name of session.outputNames) fetches[name] = null;
    const syncMs = [];
    Object.assign(feeds, initial);
    k = 0;
    for (let i = 0; i < o.warmup + o.time; i++) {
      if (chunks) feeds[o.chunked] = chunks[k % nChunks];
      const t0 = process.hrtime.bigint();
      const r = sync.run(feeds, fetches, {});
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      if (i >= o.warmup) syncMs.push(dt);
      for (const [out, inp] of o.carry) {
        const v = r[out];
        feeds[inp] = v instanceof ort.Tensor ? v : new ort.Tensor(v.type, v.data, v.dims);
      }
      k++;
    }
    sync.dispose();
    const res = {
      model: o.model, threads: o.threads, runs: o.time, warmup: o.warmup,
      median_ms: median(syncMs), min_ms: Math.min(...syncMs),
      async_median_ms: median(asyncMs), async_min_ms: Math.min(...asyncMs),
    };
    process.stdout.write(JSON.stringify(res) + '\n');
  }
  await session.release();
}

main().catch((e) => {
  process.stderr.write(`ort_run.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
