#!/usr/bin/env node
// agree.js --kiln KILN [--work DIR] [--diff] [--pb] MODEL... — kiln agrees with
// TensorFlow.js (tfjs-core + tfjs-backend-cpu + tfjs-converter 4.22.0, pure
// JavaScript) on TF.js graph models nobody here wrote (tests/e2e/test_tf_models.c
// runs it).  MODEL is a model of @vladmandic/human 3.3.6 (liveness, emotion,
// ...) or a path to a model.json.  For each:
//
//   1. TF.js runs the model on fixed inputs (tfjs.js: fixedInput, batch 1);
//   2. `kiln build MODEL.json` makes a standalone binary, run on the same
//      inputs (--feed NAME=FILE.npy --fetch NAME=FILE.npy);
//   3. every output agrees within rtol 1e-4 (tfjs.compare).
//
// --diff: on a disagreement (or always, with --diff=always) the model is
// rebuilt with --fetch-all and every node is compared with TF.js's value of
// the same node (GraphModel.execute with the node names), in graph order:
// the first node that disagrees is where to look.
// --pb: the same model as a frozen GraphDef instead (to_pb.js writes it as
// protobuf text, `protoc --encode=tensorflow.GraphDef` with proto/graph.proto
// makes the .pb): `kiln import` of the .pb and of the model.json must print
// the same graph, the binaries built from both must be byte-identical, and
// the .pb's must agree with TF.js.
// Prints one line per model (compile time, binary size) and `all agree`.
// Exit status: 0 all agree, 1 a disagreement or failure, 2 a wrong command
// line, 3 TF.js or a model is unavailable (skip; stderr's first line says why).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const T = require('./tfjs.js');
const P = require('./to_pb.js');

function run(argv, what) {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  } catch (e) {
    throw new Error(`${what} failed (status ${e.status}):\n${argv.join(' ').slice(0, 400)}\n${e.stdout || ''}${e.stderr || ''}`);
  }
}

function modelPath(m) {
  if (m.endsWith('.json')) return path.resolve(m);
  return path.join(T.MODELS, m + '.json');
}

async function referenceOutputs(tf, model, feeds, names) {
  const out = model.execute(feeds, names);
  const arr = Array.isArray(out) ? out : [out];
  const res = arr.map((t) => ({ shape: t.shape, dtype: t.dtype, data: t.dataSync() }));
  arr.forEach((t) => t.dispose());
  return res;
}

// model.json -> NAME.pb beside the work files; checks that kiln imports both
// to the same graph; returns the .pb's path and the build options it needs.
function asPb(tf, kiln, json, j, work, name) {
  const txt = path.join(work, name + '.pbtxt'), pb = path.join(work, name + '.pb');
  fs.writeFileSync(txt, P.toPbtxt(j, P.decodeWeights(tf, json, j)));
  const proto = path.join(__dirname, '../../proto');
  const bytes = execFileSync('protoc', ['--encode=tensorflow.GraphDef', '-I' + proto, path.join(proto, 'graph.proto')],
    { input: fs.readFileSync(txt), maxBuffer: 1 << 30 });
  fs.writeFileSync(pb, bytes);
  // what kiln fetches from the model.json by default: the signature's
  // outputs in the file's order (without one, both default to the nodes
  // nothing consumes)
  const fetch = [];
  if (j.signature && j.signature.outputs) Object.values(j.signature.outputs).forEach((o) => fetch.push('--fetch', o.name));
  const norm = (s) => s.replace(/^module .*$/m, 'module M');
  const a = norm(run([kiln, 'import', json], `kiln import ${name}.json`));
  const b = norm(run([kiln, 'import', pb, ...fetch], `kiln import ${name}.pb`));
  if (a !== b) {
    const al = a.split('\n'), bl = b.split('\n');
    let k = 0;
    while (k < al.length && al[k] === bl[k]) k++;
    throw new Error(`${name}: kiln import of the .pb differs from the model.json's at line ${k + 1}:\n  json: ${(al[k] || '').slice(0, 200)}\n  pb:   ${(bl[k] || '').slice(0, 200)}`);
  }
  console.log(`${name}.pb: ${(bytes.length / 1048576).toFixed(2)} MiB, imports to the same graph as ${name}.json`);
  return { src: pb, opts: fetch };
}

