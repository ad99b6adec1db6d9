#!/usr/bin/env node
// bench.js — kiln against TensorFlow.js's WebAssembly backend on the TF.js
// graph models of @vladmandic/human 3.3.6 (`make bench`; docs/tensorflow.md):
// latency of one batch-1 run after warm-up, both measured in this run, and
// the ratio kiln / TF.js-wasm (the target is at most 0.5).
//
//   node bench/tf/bench.js [--kiln build/kiln] [--build build] [--out build/bench]
//       [--models liveness,...] [--runs N]
//
// kiln: `kiln build -c MODEL.json` (matmul through OpenBLAS, one thread; for
// the fixed baseline CPU, x86-64-v2 on x86-64, with the convolution and GEMM
// kernels also built for x86-64-v3/v4 and chosen at run time), and again
// with `--cpu=native --blas=generated` (column kiln-native: this machine's
// vectors and FMA, as the WebAssembly backend's XNNPACK picks its kernels
// at run time), each run in-process by bench/onnx/kbench.c, which times
// only the entry call.
// TF.js: tfjs-backend-wasm 4.22.0 (one thread: the non-threaded SIMD binary
// in node), GraphModel.execute plus dataSync of the outputs, timed with
// process.hrtime.  Each side's number is the median of --runs runs after
// warm-up, the lower of two rounds taken in turn.  Before timing, kiln's
// outputs are checked against TF.js-wasm's (rtol 1e-4).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const T = require('../../tests/tf/tfjs.js');

const MODELS = ['liveness', 'emotion', 'antispoof', 'iris', 'blazeface', 'facemesh'];

