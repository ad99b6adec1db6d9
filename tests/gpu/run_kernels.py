"""run_kernels.py — a GPU test module (kernels.kg, ops.kg) built by kiln and
run on the inputs of refs.py through the binary's generic main; every
result is compared with NumPy.

  --gpu      on a GPU: the binary must run its kernels there (no fallback;
             KILN_GPU_SYNC=1 names a failing kernel)
  --emulate  anywhere: built with KILN_GPU_EMULATE=1, the CPU path of every
             kernel node runs the kernel's own body for each thread index
             (block kernels phase by phase between their barriers), so the
             kernels' code is checked where there is no GPU
  --fake     the GPU runtime path against tests/gpu/fakecuda.c ($KILN_LIBCUDA),
             which executes each launch through the binary's exported
             emulation of the kernel: launch tables, device memory, copies
             and variables as on a GPU.  With $KILN_LIBCUBLAS (fakecublas.c)
             the matmuls go through the cuBLAS path, else (KILN_CUBLAS=0)
             through the tiled kernel; both are checked against NumPy.

Usage: python3 run_kernels.py --gpu|--emulate|--fake KILN MODULE.kg WORKDIR"""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refs import FEEDS, REF, close  # noqa: E402

mode, kiln, kg, work = sys.argv[1:5]
emulate = mode == "--emulate"
fake = mode == "--fake"
os.makedirs(work, exist_ok=True)
exe = os.path.join(work, "prog")
env = dict(os.environ)
env.pop("KILN_GPU", None)
if emulate or fake:
    env["KILN_GPU_EMULATE"] = "1"
if fake:
    env["KILN_LDFLAGS"] = (env.get("KILN_LDFLAGS", "") + " -rdynamic").strip()
subprocess.run([kiln, "build", kg, "-o", exe], check=True, env=env)
src = open(kg).read()
entry = re.search(r"^entry (\w+)\(([^)]*)\) -> \(([^)]*)\)", src, re.M)
feeds = [s.strip() for s in entry.group(2).split(",") if s.strip()]
fetches = [s.strip() for s in entry.group(3).split(",") if s.strip()]
cmd = [exe, "--run", entry.group(1)]
for name in feeds:
    np.save(os.path.join(work, name + ".npy"), FEEDS[name])
    cmd += ["--feed", "%s=%s" % (name, os.path.join(work, name + ".npy"))]
for name in fetches:
    cmd += ["--fetch", "%s=%s" % (name, os.path.join(work, "out_" + name + ".npy"))]
run_env = dict(os.environ, KILN_GPU="0") if emulate else dict(env, KILN_GPU_SYNC="1")
cublas = fake and bool(os.environ.get("KILN_LIBCUBLAS"))
if fake:
    run_env.update(FAKECUDA_LOG="1", KILN_GPU_LOG="1")
    if not cublas:
        run_env["KILN_CUBLAS"] = "0"
r = subprocess.run(cmd, env=run_env, stderr=subprocess.PIPE, text=True)
sys.stderr.write(r.stderr)
if r.returncode:
    sys.exit("%s exited %d" % (exe, r.returncode))
if not emulate and "on the CPU" in r.stderr:
    sys.exit("the binary did not run on the GPU")
if fake:
    m = re.search(r"fakecuda: (\d+) launches \((\d+) executed\)", r.stderr)
    if not m or m.group(1) != m.group(2) or m.group(1) == "0":
        sys.exit("fakecuda did not execute every launch")
    gemm = re.search(r"GEMM through (cuBLAS|kiln's tiled kernel)", r.stderr)
    if gemm and gemm.group(1) != ("cuBLAS" if cublas else "kiln's tiled kernel"):
        sys.exit("GEMM took the wrong path: " + gemm.group(0))
    if cublas and not re.search(r"fakecublas: [1-9]\d* gemms", r.stderr):
        sys.exit("no GEMM went through cuBLAS")
passed = failed = 0
for name in fetches:
    ok, err = close(np.load(os.path.join(work, "out_" + name + ".npy")), REF[name]())
    passed += ok
    failed += not ok
    print("%-12s %s" % (name, "ok" if ok else "MISMATCH (max error %g)" % err))
where = "emulated" if emulate else ("on the fake driver" + (" with cuBLAS" if cublas else "")) if fake else "on the GPU"
print("%s %s: %d passed, %d failed" % (os.path.basename(kg), where, passed, failed))
sys.exit(1 if failed else 0)
