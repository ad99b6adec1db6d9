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
    if _name == "cases_nn.py":
        _nn = _ns


# A constant filter (inference weights) is packed at compile time for the
# GEMM of a 1x1 convolution over more than two row panels of pixels and of
# im2col; Winograd transforms it at run time instead.
def _literal(x):
    return "[" + ", ".join("%g" % v for v in x) + "]" if x.ndim == 1 else "[" + ", ".join(_literal(r) for r in x) + "]"


_conv2d, _attrs = _nn["conv2d"], _nn["attrs"]
for _i, (_xs, _fs, _s, _pad) in enumerate([((1, 8, 8, 16), (1, 1, 16, 20), (1, 1), "VALID"),    # 1x1: one GEMM
                                           ((2, 9, 9, 3), (5, 5, 3, 10), (2, 2), "SAME"),      # im2col
                                           ((1, 8, 8, 8), (3, 3, 8, 12), (1, 1), "SAME")]):    # Winograd
    for _dt in ("f32", "f64"):
        _f = (rand("i32", _fs, -8, 8) / 4).astype("float32" if _dt == "f32" else "float64")
        CASES.append(case("conv2d_constf_%d_%s" % (_i, _dt), """
            x = placeholder() : %s[%s]
            f = const<%s[%s]>(%s)
            y = conv2d(x, f) {%s}
        """ % (_dt, ",".join(map(str, _xs)), _dt, ",".join(map(str, _fs)), _literal(_f), _attrs(_s, (1, 1), _pad)),
            feeds={"x": rand(_dt, _xs)}, fetch="y",
            ref=lambda x, f=_f, s=_s, p=_pad: _conv2d(x, f, s, (1, 1), p),
            rtol=1e-4 if _dt == "f32" else 1e-10, atol=1e-4 if _dt == "f32" else 1e-10))

KILN_FLAGS = ["--blas=generated"]
