# cases_shape.py — NumPy reference cases for the shape and data-movement ops
# (compiler/ops/shape.c): reshape, transpose, concat, slice, strided_slice,
# gather, pad, broadcast_to, one_hot, expand_dims, squeeze.
#
# Data movement must be bit-exact for every dtype, so each "any" op is run
# for all of f32 f64 i32 i64 bool; the remaining cases cover negative axes,
# size-1 and size-0 dimensions, rank 0, and every strided_slice mask.
# Loaded by tests/ref/refkit.py (which provides case, rand, np).

DTYPES = ["f32", "f64", "i32", "i64", "bool"]
NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}


def shp(s):
    return "[" + ",".join(str(d) for d in s) + "]"


def unary(name, dt, shape, op, ref, data=None):
    """One placeholder x of dt[shape], y = op line, ref on x."""
    x = rand(dt, shape) if data is None else data
    return case(name, "x = placeholder() : %s%s\ny = %s" % (dt, shp(shape), op),
                feeds={"x": x}, fetch="y", ref=ref)


def one_hot_ref(depth, axis, on, off, dt):
    def f(i):
        eq = i[..., None] == np.arange(depth)
        eq = np.moveaxis(eq, -1, axis if axis >= 0 else eq.ndim + axis)
        return np.where(eq, on, off).astype(NP[dt])
    return f


CASES = []

# ---- reshape ----------------------------------------------------------------
for dt in DTYPES:
    CASES.append(unary("reshape_" + dt, dt, (2, 3, 4), "reshape(x) {shape=[4,-1]}",
                       lambda x: x.reshape(4, 6)))
CASES += [
    unary("reshape_infer_middle", "f32", (2, 3, 4), "reshape(x) {shape=[2,-1,2]}",
          lambda x: x.reshape(2, 6, 2)),
    unary("reshape_explicit", "i32", (6,), "reshape(x) {shape=[3,2]}", lambda x: x.reshape(3, 2)),
    unary("reshape_to_scalar", "f64", (1, 1), "reshape(x) {shape=[]}", lambda x: x.reshape(())),
    unary("reshape_from_scalar", "i64", (), "reshape(x) {shape=[1,-1,1]}",
          lambda x: x.reshape(1, 1, 1)),
    unary("reshape_empty", "f32", (0, 3), "reshape(x) {shape=[3,0,2]}",
          lambda x: x.reshape(3, 0, 2)),
    # an alias feeding real ops, and an alias of an alias
    case("reshape_then_transpose", """
        x = placeholder() : f32[2,6]
        r = reshape(x) {shape=[3,4]}
        y = transpose(r)
    """, feeds={"x": rand("f32", (2, 6))}, fetch="y", ref=lambda x: x.reshape(3, 4).T),
    case("reshape_chain", """
        x = placeholder() : i32[24]
        a = reshape(x) {shape=[2,12]}
        b = reshape(a) {shape=[-1,3,2]}
        y = neg(b)
    """, feeds={"x": rand("i32", (24,))}, fetch="y", ref=lambda x: -x.reshape(4, 3, 2)),
    case("reshape_of_computed", """
        x = placeholder() : f32[3,4]
        a = add(x, x)
        y = reshape(a) {shape=[2,-1]}
    """, feeds={"x": rand("f32", (3, 4))}, fetch="y", ref=lambda x: (x + x).reshape(2, 6)),
]

# ---- transpose --------------------------------------------------------------
for dt in DTYPES:
    CASES.append(unary("transpose_" + dt, dt, (2, 3, 4), "transpose(x) {perm=[2,0,1]}",
                       lambda x: np.transpose(x, (2, 0, 1))))
