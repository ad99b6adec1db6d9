# cases_conv_generated.py — the conv2d cases of cases_nn.py and grads_nn.py
# (forward, conv2d_backprop_input, conv2d_backprop_filter and the gradients
# through them: strides, dilations, SAME/VALID padding, f32/f64) compiled
# with `--blas=generated`, the default of `kiln build --target`.  There the
# two gradient ops (and forward windows too deep for im2col) run plain loops
# (compiler/ops/nn.c, gemm_acc) instead of cblas_sgemm/dgemm, which a target
# binary does not have; the forward conv2d runs kiln's generated GEMM either
# way.
import os

_dir = os.path.dirname(os.path.abspath(__file__))
CASES = []
for _name in ("cases_nn.py", "grads_nn.py"):
    _ns = dict(globals())
    _ns["CASES"] = []
    _path = os.path.join(_dir, _name)
    with open(_path) as _f:
        exec(compile(_f.read(), _path, "exec"), _ns)
    CASES += [c for c in _ns["CASES"] if "conv2d" in c.name and "depthwise" not in c.name]

KILN_FLAGS = ["--blas=generated"]
