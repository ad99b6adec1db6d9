# top_k (compiler/ops/reduce_onnx.c, added for ONNX's TopK) against NumPy:
# values and i64 indices, largest and smallest, every axis, every dtype,
# ties (narrow integer ranges) broken by the lower index, k = 0 and k = n,
# NaN as the largest value.  Loaded by refkit.py, which provides case,
# rand and np.
CASES = []

DTYPES = ["f32", "f64", "i32", "i64", "i8", "u8"]


def top_k_ref(x, k, axis, largest):
    """Stable order: largest descending (NaN first) / smallest ascending,
    equal values in index order."""
    xf = x.astype(np.float64)
    if largest:
        key = np.where(np.isnan(xf), -np.inf, -xf)  # NaN largest: sorts first
    else:
        key = np.where(np.isnan(xf), np.inf, xf)
    idx = np.argsort(key, axis=axis, kind="stable")
    idx = np.take(idx, np.arange(k), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


def kg_typestr(dt, shape):
    return "%s[%s]" % (dt, ",".join(str(d) for d in shape))


SHAPES = [((7,), 0, 3), ((4, 6), 1, 2), ((4, 6), 0, 4), ((3, 5, 4), 1, 5), ((3, 5, 4), -1, 1),
          ((2, 3, 8), 2, 8), ((5, 3), 0, 0)]
for dt in DTYPES:
    lo, hi = (0, 4) if dt == "u8" else (-2, 2)
    for i, (shape, axis, k) in enumerate(SHAPES):
        for largest in (True, False):
            x = rand(dt, shape, lo, hi)  # narrow range: many ties
            CASES.append(case("top_k_%s_%d_%s" % (dt, i, "max" if largest else "min"), """
                x = placeholder() : %s
                y = top_k(x) {k=%d, axis=%d, largest=%s}
            """ % (kg_typestr(dt, shape), k, axis, "true" if largest else "false"),
                feeds={"x": x}, fetch=["y", "y.1"],
                ref=lambda x, k=k, axis=axis, largest=largest: top_k_ref(x, k, axis, largest)))

# distinct floats (no ties), default axis -1
CASES.append(case("top_k_f32_default_axis", """
    x = placeholder() : f32[3,10]
    y = top_k(x) {k=4}
""", feeds={"x": rand("f32", (3, 10))}, fetch=["y", "y.1"],
    ref=lambda x: top_k_ref(x, 4, -1, True)))

for dt in ["f32", "f64"]:
    x = rand(dt, (4, 6))
    x[0, 2] = np.nan
    x[1, 0] = np.nan
    x[1, 5] = np.nan
    for largest in (True, False):
        CASES.append(case("top_k_%s_nan_%s" % (dt, "max" if largest else "min"), """
            x = placeholder() : %s[4,6]
            y = top_k(x) {k=3, axis=1, largest=%s}
        """ % (dt, "true" if largest else "false"), feeds={"x": x}, fetch=["y", "y.1"],
            ref=lambda x, largest=largest: top_k_ref(x, 3, 1, largest)))