CASES += [
    unary("transpose_default", "f32", (2, 3, 4), "transpose(x)", lambda x: np.transpose(x)),
    unary("transpose_2d", "f64", (5, 7), "transpose(x) {perm=[1,0]}", lambda x: x.T),
    unary("transpose_neg_perm", "i32", (2, 3, 4), "transpose(x) {perm=[-1,0,-2]}",
          lambda x: np.transpose(x, (2, 0, 1))),
    unary("transpose_identity", "i64", (2, 3, 4), "transpose(x) {perm=[0,1,2]}", lambda x: x),
    unary("transpose_rank0", "f32", (), "transpose(x)", lambda x: x),
    unary("transpose_rank1", "bool", (6,), "transpose(x) {perm=[0]}", lambda x: x),
    unary("transpose_size1_dims", "f32", (1, 3, 1, 2), "transpose(x) {perm=[3,2,1,0]}",
          lambda x: np.transpose(x, (3, 2, 1, 0))),
    # inner dimension kept: contiguous runs
    unary("transpose_keep_inner", "f32", (2, 3, 4, 5), "transpose(x) {perm=[1,0,2,3]}",
          lambda x: np.transpose(x, (1, 0, 2, 3))),
    unary("transpose_4d_mixed", "i32", (2, 3, 4, 5), "transpose(x) {perm=[0,2,1,3]}",
          lambda x: np.transpose(x, (0, 2, 1, 3))),
    unary("transpose_big", "f32", (33, 65), "transpose(x)", lambda x: x.T),
    unary("transpose_empty", "f32", (0, 3), "transpose(x)", lambda x: x.T),
]

# ---- concat -----------------------------------------------------------------
for dt in DTYPES:
    CASES.append(case("concat_" + dt, """
        a = placeholder() : %s[2,3]
        b = placeholder() : %s[2,4]
        y = concat(a, b) {axis=1}
    """ % (dt, dt), feeds={"a": rand(dt, (2, 3)), "b": rand(dt, (2, 4))}, fetch="y",
        ref=lambda a, b: np.concatenate([a, b], axis=1)))
CASES += [
    case("concat_axis0_three", """
        a = placeholder() : f32[1,3]
        b = placeholder() : f32[2,3]
        c = placeholder() : f32[3,3]
        y = concat(a, b, c) {axis=0}
    """, feeds={"a": rand("f32", (1, 3)), "b": rand("f32", (2, 3)), "c": rand("f32", (3, 3))},
        fetch="y", ref=lambda a, b, c: np.concatenate([a, b, c], axis=0)),
    case("concat_neg_axis", """
        a = placeholder() : i64[2,3,1]
        b = placeholder() : i64[2,3,2]
        y = concat(a, b) {axis=-1}
    """, feeds={"a": rand("i64", (2, 3, 1)), "b": rand("i64", (2, 3, 2))}, fetch="y",
        ref=lambda a, b: np.concatenate([a, b], axis=-1)),
    case("concat_middle_axis", """
        a = placeholder() : f64[2,1,4]
        b = placeholder() : f64[2,3,4]
        y = concat(a, b) {axis=-2}
    """, feeds={"a": rand("f64", (2, 1, 4)), "b": rand("f64", (2, 3, 4))}, fetch="y",
        ref=lambda a, b: np.concatenate([a, b], axis=1)),
    case("concat_single", """
        a = placeholder() : i32[2,3]
        y = concat(a) {axis=0}
    """, feeds={"a": rand("i32", (2, 3))}, fetch="y", ref=lambda a: a.copy()),
    case("concat_same_twice", """
        a = placeholder() : f32[3]
        y = concat(a, a) {axis=0}
    """, feeds={"a": rand("f32", (3,))}, fetch="y", ref=lambda a: np.concatenate([a, a])),
    case("concat_zero_size", """
        a = placeholder() : f32[2,0]
        b = placeholder() : f32[2,3]
        y = concat(a, b) {axis=1}
    """, feeds={"a": rand("f32", (2, 0)), "b": rand("f32", (2, 3))}, fetch="y",
        ref=lambda a, b: np.concatenate([a, b], axis=1)),
    case("concat_rank1_bool", """
        a = placeholder() : bool[4]
        b = placeholder() : bool[1]
        y = concat(a, b) {axis=-1}
    """, feeds={"a": rand("bool", (4,)), "b": rand("bool", (1,))}, fetch="y",
        ref=lambda a, b: np.concatenate([a, b])),
]

