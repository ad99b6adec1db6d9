# cases_dispatch_level0.py — the kernels `kiln build` emits in variants
# (--cpu-dispatch, default for this machine: the baseline x86-64-v2, plus
# x86-64-v3 and x86-64-v4 picked at run time) run here with
# KILN_CPU_LEVEL=0: the baseline variant, which the other case files do not
# reach on a machine with AVX-512.  The cases: the generated GEMM's
# (cases_gemm_generated.py), the GEMM-based conv2d's
# (cases_conv_generated.py) and depthwise_conv2d's (cases_nn.py).
# cases_dispatch_level3.py runs the same at level 3 (AVX2 + FMA).
import os

_dir = os.path.dirname(os.path.abspath(__file__))
CASES = []
for _name, _keep in (("cases_gemm_generated.py", lambda c: True),
                     ("cases_conv_generated.py", lambda c: True),
                     ("cases_nn.py", lambda c: c.name.startswith("depthwise"))):
    _ns = dict(globals())
    _ns["CASES"] = []
    _path = os.path.join(_dir, _name)
    _ns["__file__"] = _path
    with open(_path) as _f:
        exec(compile(_f.read(), _path, "exec"), _ns)
    CASES += [c for c in _ns["CASES"] if _keep(c)]

KILN_FLAGS = ["--blas=generated"]
KILN_ENV = {"KILN_CPU_LEVEL": "0"}
