#!/usr/bin/python3
"""bench.py — kiln against ONNX Runtime on ONNX models (`make bench`;
docs/onnx-bench.md): latency of one run after warm-up, both measured in
this run, at 1 and 2 threads, and the ratio kiln / ORT.

  /usr/bin/python3 bench/onnx/bench.py [--kiln build/kiln] [--build build]
      [--threads 1,2] [--models NAME,...] [--scale F] [--rounds 3]
      [--coretype auto|none|NAME] [--out build/bench]

Models (tests/onnx_models/models.py): MLP 784-512-512-10 at batch 1 and 64,
MLP 1024-4096-4096-1024 at batch 64 (GEMM-bound: also GFLOP/s against plain
cblas_sgemm on the same three GEMMs, bench/onnx/sgemm.c), a small CNN at
batch 1, and Silero VAD per 512-sample chunk (the recurrent state carried from
chunk to chunk, cycling through the 48 chunks of the fixed signal); and a
one-Relu model for the per-run floor of each side.

kiln: each model is built twice with `kiln build -c` — as `kiln build` does
by default (matmul through OpenBLAS) and with `--blas=generated --cpu=native`
(kiln's own GEMM) — and run in-process by bench/onnx/kbench.c, which times
only the entry call; OpenBLAS gets OPENBLAS_NUM_THREADS=N.  When OpenBLAS
does not know the CPU and falls back to its generic Prescott kernels (Debian
12's 0.3.21 on recent Xeons), the OpenBLAS build runs again with
OPENBLAS_CORETYPE set from the CPU's flags (column kiln-ct).
ONNX Runtime 1.30.0 (onnxruntime-node, bench/onnx/ort_run.js): a session
with intraOpNumThreads N, interOpNumThreads 1, executionMode 'sequential',
graphOptimizationLevel 'all'.  It times the binding's synchronous run (the
C++ Run plus the N-API marshalling of feeds and fetches) and the public
`await session.run()` ("ORT async"); ORT's number is the lower of the two
medians.

The MLPs and the CNN also get a bound: the machine's single-core f32
multiply-add peak (bench/onnx/peak.c, measured in every round, the best
kept) gives the least time any program needs for a model's FLOPs; how fast
one core reads a buffer the size of an MLP's weights over and over
(peak.c --read) gives the least time to read them once per run.  The longer
of the two over ORT's time is the lowest kiln/ORT ratio possible at 1
thread.

Each side is measured in --rounds rounds, taken in turn (kiln, kiln-ct,
kiln-gen, ORT, then again), so that a change of the machine's load touches
all alike; a side's number is the lowest of its round medians.

Before timing, kiln's outputs (in-process, 1 thread) are checked against
ORT's (onnxref.compare, rtol 1e-4); a model that disagrees is marked.

Results: the table on stdout and in OUT/onnx-results.txt, every number in
OUT/onnx-results.json, and one JSON line per run appended to
OUT/onnx-history.jsonl; the numbers of the previous run are shown next to
this run's, so later changes can be compared."""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "onnx_models"))
import numpy as np  # noqa: E402

import models  # noqa: E402
import onnxref  # noqa: E402

# Runs and warm-up runs per model (times --scale), sized for about a second
# or two per measurement on a 2-core VM.
RUNS = {
    "mlp784_b1": (3000, 200),
    "mlp784_b64": (600, 50),
    "mlp4096_b64": (40, 5),
    "cnn_b1": (2000, 200),
    "silero_vad": (2000, 200),
}
TARGETS = {"mlp784_b1": 0.7, "mlp784_b64": 0.7, "mlp4096_b64": 1.0, "cnn_b1": 0.7, "silero_vad": 0.7}
VARIANTS = [("kiln", []), ("kiln-gen", ["--blas=generated", "--cpu=native"])]


def openblas_core():
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        cfg = lib.openblas_get_config().decode().split()
        return lib.openblas_get_corename().decode(), (cfg[1] if len(cfg) > 1 else "?")
    except (OSError, AttributeError):
        return "unknown", "?"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def git_commit():
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    d = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    c = r.stdout.strip() or "?"
    return c + ("+dirty" if d.stdout.strip() else "")


