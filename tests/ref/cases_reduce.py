# cases_reduce.py — NumPy reference cases for sum, mean, max, min, prod,
# argmax, softmax and log_softmax (compiler/ops/reduce.c).  Loaded by
# refkit.py, which provides case, rand, positive and np.
#
# Integer conventions checked here: sums and products wrap in the element
# type (NumPy upcasts int32 sums to int64, hence the .astype), and integer
# mean is the sum divided by the count truncated toward zero, as TF's C++
# division does (not NumPy's float mean, not floor).

DTYPES = ["f32", "f64", "i32", "i64"]

# (shape, axes or None for "all", keepdims): ranks 0..4, one / several /
# negative / non-contiguous axes, an explicit empty list, size-1 dims, and a
# long trailing axis (the vectorized accumulator loop plus its remainder).
AXES = [
    ((), None, False),
    ((), [], True),
    ((5,), None, False),
    ((5,), [0], True),
    ((5,), [-1], False),
    ((3, 4), [0], False),
    ((3, 4), [1], True),
    ((3, 4), [-1], False),
    ((3, 4), None, True),
    ((2, 3, 4), [0, 2], False),
    ((2, 3, 4), [0, 2], True),
    ((2, 3, 4), [1], False),
    ((2, 3, 4), [-1, -2], False),
    ((2, 3, 4), [2, 0], False),
    ((2, 3, 4), [], False),
    ((2, 3, 4, 5), [1, 3], False),
    ((2, 3, 4, 5), [0, 2], True),
    ((2, 3, 4, 5), [1, 2], False),
    ((2, 3, 4, 5), [0, -1], False),
    ((2, 3, 4, 5), None, False),
    ((3, 1, 4), [1], False),
    ((1, 5), [0], True),
    ((2, 1, 3, 1), [0, 3], False),
    ((4, 67), [1], False),
    ((67, 3), [0], False),
]


def _attrs(axes, keep):
    parts = []
    if axes is not None:
        parts.append("axes=[%s]" % ",".join(str(a) for a in axes))
    if keep:
        parts.append("keepdims=true")
    return " {%s}" % ", ".join(parts) if parts else ""


def _np_axis(axes):
    return None if axes is None else tuple(axes)


