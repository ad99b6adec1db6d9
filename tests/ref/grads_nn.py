# Gradients of the neural-network ops checked against central finite
# differences (f64): the hand-written rules of conv2d, depthwise_conv2d,
# max_pool and avg_pool (which build the backprop ops), bias_add's
# elementwise rule, and the composites (batch_norm, the cross entropies,
# l2_loss), whose gradients come from the primitives they expand into.
# The NumPy forward references are those of cases_nn.py.
import inspect as _inspect
import os as _os

# refkit compiles this file under its own path, so the frame knows where it is
_here = _os.path.dirname(_os.path.abspath(_inspect.currentframe().f_code.co_filename))
_ns = {"case": case, "rand": rand, "positive": positive, "np": np}
with open(_os.path.join(_here, "cases_nn.py")) as _f:
    exec(compile(_f.read(), _os.path.join(_here, "cases_nn.py"), "exec"), _ns)
conv2d, depthwise, max_pool, avg_pool = _ns["conv2d"], _ns["depthwise"], _ns["max_pool"], _ns["avg_pool"]
bn_train, bn_infer, log_softmax = _ns["bn_train"], _ns["bn_infer"], _ns["log_softmax"]
shp, ints = _ns["shp"], _ns["ints"]

CASES = []


def g(name, body, feeds, wrt, ref, **kw):
    CASES.append(gradcase(name, body, feeds, wrt, ref, **kw))


R = lambda *s: rand("f64", s, -2, 2)
_perm = np.random.default_rng(77)


def distinct(*s):
    """Values at least 0.05 apart, so no pooling window holds a tie."""
    n = int(np.prod(s))
    return (_perm.permutation(n).reshape(s) * 0.05 - n * 0.025).astype(np.float64)


# ---- conv2d: input and filter ----
CONV = [
    ("valid", (2, 5, 6, 2), (3, 3, 2, 3), (1, 1), (1, 1), "VALID"),
    ("same", (2, 5, 6, 2), (3, 3, 2, 3), (1, 1), (1, 1), "SAME"),
    ("stride2", (1, 7, 6, 2), (3, 3, 2, 2), (2, 2), (1, 1), "SAME"),
    ("stride2_valid", (1, 8, 7, 3), (2, 3, 3, 2), (2, 2), (1, 1), "VALID"),
    ("dilation2", (1, 7, 7, 2), (3, 3, 2, 2), (1, 1), (2, 2), "SAME"),
    ("dilation2_valid", (1, 8, 6, 2), (2, 2, 2, 3), (1, 1), (2, 2), "VALID"),
]
for name, xs, fs, s, d, pad in CONV:
    g("d_conv2d_" + name, """
        x = placeholder() : f64[%s]
        f = placeholder() : f64[%s]
        y = conv2d(x, f) {strides=%s, dilations=%s, padding=%s}
    """ % (shp(xs), shp(fs), ints(s), ints(d), pad), {"x": R(*xs), "f": R(*fs)}, ["x", "f"],
      lambda x, f, s=s, d=d, p=pad: conv2d(x, f, s, d, p))

# ---- depthwise_conv2d: input and filter ----
DEPTHWISE = [
    ("same_m2", (2, 5, 5, 2), (3, 3, 2, 2), (1, 1), (1, 1), "SAME"),
    ("valid_m1", (1, 6, 5, 3), (2, 3, 3, 1), (1, 1), (1, 1), "VALID"),
    ("stride2", (1, 7, 6, 2), (3, 3, 2, 3), (2, 2), (1, 1), "SAME"),
    ("dilation2", (1, 7, 7, 2), (2, 2, 2, 2), (1, 1), (2, 2), "SAME"),
]
for name, xs, fs, s, d, pad in DEPTHWISE:
    g("d_depthwise_" + name, """
        x = placeholder() : f64[%s]
        f = placeholder() : f64[%s]
        y = depthwise_conv2d(x, f) {strides=%s, dilations=%s, padding=%s}
    """ % (shp(xs), shp(fs), ints(s), ints(d), pad), {"x": R(*xs), "f": R(*fs)}, ["x", "f"],
      lambda x, f, s=s, d=d, p=pad: depthwise(x, f, s, d, p))

# ---- pooling ----
POOL = [
    ("valid", (2, 6, 6, 2), (2, 2), (2, 2), "VALID"),
    ("same", (1, 5, 7, 3), (3, 3), (1, 1), "SAME"),
    ("same_stride2", (2, 5, 5, 2), (3, 2), (2, 2), "SAME"),
    ("overlap_valid", (1, 7, 6, 2), (3, 3), (2, 1), "VALID"),
]
for name, xs, k, s, pad in POOL:
    at = "ksize=%s, strides=%s, padding=%s" % (ints(k), ints(s), pad)
    g("d_max_pool_" + name, """
        x = placeholder() : f64[%s]
        y = max_pool(x) {%s}
    """ % (shp(xs), at), {"x": distinct(*xs)}, ["x"], lambda x, k=k, s=s, p=pad: max_pool(x, k, s, p))
    g("d_avg_pool_" + name, """
        x = placeholder() : f64[%s]
        y = avg_pool(x) {%s}
    """ % (shp(xs), at), {"x": R(*xs)}, ["x"], lambda x, k=k, s=s, p=pad: avg_pool(x, k, s, p))

