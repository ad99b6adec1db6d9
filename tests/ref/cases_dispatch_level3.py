# cases_dispatch_level3.py — cases_dispatch_level0.py's cases with
# KILN_CPU_LEVEL=3: the x86-64-v3 variant (AVX2, FMA) of the dispatched
# kernels (on a machine without AVX2 the level stays 0, and this repeats
# level 0).
import os

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases_dispatch_level0.py")) as _f:
    exec(compile(_f.read(), _f.name, "exec"))

KILN_ENV = {"KILN_CPU_LEVEL": "3"}
