"""refkit — checks kiln ops against NumPy on random inputs.

A case is a small .kg graph body with placeholders, the tensors fed to them,
the node(s) fetched, and a NumPy function computing the expected result.
Cases from several files are batched into one module per file group so that
one `kiln build` serves many cases; each case is its own entry point.

    case("add_f32", '''
        x = placeholder() : f32[3,4]
        y = placeholder() : f32[4]
        z = add(x, y)
    ''', feeds={"x": rand("f32", (3, 4)), "y": rand("f32", (4,))},
         fetch="z", ref=lambda x, y: x + y)

The reference gets the feeds as positional arguments in the order given.
Integers and bools must match exactly; floats within rtol/atol.
A case file may set `KILN_FLAGS = ["--blas=generated", ...]`: extra
arguments for `kiln build` of that file's module, and `KILN_ENV = {...}`:
environment variables for its binary's runs (KILN_CPU_LEVEL=0 runs the
baseline variant of dispatched kernels).
Run:  /usr/bin/python3 tests/ref/refkit.py --kiln build/kiln [--only PATTERN] FILES...

--gpu[=MODE] checks the GPU kernels instead (docs/gpu.md): every case's
nodes are placed on gpu:0 and built with --soft-placement; the module's
PTX is assembled by ptxas (sm_80; $PTXAS, else /usr/local/cuda/bin/ptxas,
skipped with a note where there is none) and must hold one .entry per
kernel node; the summary names the ops that soft placement moved to the
CPU (ops without a GPU kernel).  MODE:
  emulate  (the default) built with KILN_GPU_EMULATE=1 and run with
           KILN_GPU=0: each kernel node's CPU path is the kernel's own code
           run for every thread (block kernels barrier by barrier);
  fake     built the same way, plus -rdynamic, and run through the CUDA
           path against the stand-in driver $KILN_LIBCUDA
           (tests/gpu/fakecuda.c), which executes every launch with the
           binary's emulation: launch geometry, device memory and copies;
  device   run on a real GPU: no fallback to the CPU is accepted.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

NP_DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
             "bool": np.bool_, "i8": np.int8, "u8": np.uint8}
RNG = np.random.default_rng(20261126)


def rand(dtype, shape, lo=-3.0, hi=3.0):
    """Random tensor of a kiln dtype: floats uniform in [lo, hi), ints in [lo, hi]."""
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if dtype in ("f32", "f64"):
        return RNG.uniform(lo, hi, shape).astype(NP_DTYPES[dtype])
    return RNG.integers(int(lo), int(hi) + 1, shape).astype(NP_DTYPES[dtype])


def positive(dtype, shape, lo=0.1, hi=4.0):
    """Random strictly positive floats (for log, sqrt, ...)."""
    return RNG.uniform(lo, hi, shape).astype(NP_DTYPES[dtype])


class Case:
    def __init__(self, name, body, feeds, fetch, ref, rtol=1e-5, atol=1e-6, check=None):
        self.name, self.body, self.feeds, self.ref = name, body, feeds, ref
        self.fetch = [fetch] if isinstance(fetch, str) else list(fetch)
        self.rtol, self.atol, self.check = rtol, atol, check


def case(name, body, feeds, fetch, ref=None, rtol=1e-5, atol=1e-6, check=None):
    """Declares a case; `check(outputs, feeds)` may replace `ref` for statistical checks."""
    return Case(name, body, feeds, fetch, ref, rtol, atol, check)


def numeric_grad(f, args, k, h=1e-6):
    """Central finite differences of scalar f(*args) with respect to args[k]."""
    x = args[k]
    g = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f(*args)
        flat[i] = old - h
        fm = f(*args)
        flat[i] = old
        g.reshape(-1)[i] = (fp - fm) / (2 * h)
    return g


def gradcase(name, body, feeds, wrt, ref, fetch="y", rtol=1e-4, atol=1e-6):
    """Checks kiln's gradients of node `fetch` against central finite
    differences of the NumPy function `ref` (f64 throughout): the loss is
    sum(y * w) for a fixed random w, so every output element matters."""
    y = np.asarray(ref(*[np.array(v) for v in feeds.values()]))
    w = RNG.uniform(-1, 1, y.shape).astype(np.float64)
    shape = ",".join(str(d) for d in y.shape)
    names = list(feeds)
    grad_body = body + """
        gw = placeholder() : f64[%s]
        gl = sum(mul(%s, gw))
        gg = gradients(gl, %s)
    """ % (shape, fetch, ", ".join(wrt))
    all_feeds = dict(feeds)
    all_feeds["gw"] = w
    fetches = ["gg"] + ["gg.%d" % i for i in range(1, len(wrt))]

    def loss(*args):
        return float(np.sum(np.asarray(ref(*args[:-1])) * args[-1]))

    def want(*args):
        args = [np.array(a, dtype=np.float64) if np.issubdtype(np.asarray(a).dtype, np.floating) else np.array(a)
                for a in args]
        return [numeric_grad(loss, args, names.index(x)) for x in wrt]
    return Case(name, grad_body, all_feeds, fetches, want, rtol, atol, None)


def kg_type(a):
    inv = {v: k for k, v in NP_DTYPES.items()}
    return "%s[%s]" % (inv[a.dtype.type], ",".join(str(d) for d in a.shape))


def module_text(cases, device=None):
    """One module: each case's nodes prefixed with the case name, one entry per
    case; with `device` all of them inside `device DEVICE { ... }`."""
    lines = ["module refcheck", "graph {"] + (["device %s {" % device] if device else [])
    for c in cases:
        names = set(re.findall(r"^\s*([A-Za-z_][\w/]*)\s*=", c.body, re.M))
        def rename(m):
            w = m.group(0)
            return c.name + "/" + w if w in names else w
        for ln in c.body.strip().splitlines():
            ln = ln.split("#")[0].rstrip()
            if ln.strip():
                lines.append("  " + re.sub(r"(?<![\w/.<])[A-Za-z_]\w*(?![\w(<])", rename, ln))
    lines.append("}" * (2 if device else 1))
    for c in cases:
        feeds = ", ".join(c.name + "/" + f for f in c.feeds)
        fetch = ", ".join(c.name + "/" + f for f in c.fetch)
        lines.append("entry %s(%s) -> (%s)" % (c.name, feeds, fetch))
    return "\n".join(lines) + "\n"


def ptxas_path():
    p = os.environ.get("PTXAS") or "/usr/local/cuda/bin/ptxas"
    return p if os.access(p, os.X_OK) else None


def check_ptx(kiln, src, workdir, flags, kernels):
    """The module's PTX through ptxas: None when it assembles with one .entry
    per kernel, else why not."""
    ptx = os.path.join(workdir, "m.ptx")
    r = subprocess.run([kiln, "emit", "--emit=ptx", *flags, src, "-o", ptx], capture_output=True, text=True)
    if r.returncode != 0:
        return "kiln emit --emit=ptx failed:\n" + r.stderr
    text = open(ptx).read()
    entries = len(re.findall(r"^\.visible \.entry ", text, re.M))
    r = subprocess.run([ptxas_path(), "-arch=sm_80", ptx, "-o", os.path.join(workdir, "m.cubin")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "ptxas failed:\n" + r.stderr[:4000]
    return None if entries == kernels else "the PTX has %d .entry, for %d kernel nodes" % (entries, kernels)


HOST_OPS = {"placeholder", "const", "device_copy", "no_op"}
NO_KERNEL = {"device_copy", "no_op", "reshape", "expand_dims", "squeeze", "stop_gradient"}


def placement(kiln, src, flags):
    """From the optimized graph: the ops of the nodes that soft placement left
    on the CPU, and the number of GPU nodes that are kernels."""
    r = subprocess.run([kiln, "emit", "--emit=opt-graph", *flags, src], capture_output=True, text=True)
    ops, kernels = set(), 0
    for line in r.stdout.splitlines():
        m = re.match(r"\s+\S+ = (\w+)", line)
        if not m:
            continue
        if " @gpu:" in line:
            kernels += m.group(1) not in NO_KERNEL
        elif m.group(1) not in HOST_OPS:
            ops.add(m.group(1))
    return sorted(ops), kernels


def gpu_envs(mode):
    """The build and run environments of a --gpu mode."""
    build = dict(os.environ)
    run = {"KILN_GPU_SYNC": "1"}
    if mode in ("emulate", "fake"):
        build["KILN_GPU_EMULATE"] = "1"
    if mode == "emulate":
        run = {"KILN_GPU": "0"}
    if mode == "fake":
        build["KILN_LDFLAGS"] = (build.get("KILN_LDFLAGS", "") + " -rdynamic").strip()
        run.update(FAKECUDA_LOG="1")
        if not os.environ.get("KILN_LIBCUBLAS"):
            run["KILN_CUBLAS"] = "0"
    return build, run


def gpu_run_problem(mode, stderr):
    """Why a case's run did not run its kernels as the mode asks (None: it did)."""
    if mode != "emulate" and "on the CPU" in stderr:
        return "the binary fell back to the CPU:\n" + stderr
    if mode == "fake":
        m = re.search(r"fakecuda: (\d+) launches \((\d+) executed\)", stderr)
        if not m or m.group(1) != m.group(2):
            return "fakecuda did not execute every launch:\n" + stderr
    return None


