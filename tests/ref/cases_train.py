# NumPy reference cases for the training ops that need no variables:
# clip_by_value, clip_by_norm, clip_by_global_norm, exponential_decay,
# piecewise_constant (one run each), and finite-difference gradients through
# the clipping ops (they are expanded into differentiable primitives).
# The optimizers and moving averages keep state across runs: they are
# checked step by step by tests/ref/train/check_train.py (tests/e2e/test_train.c).
CASES = []
NPT = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}


# ---- clip_by_value: max(min(t, hi), lo) ----

def clip_value_ref(t, lo, hi):
    return np.maximum(np.minimum(t, hi), lo).astype(t.dtype)


for dt in ["f32", "f64", "i32", "i64"]:
    CASES.append(case("clip_by_value_" + dt, """
        t = placeholder() : %s[3,4]
        lo = placeholder() : %s[]
        hi = placeholder() : %s[]
        y = clip_by_value(t, lo, hi)
    """ % (dt, dt, dt), feeds={"t": rand(dt, (3, 4), -5, 5), "lo": np.array(-2, NPT[dt]),
                               "hi": np.array(1, NPT[dt])}, fetch="y", ref=clip_value_ref))
# bounds that broadcast along t (per-column bounds)
CASES.append(case("clip_by_value_broadcast", """
    t = placeholder() : f32[3,4]
    lo = placeholder() : f32[4]
    hi = placeholder() : f32[1,4]
    y = clip_by_value(t, lo, hi)
""", feeds={"t": rand("f32", (3, 4), -3, 3), "lo": rand("f32", (4,), -2, 0),
            "hi": rand("f32", (1, 4), 0, 2)}, fetch="y", ref=clip_value_ref))
# lo > hi: TF's order makes lo win
CASES.append(case("clip_by_value_crossed", """
    t = placeholder() : f32[5]
    lo = const<f32[]>(1.0)
    hi = const<f32[]>(-1.0)
    y = clip_by_value(t, lo, hi)
""", feeds={"t": rand("f32", (5,))}, fetch="y", ref=lambda t: np.full(5, 1, np.float32)))


# ---- clip_by_norm: t * clip_norm / max(l2norm(t), clip_norm) ----

def clip_norm_ref(cn, axes=None):
    def f(t):
        l2 = np.sqrt(np.sum(t * t, axis=axes, keepdims=True))
        c = t.dtype.type(cn)
        return (t * c / np.maximum(l2, c)).astype(t.dtype)
    return f


for dt in ["f32", "f64"]:
    for cn in [0.5, 100.0]:  # clipped, and left alone
        CASES.append(case("clip_by_norm_%s_%d" % (dt, cn * 10), """
            t = placeholder() : %s[3,4]
            y = clip_by_norm(t) {clip_norm=%r}
        """ % (dt, cn), feeds={"t": rand(dt, (3, 4))}, fetch="y", ref=clip_norm_ref(cn)))
CASES.append(case("clip_by_norm_axes", """
    t = placeholder() : f32[4,3]
    y = clip_by_norm(t) {clip_norm=2.0, axes=[1]}
""", feeds={"t": np.array([[3, 4, 0], [0.1, 0.2, 0.2], [-6, 0, 8], [1, 1, 1]], np.float32)},
    fetch="y", ref=clip_norm_ref(2.0, axes=(1,))))
CASES.append(case("clip_by_norm_zero", """
    t = placeholder() : f32[3]
    y = clip_by_norm(t) {clip_norm=1.0}
""", feeds={"t": np.zeros(3, np.float32)}, fetch="y", ref=lambda t: np.zeros(3, np.float32)))
CASES.append(case("clip_by_norm_scalar", """
    t = placeholder() : f64[]
    y = clip_by_norm(t) {clip_norm=2.0}
""", feeds={"t": np.array(-5.0)}, fetch="y", ref=lambda t: np.array(-2.0)))


# ---- clip_by_global_norm: every t * clip_norm / max(global_norm, clip_norm), then the norm ----

def global_ref(cn):
    def f(*ts):
        gn = np.sqrt(sum(np.sum(t.astype(np.float64) ** 2) for t in ts)).astype(ts[0].dtype)
        c = ts[0].dtype.type(cn)
        scale = c * np.minimum(ts[0].dtype.type(1) / gn, ts[0].dtype.type(1) / c)
        return [(t * scale).astype(t.dtype) for t in ts] + [gn]
    return f


for dt in ["f32", "f64"]:
    for cn in [1.0, 50.0]:
        CASES.append(case("clip_by_global_norm_%s_%d" % (dt, cn), """
            a = placeholder() : %s[2,3]
            b = placeholder() : %s[4]
            c = placeholder() : %s[]
            y = clip_by_global_norm(a, b, c) {clip_norm=%r}
        """ % (dt, dt, dt, cn), feeds={"a": rand(dt, (2, 3)), "b": rand(dt, (4,)), "c": rand(dt, ())},
            fetch=["y", "y.1", "y.2", "y.3"], ref=global_ref(cn), rtol=1e-5))
