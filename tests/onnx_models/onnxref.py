"""onnxref.py — what the ONNX agreement tests (agree.py) and the ONNX
benchmark (bench/onnx/bench.py) share: running ONNX Runtime through
bench/onnx/ort_run.js, building a model with kiln, comparing outputs.

Paths are relative to the repository root (the scripts chdir there)."""
import json
import os
import shutil
import subprocess

import numpy as np

import models

ORT_RUN = os.path.join("bench", "onnx", "ort_run.js")


class Unavailable(Exception):
    """ONNX Runtime (or node, or a model file) is missing: skip, saying why."""


def ort_unavailable_reason():
    """None when node can load onnxruntime-node from build/npm-cache, else why not."""
    node = shutil.which("node")
    if not node:
        return "node is not installed (ONNX Runtime runs in node: onnxruntime-node)"
    stamp = os.path.join(models.NPM_CACHE, ".stamp")
    if not os.path.exists(stamp):
        return (f"ONNX Runtime was not fetched ({stamp} missing: bench/onnx/fetch.sh "
                f"npm-packs onnxruntime-node@1.30.0; no network?)")
    r = subprocess.run([node, "-e", "require(require('path').resolve('" + models.NPM_CACHE +
                        "/node_modules/onnxruntime-node'))"], capture_output=True, text=True)
    if r.returncode != 0:
        return "onnxruntime-node does not load: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return None


def model_unavailable_reason(m):
    if not os.path.exists(m["file"]):
        return f"{m['file']} is missing (`make test` or `make bench` writes it: tests/onnx_models/export.py, bench/onnx/fetch.sh)"
    for f in m["inputs"].values():
        if not os.path.exists(f):
            return f"{f} is missing (tests/onnx_models/export.py writes it)"
    return None


def ort_args(m):
    a = ["node", ORT_RUN, m["file"]]
    for name, f in m["inputs"].items():
        a += ["--feed", f"{name}={f}"]
    if m["loop"]:
        a += ["--chunked", m["loop"]["per_chunk"]]
        for out, inp in m["loop"]["carry"].items():
            a += ["--carry", f"{out}={inp}"]
    return a


def run(argv, env=None, timeout=600):
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


def ort_save(m, outdir, threads=1):
    """ORT's outputs for the fixed inputs: {name: array} (chunked: stacked per chunk)."""
    run(ort_args(m) + ["--threads", str(threads), "--save", outdir])
    return {o: np.load(os.path.join(outdir, o + ".npy")) for o in m["outputs"]}


def ort_time(m, threads, runs, warmup):
    """ort_run.js --time: {median_ms (synchronous run), async_median_ms, ...}."""
    a = ort_args(m) + ["--threads", str(threads), "--time", str(runs), "--warmup", str(warmup)]
    return json.loads(run(a).strip().splitlines()[-1])


def kiln_build(kiln, m, out, extra=()):
    """kiln build MODEL [kiln_args] [extra] -o out; raises with kiln's message."""
    r = subprocess.run([kiln, "build", m["file"], *m["kiln_args"], *extra, "-o", out],
                       capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        args = " ".join(["kiln build", m["file"], *m["kiln_args"], *extra])
        raise RuntimeError(f"{args} exited {r.returncode}:\n{r.stderr}{r.stdout}")


def kiln_name(onnx_name):
    """The importer's name for an ONNX value (feeds and fetches of the binary):
    the same when it is already a C identifier, as every name here is."""
    return onnx_name


def compare(name, got, ref, rtol=1e-4):
    """Max error of got against ref, relative to |ref| + the tensor's scale
    (max |ref|): |got - ref| <= rtol * (|ref| + max|ref|) passes.  Returns
    (ok, err, message)."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        return False, float("inf"), f"{name}: shape {got.shape}, ORT's {ref.shape}"
    if got.dtype != ref.dtype:
        return False, float("inf"), f"{name}: dtype {got.dtype}, ORT's {ref.dtype}"
    if not np.all(np.isfinite(got)):
        return False, float("inf"), f"{name}: not finite"
    r = ref.astype(np.float64)
    scale = max(float(np.abs(r).max()) if r.size else 0.0, 1e-30)
    err_arr = np.abs(got.astype(np.float64) - r) / (np.abs(r) + scale)
    err = float(err_arr.max()) if err_arr.size else 0.0
    ok = err <= rtol
    msg = f"{name}: max error {err:.2e} (rtol {rtol:g}) over {ref.size} values"
    if not ok:
        i = np.unravel_index(np.argmax(err_arr), err_arr.shape)
        msg += f"; worst at {tuple(int(x) for x in i)}: kiln {got[i]!r}, ORT {ref[i]!r}"
    return ok, err, msg
