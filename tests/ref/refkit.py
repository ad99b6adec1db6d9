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


def module_text(cases):
    """One module: each case's nodes prefixed with the case name, one entry per case."""
    lines = ["module refcheck", "graph {"]
    for c in cases:
        names = set(re.findall(r"^\s*([A-Za-z_][\w/]*)\s*=", c.body, re.M))
        def rename(m):
            w = m.group(0)
            return c.name + "/" + w if w in names else w
        for ln in c.body.strip().splitlines():
            ln = ln.split("#")[0].rstrip()
            if ln.strip():
                lines.append("  " + re.sub(r"(?<![\w/.<])[A-Za-z_]\w*(?![\w(<])", rename, ln))
    lines.append("}")
    for c in cases:
        feeds = ", ".join(c.name + "/" + f for f in c.feeds)
        fetch = ", ".join(c.name + "/" + f for f in c.fetch)
        lines.append("entry %s(%s) -> (%s)" % (c.name, feeds, fetch))
    return "\n".join(lines) + "\n"


def run_cases(kiln, cases, workdir, verbose=False, flags=(), env=None):
    src = os.path.join(workdir, "m.kg")
    exe = os.path.join(workdir, "m")
    with open(src, "w") as f:
        f.write(module_text(cases))
    r = subprocess.run([kiln, "build", *flags, src, "-o", exe], capture_output=True, text=True)
    if r.returncode != 0:
        print("kiln build failed:\n" + r.stderr + "\n--- module ---\n" + module_text(cases))
        return [(c.name, False, "build failed") for c in cases]
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
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    failed = total = 0
    for path in a.files:
        all_cases, flags, env = load_cases(path)
        cases = [c for c in all_cases if not a.only or re.search(a.only, c.name)]
        if not cases:
            continue
        with tempfile.TemporaryDirectory() as d:
            for name, ok, why in run_cases(a.kiln, cases, d, flags=flags, env=env):
                total += 1
                if not ok:
                    failed += 1
                    print("FAIL %s: %s" % (name, why))
    print("%d passed, %d failed" % (total - failed, failed))
    sys.exit(1 if failed or total == 0 else 0)


if __name__ == "__main__":
    main()