# ---- bias_add ----
for i, vs in enumerate([(2, 3, 4, 5), (4, 3)]):
    g("d_bias_add_%d" % i, """
        v = placeholder() : f64[%s]
        b = placeholder() : f64[%d]
        y = bias_add(v, b)
    """ % (shp(vs), vs[-1]), {"v": R(*vs), "b": R(vs[-1])}, ["v", "b"], lambda v, b: v + b)

# ---- batch_norm: through the batch statistics, and the statistics themselves ----
for i, (xs, axes) in enumerate([((4, 2, 3, 3), None), ((6, 4), [0]), ((3, 4, 2), [0, 2])]):
    ax = tuple(range(len(xs) - 1)) if axes is None else tuple(axes)
    stat = tuple(n for a, n in enumerate(xs) if a not in ax)
    at = "epsilon=0.01" + ("" if axes is None else ", axes=%s" % ints(axes))
    body = """
        x = placeholder() : f64[%s]
        s = placeholder() : f64[%s]
        o = placeholder() : f64[%s]
        y = batch_norm(x, s, o) {%s}
    """ % (shp(xs), shp(stat), shp(stat), at)
    feeds = {"x": R(*xs), "s": R(*stat), "o": R(*stat)}
    g("d_batch_norm_%d" % i, body, feeds, ["x", "s", "o"],
      lambda x, s, o, ax=ax: bn_train(x, s, o, 0.01, ax)[0])
    g("d_batch_norm_stats_%d" % i, body + """
        st = add(y.1, mul(y.2, y.2))
    """, feeds, ["x"], lambda x, s, o, ax=ax: (lambda r: r[1] + r[2] * r[2])(bn_train(x, s, o, 0.01, ax)),
      fetch="st")
g("d_batch_norm_inference", """
    x = placeholder() : f64[2,3,2,4]
    s = placeholder() : f64[4]
    o = placeholder() : f64[4]
    m = placeholder() : f64[4]
    v = placeholder() : f64[4]
    y = batch_norm_inference(x, s, o, m, v) {epsilon=0.001}
""", {"x": R(2, 3, 2, 4), "s": R(4), "o": R(4), "m": R(4), "v": positive("f64", (4,), 0.5, 2)},
  ["x", "s", "o", "m", "v"], lambda x, s, o, m, v: bn_infer(x, s, o, m, v, 0.001, (0, 1, 2)))

# ---- losses ----
lab = positive("f64", (4, 5))
g("d_softmax_ce", """
    lab = placeholder() : f64[4,5]
    z = placeholder() : f64[4,5]
    y = softmax_cross_entropy_with_logits(lab, z)
""", {"lab": lab / lab.sum(-1, keepdims=True), "z": R(4, 5)}, ["z", "lab"],
  lambda lab, z: -(lab * log_softmax(z)).sum(-1))
g("d_sparse_softmax_ce", """
    lab = placeholder() : i32[6]
    z = placeholder() : f64[6,4]
    y = sparse_softmax_cross_entropy_with_logits(lab, z)
""", {"lab": np.array([0, 3, 1, 2, 3, 0], np.int32), "z": R(6, 4)}, ["z"],
  lambda lab, z: -log_softmax(z)[np.arange(6), lab])
g("d_l2_loss", """
    x = placeholder() : f64[3,4,2]
    y = l2_loss(x)
""", {"x": R(3, 4, 2)}, ["x"], lambda x: np.sum(x * x) / 2)

# ---- a small CNN: conv, bias, relu, pool, dense, sparse cross entropy ----
g("d_cnn", """
    x = placeholder() : f64[2,6,6,1]
    f = placeholder() : f64[3,3,1,2]
    b = placeholder() : f64[2]
    w = placeholder() : f64[18,3]
    lab = placeholder() : i64[2]
    h = max_pool(relu(bias_add(conv2d(x, f) {padding=SAME}, b))) {ksize=[2,2], strides=[2,2]}
    z = matmul(reshape(h) {shape=[2,18]}, w)
    y = mean(sparse_softmax_cross_entropy_with_logits(lab, z))
""", {"x": distinct(2, 6, 6, 1), "f": R(3, 3, 1, 2), "b": R(2), "w": R(18, 3), "lab": np.array([1, 2], np.int64)},
  ["f", "b", "w"],
  lambda x, f, b, w, lab: np.mean(-log_softmax(
      max_pool(np.maximum(conv2d(x, f, padding="SAME") + b, 0), (2, 2), (2, 2), "VALID").reshape(2, 18) @ w)
      [np.arange(2), lab]))