def run_cases(kiln, cases, workdir, verbose=False, flags=(), env=None, gpu=None):
    src = os.path.join(workdir, "m.kg")
    exe = os.path.join(workdir, "m")
    text = module_text(cases, "gpu:0" if gpu else None)
    with open(src, "w") as f:
        f.write(text)
    flags = list(flags) + (["--soft-placement"] if gpu else [])
    build_env, gpu_run_env = gpu_envs(gpu) if gpu else (None, None)
    r = subprocess.run([kiln, "build", *flags, src, "-o", exe], capture_output=True, text=True, env=build_env)
    if r.returncode != 0:
        print("kiln build failed:\n" + r.stderr + "\n--- module ---\n" + text)
        return [(c.name, False, "build failed") for c in cases]
    if gpu:
        moved, kernels = placement(kiln, src, flags)
        print("moved to the CPU: %s" % (", ".join(moved) or "nothing"))
        why = check_ptx(kiln, src, workdir, flags, kernels) if ptxas_path() else None
        if not ptxas_path():
            print("ptxas: skipped (no ptxas here; set PTXAS)")
        elif why:
            return [(c.name, False, why) for c in cases]
        else:
            print("ptxas sm_80: all %d kernels assemble" % kernels)
        env = dict(env or {}, **gpu_run_env)
    results = []
    for c in cases:
        args = [exe, "--run", c.name]
        for k, v in c.feeds.items():
            p = os.path.join(workdir, "%s.%s.npy" % (c.name, k))
            np.save(p, v)
            args += ["--feed", "%s/%s=%s" % (c.name, k, p)]
        outs = []
        for k in c.fetch:
            p = os.path.join(workdir, "%s.%s.out.npy" % (c.name, k))
            outs.append(p)
            args += ["--fetch", "%s/%s=%s" % (c.name, k, p)]
        r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
        if r.returncode != 0:
            results.append((c.name, False, "run failed: " + r.stderr.strip()))
            continue
        why = gpu_run_problem(gpu, r.stderr) if gpu else None
        if why:
            results.append((c.name, False, why))
            continue
        got = [np.load(p) for p in outs]
        ok, why = compare(c, got)
        results.append((c.name, ok, why))
    return results


