#!/usr/bin/python3
"""ONNX backend conformance runner for kiln.

Runs the cases of Debian's libonnx-testdata (node, pytorch-converted,
pytorch-operator, simple; `real` needs downloads and is listed as skipped):
each case's model.onnx is compiled with `kiln build`, the binary is run on
every test_data_set_*'s recorded inputs, and its outputs are compared with
the recorded ones (floats: rtol 1e-3, atol 1e-5, NaN equal to NaN; integers
and booleans exactly; shape and dtype must match).

    /usr/bin/python3 tests/onnx/run_conformance.py --kiln build/kiln [--check] [-v] [FILTER...]

--check compares with tests/onnx/passing.txt: every listed case that does
not pass is printed and the exit status is 1.  --write-lists rewrites
tests/onnx/passing.txt and tests/onnx/status.txt (with filters or a subset
of suites, only the entries of the cases run are replaced).

The recorded TensorProtos are converted to .npy once, into
build/onnx-data/<suite>/<case>/ (manifest.json is the stamp).  Needs numpy
and onnx: run it with /usr/bin/python3 (docs/onnx-conformance.md).
"""

import argparse
import collections
import concurrent.futures
import fnmatch
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError as e:  # pragma: no cover
    sys.stderr.write("run_conformance.py: error: %s (run it with /usr/bin/python3, "
                     "which has numpy and python3-onnx)\n" % e)
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DATA = "/usr/share/libonnx-testdata/data"
SUITES = ["node", "pytorch-converted", "pytorch-operator", "simple", "real"]
SKIPPED_SUITES = {"real": "model needs a download (data.json only)"}
CONVERT_VERSION = 3  # bump when the cache format changes
RTOL, ATOL = 1e-3, 1e-5

