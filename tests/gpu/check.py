"""check.py — runs kiln's PTX kernels on a real GPU (through CuPy, on the
device machine) and compares every kernel with NumPy; then times a fused
elementwise kernel against CuPy's own and a device copy.
Usage: python3 check.py DIR   (DIR has kernels.ptx, manifest.json, bench.ptx)"""
import json
import os
import sys
import time

import cupy as cp
import numpy as np

d = sys.argv[1]
man = json.load(open(d + "/manifest.json"))
mod = cp.RawModule(path=d + "/kernels.ptx")
NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refs import FEEDS as feeds, REF  # noqa: E402  (the inputs and references run_kernels.py uses)

passed = failed = 0
for k in man["kernels"]:
    n = int(np.prod(k["shape"])) if k["shape"] else 1
    ins = []
    for name, (dt, shape) in zip(k["inputs"], k["input_types"]):
        if name not in feeds:  # a constant operand of a fused kernel is not expected here
            raise SystemExit("kernel %s reads %s, which is not a fed placeholder" % (k["name"], name))
        ins.append(cp.asarray(feeds[name]))
    out = cp.zeros(k["shape"], NP[k["dtype"]])
    fn = mod.get_function(k["symbol"])
    fn(((n + 255) // 256,), (256,), tuple(ins) + (out, np.int64(n)))
    cp.cuda.Device().synchronize()
    got, want = cp.asnumpy(out), np.asarray(REF[k["name"]]())
    if np.issubdtype(want.dtype, np.floating):
        ok = np.allclose(got, want.astype(got.dtype), rtol=2e-6 if got.dtype == np.float32 else 1e-12, atol=1e-6)
    else:
        ok = np.array_equal(got, want.astype(got.dtype))
    passed += ok
    failed += not ok
    print("%-10s %-8s %s" % (k["name"], k["op"], "ok" if ok else "MISMATCH max err %g" %
                              np.max(np.abs(got.astype(np.float64) - want))))

# benchmark: fused x*y+1 over 16M floats
bm = cp.RawModule(path=d + "/bench.ptx")
fn = bm.get_function("gpu_bench_z")
N = 16777216
x, y = cp.random.random(N, dtype=cp.float32), cp.random.random(N, dtype=cp.float32)
z = cp.empty_like(x)
ew = cp.ElementwiseKernel("float32 x, float32 y", "float32 z", "z = x * y + 1.0f", "ref_fma")


def best(fn_, reps=20):
    t = 1e9
    for _ in range(reps):
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        fn_()
        cp.cuda.Device().synchronize()
        t = min(t, time.perf_counter() - t0)
    return t


t_kiln = best(lambda: fn(((N + 255) // 256,), (256,), (x, y, z, np.int64(N))))
ok = bool(cp.allclose(z, x * y + 1))  # before the baselines overwrite z
t_cupy = best(lambda: ew(x, y, z))
t_copy = best(lambda: cp.copyto(z, x))
print("bench  kiln %.3f ms  cupy %.3f ms  ratio %.2f  |  kiln %.0f GB/s  copy %.0f GB/s  ratio %.2f  %s" % (
    t_kiln * 1e3, t_cupy * 1e3, t_cupy / t_kiln, 12 * N / t_kiln / 1e9, 8 * N / t_copy / 1e9,
    (12 * N / t_kiln) / (8 * N / t_copy), "result ok" if ok else "(bench result WRONG)"))
failed += not ok
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
