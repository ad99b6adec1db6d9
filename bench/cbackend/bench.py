#!/usr/bin/python3
"""The C backend against the LLVM backend: time per run of the benchmark
models built both ways, as a ratio (C / LLVM; below 1 the C is faster).

Both builds use -O3 and the same baseline CPU (kiln's default, x86-64-v2 on
x86-64): `kiln build -O3 MODEL` and `kiln build -O3 --backend c --cc gcc
MODEL` (gcc -std=c99 -O3 -march=x86-64-v2).  Each pair is built with
OpenBLAS and again with --blas generated (kiln's GEMM: LLVM vectors vs its
C rendering).  A run's time is (T(--repeat N) - T(--repeat 1)) / (N - 1)
of the binary on random .npy feeds, the best of three, on one thread
(OPENBLAS_NUM_THREADS=1); the machine is shared, so the ratios are the
figures to read.

    /usr/bin/python3 bench/cbackend/bench.py --kiln build/kiln [--out build/bench/cbackend]
"""

import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODELS = ["bench/ew.kg", "bench/mm.kg", "bench/train.kg", "bench/train128.kg", "bench/train8.kg",
          "build/onnx-models/mlp784_b64.onnx", "build/onnx-models/mlp4096_b64.onnx",
          "build/onnx-models/cnn_b1.onnx"]
NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "i8": np.int8, "u8": np.uint8,
      "bool": np.bool_}


def entries(exe):
    """[(entry, [(input, dtype, dims)], [outputs])] from the binary's --list."""
    out = subprocess.run([exe, "--list"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    res, cur = [], None
    for line in out.splitlines():
        s = line.strip()
        if not s or line.startswith("entries") or not line.startswith("  "):
            continue
        if not line.startswith("    "):
            cur = (s, [], [])
            res.append(cur)
        elif cur and s.startswith("in "):
            _, name, ty = s.split(None, 2)
            dt, dims = ty.split("[", 1)
            cur[1].append((name, dt, [int(d) for d in dims.rstrip("]").split(",") if d]))
        elif cur and s.startswith("out "):
            cur[2].append(s.split(None, 2)[1])
    return res


def timed(argv, env):
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if p.returncode:
        raise RuntimeError("%s: %s" % (" ".join(argv[:3]), p.stderr.decode()[:300]))
    return time.monotonic() - t0


def per_run(exe, entry, feeds, fetch, env):
    base = [exe, "--run", entry] + sum((["--feed", f] for f in feeds), []) + ["--fetch", fetch]
    one = min(timed(base + ["--repeat", "1"], env) for _ in range(3))
    t2 = min(timed(base + ["--repeat", "3"], env) for _ in range(2))
    est = max((t2 - one) / 2, 1e-5)
    n = int(min(max(0.4 / est, 3), 2000))
    best = 1e30
    for _ in range(3):
        tn = timed(base + ["--repeat", str(n)], env)
        t1 = timed(base + ["--repeat", "1"], env)
        best = min(best, max(tn - t1, 0) / (n - 1))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench", "cbackend"))
    ap.add_argument("models", nargs="*", default=MODELS)
    args = ap.parse_args()
    kiln = os.path.abspath(args.kiln)
    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", KILN_GPU="0")
    rng = np.random.default_rng(0)
    name_note = {}
    print("%-22s %-9s %12s %12s %8s" % ("model", "blas", "llvm ms", "c ms", "c/llvm"))
    for model in args.models:
        src = os.path.join(REPO, model)
        if not os.path.exists(src):
            print("%-22s (missing: %s; make onnx-ref writes the ONNX models)" % (os.path.basename(model), model))
            continue
        name = os.path.splitext(os.path.basename(model))[0]
        for blas in ("openblas", "generated"):
            exes = {}
            try:
                for backend in ("llvm", "c"):
                    exe = os.path.join(args.out, "%s-%s-%s" % (name, blas, backend))
                    argv = [kiln, "build", "-O3", "--blas", blas, src, "-o", exe]
                    if backend == "c":
                        argv += ["--backend", "c", "--cc", "gcc"]
                    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
                    if p.returncode and b"--weights-file" in p.stdout:  # over the static-array limit
                        p = subprocess.run(argv + ["--weights-file"], stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, cwd=REPO)
                        name_note[name] = " (C: --weights-file)"
                    if p.returncode:
                        raise RuntimeError("build (%s): %s" % (backend, p.stdout.decode().strip()[:300]))
                    exes[backend] = exe
                # the program's run statements are entries run0, run1, ...: time a real one
                ents = [e for e in entries(exes["llvm"]) if not re.fullmatch(r"run\d+", e[0])]
                if not ents:
                    raise RuntimeError("no entry point to time")
                entry, ins, outs = ents[0]
                feeds = []
                for iname, dt, dims in ins:
                    path = os.path.join(args.out, "%s.%s.npy" % (name, iname.replace("/", "_")))
                    if dt.startswith("f"):
                        a = rng.standard_normal(dims).astype(NP[dt])
                    else:
                        a = rng.integers(0, 2, size=dims).astype(NP[dt])
                    np.save(path, a)
                    feeds.append("%s=%s" % (iname, path))
                fetch = "%s=%s" % (outs[0], os.path.join(args.out, "%s.out.npy" % name))
                t = {b: per_run(exes[b], entry, feeds, fetch, env) for b in ("llvm", "c")}
                print("%-22s %-9s %12.3f %12.3f %8.2f%s" % (name, blas, t["llvm"] * 1e3, t["c"] * 1e3,
                                                             t["c"] / t["llvm"], name_note.get(name, "")), flush=True)
            except RuntimeError as e:
                print("%-22s %-9s %s" % (name, blas, e), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