# ONNX element types kiln's binaries read and write, and the names kiln uses.
KILN_DTYPES = {
    onnx.TensorProto.BOOL: "bool", onnx.TensorProto.INT8: "i8", onnx.TensorProto.UINT8: "u8",
    onnx.TensorProto.INT32: "i32", onnx.TensorProto.INT64: "i64",
    onnx.TensorProto.FLOAT: "f32", onnx.TensorProto.DOUBLE: "f64",
}
OTHER_DTYPES = {
    onnx.TensorProto.FLOAT16: "f16", onnx.TensorProto.BFLOAT16: "bf16",
    onnx.TensorProto.STRING: "string", onnx.TensorProto.INT16: "i16",
    onnx.TensorProto.UINT16: "u16", onnx.TensorProto.UINT32: "u32",
    onnx.TensorProto.UINT64: "u64", onnx.TensorProto.COMPLEX64: "c64",
    onnx.TensorProto.COMPLEX128: "c128", onnx.TensorProto.UNDEFINED: "undefined",
}
NP_TO_KILN = {np.dtype(np.bool_): "bool", np.dtype(np.int8): "i8", np.dtype(np.uint8): "u8",
              np.dtype(np.int32): "i32", np.dtype(np.int64): "i64",
              np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def typestr(a):
    return "%s[%s]" % (NP_TO_KILN.get(a.dtype, str(a.dtype)), ",".join(str(d) for d in a.shape))


# ---------------------------------------------------------------- cases

class Case:
    def __init__(self, suite, name, path):
        self.suite, self.name, self.path = suite, name, path
        self.id = "%s/%s" % (suite, name)
        self.status = None   # pass | fail | unsupported | skipped
        self.reason = ""
        self.detail = ""     # full first error line etc. for -v
        self.t_compile = 0.0
        self.t_run = 0.0
        self.frozen = set()  # graph inputs compiled in as constants


def discover(data, suites, filters):
    cases = []
    for suite in suites:
        d = os.path.join(data, suite)
        if not os.path.isdir(d):
            sys.stderr.write("run_conformance.py: error: no suite directory %s\n" % d)
            sys.exit(2)
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if not os.path.isdir(p):
                continue
            c = Case(suite, name, p)
            if filters and not any(f in c.id or fnmatch.fnmatchcase(c.id, f)
                                   or fnmatchcase_name(name, f) for f in filters):
                continue
            cases.append(c)
    return cases


def fnmatchcase_name(name, pattern):
    return fnmatch.fnmatchcase(name, pattern)


# ------------------------------------------------- .pb -> .npy conversion

def value_kind(vi):
    """(kiln dtype or None, unsupported-reason or None, dims or None) of a ValueInfo."""
    k = vi.type.WhichOneof("value")
    if k != "tensor_type":
        kind = {"sequence_type": "sequence", "optional_type": "optional",
                "map_type": "map", "sparse_tensor_type": "sparse tensor"}.get(k, str(k))
        return None, "dtype %s" % kind, None
    tt = vi.type.tensor_type
    if tt.elem_type not in KILN_DTYPES:
        return None, "dtype %s" % OTHER_DTYPES.get(tt.elem_type, "#%d" % tt.elem_type), None
    dims = None
    if tt.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    return KILN_DTYPES[tt.elem_type], None, dims


def graph_ops(graph):
    """The op types of a graph and of its subgraphs (If, Loop, Scan bodies)."""
    ops = set()
    for n in graph.node:
        ops.add(n.op_type if n.domain in ("", "ai.onnx") else "%s.%s" % (n.domain, n.op_type))
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                ops |= graph_ops(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    ops |= graph_ops(g)
    return ops


def source_stamp(case):
    files = [os.path.join(case.path, "model.onnx")]
    files += glob.glob(os.path.join(case.path, "test_data_set_*", "*.pb"))
    return [CONVERT_VERSION, len(files), max(int(os.stat(f).st_mtime) for f in files)]


def prepare(case, cache_root):
    """Converts a case's recorded tensors to .npy (cached); returns its manifest."""
    out = os.path.join(cache_root, case.suite, case.name)
    mpath = os.path.join(out, "manifest.json")
    stamp = source_stamp(case)
    try:
        with open(mpath) as f:
            man = json.load(f)
        if man.get("stamp") == stamp:
            return man
    except (OSError, ValueError):
        pass
    man = {"stamp": stamp, "unsupported": None, "inputs": [], "outputs": [], "datasets": [], "ops": []}
    try:
        model = onnx.load(os.path.join(case.path, "model.onnx"), load_external_data=False)
    except Exception as e:  # a model onnx 1.12 cannot read
        man["unsupported"] = "model: onnx cannot load it (%s)" % str(e).splitlines()[0][:100]
        model = None
    if model is not None:
        man["ops"] = sorted(graph_ops(model.graph))
        inits = {t.name for t in model.graph.initializer}
        ins = [v for v in model.graph.input if v.name not in inits]
        for role, vis in (("inputs", ins), ("outputs", model.graph.output)):
            for vi in vis:
                dt, why, dims = value_kind(vi)
                if why and not man["unsupported"]:
                    man["unsupported"] = why
                man[role].append({"name": vi.name, "dtype": dt, "dims": dims})
    if not man["unsupported"]:
        os.makedirs(out, exist_ok=True)
        for ds in sorted(glob.glob(os.path.join(case.path, "test_data_set_*"))):
            dsname = os.path.basename(ds)
            entry = {"name": dsname, "inputs": [], "outputs": [], "shapes": []}
            for role in ("input", "output"):
                n = len(glob.glob(os.path.join(ds, role + "_*.pb")))
                for i in range(n):
                    t = onnx.TensorProto()
                    with open(os.path.join(ds, "%s_%d.pb" % (role, i)), "rb") as f:
                        t.ParseFromString(f.read())
                    a = numpy_helper.to_array(t)
                    if a.dtype not in NP_TO_KILN:
                        man["unsupported"] = "dtype %s (%s_%d.pb)" % (a.dtype, role, i)
                        break
                    npy = os.path.join(out, "%s_%s_%d.npy" % (dsname, role, i))
                    np.save(npy, np.array(a, order="C"))  # (ascontiguousarray makes 0-d arrays 1-d)
                    entry[role + "s"].append(os.path.basename(npy))
                    if role == "input":
                        entry["shapes"].append(list(a.shape))
            man["datasets"].append(entry)
    os.makedirs(out, exist_ok=True)
    tmp = mpath + ".tmp"
    with open(tmp, "w") as f:
        json.dump(man, f)
    os.replace(tmp, mpath)
    return man


# ------------------------------------------------------------ processes

def run_cmd(argv, timeout, cwd=None, env=None):
    """(status, stdout+stderr text, seconds); status None on timeout, -N on signal N.
    The child gets its own process group so a timeout kills its children too."""
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                             env=env, start_new_session=True)
    except OSError as e:
        return 127, "error: cannot run %s: %s\n" % (argv[0], e.strerror), time.monotonic() - t0
    try:
        out, _ = p.communicate(timeout=timeout)
        status = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = p.communicate()
        status = None
    return status, out.decode("utf-8", "replace"), time.monotonic() - t0


def first_error(text, strip_paths=()):
    lines = [l for l in text.splitlines() if l.strip()]
    line = next((l for l in lines if "error:" in l), lines[0] if lines else "(no message)")
    i = line.find("error:")
    if i >= 0:
        line = line[i + len("error:"):].strip()
    for p in strip_paths:
        line = line.replace(p + "/", "").replace(p, ".")
    line = "".join(ch if ch.isprintable() else "\\x%02x" % ord(ch) for ch in line)
    return line.strip()[:300]


def status_text(status, what, timeout):
    if status is None:
        return "%stimed out after %d s" % (what + " " if what else "", timeout)
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "signal %d" % -status
        return "%skilled by %s" % (what + " " if what else "", name)
    return None


def parse_list(text, entry="main"):
    """ins, outs: lists of (name, type) of `entry` from a binary's --list."""
    ins, outs, inside = [], [], False
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 2 and " " not in s:
            inside = s == entry
            continue
        if inside and (s.startswith("in ") or s.startswith("out ")):
            kind, rest = s.split(None, 1)
            name, _, ty = rest.rpartition(" ")
            (ins if kind == "in" else outs).append((name.strip(), ty))
    return ins, outs


# ------------------------------------------------------------ comparison

def compare(got, want):
    """None if equal within tolerance, else the reason."""
    if got.dtype != want.dtype or got.shape != want.shape:
        return "got %s, expected %s" % (typestr(got), typestr(want))
    if want.dtype.kind == "f":
        if np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            return None
        g, w = got.astype(np.float64), want.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~np.isclose(g, w, rtol=RTOL, atol=ATOL, equal_nan=True)
            diff = np.where(bad, np.abs(g - w), 0)
            diff = np.where(np.isnan(diff), np.inf, diff)
        idx = np.unravel_index(int(np.argmax(diff)), want.shape) if want.ndim else ()
        return ("%d of %d elements differ; at [%s] got %.6g, expected %.6g"
                % (int(bad.sum()), want.size, ",".join(map(str, idx)), g[idx], w[idx]))
    if np.array_equal(got, want):
        return None
    bad = got != want
    idx = tuple(int(i[0]) for i in np.nonzero(bad)) if want.ndim else ()
    return ("%d of %d elements differ; at [%s] got %s, expected %s"
            % (int(bad.sum()), want.size, ",".join(map(str, idx)), got[idx], want[idx]))


# ------------------------------------------------------------ one case

# Kiln compiles static shapes: an input that decides a shape (Reshape's
# shape, Slice's starts, ReduceSum's axes, Range's limits, ...) must be a
# constant.  The node tests feed such values as graph inputs; when kiln says
# so, the runner freezes them: it rewrites the model with those graph inputs
# (and every graph input the value is computed from) as initializers holding
# the data set's recorded values, and compiles again.
NEEDS_CONSTANT = re.compile(r"must be (known at compile time|a constant)")


def inputs_to_freeze(model, text):
    """Names of the graph inputs that kiln's error says must be constants."""
    line = next((l for l in text.splitlines() if NEEDS_CONSTANT.search(l)), "")
    m = re.search(r"node '([^']*)' \(([^)]*)\): (.*)", line)
    if not m:
        return set()
    name, op, msg = m.groups()
    node = next((n for n in model.graph.node if n.op_type == op and (n.name == name or name in n.output)), None)
    if node is None:
        return set()
    k = re.search(r"\binput (\d+)\b", msg)
    if k:
        idxs = [int(k.group(1))]
    elif "condition" in msg:
        idxs = [1]
    elif "training_mode" in msg:
        idxs = [2]
    else:
        idxs = range(1, len(node.input))
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = {v.name for v in model.graph.input} - inits
    producer = {o: n for n in model.graph.node for o in n.output}
    todo = [node.input[i] for i in idxs if i < len(node.input) and node.input[i]]
    seen, found = set(), set()
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in graph_inputs:
            found.add(v)
        elif v in producer:
            todo.extend(x for x in producer[v].input if x)
    return found


def write_frozen(case, man, ds, frozen, cache, path):
    model = onnx.load(os.path.join(case.path, "model.onnx"), load_external_data=False)
    keep = []
    names = [v["name"] for v in man["inputs"]]
    for v in model.graph.input:
        if v.name in frozen:
            a = np.load(os.path.join(cache, ds["inputs"][names.index(v.name)]), allow_pickle=False)
            model.graph.initializer.append(numpy_helper.from_array(a, v.name))
        else:
            keep.append(v)
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.save(model, path)


def run_case(case, man, args, data_root):
    if man.get("error"):
        case.status, case.reason = "fail", man["error"]
        return
    if man["unsupported"]:
        case.status, case.reason = "unsupported", man["unsupported"]
        return
    cache = os.path.join(args.data_cache, case.suite, case.name)
    work = os.path.join(args.build, case.suite, case.name)
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work)
    strip = (case.path, work, cache, data_root)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    names = [v["name"] for v in man["inputs"]]
    several = len(man["datasets"]) > 1

    # One binary per distinct shape of the dynamic inputs (one in practice),
    # and one per data set once inputs are frozen.
    dynamic = [i for i, v in enumerate(man["inputs"])
               if v["dims"] is None or any(d is None for d in v["dims"])]
    groups = collections.OrderedDict()
    for ds in man["datasets"]:
        key = tuple(tuple(ds["shapes"][i]) for i in dynamic if i < len(ds["shapes"]))
        groups.setdefault(key, []).append(ds)
    units = list(groups.items())
    ui = 0
    while ui < len(units):
        key, dss = units[ui]
        exe = os.path.join(work, "model" if ui == 0 else "model%d" % ui)
        frozen = set()
        source = os.path.join(case.path, "model.onnx")
        while True:
            argv = [args.kiln, "build", source, "-o", exe]
            for i, shape in zip(dynamic, key):
                if names[i] not in frozen:
                    argv += ["--input-shape", "%s=%s" % (names[i], ",".join(map(str, shape)))]
            status, text, dt = run_cmd(argv, args.compile_timeout, cwd=work, env=env)
            case.t_compile += dt
            why = status_text(status, "kiln", args.compile_timeout)
            if why is None and status != 0:
                m = re.search(r"unsupported ONNX op '([^']+)'", text)
                if m:
                    case.status = "unsupported"
                    case.reason = "op %s" % m.group(1)
                    case.detail = first_error(text, strip)
                    return
                why = first_error(text, strip)
                if args.freeze and NEEDS_CONSTANT.search(text):
                    model = onnx.load(os.path.join(case.path, "model.onnx"), load_external_data=False)
                    more = inputs_to_freeze(model, text) - frozen
                    if more:
                        if len(dss) > 1:  # the values differ per data set
                            units[ui + 1:ui + 1] = [(key, [d]) for d in dss[1:]]
                            dss = dss[:1]
                        frozen |= more
                        source = os.path.join(work, "model_frozen%d.onnx" % ui)
                        write_frozen(case, man, dss[0], frozen, cache, source)
                        continue
            if why is None and not os.path.exists(exe):
                why = "kiln build exited 0 but wrote no %s" % os.path.basename(exe)
            if why:
                case.status, case.reason = "fail", "compile: " + why
                if frozen:
                    case.reason += " (inputs frozen: %s)" % ", ".join(sorted(frozen))
                return
            break
        case.frozen |= frozen
        fed = [i for i, n in enumerate(names) if n not in frozen]

        status, text, dt = run_cmd([exe, "--list"], args.run_timeout, cwd=work, env=env)
        case.t_run += dt
        ins, outs = parse_list(text)
        if status != 0 or (not ins and not outs):
            case.status = "fail"
            case.reason = "list: " + (status_text(status, "--list", args.run_timeout)
                                      or "no entry 'main' in --list output: "
                                      + " | ".join(text.strip().splitlines()[:3])[:200])
            return
        for ds in dss:
            pre = ds["name"] + ": " if several else ""
            if len(ins) != len(fed) or len(outs) != len(ds["outputs"]):
                case.status = "fail"
                case.reason = ("run: %sentry 'main' has %d inputs and %d outputs; the test data "
                               "has %d and %d" % (pre, len(ins), len(outs), len(fed), len(ds["outputs"])))
                if frozen:
                    case.reason += " (%d inputs frozen)" % len(frozen)
                return
            argv = [exe, "--run", "main"]
            for (name, _), i in zip(ins, fed):
                argv += ["--feed", "%s=%s" % (name, os.path.join(cache, ds["inputs"][i]))]
            results = []
            for i, (name, _) in enumerate(outs):
                r = os.path.join(work, "%s_got_%d.npy" % (ds["name"], i))
                results.append(r)
                argv += ["--fetch", "%s=%s" % (name, r)]
            status, text, dt = run_cmd(argv, args.run_timeout, cwd=work, env=env)
            case.t_run += dt
            why = status_text(status, "", args.run_timeout)
            if why is None and status != 0:
                why = "exit %d: %s" % (status, first_error(text, strip))
            if why:
                case.status, case.reason = "fail", "run: " + pre + why
                return
            for i, ((name, _), r, f) in enumerate(zip(outs, results, ds["outputs"])):
                try:
                    got = np.load(r, allow_pickle=False)
                except Exception as e:
                    case.status = "fail"
                    case.reason = "run: %soutput %d '%s' unreadable: %s" % (pre, i, name, e)
                    return
                want = np.load(os.path.join(cache, f), allow_pickle=False)
                why = compare(got, want)
                if why:
                    case.status = "fail"
                    case.reason = "mismatch: %soutput %d '%s': %s" % (pre, i, name, why)
                    if frozen:
                        case.reason += " (inputs frozen: %s)" % ", ".join(sorted(frozen))
                    return
        ui += 1
    case.status = "pass"
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------ lists