# ---- slice ------------------------------------------------------------------
for dt in DTYPES:
    CASES.append(unary("slice_" + dt, dt, (4, 5, 6), "slice(x) {begin=[1,0,2], size=[2,-1,3]}",
                       lambda x: x[1:3, 0:, 2:5]))
CASES += [
    unary("slice_rows", "f32", (6, 4), "slice(x) {begin=[2,0], size=[3,4]}", lambda x: x[2:5]),
    unary("slice_to_end", "i32", (6, 4), "slice(x) {begin=[3,1], size=[-1,-1]}",
          lambda x: x[3:, 1:]),
    unary("slice_empty", "f64", (4, 5), "slice(x) {begin=[4,2], size=[0,2]}",
          lambda x: x[4:4, 2:4]),
    unary("slice_full", "i64", (3, 2), "slice(x) {begin=[0,0], size=[3,2]}", lambda x: x),
    unary("slice_rank1", "bool", (7,), "slice(x) {begin=[2], size=[4]}", lambda x: x[2:6]),
    unary("slice_rank0", "f32", (), "slice(x) {begin=[], size=[]}", lambda x: x),
    unary("slice_size1_dims", "f32", (1, 5, 1), "slice(x) {begin=[0,1,0], size=[1,3,1]}",
          lambda x: x[:, 1:4, :]),
]