function run(argv, env) {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const args = process.argv.slice(2);
  const opt = { kiln: 'build/kiln', build: 'build', out: 'build/bench', models: MODELS.join(','), runs: '50' };
  for (let i = 0; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
  let Tf;
  try {
    Tf = T.requireTf();
  } catch (e) {
    console.log(`bench.js: TensorFlow.js unavailable: ${e.message}`);
    return;
  }
  const { tf, conv, req } = Tf;
  const wasm = req('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(path.join(T.CACHE, 'node_modules/@tensorflow/tfjs-backend-wasm/dist') + '/');
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialize');
  const work = path.join(opt.out, 'tf');
  fs.mkdirSync(work, { recursive: true });
  const runs = Number(opt.runs);
  const rows = [];
  console.log(`TF.js ${tf.version_core} backend ${tf.getBackend()} (threads: ${wasm.getThreadsCount ? wasm.getThreadsCount() : 1}); kiln ${opt.kiln}, OPENBLAS_NUM_THREADS=1`);
  console.log('model        kiln ms  native ms   tfjs-wasm ms   ratio  native/tfjs   build s   binary MiB');
  for (const name of opt.models.split(',')) {
    const json = path.join(T.MODELS, name + '.json');
    const { model } = await T.loadModel(conv, json);
    const ins = T.inputsOf(model);
    const feeds = {}, feedArgs = [];
    ins.forEach((inp, k) => {
      const data = T.fixedInput(inp.dtype, inp.shape, 7 + k);
      const f = path.join(work, `${name}.in${k}.npy`);
      T.writeNpy(f, inp.dtype, inp.shape, data);
      feeds[inp.name] = tf.tensor(data, inp.shape, inp.dtype);
      feedArgs.push('--feed', `${T.kilnName(inp.name)}=${f}`);
    });
    // kiln: the object, kbench, a check of the outputs
    const base = path.join(work, name);
    const t0 = Date.now();
    run([opt.kiln, 'build', json, '-o', base]);
    const buildS = (Date.now() - t0) / 1000, size = fs.statSync(base).size;
    const kbench = (suffix, flags) => {
      run([opt.kiln, 'build', '-c', json, '-o', base + suffix + '.o', ...flags]);
      const desc = /extern const kiln_module_desc (\w+);/.exec(fs.readFileSync(base + suffix + '.h', 'utf8'))[1];
      run(['cc', '-std=gnu17', '-O2', '-Iruntime', `-DKILN_DESC=${desc}`, '-o', base + suffix + '-kbench',
        'bench/onnx/kbench.c', base + suffix + '.o', path.join(opt.build, 'libkilnrt.a'), '-lopenblas', '-lpthread', '-lm']);
      return base + suffix + '-kbench';
    };
    const exes = { kiln: kbench('', []), native: kbench('-native', ['--cpu=native', '--blas=generated']) };
    const outNames = model.outputs.map((o) => o.name);
    const refs = model.execute(feeds, outNames);
    const refArr = Array.isArray(refs) ? refs : [refs];
    let agree = true;
    for (const [side, exe] of Object.entries(exes)) {
      const saved = path.join(work, `${name}-${side}-out`);
      fs.mkdirSync(saved, { recursive: true });
      run([exe, ...feedArgs, '--save', saved], { OPENBLAS_NUM_THREADS: '1' });
      outNames.forEach((o, k) => {
        const got = T.readNpy(path.join(saved, T.kilnName(o).replace(/\//g, '_') + '.npy'));
        agree = T.compare(o, got, refArr[k].dataSync()).ok && agree;
      });
    }
    refArr.forEach((t) => t.dispose());
    const kilnMs = [], nativeMs = [], tfMs = [];
    const time = (exe) => JSON.parse(run([exe, ...feedArgs, '--time', String(runs), '--warmup', '5'],
      { OPENBLAS_NUM_THREADS: '1' }).trim().split('\n').pop()).median_ms;
    for (let round = 0; round < 2; round++) {
      kilnMs.push(time(exes.kiln));
      nativeMs.push(time(exes.native));
      for (let w = 0; w < 5; w++) tf.dispose(model.execute(feeds, outNames));
      const times = [];
      for (let r = 0; r < runs; r++) {
        const s = process.hrtime.bigint();
        const out = model.execute(feeds, outNames);
        (Array.isArray(out) ? out : [out]).forEach((t) => t.dataSync());
        times.push(Number(process.hrtime.bigint() - s) / 1e6);
        tf.dispose(out);
      }
      tfMs.push(median(times));
    }
    const km = Math.min(...kilnMs), nm = Math.min(...nativeMs), tm = Math.min(...tfMs);
    rows.push({ name, kiln_ms: km, native_ms: nm, tfjs_wasm_ms: tm, ratio: km / tm, native_ratio: nm / tm,
      build_s: buildS, binary_bytes: size, agree });
    console.log(`${name.padEnd(12)} ${km.toFixed(3).padStart(8)} ${nm.toFixed(3).padStart(10)} ${tm.toFixed(3).padStart(14)}` +
      ` ${(km / tm).toFixed(2).padStart(7)} ${(nm / tm).toFixed(2).padStart(12)}` +
      ` ${buildS.toFixed(2).padStart(9)} ${(size / 1048576).toFixed(2).padStart(12)}${agree ? '' : '   (outputs DISAGREE)'}`);
    Object.values(feeds).forEach((t) => t.dispose());
  }
  const worst = Math.max(...rows.map((r) => r.ratio)), worstNative = Math.max(...rows.map((r) => r.native_ratio));
  const verdict = (r) => (r <= 0.5 ? 'met' : 'MISSED');
  console.log(`worst ratio kiln / tfjs-wasm: ${worst.toFixed(2)} as \`kiln build\` builds (the baseline CPU, its ` +
    `kernels dispatched at run time), ${worstNative.toFixed(2)} with --cpu=native --blas=generated ` +
    `(target <= 0.5: ${verdict(worst)} by default, ${verdict(worstNative)} with --cpu=native)`);
  fs.writeFileSync(path.join(opt.out, 'tf-results.json'), JSON.stringify(rows, null, 1));
}
main().catch((e) => { console.error(e.stack || e); process.exit(1); });