def read_lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    except FileNotFoundError:
        return None


def write_lists(cases, lists_dir, partial):
    ppath = os.path.join(lists_dir, "passing.txt")
    spath = os.path.join(lists_dir, "status.txt")
    passing, status = set(), {}
    if partial:
        passing = set(read_lines(ppath) or [])
        for l in read_lines(spath) or []:
            status[l.split("\t", 1)[0]] = l
    for c in cases:
        passing.discard(c.id)
        status.pop(c.id, None)
        if c.status == "pass":
            passing.add(c.id)
        else:
            status[c.id] = "%s\t%s\t%s" % (c.id, c.status, c.reason.replace("\t", " ").replace("\n", " "))
    with open(ppath, "w") as f:
        f.write("# ONNX conformance cases that pass; `make test` fails if one of them stops passing.\n"
                "# Written by tests/onnx/run_conformance.py --write-lists (docs/onnx-conformance.md).\n")
        f.writelines(l + "\n" for l in sorted(passing))
    with open(spath, "w") as f:
        f.write("# ONNX conformance cases that do not pass: case<TAB>unsupported|fail|skipped<TAB>reason.\n"
                "# Written by tests/onnx/run_conformance.py --write-lists (docs/onnx-conformance.md).\n")
        f.writelines(status[k] + "\n" for k in sorted(status))


