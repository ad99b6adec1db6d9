#!/usr/bin/python3
"""The C backend against the LLVM backend on the ONNX conformance cases.

Runs tests/onnx/run_conformance.py twice over the cases listed in
tests/onnx/passing.txt (those the LLVM backend passes): once with kiln as
is, once through tests/cbackend/kiln-c (kiln --backend c), keeping every
case's outputs.  Then each output of each data set is compared between the
two backends: integers and booleans exactly, floats within a relative 1e-5
(absolute 1e-6 near zero; NaN equals NaN), dtype and shape exactly.

    /usr/bin/python3 tests/cbackend/onnx_equal.py --kiln build/kiln [-j 2] [FILTER...]

Prints one line per case that differs or fails under the C backend, then a
summary; the exit status is 1 when any listed case is not equal.
"""

import argparse
import glob
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNNER = os.path.join(REPO, "tests", "onnx", "run_conformance.py")
RTOL, ATOL = 1e-5, 1e-6


def listed(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def run(kiln, build, cache, jobs, filters, env):
    """{case id: status} from one run of the conformance runner."""
    argv = [sys.executable, RUNNER, "--kiln", kiln, "--build", build, "--data-cache", cache,
            "-j", str(jobs), "--keep", "-v"] + filters
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    status = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] in ("pass", "fail", "unsupported", "skipped"):
            status[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "")
    return status


def compare(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return "llvm %s%s, c %s%s" % (a.dtype, list(a.shape), b.dtype, list(b.shape))
    if a.dtype.kind in "fc":
        if np.allclose(b, a, rtol=RTOL, atol=ATOL, equal_nan=True):
            return None
        with np.errstate(invalid="ignore"):
            rel = np.abs(b.astype(np.float64) - a) / np.maximum(np.abs(a.astype(np.float64)), 1e-300)
        return "floats differ: max relative %.3g" % np.nanmax(rel)
    if np.array_equal(a, b):
        return None
    return "%d of %d elements differ" % (int((a != b).sum()), a.size)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"))
    ap.add_argument("--build", default=os.path.join(REPO, "build", "cbackend-onnx"))
    ap.add_argument("--data-cache", default=None, help="converted test data (default: BUILD/onnx-data)")
    ap.add_argument("--list", default=os.path.join(REPO, "tests", "onnx", "passing.txt"))
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("filters", nargs="*", help="only the listed cases containing one of these")
    args = ap.parse_args()
    kiln = os.path.abspath(args.kiln)
    cases = listed(args.list)
    if args.filters:
        cases = [c for c in cases if any(f in c for f in args.filters)]
    if not cases:
        print("no cases")
        return 0
    cache = os.path.abspath(args.data_cache or os.path.join(args.build, "onnx-data"))
    env = dict(os.environ, KILN=kiln)
    st_llvm = run(kiln, os.path.join(args.build, "llvm"), cache, args.jobs, cases, env)
    st_c = run(os.path.join(HERE, "kiln-c"), os.path.join(args.build, "c"), cache, args.jobs, cases, env)
    equal, differ, outputs = [], [], 0
    for case in cases:
        sl, sc = st_llvm.get(case, ("missing", "")), st_c.get(case, ("missing", ""))
        if sl[0] != "pass":
            differ.append((case, "the LLVM backend does not pass it here (%s: %s)" % sl))
            continue
        if sc[0] != "pass":
            differ.append((case, "C backend %s: %s" % sc))
            continue
        dl = os.path.join(args.build, "llvm", case)
        dc = os.path.join(args.build, "c", case)
        files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(dl, "*_got_*.npy")))
        why = None if files else "no outputs kept"
        for f in files:
            outputs += 1
            try:
                why = compare(np.load(os.path.join(dl, f)), np.load(os.path.join(dc, f)))
            except OSError as e:
                why = "%s: %s" % (f, e)
            if why:
                why = "%s: %s" % (f, why)
                break
        (differ if why else equal).append((case, why))
    for case, why in differ:
        print("DIFFERS  %s  %s" % (case, why))
    print("C backend vs LLVM backend on %d ONNX conformance cases (%s): %d equal (%d outputs; integers "
          "exactly, floats rtol %g atol %g), %d not" % (len(cases), os.path.relpath(args.list, REPO), len(equal),
                                                        outputs, RTOL, ATOL, len(differ)))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