def _count(shape, axes):
    if axes is None:
        axes = range(len(shape))
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _trunc_div(s, n):
    # C / TF integer division: toward zero.
    return np.sign(s) * (np.abs(s) // n)


def _ref(op, dt, shape, axes, keep):
    ax = _np_axis(axes)
    t = np.dtype({"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}[dt])
    def f(x):
        if op == "sum":
            r = np.sum(x, axis=ax, keepdims=keep)
        elif op == "prod":
            r = np.prod(x, axis=ax, keepdims=keep)
        elif op == "max":
            r = np.max(x, axis=ax, keepdims=keep)
        elif op == "min":
            r = np.min(x, axis=ax, keepdims=keep)
        elif t.kind == "f":
            r = np.mean(x, axis=ax, keepdims=keep, dtype=np.float64)
        else:
            n = _count(shape, axes)
            r = _trunc_div(np.sum(x, axis=ax, keepdims=keep, dtype=np.int64), n)
        return np.asarray(r).astype(t)
    return f


def _feed(op, dt, shape):
    if op == "prod":  # keep float products well inside the range
        return rand(dt, shape, -1.5, 1.5) if dt in ("f32", "f64") else rand(dt, shape, -2, 2)
    if op == "mean" and dt in ("i32", "i64"):
        return rand(dt, shape, -50, 50)  # a spread so truncation matters
    return rand(dt, shape)


def _reduce_cases():
    out = []
    for op in ["sum", "mean", "max", "min", "prod"]:
        for dt in DTYPES:
            for k, (shape, axes, keep) in enumerate(AXES):
                body = "x = placeholder() : %s\ny = %s(x)%s" % (
                    kg_typestr(dt, shape), op, _attrs(axes, keep))
                tol = 1e-4 if dt == "f32" else 1e-9
                out.append(case("%s_%s_%d" % (op, dt, k), body,
                                feeds={"x": _feed(op, dt, shape)}, fetch="y",
                                ref=_ref(op, dt, shape, axes, keep), rtol=tol, atol=tol))
    return out


def _with_nans(dt, shape, where):
    x = rand(dt, shape)
    for w in where:
        x[w] = np.nan
    return x


# Special values: NaN propagation (max/min like NumPy), empty reductions
# (the identity), an empty output, integer extremes as identities.
def _special_cases():
    out = []
    for dt in ["f32", "f64"]:
        for op, fn in [("max", np.max), ("min", np.min)]:
            out.append(case("%s_nan_%s" % (op, dt), """
                x = placeholder() : %s[3,4]
                y = %s(x) {axes=[1]}
                z = %s(x) {axes=[0]}
                w = %s(x)
            """ % (dt, op, op, op), feeds={"x": _with_nans(dt, (3, 4), [(1, 2)])},
                fetch=["y", "z", "w"],
                ref=lambda x, fn=fn: [fn(x, axis=1), fn(x, axis=0), fn(x)]))
        out.append(case("sum_nan_%s" % dt, """
            x = placeholder() : %s[2,5]
            y = sum(x) {axes=[1]}
        """ % dt, feeds={"x": _with_nans(dt, (2, 5), [(0, 3)])}, fetch="y",
            ref=lambda x: x.sum(axis=1)))
    # empty reduced axis: identities
    for dt in DTYPES:
        t = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}[dt]
        isf = dt[0] == "f"
        lo = -np.inf if isf else np.iinfo(t).min
        hi = np.inf if isf else np.iinfo(t).max
        mean_empty = np.nan if isf else 0
        out.append(case("empty_axis_%s" % dt, """
            x = placeholder() : %s[0,3]
            s = sum(x) {axes=[0]}
            p = prod(x) {axes=[0]}
            mx = max(x) {axes=[0]}
            mn = min(x) {axes=[0], keepdims=true}
            me = mean(x) {axes=[0]}
            a = sum(x)
        """ % dt, feeds={"x": np.zeros((0, 3), t)}, fetch=["s", "p", "mx", "mn", "me", "a"],
            ref=lambda x, t=t, lo=lo, hi=hi, me=mean_empty: [
                np.zeros(3, t), np.ones(3, t), np.full(3, lo, t), np.full((1, 3), hi, t),
                np.full(3, me, t), np.zeros((), t)]))
        out.append(case("empty_out_%s" % dt, """
            x = placeholder() : %s[3,0,2]
            y = sum(x) {axes=[0]}
            z = max(x) {axes=[2], keepdims=true}
        """ % dt, feeds={"x": np.zeros((3, 0, 2), t)}, fetch=["y", "z"],
            ref=lambda x, t=t: [np.zeros((0, 2), t), np.zeros((3, 0, 1), t)]))
        if not isf:  # the extremes themselves must survive as identities
            info = np.iinfo(t)
            v = np.array([[info.min, 5], [info.max, -7]], t)
            out.append(case("int_extremes_%s" % dt, """
                x = placeholder() : %s[2,2]
                mx = max(x) {axes=[1]}
                mn = min(x) {axes=[0]}
            """ % dt, feeds={"x": v}, fetch=["mx", "mn"],
                ref=lambda x: [x.max(axis=1), x.min(axis=0)]))
    # integer mean truncates toward zero on negative sums
    out.append(case("mean_trunc_i32", """
        x = placeholder() : i32[4,2]
        y = mean(x) {axes=[1]}
    """, feeds={"x": np.array([[-1, -2], [1, 2], [-3, 0], [7, 0]], np.int32)}, fetch="y",
        ref=lambda x: np.array([-1, 1, -1, 3], np.int32)))
    # a large f32 sum: the reassociated (vectorized) accumulation stays close
    out.append(case("sum_big_f32", """
        x = placeholder() : f32[3,1000]
        y = sum(x) {axes=[1]}
        z = mean(x) {axes=[-1]}
    """, feeds={"x": rand("f32", (3, 1000))}, fetch=["y", "z"],
        ref=lambda x: [x.astype(np.float64).sum(axis=1).astype(np.float32),
                       x.astype(np.float64).mean(axis=1).astype(np.float32)],
        rtol=1e-4, atol=1e-3))
    return out


ARGMAX = [((5,), 0), ((3, 4), 0), ((3, 4), 1), ((3, 4), -1), ((2, 3, 4), 1),
          ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 0), ((1, 4), 0), ((4, 1), 1), ((2, 70), 1)]


def _argmax_cases():
    out = []
    for dt in DTYPES:
        for k, (shape, axis) in enumerate(ARGMAX):
            # narrow integer range: plenty of ties, so "first maximum" is tested
            x = rand(dt, shape, -2, 2)
            out.append(case("argmax_%s_%d" % (dt, k), """
                x = placeholder() : %s
                y = argmax(x) {axis=%d}
            """ % (kg_typestr(dt, shape), axis), feeds={"x": x}, fetch="y",
                ref=lambda x, axis=axis: np.argmax(x, axis=axis)))
    out.append(case("argmax_default_axis_f32", """
        x = placeholder() : f32[4,3]
        y = argmax(x)
    """, feeds={"x": rand("f32", (4, 3))}, fetch="y", ref=lambda x: np.argmax(x, axis=0)))
    for dt in ["f32", "f64"]:
        # NaN: the first NaN wins (as np.argmax); rows with NaN first, later, twice, none
        x = rand(dt, (4, 5))
        x[0, 0] = np.nan
        x[1, 3] = np.nan
        x[2, 1] = np.nan
        x[2, 4] = np.nan
        x[3, 2] = np.inf
        out.append(case("argmax_nan_%s" % dt, """
            x = placeholder() : %s[4,5]
            y = argmax(x) {axis=1}
            z = argmax(x) {axis=0}
        """ % dt, feeds={"x": x}, fetch=["y", "z"],
            ref=lambda x: [np.argmax(x, axis=1), np.argmax(x, axis=0)]))
    return out


def _np_softmax(x, axis, log):
    x64 = x.astype(np.float64)
    m = x64.max(axis=axis, keepdims=True)
    y = x64 - m
    s = np.exp(y).sum(axis=axis, keepdims=True)
    return (y - np.log(s) if log else np.exp(y) / s).astype(x.dtype)


SOFTMAX = [((5,), None), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -3),
           ((2, 3, 4, 5), -2), ((2, 3, 4, 5), 3), ((1, 1), -1), ((2, 100), -1)]


