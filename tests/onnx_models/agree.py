#!/usr/bin/python3
"""agree.py --kiln KILN MODEL... — kiln's outputs agree with ONNX Runtime's
on models nobody here wrote (tests/e2e/test_onnx_models.c runs it; models.py
lists the models):

  1. ONNX Runtime (onnxruntime-node 1.30.0 through bench/onnx/ort_run.js, one
     thread) runs the model on its fixed inputs and saves the outputs;
  2. `kiln build MODEL.onnx` makes a standalone binary, which runs on the same
     inputs (`--run main --feed NAME=FILE.npy --fetch NAME=FILE.npy`);
  3. every output agrees within rtol 1e-4 (onnxref.compare: relative to |ORT|
     plus the tensor's largest magnitude).

Silero VAD runs chunk by chunk, its recurrent state carried: the binary is run
once per chunk of the fixed signal (48 chunks), fed the state it returned for
the previous chunk (kiln's own, not ORT's), and each chunk's speech
probability and state are compared with ORT's run of the same loop.

Prints one line per model and `all agree` at the end.  Exit status: 0 all
agree, 1 a disagreement or a failure (kiln's message is shown), 2 a wrong
command line, 3 ONNX Runtime or a model file is unavailable (skip; the first
line of standard error says why)."""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402

import models  # noqa: E402
import onnxref  # noqa: E402


def agree_one(kiln, m, work):
    ref = onnxref.ort_save(m, os.path.join(work, "ort"))
    exe = os.path.join(work, "model")
    onnxref.kiln_build(kiln, m, exe)
    fetch = []
    kout = os.path.join(work, "kiln")
    os.makedirs(kout, exist_ok=True)
    for o in m["outputs"]:
        fetch += ["--fetch", f"{onnxref.kiln_name(o)}={os.path.join(kout, o + '.npy')}"]
    if not m["loop"]:
        argv = [exe, "--run", "main"]
        for name in m["kiln_feeds"]:
            argv += ["--feed", f"{onnxref.kiln_name(name)}={m['inputs'][name]}"]
        onnxref.run(argv + fetch)
        got = {o: np.load(os.path.join(kout, o + ".npy")) for o in m["outputs"]}
    else:
        loop = m["loop"]
        chunks = np.load(m["inputs"][loop["per_chunk"]])
        feeds = {name: m["inputs"][name] for name in m["kiln_feeds"]}
        per = {o: [] for o in m["outputs"]}
        for k in range(loop["chunks"]):
            cf = os.path.join(work, f"chunk{k}.npy")
            np.save(cf, chunks[k])
            feeds[loop["per_chunk"]] = cf
            argv = [exe, "--run", "main"]
            for name, f in feeds.items():
                argv += ["--feed", f"{onnxref.kiln_name(name)}={f}"]
            onnxref.run(argv + fetch)
            for o in m["outputs"]:
                per[o].append(np.load(os.path.join(kout, o + ".npy")))
            for out, inp in loop["carry"].items():
                cs = os.path.join(work, f"carry{k}_{inp}.npy")
                os.replace(os.path.join(kout, out + ".npy"), cs)
                feeds[inp] = cs
        got = {o: np.stack(v) for o, v in per.items()}
    ok = True
    msgs = []
    for o in m["outputs"]:
        good, _, msg = onnxref.compare(o, got[o], ref[o])
        ok &= good
        msgs.append(msg)
    return ok, msgs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.environ.get("KILN", "build/kiln"))
    ap.add_argument("models", nargs="+", choices=sorted(models.BY_NAME))
    a = ap.parse_args()
    os.chdir(models.ROOT)
    kiln = os.path.abspath(a.kiln)
    why = onnxref.ort_unavailable_reason()
    for name in a.models:
        why = why or onnxref.model_unavailable_reason(models.BY_NAME[name])
    if why:
        print(why, file=sys.stderr)
        return 3
    all_ok = True
    for name in a.models:
        m = models.BY_NAME[name]
        with tempfile.TemporaryDirectory(prefix=f"agree-{name}-") as work:
            try:
                ok, msgs = agree_one(kiln, m, work)
            except Exception as e:  # kiln build or a run failed: show why
                print(f"{name}: FAILED: {e}")
                all_ok = False
                continue
        loops = f" ({m['loop']['chunks']} chunks, state carried)" if m["loop"] else ""
        print(f"{name}{loops}: {'agree' if ok else 'DISAGREE'}: " + "; ".join(msgs))
        all_ok &= ok
    if all_ok:
        print("all agree")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