async function agreeOne(T_, kiln, m, work, diff, pb) {
  const { tf, conv } = T_;
  const json = modelPath(m);
  if (!fs.existsSync(json)) T.unavailable(`model ${json} is missing (make tf-ref fetches @vladmandic/human)`);
  const name = path.basename(json, '.json');
  const { model, json: j } = await T.loadModel(conv, json);
  const ins = T.inputsOf(model);
  const feeds = {}, argv = [];
  ins.forEach((inp, k) => {
    const data = T.fixedInput(inp.dtype, inp.shape, 7 + k);
    const f = path.join(work, `${name}.in${k}.npy`);
    T.writeNpy(f, inp.dtype, inp.shape, data);
    feeds[inp.name] = tf.tensor(data, inp.shape, inp.dtype);
    argv.push('--feed', `${T.kilnName(inp.name)}=${f}`);
  });
  const outNames = model.outputs.map((o) => o.name);
  const ref = await referenceOutputs(tf, model, feeds, outNames);
  const exe = path.join(work, name + (pb ? '-pb' : ''));
  const src = pb ? asPb(tf, kiln, json, j, work, name) : { src: json, opts: [] };
  const t0 = Date.now();
  run([kiln, 'build', src.src, ...src.opts, '-o', exe], `kiln build ${path.basename(src.src)}`);
  const buildS = (Date.now() - t0) / 1000;
  if (pb) { /* the same binary, byte for byte */
    run([kiln, 'build', json, '-o', exe + '-json'], `kiln build ${name}.json`);
    if (!fs.readFileSync(exe).equals(fs.readFileSync(exe + '-json')))
      throw new Error(`${name}: the binary built from ${name}.pb differs from the one built from ${name}.json`);
    console.log(`${name}.pb: the binary is byte-identical to ${name}.json's`);
  }
  const size = fs.statSync(exe).size;
  const fetch = [];
  outNames.forEach((o, k) => fetch.push('--fetch', `${T.kilnName(o)}=${path.join(work, `${name}.out${k}.npy`)}`));
  run([exe, '--run', 'main', ...argv, ...fetch], `${name} binary`);
  let ok = true;
  const msgs = [];
  outNames.forEach((o, k) => {
    const got = T.readNpy(path.join(work, `${name}.out${k}.npy`));
    const shapeOk = got.shape.join(',') === ref[k].shape.join(',');
    const r = shapeOk ? T.compare(o, got, ref[k].data) : { ok: false, msg: `${o}: shape [${got.shape}], TF.js's [${ref[k].shape}]` };
    ok = ok && r.ok;
    msgs.push('  ' + r.msg);
  });
  console.log(`${name}${pb ? '.pb' : ''}: ${ok ? 'agrees' : 'DISAGREES'} (kiln build ${buildS.toFixed(2)} s, binary ${(size / 1048576).toFixed(2)} MiB, ${model.artifacts.modelTopology.node.length} nodes)`);
  msgs.forEach((s) => console.log(s));
  if (diff === 'always' || (diff && !ok)) await nodeDiff(T_, kiln, json, name, model, feeds, argv, work);
  Object.values(feeds).forEach((t) => t.dispose());
  return ok;
}

// Every node's value from kiln (--fetch-all) against TF.js's, in graph order.
async function nodeDiff(T_, kiln, json, name, model, feeds, argv, work) {
  const { tf } = T_;
  const exe = path.join(work, name + '-all');
  run([kiln, 'build', '--fetch-all', json, '-o', exe], `kiln build --fetch-all ${name}`);
  const list = run([exe, '--list'], 'list');
  const outs = new Set([...list.matchAll(/^\s+out (\S+) /gm)].map((x) => x[1]));
  const nodes = model.artifacts.modelTopology.node.filter((n) => n.op !== 'Const' && n.op !== 'Placeholder' && outs.has(T.kilnName(n.name)));
  const dir = fs.mkdtempSync(path.join(work, 'all-'));
  const fetch = [];
  nodes.forEach((n, k) => fetch.push('--fetch', `${T.kilnName(n.name)}=${path.join(dir, k + '.npy')}`));
  run([exe, '--run', 'main', ...argv, ...fetch], `${name} --fetch-all binary`);
  let first = null;
  for (let k = 0; k < nodes.length; k++) {
    const [r] = await referenceOutputs(tf, model, feeds, [nodes[k].name]);
    const got = T.readNpy(path.join(dir, k + '.npy'));
    const c = got.shape.join(',') === r.shape.join(',') ? T.compare(nodes[k].name, got, r.data)
      : { ok: false, msg: `${nodes[k].name}: shape [${got.shape}], TF.js's [${r.shape}]` };
    if (!c.ok || process.env.KILN_TF_DIFF_VERBOSE) console.log(`    ${c.ok ? 'ok  ' : 'DIFF'} ${nodes[k].op} ${c.msg}`);
    if (!c.ok && !first) first = nodes[k].name;
  }
  console.log(`  node by node: ${nodes.length} nodes compared; ${first ? 'first disagreement at ' + first : 'all agree'}`);
}

async function main() {
  const args = process.argv.slice(2);
  let kiln = null, work = null, diff = false, pb = false;
  const models = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--kiln') kiln = args[++i];
    else if (args[i] === '--work') work = args[++i];
    else if (args[i] === '--diff') diff = true;
    else if (args[i] === '--pb') pb = true;
    else if (args[i] === '--diff=always') diff = 'always';
    else if (args[i].startsWith('-')) { console.error(`agree.js: unknown option ${args[i]}`); process.exit(2); }
    else models.push(args[i]);
  }
  if (!kiln || !models.length) { console.error('usage: agree.js --kiln KILN [--work DIR] [--diff] [--pb] MODEL...'); process.exit(2); }
  const T_ = T.requireTf();
  await T_.tf.setBackend('cpu');
  const tmp = work || fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tf-'));
  fs.mkdirSync(tmp, { recursive: true });
  let all = true;
  for (const m of models) {
    try {
      all = (await agreeOne(T_, kiln, m, tmp, diff, pb)) && all;
    } catch (e) {
      console.log(`${m}: FAILED\n${e.message}`);
      all = false;
    }
  }
  if (!work) fs.rmSync(tmp, { recursive: true, force: true });
  console.log(all ? 'all agree' : 'some disagree');
  process.exit(all ? 0 : 1);
}
main();