# ---- strided_slice ----------------------------------------------------------
# The attributes are what tf.strided_slice receives for the NumPy expression
# in the reference (as the Python __getitem__ of a TF tensor builds them).
SS = [
    # name, dtype, shape, attrs, ref
    ("ss_basic", (4, 6), "begin=[1,0], end=[3,0], strides=[1,2], end_mask=2",
     lambda x: x[1:3, ::2]),
    ("ss_neg_stride", (7,), "begin=[0], end=[0], strides=[-1], begin_mask=1, end_mask=1",
     lambda x: x[::-1]),
    ("ss_neg_stride_range", (7,), "begin=[5], end=[0], strides=[-2]", lambda x: x[5:0:-2]),
    ("ss_neg_stride_2d", (4, 5), "begin=[-1,1], end=[0,5], strides=[-1,2], end_mask=1",
     lambda x: x[-1::-1, 1:5:2]),
    ("ss_neg_indices", (6, 3), "begin=[-4], end=[-1], strides=[1]", lambda x: x[-4:-1]),
    ("ss_begin_mask", (5, 4), "begin=[3,9], end=[4,3], strides=[1,1], begin_mask=3",
     lambda x: x[:4, :3]),
    ("ss_end_mask", (5, 4), "begin=[1,2], end=[0,0], strides=[1,1], end_mask=3",
     lambda x: x[1:, 2:]),
    ("ss_end_mask_neg", (5,), "begin=[3], end=[1], strides=[-1], end_mask=1",
     lambda x: x[3::-1]),
    ("ss_shrink", (4, 5), "begin=[2], end=[3], strides=[1], shrink_axis_mask=1",
     lambda x: x[2]),
    ("ss_shrink_neg", (4, 5), "begin=[0,-1], end=[0,0], strides=[1,1], begin_mask=1, end_mask=1, shrink_axis_mask=2",
     lambda x: x[:, -1]),
    ("ss_shrink_all", (3, 4), "begin=[1,2], end=[2,3], strides=[1,1], shrink_axis_mask=3",
     lambda x: x[1, 2]),
    ("ss_new_axis", (3, 4), "begin=[0,0], end=[0,0], strides=[1,1], begin_mask=1, end_mask=1, new_axis_mask=2",
     lambda x: x[:, None]),
    ("ss_new_axis_front", (3,), "begin=[0,1], end=[0,3], strides=[1,1], new_axis_mask=1",
     lambda x: x[None, 1:3]),
    ("ss_ellipsis_last", (2, 3, 4), "begin=[0,1], end=[0,2], strides=[1,1], ellipsis_mask=1, shrink_axis_mask=2",
     lambda x: x[..., 1]),
    ("ss_ellipsis_middle", (2, 3, 4), "begin=[1,0,0], end=[2,0,0], strides=[1,1,-1], ellipsis_mask=2, begin_mask=4, end_mask=4, shrink_axis_mask=1",
     lambda x: x[1, ..., ::-1]),
    ("ss_ellipsis_new_after", (2, 3, 4), "begin=[0,0,0], end=[0,0,1], strides=[1,1,1], ellipsis_mask=1, new_axis_mask=2, shrink_axis_mask=4",
     lambda x: x[..., None, 0]),
    ("ss_ellipsis_first_new", (2, 3), "begin=[0,0,1], end=[0,0,3], strides=[1,1,1], new_axis_mask=1, ellipsis_mask=2",
     lambda x: x[None, ..., 1:3]),
    ("ss_ellipsis_empty", (2, 3), "begin=[0,0,1], end=[1,0,2], strides=[1,1,1], ellipsis_mask=2, shrink_axis_mask=5",
     lambda x: x[0, ..., 1]),
    ("ss_clamp", (5,), "begin=[-100], end=[100], strides=[1]", lambda x: x[-100:100]),
    ("ss_clamp_neg", (5,), "begin=[100], end=[-100], strides=[-2]", lambda x: x[100:-100:-2]),
    ("ss_empty", (5, 2), "begin=[3], end=[1], strides=[1]", lambda x: x[3:1]),
    ("ss_implicit_trailing", (3, 4, 5), "begin=[1], end=[3], strides=[1]", lambda x: x[1:3]),
    ("ss_no_strides", (6, 3), "begin=[1,0], end=[5,2]", lambda x: x[1:5, 0:2]),
    ("ss_big_step", (10,), "begin=[1], end=[10], strides=[4]", lambda x: x[1:10:4]),
    ("ss_shrink_new_mix", (3, 4, 5),
     "begin=[1,0,0,-2], end=[2,0,0,0], strides=[1,1,1,-1], shrink_axis_mask=1, new_axis_mask=2, begin_mask=4, end_mask=12",
     lambda x: x[1, None, :, -2::-1]),
    ("ss_size1_dim", (1, 4), "begin=[0,3], end=[1,0], strides=[1,-1]", lambda x: x[0:1, 3:0:-1]),
]
for dt in DTYPES:
    CASES.append(unary("ss_" + dt, dt, (4, 5, 3),
                       "strided_slice(x) {begin=[3,1], end=[0,5], strides=[-1,2], end_mask=1}",
                       lambda x: x[3::-1, 1:5:2]))
for i, (name, shape, attrs, ref) in enumerate(SS):
    dt = DTYPES[i % len(DTYPES)]
    CASES.append(unary(name, dt, shape, "strided_slice(x) {%s}" % attrs, ref))