def compare(c, got):
    feeds = list(c.feeds.values())
    if c.check is not None:
        why = c.check(got if len(got) > 1 else got[0], feeds)
        return (why is None, why or "")
    want = c.ref(*feeds)
    if not isinstance(want, (list, tuple)):
        want = [want]
    for g, w in zip(got, want):
        w = np.asarray(w)
        if g.shape != w.shape:
            return False, "shape %s, expected %s" % (g.shape, w.shape)
        if g.dtype != w.dtype:
            return False, "dtype %s, expected %s" % (g.dtype, w.dtype)
        if np.issubdtype(w.dtype, np.floating):
            if not np.allclose(g, w, rtol=c.rtol, atol=c.atol, equal_nan=True):
                err = np.max(np.abs(g.astype(np.float64) - w))
                return False, "max abs error %g\n got %s\n want %s" % (err, g, w)
        elif not np.array_equal(g, w):
            return False, "values differ\n got %s\n want %s" % (g, w)
    return True, ""


def kg_typestr(dtype, shape):
    """'f32[2,3]' for a kiln dtype and a shape."""
    return "%s[%s]" % (dtype, ",".join(str(d) for d in shape))


def matmul_attrs(ta, tb):
    """The attribute block of a matmul with these transpose flags ('' if none)."""
    parts = (["transpose_a=true"] if ta else []) + (["transpose_b=true"] if tb else [])
    return " {%s}" % ", ".join(parts) if parts else ""


def matmul_ref(ta, tb):
    """np.matmul with op() applied to the last two dimensions of a and b."""
    def f(a, b):
        return np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
    return f


def load_cases(path):
    """The file's CASES, its KILN_FLAGS (extra `kiln build` arguments) and KILN_ENV (for the runs)."""
    ns = {"case": case, "gradcase": gradcase, "rand": rand, "positive": positive, "np": np,
          "kg_typestr": kg_typestr, "matmul_attrs": matmul_attrs, "matmul_ref": matmul_ref, "__file__": path}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), ns)
    return ns["CASES"], list(ns.get("KILN_FLAGS", [])), dict(ns.get("KILN_ENV", {}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.environ.get("KILN", "build/kiln"))
    ap.add_argument("--only", default=None, help="regex on case names")
    ap.add_argument("--gpu", nargs="?", const="emulate", choices=["emulate", "fake", "device"],
                    help="check the GPU kernels (see above)")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    failed = total = 0
    for path in a.files:
        all_cases, flags, env = load_cases(path)
        cases = [c for c in all_cases if not a.only or re.search(a.only, c.name)]
        if not cases:
            continue
        with tempfile.TemporaryDirectory() as d:
            for name, ok, why in run_cases(a.kiln, cases, d, flags=flags, env=env, gpu=a.gpu):
                total += 1
                if not ok:
                    failed += 1
                    print("FAIL %s: %s" % (name, why))
    print("%d passed, %d failed" % (total - failed, failed))
    sys.exit(1 if failed or total == 0 else 0)


if __name__ == "__main__":
    main()