def build_kbench(kiln, build, m, variant, flags, workdir, cc):
    """kiln build -c, then kbench linked with it; returns the binary's path."""
    base = os.path.join(workdir, f"{m['name']}-{variant}")
    onnxref.kiln_build(kiln, m, base + ".o", ["-c", *flags])
    with open(base + ".h") as f:
        d = re.search(r"extern const kiln_module_desc (\w+);", f.read())
    if not d:
        raise RuntimeError(f"{base}.h declares no module descriptor")
    exe = base + "-kbench"
    onnxref.run([cc, "-std=gnu17", "-O2", "-Iruntime", f"-DKILN_DESC={d.group(1)}", "-o", exe,
                 os.path.join("bench", "onnx", "kbench.c"), base + ".o",
                 os.path.join(build, "libkilnrt.a"), "-lopenblas", "-lpthread", "-lm"])
    os.remove(base + ".o")  # the weights are in the binary now (100 MB for mlp4096_b64)
    return exe


def kbench_args(exe, m):
    a = [exe]
    for name in m["kiln_feeds"]:
        a += ["--feed", f"{onnxref.kiln_name(name)}={m['inputs'][name]}"]
    if m["loop"]:
        a += ["--chunked", onnxref.kiln_name(m["loop"]["per_chunk"])]
        for out, inp in m["loop"]["carry"].items():
            a += ["--carry", f"{onnxref.kiln_name(out)}={onnxref.kiln_name(inp)}"]
    return a


def env_threads(t):
    e = dict(os.environ)
    e["OPENBLAS_NUM_THREADS"] = str(t)
    return e


def fmt_ms(x):
    if x is None:
        return "-"
    return f"{x:.5f}" if x < 0.01 else f"{x:.4f}" if x < 1 else f"{x:.3f}" if x < 100 else f"{x:.1f}"