CASES.append(case("clip_by_global_norm_zero", """
    a = placeholder() : f32[3]
    y = clip_by_global_norm(a) {clip_norm=1.0}
""", feeds={"a": np.zeros(3, np.float32)}, fetch=["y", "y.1"],
    ref=lambda a: [np.zeros(3, np.float32), np.array(0, np.float32)]))


# ---- exponential_decay: learning_rate * decay_rate ^ (step / decay_steps) ----

def decay_ref(lr, steps, rate, staircase, dt=np.float32):
    def f(step):
        p = dt(step) / dt(steps)
        if staircase:
            p = np.floor(p)
        return np.asarray(dt(lr) * np.power(dt(rate), p), dt)
    return f


for k, step in enumerate([0, 1, 99, 100, 101, 250, 1000]):
    for staircase in [False, True]:
        CASES.append(case("exponential_decay_%d_%s" % (k, "stair" if staircase else "smooth"), """
            step = placeholder() : i64[]
            lr = exponential_decay(step) {learning_rate=0.1, decay_steps=100, decay_rate=0.96, staircase=%s}
        """ % ("true" if staircase else "false"), feeds={"step": np.array(step, np.int64)}, fetch="lr",
            ref=decay_ref(0.1, 100, 0.96, staircase)))
for sdt in ["i32", "f32"]:
    CASES.append(case("exponential_decay_step_" + sdt, """
        step = placeholder() : %s[]
        lr = exponential_decay(step) {learning_rate=0.5, decay_steps=7, decay_rate=0.5, staircase=true}
    """ % sdt, feeds={"step": np.array(23, NPT[sdt])}, fetch="lr", ref=decay_ref(0.5, 7, 0.5, True)))
CASES.append(case("exponential_decay_f64", """
    step = placeholder() : i64[]
    lr = exponential_decay(step) {learning_rate=0.01, decay_steps=3, decay_rate=0.9, dtype=f64}
""", feeds={"step": np.array(10, np.int64)}, fetch="lr", ref=decay_ref(0.01, 3, 0.9, False, np.float64),
    rtol=1e-12))


# ---- piecewise_constant: values[i] for boundaries[i-1] < x <= boundaries[i] ----

def piecewise_ref(bounds, values, dt=np.float32):
    def f(x):
        x = np.asarray(x)
        out = np.full(x.shape, values[-1])
        for b, v in reversed(list(zip(bounds, values))):
            out = np.where(x <= x.dtype.type(b), v, out)
        return out.astype(dt)
    return f


for k, step in enumerate([0, 100, 101, 200, 201, 5000]):
    CASES.append(case("piecewise_constant_%d" % k, """
        step = placeholder() : i64[]
        lr = piecewise_constant(step) {boundaries=[100.0, 200.0], values=[1.0, 0.5, 0.1]}
    """, feeds={"step": np.array(step, np.int64)}, fetch="lr",
        ref=piecewise_ref([100, 200], [1.0, 0.5, 0.1])))
CASES.append(case("piecewise_constant_tensor_f64", """
    x = placeholder() : f32[8]
    y = piecewise_constant(x) {boundaries=[-1.0, 0.0, 0.5], values=[4.0, 3.0, 2.0, 1.0], dtype=f64}
""", feeds={"x": np.array([-2, -1, -0.5, 0, 0.25, 0.5, 0.75, 3], np.float32)}, fetch="y",
    ref=piecewise_ref([-1, 0, 0.5], [4.0, 3.0, 2.0, 1.0], np.float64)))


# ---- gradients through the clipping ops (finite differences, f64) ----

R = lambda *s: rand("f64", s, -2, 2)
CASES.append(gradcase("d_clip_by_value", """
    t = placeholder() : f64[3,4]
    lo = placeholder() : f64[4]
    hi = placeholder() : f64[]
    y = clip_by_value(t, lo, hi)
""", {"t": R(3, 4), "lo": rand("f64", (4,), -1.5, -0.5), "hi": np.array(0.7)}, ["t", "lo", "hi"],
    lambda t, lo, hi: np.maximum(np.minimum(t, hi), lo)))
CASES.append(gradcase("d_clip_by_norm", """
    t = placeholder() : f64[3,4]
    y = clip_by_norm(t) {clip_norm=1.5}
""", {"t": R(3, 4)}, ["t"], clip_norm_ref(1.5)))
CASES.append(gradcase("d_clip_by_norm_axes", """
    t = placeholder() : f64[3,4]
    y = clip_by_norm(t) {clip_norm=1.0, axes=[0]}
""", {"t": R(3, 4)}, ["t"], clip_norm_ref(1.0, axes=(0,))))
CASES.append(gradcase("d_clip_by_global_norm", """
    a = placeholder() : f64[2,3]
    b = placeholder() : f64[2,3]
    c = clip_by_global_norm(a, b) {clip_norm=1.0}
    y = add(mul(c, c.1), c.2)
""", {"a": R(2, 3), "b": R(2, 3)}, ["a", "b"],
    lambda a, b: (lambda r: r[0] * r[1] + r[2])(global_ref(1.0)(a, b))))
