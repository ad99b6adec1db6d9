# cases_gemm_generated_native.py — the cases of cases_gemm_generated.py,
# compiled for this machine (`--blas=generated --cpu=native`): on an AVX-512
# machine 16-lane f32 / 8-lane f64 vectors and llvm.fma, on AVX2 8 / 4 lanes.
import os

with open(os.path.join(os.path.dirname(__file__), "cases_gemm_generated.py")) as _f:
    exec(compile(_f.read(), _f.name, "exec"))

KILN_FLAGS = ["--blas=generated", "--cpu=native"]