def fmt_ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def coretype_for_cpu():
    """The OpenBLAS kernel set this CPU could use, by its flags: for when
    OpenBLAS (0.3.21 in Debian 12) does not know the CPU model and falls back
    to its generic Prescott kernels, as it does on recent Xeons in VMs."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return None
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags):
        return "SkylakeX"
    if {"avx2", "fma"} <= set(flags):
        return "Haswell"
    return None


def weight_bytes(m):
    """The bytes of f32 weights and biases one run of an MLP reads (0: not known)."""
    return sum(4 * (n * k + n) for _, n, k in m["gemms"])


def bound_of(r, m, ort, pk, gbps):
    """The lowest kiln/ORT ratio any program can reach at 1 thread: the time
    the model's FLOPs take at the multiply-add peak, or its weights at the
    measured read bandwidth, whichever is longer, over ORT's time."""
    t = 0.0
    if pk and r.get("flops"):
        t = max(t, r["flops"] / (pk * 1e9))
    if gbps and weight_bytes(m):
        t = max(t, weight_bytes(m) / (gbps * 1e9))
    return t / (ort * 1e-3) if t and ort else None


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="build/kiln")
    ap.add_argument("--build", default="build", help="where libkilnrt.a is")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default=",".join(m["name"] for m in models.MODELS))
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the number of runs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--coretype", default="auto",
                    help="OPENBLAS_CORETYPE of the kiln-ct column (auto: only when OpenBLAS fell back "
                         "to Prescott, the kernels the CPU's flags allow; none: no such column)")
    ap.add_argument("--out", default="build/bench")
    a = ap.parse_args()
    os.chdir(ROOT)
    kiln = os.path.abspath(a.kiln)
    threads = [int(t) for t in a.threads.split(",")]
    names = [n for n in a.models.split(",") if n]
    for n in names:
        if n not in models.BY_NAME:
            sys.exit(f"bench.py: unknown model {n} (models: {', '.join(models.BY_NAME)})")
    cc = os.environ.get("CC") or "cc"
    os.makedirs(a.out, exist_ok=True)
    work = os.path.join(a.out, "onnx")
    os.makedirs(work, exist_ok=True)

    ort_why = onnxref.ort_unavailable_reason()
    if ort_why:
        print(f"bench.py: ONNX Runtime unavailable, kiln only: {ort_why}")
    core, obv = openblas_core()
    coretype = None
    if a.coretype == "auto":
        if core == "Prescott" and not os.environ.get("OPENBLAS_CORETYPE"):
            coretype = coretype_for_cpu()
    elif a.coretype != "none":
        coretype = a.coretype
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": git_commit(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "openblas": obv,
        "openblas_core": core,
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
        "kiln_ct_coretype": coretype,
        "ort": "onnxruntime-node 1.30.0",
        "threads": threads,
        "rounds": a.rounds,
    }

    sgemm = os.path.join(work, "sgemm")
    onnxref.run([cc, "-std=gnu17", "-O2", "-o", sgemm, os.path.join("bench", "onnx", "sgemm.c"), "-lopenblas"])
    peak = os.path.join(work, "peak")
    onnxref.run([cc, "-std=gnu17", "-O2", "-march=native", "-o", peak, os.path.join("bench", "onnx", "peak.c")])
    peak_gflops, read_gbps = [], {}

    def measure_peak(m):
        peak_gflops.append(json.loads(onnxref.run([peak]).strip().splitlines()[-1])["gflops"])
        wb = weight_bytes(m)
        if wb:
            out = onnxref.run([peak, "--read", str(wb)]).strip().splitlines()[-1]
            read_gbps.setdefault(m["name"], []).append(json.loads(out)["gbps"])

    def env(t, ct=None):
        e = env_threads(t)
        if ct:
            e["OPENBLAS_CORETYPE"] = ct
        return e

    def kiln_ms(exe, m, t, runs, warmup, ct=None):
        out = onnxref.run(kbench_args(exe, m) + ["--time", str(runs), "--warmup", str(warmup)], env=env(t, ct))
        return json.loads(out.strip().splitlines()[-1])["median_ms"]

    results = []  # one per (model, threads)
    models_meta = {}
    floor = None
    todo = [models.FLOOR] + [models.BY_NAME[n] for n in names]
    for m in todo:
        name = m["name"]
        why = onnxref.model_unavailable_reason(m)
        if why:
            print(f"bench.py: {name}: skipped: {why}")
            continue
        runs, warmup = (max(3, int(x * a.scale)) for x in RUNS.get(name, (3000, 200)))
        per_round = max(3, runs // a.rounds)
        mm = {"desc": m["desc"], "runs": per_round * a.rounds, "warmup": warmup, "errors": {}, "agree": {}}
        exes = {}
        for variant, flags in VARIANTS:
            try:
                exes[variant] = build_kbench(kiln, a.build, m, variant, flags, work, cc)
            except Exception as e:  # noqa: BLE001 - reported in the table
                first = [ln for ln in str(e).splitlines()[1:] if ln.strip()][:1]
                mm["errors"][variant] = (first[0] if first else str(e).splitlines()[0])[:200]
                print(f"bench.py: {name}: {variant}: build failed: {e}")
        # Agreement of the in-process runs with ORT (1 thread).
        if not ort_why and exes and m is not models.FLOOR:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    ref = onnxref.ort_save(m, os.path.join(tmp, "ort"))
                except RuntimeError as e:
                    print(f"bench.py: {name}: ORT failed: {e}")
                    ref = None
                for variant, exe in exes.items():
                    if ref is None:
                        break
                    d = os.path.join(tmp, variant)
                    onnxref.run(kbench_args(exe, m) + ["--save", d], env=env_threads(1))
                    worst = 0.0
                    ok_all = True
                    for o in m["outputs"]:
                        ok, err, msg = onnxref.compare(o, np.load(os.path.join(d, o + ".npy")), ref[o])
                        worst = max(worst, err)
                        ok_all &= ok
                        if not ok:
                            print(f"bench.py: {name}: {variant} DISAGREES with ORT: {msg}")
                    mm["agree"][variant] = {"ok": bool(ok_all), "max_err": worst}
        for t in threads if m is not models.FLOOR else [1]:
            # Rounds, each measuring every side once in turn, so that a change
            # of the machine's load touches all sides alike; each side's
            # number is the lowest of its round medians.
            samples = {}
            for _ in range(a.rounds):
                if t == 1 and m is not models.FLOOR:
                    measure_peak(m)
                for variant, exe in exes.items():
                    samples.setdefault(variant, []).append(kiln_ms(exe, m, t, per_round, warmup))
                    if variant == "kiln" and coretype:
                        samples.setdefault("kiln-ct", []).append(kiln_ms(exe, m, t, per_round, warmup, coretype))
                if not ort_why:
                    o = onnxref.ort_time(m, t, per_round, warmup)
                    # ORT's number: the lower of its synchronous and its
                    # asynchronous medians (the synchronous run is the faster
                    # on a quiet machine; the lower one is kind to ORT when
                    # load from elsewhere hit one of the two phases).
                    samples.setdefault("ort", []).append(min(o["median_ms"], o["async_median_ms"]))
                    samples.setdefault("ort_sync", []).append(o["median_ms"])
                    samples.setdefault("ort_async", []).append(o["async_median_ms"])
                if m["gemms"] and name == "mlp4096_b64":
                    shapes = [f"{x},{y},{z}" for x, y, z in m["gemms"]]
                    for key, ct in (("sgemm", None), ("sgemm-ct", coretype)):
                        if key == "sgemm-ct" and not ct:
                            continue
                        out = onnxref.run([sgemm, "--time", str(per_round), "--warmup", str(warmup)] + shapes,
                                          env=env(t, ct))
                        samples.setdefault(key, []).append(json.loads(out.strip().splitlines()[-1])["median_ms"])
            r = {"model": name, "threads": t, "flops": m["flops"]}
            for k, v in samples.items():
                r[k] = min(v)
                r[k + "_rounds"] = v
            print(f"bench.py: {name} threads={t}: " +
                  ", ".join(f"{k} {fmt_ms(r[k])} ms" for k in samples), flush=True)
            if m is models.FLOOR:
                floor = r
            else:
                results.append(r)
        if m is not models.FLOOR:
            models_meta[name] = mm

    # ---- the table ----
    prev = None
    json_path = os.path.join(a.out, "onnx-results.json")
    if os.path.exists(json_path):
        try:
            with open(json_path) as f:
                prev = json.load(f)
        except (OSError, ValueError):
            prev = None
    ct_note = (f"; kiln-ct: the same as kiln with OPENBLAS_CORETYPE={coretype} (OpenBLAS {obv} does not "
               f"know this CPU and runs its generic Prescott kernels)") if coretype else ""
    lines = [
        f"ONNX models: kiln against {meta['ort']}, latency of one run in ms: the lowest of {a.rounds} "
        f"rounds' medians (after warm-up; all sides measured in turn in this run)",
        f"{meta['date']}  commit {meta['commit']}  {meta['cpu']}, {meta['cores']} cores  "
        f"OpenBLAS {obv} core {core}" +
        (f" (OPENBLAS_CORETYPE={meta['openblas_coretype_env']})" if meta["openblas_coretype_env"] else ""),
        f"kiln: `kiln build` (matmul through OpenBLAS){ct_note}; kiln-gen: --blas=generated --cpu=native.",
        "ORT: intraOpNumThreads = thr, sequential, graphOptimizationLevel 'all'; the lower of the binding's "
        "synchronous run and `await session.run()` (ORT async: the latter alone).  Ratios: kiln / ORT.",
    ]
    pk = max(peak_gflops) if peak_gflops else None
    meta["peak_gflops"] = pk
    meta["read_gbps"] = {n: max(v) for n, v in read_gbps.items()}
    if pk:
        lines.append(f"Single-core f32 multiply-add peak (bench/onnx/peak.c, -march=native): {pk:.1f} GFLOP/s; "
                     "one core reads an MLP's weights, run after run, at " +
                     ", ".join(f"{n} {max(v):.1f}" for n, v in read_gbps.items()) + " GB/s (peak.c --read).")
        lines.append("bound: the lowest kiln/ORT any program can reach at 1 thread: the model's FLOPs at that peak, "
                     "or its weights at that bandwidth, whichever takes longer, over ORT's time.")
    if floor:
        lines.append(f"Per-run floor (one Relu on f32[1,10]): kiln {fmt_ms(floor.get('kiln'))}, "
                     f"ORT {fmt_ms(floor.get('ort'))}, ORT async {fmt_ms(floor.get('ort_async'))}")
    lines.append("")
    cols = ["kiln"] + (["kiln-ct"] if coretype else []) + ["kiln-gen"]
    rlabel = {"kiln": "kiln/ORT", "kiln-ct": "ct/ORT", "kiln-gen": "gen/ORT"}
    hdr = (f"{'model':<12} {'thr':>3} " + " ".join(f"{c:>9}" for c in cols) + f" {'ORT':>9} {'ORT async':>9} " +
           " ".join(f"{rlabel[c]:>8}" for c in cols) + f" {'target':>7} {'bound':>6}  {'agree':<9} at 1 thread")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in results:
        name, t = r["model"], r["threads"]
        mm = models_meta[name]
        ort = r.get("ort")
        target = TARGETS[name]
        verdict = ""
        gbps = max(read_gbps[name]) if read_gbps.get(name) else None
        bound = bound_of(r, models.BY_NAME[name], ort, pk, gbps) if t == 1 else None
        r["bound"] = bound
        if t == 1 and ort:
            verdict = ", ".join(f"{rlabel[c].split('/')[0]} {'ok' if r[c] / ort <= target else 'MISS'}"
                                for c in cols if r.get(c) is not None)
            if bound and bound > target:
                verdict += " (target below bound)"
        ag = mm["agree"]
        agree = ("ok" if ag and all(x["ok"] for x in ag.values()) else
                 "DISAGREE" if ag else "-") if t == threads[0] else ""
        lines.append(f"{name:<12} {t:>3} " + " ".join(f"{fmt_ms(r.get(c)):>9}" for c in cols) +
                     f" {fmt_ms(ort):>9} {fmt_ms(r.get('ort_async')):>9} " +
                     " ".join(f"{fmt_ratio(r.get(c), ort):>8}" for c in cols) +
                     f" {('<=' + str(target)) if t == 1 else '':>7} {f'{bound:.2f}' if bound else '':>6}"
                     f"  {agree:<9} {verdict}")
    errs = [(n, v, e) for n, mm in models_meta.items() for v, e in mm["errors"].items()]
    if errs:
        lines.append("")
        for n, v, e in errs:
            lines.append(f"{n}: {v} not built: {e}")
    gemm = [r for r in results if "sgemm" in r]
    if gemm:
        m = models.BY_NAME["mlp4096_b64"]
        shapes = ", ".join(f"{x}x{y}x{z}" for x, y, z in m["gemms"])
        gf = m["flops"] / 1e9
        lines.append("")
        lines.append(f"GEMM-bound: {m['desc']}: {gf:.2f} GFLOP per run (MxNxK {shapes}); GFLOP/s.  "
                     f"sgemm: the same GEMMs alone, one cblas_sgemm each" +
                     (f" (sgemm-ct: OPENBLAS_CORETYPE={coretype})" if coretype else ""))
        gcols = cols + ["ORT", "sgemm"] + (["sgemm-ct"] if coretype else [])
        gkey = {"ORT": "ort"}
        h2 = f"{'thr':>3} " + " ".join(f"{c:>9}" for c in gcols) + "   kiln time / sgemm time"
        lines.append(h2)
        lines.append("-" * len(h2))

        def gfs(ms):
            return f"{gf / (ms * 1e-3):.1f}" if ms else "-"
        for r in gemm:
            rel = [f"kiln {fmt_ratio(r.get('kiln'), r['sgemm'])}"]
            if coretype and r.get("sgemm-ct"):
                rel.append(f"kiln-ct {fmt_ratio(r.get('kiln-ct'), r['sgemm-ct'])}")
            rel.append(f"gen {fmt_ratio(r.get('kiln-gen'), r['sgemm'])}")
            lines.append(f"{r['threads']:>3} " + " ".join(f"{gfs(r.get(gkey.get(c, c))):>9}" for c in gcols) +
                         "   " + ", ".join(rel))
    if prev and prev.get("results"):
        old = {(r["model"], r["threads"]): r for r in prev["results"]}
        lines.append("")
        lines.append(f"Against the previous run ({prev['meta'].get('date')}, commit "
                     f"{prev['meta'].get('commit')}): ms then -> now")
        for r in results:
            o = old.get((r["model"], r["threads"]))
            if not o:
                continue
            cells = []
            for k in cols + ["ort"]:
                if o.get(k) and r.get(k):
                    cells.append(f"{k} {fmt_ms(o[k])} -> {fmt_ms(r[k])} ({(r[k] / o[k] - 1) * 100:+.0f}%)")
            if cells:
                lines.append(f"  {r['model']:<12} {r['threads']}: " + ", ".join(cells))
    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")

    doc = {"meta": meta, "models": models_meta, "floor": floor, "results": results}
    tmp = json_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, json_path)
    with open(os.path.join(a.out, "onnx-results.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "onnx-history.jsonl"), "a") as f:
        f.write(json.dumps(doc) + "\n")
    print(f"bench.py: results in {a.out}/onnx-results.txt and .json; every run in {a.out}/onnx-history.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
