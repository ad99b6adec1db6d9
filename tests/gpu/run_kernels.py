"""run_kernels.py — a GPU test module (kernels.kg, ops.kg) built by kiln and
run on the inputs of refs.py through the binary's generic main; every
result is compared with NumPy.

  --gpu      on a GPU: the binary must run its kernels there (no fallback;
             KILN_GPU_SYNC=1 names a failing kernel)
  --emulate  anywhere: built with KILN_GPU_EMULATE=1, the CPU path of every
             kernel node runs the kernel's own body for each thread index,
             so the kernels' code is checked where there is no GPU

Usage: python3 run_kernels.py --gpu|--emulate KILN MODULE.kg WORKDIR"""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refs import FEEDS, REF, close  # noqa: E402

mode, kiln, kg, work = sys.argv[1:5]
emulate = mode == "--emulate"
os.makedirs(work, exist_ok=True)
exe = os.path.join(work, "prog")
env = dict(os.environ)
env.pop("KILN_GPU", None)
if emulate:
    env["KILN_GPU_EMULATE"] = "1"
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
r = subprocess.run(cmd, env=run_env, stderr=subprocess.PIPE, text=True)
sys.stderr.write(r.stderr)
if r.returncode:
    sys.exit("%s exited %d" % (exe, r.returncode))
if not emulate and "on the CPU" in r.stderr:
    sys.exit("the binary did not run on the GPU")
passed = failed = 0
for name in fetches:
    ok, err = close(np.load(os.path.join(work, "out_" + name + ".npy")), REF[name]())
    passed += ok
    failed += not ok
    print("%-12s %s" % (name, "ok" if ok else "MISMATCH (max error %g)" % err))
print("%s %s: %d passed, %d failed" % (os.path.basename(kg), "emulated" if emulate else "on the GPU", passed, failed))
sys.exit(1 if failed else 0)