def reason_key(c):
    """Groups reasons for the summary: the op, the dtype, or the message with
    names and numbers blanked out."""
    if c.status == "unsupported":
        return "unsupported " + c.reason.split(" (")[0]
    r = re.sub(r"'[^']*'", "'…'", c.reason)
    r = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", r)
    r = re.sub(r"\[[N,]*\]", "[…]", r)
    return "fail " + r[:110]


# ------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"), help="the kiln command (build/kiln)")
    ap.add_argument("--build", default=os.path.join(REPO, "build", "onnx-conf"),
                    help="work directory for binaries and outputs (build/onnx-conf)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="the test data (%(default)s)")
    ap.add_argument("--data-cache", default=None,
                    help="where the .npy conversions go (the --build directory's sibling onnx-data)")
    ap.add_argument("--suites", default=",".join(SUITES), help="comma-separated (%(default)s)")
    ap.add_argument("--jobs", "-j", type=int, default=2)
    ap.add_argument("--compile-timeout", type=int, default=60)
    ap.add_argument("--run-timeout", type=int, default=30)
    ap.add_argument("--lists", default=HERE, help="where passing.txt and status.txt are (tests/onnx)")
    ap.add_argument("--write-lists", action="store_true", help="rewrite passing.txt and status.txt")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a case in passing.txt does not pass")
    ap.add_argument("--reasons", type=int, default=0, metavar="N",
                    help="print the N most common reasons a case does not pass")
    ap.add_argument("--no-freeze", dest="freeze", action="store_false",
                    help="do not compile inputs that kiln needs as constants in as their recorded values")
    ap.add_argument("--keep", action="store_true", help="keep the work files of passing cases too")
    ap.add_argument("--prepare-only", action="store_true", help="only convert the test data")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case's status and reason")
    ap.add_argument("filters", nargs="*", help="run only the cases whose suite/case contains FILTER "
                    "or matches it as a glob (e.g. node/test_add* or conv)")
    args = ap.parse_args()

    suites = [s for s in args.suites.split(",") if s]
    for s in suites:
        if s not in SUITES:
            ap.error("unknown suite '%s' (known: %s)" % (s, ", ".join(SUITES)))
    args.build = os.path.abspath(args.build)
    if args.data_cache is None:
        args.data_cache = os.path.join(os.path.dirname(args.build), "onnx-data")
    args.data_cache = os.path.abspath(args.data_cache)
    if not args.prepare_only:
        kiln = shutil.which(args.kiln) if os.sep not in args.kiln else args.kiln
        if not kiln or not os.access(kiln, os.X_OK):
            ap.error("no kiln command at %s (build it: make build/kiln)" % args.kiln)
        args.kiln = os.path.abspath(kiln)
    if not os.path.isdir(args.data):
        sys.stderr.write("run_conformance.py: error: no test data at %s "
                         "(install libonnx-testdata: make deps)\n" % args.data)
        return 2

    t0 = time.monotonic()
    cases = discover(args.data, suites, args.filters)
    todo = []
    for c in cases:
        if c.suite in SKIPPED_SUITES:
            c.status, c.reason = "skipped", SKIPPED_SUITES[c.suite]
        else:
            todo.append(c)
    mans = {}
    for c in todo:
        try:
            mans[c.id] = prepare(c, args.data_cache)
        except Exception as e:
            mans[c.id] = {"unsupported": None, "error": "test data: %s: %s" % (type(e).__name__, e)}
    t_prep = time.monotonic() - t0
    if args.prepare_only:
        n_uns = sum(1 for c in todo if mans[c.id]["unsupported"])
        for c in todo:
            if mans[c.id].get("error"):
                print("%s: %s" % (c.id, mans[c.id]["error"]))
        print("prepared %d cases in %.1f s (%d with unsupported dtypes) under %s"
              % (len(todo), t_prep, n_uns, args.data_cache))
        return 0

    os.makedirs(args.build, exist_ok=True)
    lock = threading.Lock()

    def one(c):
        try:
            run_case(c, mans[c.id], args, args.data)
        except Exception as e:  # a bug in the runner must not hide the other cases
            c.status, c.reason = "fail", "runner: %s: %s" % (type(e).__name__, e)
        if args.verbose:
            with lock:
                note = c.reason
                if c.status == "pass" and c.frozen:
                    note = "inputs frozen: " + ", ".join(sorted(c.frozen))
                print("%-12s %s%s" % (c.status, c.id, ("  " + note) if note else ""), flush=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        list(ex.map(one, todo))
    elapsed = time.monotonic() - t0
    if args.verbose:
        for c in cases:
            if c.status == "skipped":
                print("%-12s %s  %s" % (c.status, c.id, c.reason))

    # The table.
    print("\nONNX backend conformance (%s)" % args.data)
    print("%-20s %6s %6s %12s %8s %6s" % ("suite", "pass", "fail", "unsupported", "skipped", "total"))
    tot = collections.Counter()
    for s in suites:
        cnt = collections.Counter(c.status for c in cases if c.suite == s)
        n = sum(cnt.values())
        if not n:
            continue
        tot.update(cnt)
        print("%-20s %6d %6d %12d %8d %6d" % (s, cnt["pass"], cnt["fail"], cnt["unsupported"], cnt["skipped"], n))
    print("%-20s %6d %6d %12d %8d %6d" % ("total", tot["pass"], tot["fail"], tot["unsupported"],
                                          tot["skipped"], sum(tot.values())))
    nfrozen = sum(1 for c in todo if c.status == "pass" and c.frozen)
    if nfrozen:
        print("(%d of the passing cases have inputs that decide shapes, compiled in as their "
              "recorded values)" % nfrozen)
    ran = [c for c in todo if c.t_compile]
    if ran:
        tc = sorted(c.t_compile for c in ran)
        print("%.1f s with %d jobs (data conversion %.1f s); kiln build per case: mean %.2f s, max %.2f s (%s)"
              % (elapsed, args.jobs, t_prep, sum(tc) / len(tc), tc[-1],
                 max(ran, key=lambda c: c.t_compile).id))

    if args.reasons:
        keys = collections.Counter(reason_key(c) for c in todo if c.status != "pass")
        print("\nmost common reasons a case does not pass:")
        for k, n in keys.most_common(args.reasons):
            print("%5d  %s" % (n, k))
        # Ops no passing case uses: how many failing cases use each, and how
        # many need only that one (an estimate of what adding it unlocks).
        seen = set()
        for c in todo:
            if c.status == "pass":
                seen.update(mans[c.id].get("ops", []))
        need, sole = collections.Counter(), collections.Counter()
        for c in todo:
            if c.status == "pass" or (c.status == "unsupported" and c.reason.startswith("dtype")):
                continue
            missing = set(mans[c.id].get("ops", [])) - seen
            need.update(missing)
            if len(missing) == 1:
                sole.update(missing)
        if need:
            print("\nops used by no passing case: cases (of those with supported dtypes) using it, "
                  "and using no other such op:")
            for op, n in sorted(need.items(), key=lambda kv: (-sole[kv[0]], -kv[1], kv[0]))[:args.reasons]:
                print("%5d %5d  %s" % (n, sole[op], op))

    if args.write_lists:
        partial = bool(args.filters) or set(suites) != set(SUITES)
        write_lists(cases, args.lists, partial)
        print("wrote %s and %s" % (os.path.join(args.lists, "passing.txt"),
                                   os.path.join(args.lists, "status.txt")))

    if args.check:
        listed = read_lines(os.path.join(args.lists, "passing.txt"))
        if listed is None:
            print("error: no %s (write it with --write-lists)" % os.path.join(args.lists, "passing.txt"))
            return 2
        by_id = {c.id: c for c in cases}
        regressions, missing = [], []
        for cid in listed:
            c = by_id.get(cid)
            if c is None:
                if not args.filters and cid.split("/")[0] in suites:
                    missing.append(cid)
            elif c.status != "pass":
                regressions.append(c)
        new = [c for c in cases if c.status == "pass" and c.id not in set(listed)]
        if new:
            print("\n%d cases pass that passing.txt does not list (add them: --write-lists): %s"
                  % (len(new), " ".join(c.id for c in new[:20]) + (" ..." if len(new) > 20 else "")))
        if regressions or missing:
            print("\nFAILED: %d cases of tests/onnx/passing.txt no longer pass:" % (len(regressions) + len(missing)))
            for c in regressions:
                print("  %s: %s: %s" % (c.id, c.status, c.reason))
            for cid in missing:
                print("  %s: no such case in %s" % (cid, args.data))
            return 1
        print("\ncheck: all %d cases of passing.txt pass" % sum(1 for cid in listed if cid in by_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