def ss_fuzz(seed, n_cases):
    """Random strided_slice specs (masks, negative strides and indices,
    clamping, ellipsis, new axes), each checked against the NumPy index tuple
    from which TF's __getitem__ builds exactly those attributes."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_cases:
        rank = int(rng.integers(0, 5))
        shape = tuple(int(d) for d in rng.integers(0, 6, rank))
        spec = {"begin": [], "end": [], "strides": []}
        mask = dict.fromkeys(["begin_mask", "end_mask", "shrink_axis_mask", "new_axis_mask",
                              "ellipsis_mask"], 0)
        idx = []
        for i in range(int(rng.integers(0, rank + 3))):
            kind = rng.choice(["slice", "slice", "slice", "shrink", "new", "ellipsis"])
            b, e = int(rng.integers(-8, 9)), int(rng.integers(-8, 9))
            s = int(rng.choice([-3, -2, -1, 1, 2, 3]))
            dim = sum(k is not None for k in idx)  # the input dimension, before any ellipsis
            if kind == "ellipsis" and Ellipsis not in idx:
                mask["ellipsis_mask"] |= 1 << i
                idx.append(Ellipsis)
            elif kind == "new":
                mask["new_axis_mask"] |= 1 << i
                idx.append(None)
            elif kind == "shrink" and Ellipsis not in idx and dim < rank and shape[dim] > 0:
                b = int(rng.integers(-shape[dim], shape[dim]))
                e, s = b + 1, 1
                mask["shrink_axis_mask"] |= 1 << i
                idx.append(b)
            else:
                lo, hi = b, e
                if rng.random() < 0.3:
                    mask["begin_mask"] |= 1 << i
                    lo = None
                if rng.random() < 0.3:
                    mask["end_mask"] |= 1 << i
                    hi = None
                idx.append(slice(lo, hi, s))
            spec["begin"].append(b)
            spec["end"].append(e)
            spec["strides"].append(s)
        if sum(k is not None and k is not Ellipsis for k in idx) > rank:
            continue  # more indices than dimensions: an error, not a case
        t = tuple(idx)
        if np.zeros(shape)[t].ndim > 8:
            continue
        attrs = ", ".join(["%s=%s" % (k, shp(v)) for k, v in spec.items()] +
                          ["%s=%d" % kv for kv in mask.items()])
        out.append(unary("ss_fuzz_%d" % len(out), DTYPES[len(out) % len(DTYPES)], shape,
                         "strided_slice(x) {%s}" % attrs, lambda x, t=t: x[t]))
    return out


CASES += ss_fuzz(20261126, 60)


# ---- gather -----------------------------------------------------------------
def gather_case(name, dt, pshape, idt, ishape, axis, extra=""):
    n = pshape[axis]
    return case(name, """
        p = placeholder() : %s%s
        i = placeholder() : %s%s
        y = gather(p, i) {axis=%d%s}
    """ % (dt, shp(pshape), idt, shp(ishape), axis, extra),
        feeds={"p": rand(dt, pshape), "i": rand(idt, ishape, 0, n - 1)}, fetch="y",
        ref=lambda p, i: np.take(p, i, axis=axis))


for k, dt in enumerate(DTYPES):
    CASES.append(gather_case("gather_" + dt, dt, (5, 3), ["i32", "i64"][k % 2], (4,), 0))
CASES += [
    gather_case("gather_i64_indices", "f32", (6, 4), "i64", (3,), 0),
    gather_case("gather_axis1", "f32", (2, 5, 3), "i64", (2, 2), 1),
    gather_case("gather_neg_axis", "i32", (2, 3, 7), "i32", (5,), -1),
    gather_case("gather_scalar_index", "f64", (4, 3), "i32", (), 0),
    gather_case("gather_rank1_params", "i64", (9,), "i32", (3, 4), 0),
    gather_case("gather_2d_indices_axis0", "bool", (6, 2, 2), "i64", (2, 3), 0),
    gather_case("gather_empty_indices", "f32", (4, 3), "i32", (0,), 0),
    case("gather_bounds", """
        p = placeholder() : f32[5,2]
        i = placeholder() : i32[4]
        y = gather(p, i)
    """, feeds={"p": rand("f32", (5, 2)), "i": np.array([0, 4, 4, 0], np.int32)}, fetch="y",
        ref=lambda p, i: p[i]),
]

# ---- pad --------------------------------------------------------------------
for dt in DTYPES:
    CASES.append(unary("pad_" + dt, dt, (2, 3), "pad(x) {paddings=[1,2,0,1]}",
                       lambda x: np.pad(x, ((1, 2), (0, 1)))))
CASES += [
    unary("pad_const_f32", "f32", (2, 3), "pad(x) {paddings=[0,1,2,0], constant_value=1.5}",
          lambda x: np.pad(x, ((0, 1), (2, 0)), constant_values=np.float32(1.5))),
    unary("pad_const_neg_f64", "f64", (3,), "pad(x) {paddings=[2,2], constant_value=-2.5}",
          lambda x: np.pad(x, (2, 2), constant_values=-2.5)),
    unary("pad_const_i32", "i32", (2, 2), "pad(x) {paddings=[1,1,1,1], constant_value=7}",
          lambda x: np.pad(x, 1, constant_values=7)),
    unary("pad_const_trunc_i64", "i64", (2,), "pad(x) {paddings=[1,0], constant_value=-3.7}",
          lambda x: np.pad(x, (1, 0), constant_values=-3)),
    unary("pad_const_bool", "bool", (2, 2), "pad(x) {paddings=[0,1,1,0], constant_value=1}",
          lambda x: np.pad(x, ((0, 1), (1, 0)), constant_values=True)),
    unary("pad_3d", "f32", (2, 3, 4), "pad(x) {paddings=[0,0,1,1,2,3]}",
          lambda x: np.pad(x, ((0, 0), (1, 1), (2, 3)))),
    unary("pad_none", "i32", (3, 2), "pad(x) {paddings=[0,0,0,0], constant_value=5}", lambda x: x),
    unary("pad_rank0", "f32", (), "pad(x) {paddings=[]}", lambda x: x),
    unary("pad_empty_operand", "f32", (0, 2), "pad(x) {paddings=[1,0,0,1], constant_value=3}",
          lambda x: np.pad(x, ((1, 0), (0, 1)), constant_values=np.float32(3))),
]

# ---- broadcast_to -----------------------------------------------------------
for dt in DTYPES:
    CASES.append(unary("broadcast_to_" + dt, dt, (3,), "broadcast_to(x) {shape=[2,3]}",
                       lambda x: np.broadcast_to(x, (2, 3))))
CASES += [
    unary("broadcast_to_middle", "f32", (2, 1, 3), "broadcast_to(x) {shape=[2,4,3]}",
          lambda x: np.broadcast_to(x, (2, 4, 3))),
    unary("broadcast_to_inner", "i32", (3, 1), "broadcast_to(x) {shape=[3,5]}",
          lambda x: np.broadcast_to(x, (3, 5))),
    unary("broadcast_to_scalar", "f64", (), "broadcast_to(x) {shape=[2,2]}",
          lambda x: np.broadcast_to(x, (2, 2))),
    unary("broadcast_to_same", "i64", (2, 3), "broadcast_to(x) {shape=[2,3]}", lambda x: x),
    unary("broadcast_to_leading", "f32", (1, 3), "broadcast_to(x) {shape=[2,4,3]}",
          lambda x: np.broadcast_to(x, (2, 4, 3))),
    unary("broadcast_to_mixed", "bool", (4, 1, 2, 1), "broadcast_to(x) {shape=[3,4,2,2,5]}",
          lambda x: np.broadcast_to(x, (3, 4, 2, 2, 5))),
    unary("broadcast_to_zero", "f32", (1,), "broadcast_to(x) {shape=[2,0]}",
          lambda x: np.broadcast_to(x, (2, 0))),
]

# ---- one_hot ----------------------------------------------------------------
def one_hot_case(name, idt, ishape, depth, attrs, axis, on, off, dt):
    return case(name, """
        i = placeholder() : %s%s
        y = one_hot(i) {depth=%d%s}
    """ % (idt, shp(ishape), depth, attrs),
        # indices run past both ends: those rows are all off_value
        feeds={"i": rand(idt, ishape, -2, depth + 1)}, fetch="y",
        ref=one_hot_ref(depth, axis, on, off, dt))


CASES += [
    one_hot_case("one_hot_i32", "i32", (6,), 5, "", -1, 1, 0, "f32"),
    one_hot_case("one_hot_i64", "i64", (6,), 5, "", -1, 1, 0, "f32"),
    one_hot_case("one_hot_axis0", "i32", (2, 3), 4, ", axis=0", 0, 1, 0, "f32"),
    one_hot_case("one_hot_axis_middle", "i64", (2, 3), 4, ", axis=1", 1, 1, 0, "f32"),
    one_hot_case("one_hot_axis_last_explicit", "i32", (2, 3), 3, ", axis=2", 2, 1, 0, "f32"),
    one_hot_case("one_hot_f64", "i32", (5,), 3, ", dtype=f64, on_value=2.5, off_value=-1.0",
                 -1, 2.5, -1.0, "f64"),
    one_hot_case("one_hot_out_i32", "i64", (3, 2), 4, ", dtype=i32, on_value=7, off_value=-3",
                 -1, 7, -3, "i32"),
    one_hot_case("one_hot_out_i64", "i32", (4,), 6, ", dtype=i64, on_value=5", -1, 5, 0, "i64"),
    one_hot_case("one_hot_out_bool", "i32", (2, 3), 3, ", dtype=bool, axis=0", 0, True, False,
                 "bool"),
    one_hot_case("one_hot_scalar", "i64", (), 4, "", -1, 1, 0, "f32"),
    one_hot_case("one_hot_depth1", "i32", (5,), 1, "", -1, 1, 0, "f32"),
]

# ---- expand_dims ------------------------------------------------------------
for dt in DTYPES:
    CASES.append(unary("expand_dims_" + dt, dt, (2, 3), "expand_dims(x) {axis=1}",
                       lambda x: np.expand_dims(x, 1)))
CASES += [
    unary("expand_dims_front", "f32", (2, 3), "expand_dims(x) {axis=0}",
          lambda x: np.expand_dims(x, 0)),
    unary("expand_dims_last", "f32", (2, 3), "expand_dims(x) {axis=2}",
          lambda x: np.expand_dims(x, 2)),
    unary("expand_dims_neg1", "i32", (2, 3), "expand_dims(x) {axis=-1}",
          lambda x: np.expand_dims(x, -1)),
    unary("expand_dims_neg_min", "i64", (2, 3), "expand_dims(x) {axis=-3}",
          lambda x: np.expand_dims(x, 0)),
    unary("expand_dims_scalar", "f64", (), "expand_dims(x) {axis=0}", lambda x: x.reshape(1)),
    case("expand_dims_then_concat", """
        a = placeholder() : f32[3]
        b = placeholder() : f32[3]
        ea = expand_dims(a) {axis=0}
        eb = expand_dims(b) {axis=0}
        y = concat(ea, eb) {axis=0}
    """, feeds={"a": rand("f32", (3,)), "b": rand("f32", (3,))}, fetch="y",
        ref=lambda a, b: np.stack([a, b])),
]

# ---- squeeze ----------------------------------------------------------------
for dt in DTYPES:
    CASES.append(unary("squeeze_" + dt, dt, (1, 3, 1, 2), "squeeze(x)", lambda x: np.squeeze(x)))
CASES += [
    unary("squeeze_axes", "f32", (1, 3, 1, 2), "squeeze(x) {axes=[0]}",
          lambda x: np.squeeze(x, 0)),
    unary("squeeze_neg_axis", "i32", (1, 3, 1, 2), "squeeze(x) {axes=[-2]}",
          lambda x: np.squeeze(x, 2)),
    unary("squeeze_two_axes", "f64", (1, 3, 1, 2), "squeeze(x) {axes=[2,0]}",
          lambda x: np.squeeze(x, (0, 2))),
    unary("squeeze_to_scalar", "i64", (1, 1), "squeeze(x)", lambda x: x.reshape(())),
    unary("squeeze_nothing", "f32", (2, 3), "squeeze(x)", lambda x: x),
    unary("squeeze_empty_axes", "f32", (1, 3), "squeeze(x) {axes=[]}", lambda x: x),
    case("squeeze_then_add", """
        x = placeholder() : f32[3,1]
        s = squeeze(x) {axes=[1]}
        y = add(s, s)
    """, feeds={"x": rand("f32", (3, 1))}, fetch="y", ref=lambda x: 2 * x[:, 0]),
]