def _softmax_cases():
    out = []
    for op in ["softmax", "log_softmax"]:
        log = op == "log_softmax"
        for dt in ["f32", "f64"]:
            for k, (shape, axis) in enumerate(SOFTMAX):
                attr = "" if axis is None else " {axis=%d}" % axis
                ax = -1 if axis is None else axis
                tol = 1e-5 if dt == "f32" else 1e-12
                out.append(case("%s_%s_%d" % (op, dt, k), """
                    x = placeholder() : %s
                    y = %s(x)%s
                """ % (kg_typestr(dt, shape), op, attr), feeds={"x": rand(dt, shape)}, fetch="y",
                    ref=lambda x, ax=ax, log=log: _np_softmax(x, ax, log), rtol=tol, atol=tol))
            # large magnitudes: only the max-subtracted form stays finite
            out.append(case("%s_%s_stable" % (op, dt), """
                x = placeholder() : %s[3,6]
                y = %s(x)
            """ % (dt, op), feeds={"x": rand(dt, (3, 6), -1000, 1000)}, fetch="y",
                ref=lambda x, log=log: _np_softmax(x, -1, log), rtol=1e-5, atol=1e-5))
    return out


CASES = _reduce_cases() + _special_cases() + _argmax_cases() + _softmax_cases()
