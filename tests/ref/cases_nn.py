# NumPy reference cases for the neural-network ops (compiler/ops/nn.c):
# conv2d, depthwise_conv2d, max_pool, avg_pool and their gradient ops,
# bias_add, and the composites batch_norm, batch_norm_inference, dropout,
# the softmax cross entropies and l2_loss.  The references are plain NumPy
# written from TensorFlow's definitions (NHWC, TF's SAME padding), computed
# in f64 and rounded to the case's dtype.
CASES = []
NPT = {"f32": np.float32, "f64": np.float64}
TOL = {"f32": dict(rtol=1e-4, atol=1e-4), "f64": dict(rtol=1e-10, atol=1e-10)}
FLOATS = ["f32", "f64"]


def add(name, body, feeds, fetch, ref=None, dt="f64", check=None):
    CASES.append(case(name, body, feeds, fetch, ref, check=check, **TOL[dt]))


def shp(s):
    return ",".join(str(d) for d in s)


def ints(v):
    return "[%s]" % ", ".join(str(d) for d in v)


# ---- window geometry, as TensorFlow computes it ----

def out_pad(n, k, s, d, padding):
    """Output size and padding before, one spatial axis (TF's GetWindowedOutputSize)."""
    eff = (k - 1) * d + 1
    if padding == "SAME":
        out = -(-n // s)
        return out, max((out - 1) * s + eff - n, 0) // 2
    return (n - eff) // s + 1, 0


class Win:
    """The windows of a KH x KW window (strides s, dilations d) over an NHWC
    input shape: the padded input's shape and, per tap, the slice of the
    padded input that the tap reads for every output position."""

    def __init__(self, xshape, KH, KW, s, d, padding):
        N, H, W, C = xshape
        self.xshape = xshape
        self.OH, self.pt = out_pad(H, KH, s[0], d[0], padding)
        self.OW, self.pl = out_pad(W, KW, s[1], d[1], padding)
        need_h = (self.OH - 1) * s[0] + (KH - 1) * d[0] + 1
        need_w = (self.OW - 1) * s[1] + (KW - 1) * d[1] + 1
        self.pads = ((0, 0), (self.pt, max(need_h - H - self.pt, 0)), (self.pl, max(need_w - W - self.pl, 0)), (0, 0))
        self.taps = []
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * d[0], kw * d[1]
                self.taps.append((kh, kw, (slice(None), slice(h0, h0 + (self.OH - 1) * s[0] + 1, s[0]),
                                           slice(w0, w0 + (self.OW - 1) * s[1] + 1, s[1]))))

    def pad(self, x, value=0.0):
        return np.pad(np.asarray(x, np.float64), self.pads, constant_values=value)

    def zeros(self):
        return np.zeros(self.pad(np.zeros(self.xshape)).shape)

    def crop(self, xp):
        N, H, W, C = self.xshape
        return xp[:, self.pt:self.pt + H, self.pl:self.pl + W, :]


def conv2d(x, f, s=(1, 1), d=(1, 1), padding="VALID"):
    w = Win(x.shape, f.shape[0], f.shape[1], s, d, padding)
    xp = w.pad(x)
    y = np.zeros((x.shape[0], w.OH, w.OW, f.shape[3]))
    for kh, kw, sl in w.taps:
        y += np.tensordot(xp[sl], f[kh, kw].astype(np.float64), axes=([3], [0]))
    return y.astype(x.dtype)


def conv2d_dx(f, dy, xshape, s=(1, 1), d=(1, 1), padding="VALID"):
    w = Win(xshape, f.shape[0], f.shape[1], s, d, padding)
    dxp = w.zeros()
    for kh, kw, sl in w.taps:
        dxp[sl] += np.tensordot(dy.astype(np.float64), f[kh, kw].astype(np.float64), axes=([3], [1]))
    return w.crop(dxp).astype(dy.dtype)


def conv2d_df(x, dy, fshape, s=(1, 1), d=(1, 1), padding="VALID"):
    w = Win(x.shape, fshape[0], fshape[1], s, d, padding)
    xp = w.pad(x)
    df = np.zeros(fshape)
    for kh, kw, sl in w.taps:
        df[kh, kw] = np.tensordot(xp[sl], dy.astype(np.float64), axes=([0, 1, 2], [0, 1, 2]))
    return df.astype(x.dtype)


def depthwise(x, f, s=(1, 1), d=(1, 1), padding="VALID"):
    N, H, W, C = x.shape
    M = f.shape[3]
    w = Win(x.shape, f.shape[0], f.shape[1], s, d, padding)
    xp = w.pad(x)
    y = np.zeros((N, w.OH, w.OW, C, M))
    for kh, kw, sl in w.taps:
        y += np.einsum("nhwc,cm->nhwcm", xp[sl], f[kh, kw].astype(np.float64))
    return y.reshape(N, w.OH, w.OW, C * M).astype(x.dtype)


def depthwise_dx(f, dy, xshape, s=(1, 1), d=(1, 1), padding="VALID"):
    N, H, W, C = xshape
    M = f.shape[3]
    w = Win(xshape, f.shape[0], f.shape[1], s, d, padding)
    dy5 = dy.astype(np.float64).reshape(N, w.OH, w.OW, C, M)
    dxp = w.zeros()
    for kh, kw, sl in w.taps:
        dxp[sl] += np.einsum("nhwcm,cm->nhwc", dy5, f[kh, kw].astype(np.float64))
    return w.crop(dxp).astype(dy.dtype)


def depthwise_df(x, dy, fshape, s=(1, 1), d=(1, 1), padding="VALID"):
    N, H, W, C = x.shape
    M = fshape[3]
    w = Win(x.shape, fshape[0], fshape[1], s, d, padding)
    xp = w.pad(x)
    dy5 = dy.astype(np.float64).reshape(N, w.OH, w.OW, C, M)
    df = np.zeros(fshape)
    for kh, kw, sl in w.taps:
        df[kh, kw] = np.einsum("nhwc,nhwcm->cm", xp[sl], dy5)
    return df.astype(x.dtype)


def max_pool(x, k, s, padding):
    w = Win(x.shape, k[0], k[1], s, (1, 1), padding)
    xp = w.pad(x, -np.inf)
    return np.max([xp[sl] for _, _, sl in w.taps], axis=0).astype(x.dtype)


def pool_count(w):
    ones = w.pad(np.ones(w.xshape))
    return np.sum([ones[sl] for _, _, sl in w.taps], axis=0)


def avg_pool(x, k, s, padding):
    w = Win(x.shape, k[0], k[1], s, (1, 1), padding)
    xp = w.pad(x)
    return (np.sum([xp[sl] for _, _, sl in w.taps], axis=0) / pool_count(w)).astype(x.dtype)


def max_pool_grad(x, dy, k, s, padding):
    """Each window's gradient goes to its first maximum in row-major window order."""
    w = Win(x.shape, k[0], k[1], s, (1, 1), padding)
    xp = w.pad(x, -np.inf)
    best = np.full(dy.shape, -np.inf)
    arg = np.full(dy.shape, -1)
    for t, (_, _, sl) in enumerate(w.taps):
        take = xp[sl] > best
        best = np.where(take, xp[sl], best)
        arg = np.where(take, t, arg)
    dxp = w.zeros()
    for t, (_, _, sl) in enumerate(w.taps):
        dxp[sl] += np.where(arg == t, dy.astype(np.float64), 0)
    return w.crop(dxp).astype(x.dtype)


def avg_pool_grad(dy, xshape, k, s, padding):
    w = Win(xshape, k[0], k[1], s, (1, 1), padding)
    share = dy.astype(np.float64) / pool_count(w)
    dxp = w.zeros()
    for _, _, sl in w.taps:
        dxp[sl] += share
    return w.crop(dxp).astype(dy.dtype)


def attrs(s, d, padding, hw4=False):
    st = [1, s[0], s[1], 1] if hw4 else list(s)
    return "strides=%s, dilations=%s, padding=%s" % (ints(st), ints(d), padding)


# ---- conv2d and its gradient ops ----
# (N, H, W, C, KH, KW, O, strides, dilations, padding)
CONV = [
    ((2, 5, 7, 3), (3, 3, 3, 4), (1, 1), (1, 1), "VALID"),
    ((2, 5, 7, 3), (3, 3, 3, 4), (1, 1), (1, 1), "SAME"),
    ((1, 7, 6, 2), (3, 2, 2, 5), (2, 2), (1, 1), "SAME"),
    ((2, 9, 8, 3), (3, 3, 3, 2), (2, 3), (1, 1), "VALID"),
    ((1, 8, 7, 2), (3, 3, 2, 3), (1, 1), (2, 2), "SAME"),
    ((1, 9, 9, 2), (2, 3, 2, 3), (1, 1), (2, 1), "VALID"),
    ((1, 4, 3, 3), (5, 5, 3, 2), (1, 1), (1, 1), "SAME"),   # filter larger than the input
    ((2, 3, 3, 5), (1, 1, 5, 4), (1, 1), (1, 1), "VALID"),  # 1x1: a plain matmul
    ((1, 6, 7, 1), (3, 3, 1, 1), (2, 2), (1, 1), "SAME"),
    ((3, 11, 10, 4), (4, 3, 4, 6), (3, 2), (1, 2), "SAME"),
]
for i, (xs, fs, s, d, pad) in enumerate(CONV):
    for dt in FLOATS:
        w = Win(xs, fs[0], fs[1], s, d, pad)
        ys = (xs[0], w.OH, w.OW, fs[3])
        at = attrs(s, d, pad, hw4=(i % 3 == 2))
        add("conv2d_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            f = placeholder() : %s[%s]
            y = conv2d(x, f) {%s}
        """ % (dt, shp(xs), dt, shp(fs), at), {"x": rand(dt, xs), "f": rand(dt, fs)}, "y",
            lambda x, f, s=s, d=d, p=pad: conv2d(x, f, s, d, p), dt)
        add("conv2d_backprop_input_%d_%s" % (i, dt), """
            f = placeholder() : %s[%s]
            dy = placeholder() : %s[%s]
            y = conv2d_backprop_input(f, dy) {input_sizes=%s, %s}
        """ % (dt, shp(fs), dt, shp(ys), ints(xs), at), {"f": rand(dt, fs), "dy": rand(dt, ys)}, "y",
            lambda f, dy, xs=xs, s=s, d=d, p=pad: conv2d_dx(f, dy, xs, s, d, p), dt)
        add("conv2d_backprop_filter_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            dy = placeholder() : %s[%s]
            y = conv2d_backprop_filter(x, dy) {filter_sizes=%s, %s}
        """ % (dt, shp(xs), dt, shp(ys), ints(fs), at), {"x": rand(dt, xs), "dy": rand(dt, ys)}, "y",
            lambda x, dy, fs=fs, s=s, d=d, p=pad: conv2d_df(x, dy, fs, s, d, p), dt)

# attributes left at their defaults: strides [1,1], dilations [1,1], VALID
add("conv2d_defaults", """
    x = placeholder() : f64[1,5,4,2]
    f = placeholder() : f64[2,2,2,3]
    y = conv2d(x, f)
""", {"x": rand("f64", (1, 5, 4, 2)), "f": rand("f64", (2, 2, 2, 3))}, "y", conv2d)

# ---- depthwise_conv2d and its gradient ops ----
DEPTHWISE = [
    ((2, 5, 6, 3), (3, 3, 3, 1), (1, 1), (1, 1), "VALID"),
    ((2, 5, 6, 3), (3, 3, 3, 2), (1, 1), (1, 1), "SAME"),
    ((1, 7, 8, 2), (3, 2, 2, 3), (2, 2), (1, 1), "SAME"),
    ((1, 9, 7, 4), (2, 3, 4, 1), (2, 1), (1, 1), "VALID"),
    ((1, 8, 8, 2), (3, 3, 2, 2), (1, 1), (2, 2), "SAME"),
    ((2, 3, 2, 3), (4, 4, 3, 2), (1, 1), (1, 1), "SAME"),
]
for i, (xs, fs, s, d, pad) in enumerate(DEPTHWISE):
    for dt in FLOATS:
        w = Win(xs, fs[0], fs[1], s, d, pad)
        ys = (xs[0], w.OH, w.OW, fs[2] * fs[3])
        at = attrs(s, d, pad, hw4=(i % 2 == 1))
        add("depthwise_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            f = placeholder() : %s[%s]
            y = depthwise_conv2d(x, f) {%s}
        """ % (dt, shp(xs), dt, shp(fs), at), {"x": rand(dt, xs), "f": rand(dt, fs)}, "y",
            lambda x, f, s=s, d=d, p=pad: depthwise(x, f, s, d, p), dt)
        add("depthwise_backprop_input_%d_%s" % (i, dt), """
            f = placeholder() : %s[%s]
            dy = placeholder() : %s[%s]
            y = depthwise_conv2d_backprop_input(f, dy) {input_sizes=%s, %s}
        """ % (dt, shp(fs), dt, shp(ys), ints(xs), at), {"f": rand(dt, fs), "dy": rand(dt, ys)}, "y",
            lambda f, dy, xs=xs, s=s, d=d, p=pad: depthwise_dx(f, dy, xs, s, d, p), dt)
        add("depthwise_backprop_filter_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            dy = placeholder() : %s[%s]
            y = depthwise_conv2d_backprop_filter(x, dy) {filter_sizes=%s, %s}
        """ % (dt, shp(xs), dt, shp(ys), ints(fs), at), {"x": rand(dt, xs), "dy": rand(dt, ys)}, "y",
            lambda x, dy, fs=fs, s=s, d=d, p=pad: depthwise_df(x, dy, fs, s, d, p), dt)

# ---- forward convolutions large enough for the fast paths ----
# conv2d: im2col in several blocks, Winograd F(2x2, 3x3) (3x3, stride 1, 8+
# channels; odd and even output sizes, several tile blocks), 1x1 with and
# without stride; depthwise_conv2d: interior tiles of 4 pixels, channel
# blocks with a masked tail, a border, dilation, and more than 64 taps
# (looped rather than unrolled).  Forward only: the gradient ops keep the
# per-tap form the cases above cover.
FAST_CONV = [
    ((1, 60, 60, 3), (3, 3, 3, 10), (1, 1), (1, 1), "SAME"),
    ((1, 33, 35, 3), (5, 5, 3, 24), (2, 2), (1, 1), "SAME"),
    ((1, 13, 11, 16), (3, 3, 16, 12), (1, 1), (1, 1), "SAME"),
    ((3, 7, 6, 9), (3, 3, 9, 33), (1, 1), (1, 1), "VALID"),
    ((1, 40, 37, 64), (3, 3, 64, 64), (1, 1), (1, 1), "SAME"),
    ((2, 9, 10, 16), (1, 1, 16, 30), (1, 1), (1, 1), "VALID"),
    ((1, 9, 10, 16), (1, 1, 16, 7), (2, 2), (1, 1), "SAME"),
]
FAST_DEPTHWISE = [
    ((1, 17, 19, 20), (3, 3, 20, 1), (1, 1), (1, 1), "SAME"),
    ((2, 17, 19, 19), (5, 5, 19, 1), (2, 2), (1, 1), "SAME"),
    ((1, 16, 15, 9), (3, 3, 9, 1), (1, 1), (2, 2), "SAME"),
    ((1, 20, 21, 33), (9, 9, 33, 1), (1, 2), (1, 1), "VALID"),
]
for op, table, ref in (("conv2d", FAST_CONV, conv2d), ("depthwise_conv2d", FAST_DEPTHWISE, depthwise)):
    for i, (xs, fs, s, d, pad) in enumerate(table):
        for dt in FLOATS:
            add("%s_fast_%d_%s" % (op, i, dt), """
                x = placeholder() : %s[%s]
                f = placeholder() : %s[%s]
                y = %s(x, f) {%s}
            """ % (dt, shp(xs), dt, shp(fs), op, attrs(s, d, pad)), {"x": rand(dt, xs), "f": rand(dt, fs)}, "y",
                lambda x, f, s=s, d=d, p=pad, ref=ref: ref(x, f, s, d, p), dt)

# ---- pooling and its gradient ops ----
POOL = [
    ((2, 6, 8, 3), (2, 2), (2, 2), "VALID"),
    ((2, 5, 7, 3), (3, 3), (1, 1), "SAME"),
    ((1, 7, 5, 2), (3, 2), (2, 2), "SAME"),
    ((1, 9, 9, 4), (3, 3), (2, 3), "VALID"),
    ((3, 4, 5, 1), (4, 4), (3, 3), "SAME"),
    ((1, 1, 1, 5), (3, 3), (2, 2), "SAME"),  # the window is mostly padding
]
for i, (xs, k, s, pad) in enumerate(POOL):
    w = Win(xs, k[0], k[1], s, (1, 1), pad)
    ys = (xs[0], w.OH, w.OW, xs[3])
    for dt in FLOATS:
        if i % 2:
            at = "ksize=%s, strides=%s, padding=%s" % (ints([1, k[0], k[1], 1]), ints([1, s[0], s[1], 1]), pad)
        else:
            at = "ksize=%s, strides=%s, padding=%s" % (ints(k), ints(s), pad)
        for op, f in (("max_pool", max_pool), ("avg_pool", avg_pool)):
            add("%s_%d_%s" % (op, i, dt), """
                x = placeholder() : %s[%s]
                y = %s(x) {%s}
            """ % (dt, shp(xs), op, at), {"x": rand(dt, xs)}, "y",
                lambda x, f=f, k=k, s=s, p=pad: f(x, k, s, p), dt)
        add("max_pool_grad_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            dy = placeholder() : %s[%s]
            y = max_pool_grad(x, dy) {%s}
        """ % (dt, shp(xs), dt, shp(ys), at), {"x": rand(dt, xs), "dy": rand(dt, ys)}, "y",
            lambda x, dy, k=k, s=s, p=pad: max_pool_grad(x, dy, k, s, p), dt)
        add("avg_pool_grad_%d_%s" % (i, dt), """
            dy = placeholder() : %s[%s]
            y = avg_pool_grad(dy) {input_sizes=%s, %s}
        """ % (dt, shp(ys), ints(xs), at), {"dy": rand(dt, ys)}, "y",
            lambda dy, xs=xs, k=k, s=s, p=pad: avg_pool_grad(dy, xs, k, s, p), dt)

# ties: small integers, so windows often hold equal maxima; the first one wins
for dt in FLOATS:
    xs, k, s = (2, 6, 6, 3), (3, 3), (1, 1)
    xt = rand("i32", xs, 0, 2).astype(NPT[dt])
    add("max_pool_grad_ties_%s" % dt, """
        x = placeholder() : %s[2,6,6,3]
        dy = placeholder() : %s[2,6,6,3]
        y = max_pool_grad(x, dy) {ksize=[3,3], padding=SAME}
    """ % (dt, dt), {"x": xt, "dy": rand(dt, xs)}, "y",
        lambda x, dy: max_pool_grad(x, dy, (3, 3), (1, 1), "SAME"), dt)
# max_pool ignores padding: an all-negative input never yields the padding's 0
add("max_pool_negative_same", """
    x = placeholder() : f32[1,3,3,2]
    y = max_pool(x) {ksize=[3,3], padding=SAME}
""", {"x": rand("f32", (1, 3, 3, 2), -5, -1)}, "y",
    lambda x: max_pool(x, (3, 3), (1, 1), "SAME"), "f32")

# ---- bias_add ----
for dt in FLOATS:
    for i, vs in enumerate([(2, 3, 4, 5), (6, 7), (5,)]):
        add("bias_add_%d_%s" % (i, dt), """
            v = placeholder() : %s[%s]
            b = placeholder() : %s[%d]
            y = bias_add(v, b)
        """ % (dt, shp(vs), dt, vs[-1]), {"v": rand(dt, vs), "b": rand(dt, (vs[-1],))}, "y",
            lambda v, b: v + b, dt)
# a conv layer: conv2d, bias_add, relu (the last two fuse)
add("conv_bias_relu", """
    x = placeholder() : f32[2,6,6,3]
    f = placeholder() : f32[3,3,3,8]
    b = placeholder() : f32[8]
    y = relu(bias_add(conv2d(x, f) {padding=SAME}, b))
""", {"x": rand("f32", (2, 6, 6, 3)), "f": rand("f32", (3, 3, 3, 8)), "b": rand("f32", (8,))}, "y",
    lambda x, f, b: np.maximum(conv2d(x, f, padding="SAME") + b, 0), "f32")

# ---- batch_norm, batch_norm_inference ----

def bn_train(x, scale, offset, eps, axes):
    x64 = x.astype(np.float64)
    keep = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    mean = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x64 - mean) / np.sqrt(var + eps) * scale.reshape(keep) + offset.reshape(keep)
    stat = scale.shape
    return [y.astype(x.dtype), mean.reshape(stat).astype(x.dtype), var.reshape(stat).astype(x.dtype)]


def bn_infer(x, scale, offset, mean, var, eps, axes):
    keep = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    r = lambda t: t.astype(np.float64).reshape(keep)
    return ((x - r(mean)) / np.sqrt(r(var) + eps) * r(scale) + r(offset)).astype(x.dtype)


BN = [((4, 3, 5, 6), None, 0.001), ((8, 5), [0], 0.01), ((3, 4, 5), [0, 2], 1e-5), ((2, 3, 4), [-1], 0.1)]
for i, (xs, axes, eps) in enumerate(BN):
    ax = tuple(range(len(xs) - 1)) if axes is None else tuple(a % len(xs) for a in axes)
    stat = tuple(n for a, n in enumerate(xs) if a not in ax)
    at = "epsilon=%r%s" % (eps, "" if axes is None else ", axes=%s" % ints(axes))
    for dt in FLOATS:
        add("batch_norm_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            s = placeholder() : %s[%s]
            o = placeholder() : %s[%s]
            bn = batch_norm(x, s, o) {%s}
        """ % (dt, shp(xs), dt, shp(stat), dt, shp(stat), at),
            {"x": rand(dt, xs), "s": rand(dt, stat), "o": rand(dt, stat)}, ["bn", "bn.1", "bn.2"],
            lambda x, s, o, eps=eps, ax=ax: bn_train(x, s, o, eps, ax), dt)
        add("batch_norm_inference_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            s = placeholder() : %s[%s]
            o = placeholder() : %s[%s]
            m = placeholder() : %s[%s]
            v = placeholder() : %s[%s]
            y = batch_norm_inference(x, s, o, m, v) {%s}
        """ % ((dt, shp(xs)) + (dt, shp(stat)) * 4 + (at,)),
            {"x": rand(dt, xs), "s": rand(dt, stat), "o": rand(dt, stat), "m": rand(dt, stat),
             "v": positive(dt, stat)}, "y",
            lambda x, s, o, m, v, eps=eps, ax=ax: bn_infer(x, s, o, m, v, eps, ax), dt)
# training=false: the given statistics, passed through as outputs 1 and 2 (as fused_batch_norm)
for dt in FLOATS:
    add("batch_norm_training_false_%s" % dt, """
        x = placeholder() : %s[2,3,3,4]
        s = placeholder() : %s[4]
        o = placeholder() : %s[4]
        m = placeholder() : %s[4]
        v = placeholder() : %s[4]
        bn = batch_norm(x, s, o, m, v) {training=false}
    """ % ((dt,) * 5), {"x": rand(dt, (2, 3, 3, 4)), "s": rand(dt, (4,)), "o": rand(dt, (4,)), "m": rand(dt, (4,)),
                         "v": positive(dt, (4,))}, ["bn", "bn.1", "bn.2"],
        lambda x, s, o, m, v: [bn_infer(x, s, o, m, v, 0.001, (0, 1, 2)), m, v], dt)

# ---- dropout ----

def dropout_check(rate, dt):
    def check(y, feeds):
        x = feeds[0]
        kept = y != 0
        p, n = 1 - rate, y.size
        frac = kept.mean()
        if abs(frac - p) > 5 * np.sqrt(p * (1 - p) / n) + 1e-12:
            return "kept fraction %g, expected %g" % (frac, p)
        want = x[kept] * NPT[dt](1 / (1 - rate))
        if y.dtype != NPT[dt] or not np.allclose(y[kept], want, rtol=1e-6, atol=0):
            return "kept values are not x / (1 - rate)"
        return None
    return check


for dt in FLOATS:
    for rate in (0.3, 0.75, 0.0):
        add("dropout_%d_%s" % (round(rate * 100), dt), """
            x = placeholder() : %s[20000]
            y = dropout(x) {rate=%r, seed=3}
        """ % (dt, rate), {"x": positive(dt, (20000,))}, "y", dt=dt, check=dropout_check(rate, dt))
    add("dropout_rank3_%s" % dt, """
        x = placeholder() : %s[40,25,20]
        y = dropout(x) {rate=0.5}
    """ % dt, {"x": positive(dt, (40, 25, 20))}, "y", dt=dt, check=dropout_check(0.5, dt))


def same_masks(out, feeds):
    a, b, c, d, e = out
    if not np.array_equal(a, b):
        return "two dropouts with one seed differ"
    if np.array_equal(a != 0, c != 0):
        return "dropouts with different seeds drew the same mask"
    if np.array_equal(d != 0, e != 0):
        return "two dropouts without a seed drew the same mask"
    return None


add("dropout_seeds", """
    x = placeholder() : f32[1000]
    a = dropout(x) {rate=0.5, seed=9}
    b = dropout(x) {rate=0.5, seed=9}
    c = dropout(x) {rate=0.5, seed=10}
    d = dropout(x) {rate=0.5}
    e = dropout(x) {rate=0.5}
""", {"x": positive("f32", (1000,))}, ["a", "b", "c", "d", "e"], dt="f32", check=same_masks)


def mask_is_draw(out, feeds):
    u, y = out
    if not np.array_equal(y != 0, u >= np.float32(0.4)):
        return "the mask is not random_uniform(seed) >= rate"
    return None


# the mask is random_uniform with the dropout's seed, compared with the rate (as TF)
add("dropout_mask_is_uniform", """
    x = placeholder() : f32[2000]
    u = random_uniform<f32[2000]>() {seed=21}
    y = dropout(x) {rate=0.4, seed=21}
""", {"x": positive("f32", (2000,))}, ["u", "y"], dt="f32", check=mask_is_draw)


def dropout_grad(out, feeds):
    y, g = out
    want = (y != 0) * np.float64(1 / (1 - 0.25))
    if not np.allclose(g, want, rtol=1e-12, atol=0):
        return "the gradient is not mask / (1 - rate)"
    return None


add("dropout_gradient", """
    x = placeholder() : f64[500]
    y = dropout(x) {rate=0.25, seed=4}
    l = sum(y)
    g = gradients(l, x)
""", {"x": positive("f64", (500,))}, ["y", "g"], check=dropout_grad)

# ---- the cross-entropy losses, l2_loss ----

def log_softmax(z):
    z = z.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def probs(dt, shape):
    p = positive(dt, shape).astype(np.float64)
    return (p / p.sum(axis=-1, keepdims=True)).astype(NPT[dt])


for dt in FLOATS:
    for i, s in enumerate([(5, 7), (2, 3, 4), (6,)]):
        add("softmax_ce_%d_%s" % (i, dt), """
            lab = placeholder() : %s[%s]
            z = placeholder() : %s[%s]
            y = softmax_cross_entropy_with_logits(lab, z)
        """ % (dt, shp(s), dt, shp(s)), {"lab": probs(dt, s), "z": rand(dt, s, -5, 5)}, "y",
            lambda lab, z: -(lab * log_softmax(z)).sum(axis=-1).astype(z.dtype), dt)
    for it in ("i32", "i64"):
        add("sparse_softmax_ce_%s_%s" % (it, dt), """
            lab = placeholder() : %s[6]
            z = placeholder() : %s[6,5]
            y = sparse_softmax_cross_entropy_with_logits(lab, z)
        """ % (it, dt), {"lab": rand(it, (6,), 0, 4), "z": rand(dt, (6, 5), -5, 5)}, "y",
            lambda lab, z: -log_softmax(z)[np.arange(6), lab].astype(z.dtype), dt)
    add("sparse_softmax_ce_rank2_%s" % dt, """
        lab = placeholder() : i64[2,3]
        z = placeholder() : %s[2,3,4]
        y = sparse_softmax_cross_entropy_with_logits(lab, z)
    """ % dt, {"lab": rand("i64", (2, 3), 0, 3), "z": rand(dt, (2, 3, 4))}, "y",
        lambda lab, z: -np.take_along_axis(log_softmax(z), lab[..., None], -1)[..., 0].astype(z.dtype), dt)
    for i, s in enumerate([(3, 4, 5), (7,), ()]):
        add("l2_loss_%d_%s" % (i, dt), """
            x = placeholder() : %s[%s]
            y = l2_loss(x)
        """ % (dt, shp(s)), {"x": rand(dt, s)}, "y",
            lambda x: np.asarray((x.astype(np.float64) ** 2).sum() / 2).astype(x.dtype), dt)

# labels outside [0, classes) give NaN, as TF on GPUs (not a silently wrong loss)
add("sparse_softmax_ce_out_of_range", """
    lab = placeholder() : i32[4]
    z = placeholder() : f32[4,5]
    y = sparse_softmax_cross_entropy_with_logits(lab, z)
""", {"lab": np.array([0, 5, -1, 4], np.int32), "z": rand("f32", (4, 5))}, "y",
    lambda lab, z: np.where((lab >= 0) & (lab < 5), -log_softmax(z)[np.arange(4), np.clip(lab, 0, 4)], np.nan)
    .astype(np.float32), "f32")
