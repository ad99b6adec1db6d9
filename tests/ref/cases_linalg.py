# cases_linalg.py — NumPy reference cases for matmul (compiler/ops/linalg.c).
# Loaded by refkit.py, which provides case, rand, positive and np.
#
# The reference is np.matmul on the (swapped) operands: f32/f64 go through
# BLAS on kiln's side, integers through the generated loop, which wraps in
# the element type just as np.matmul does for int32/int64.

DTYPES = ["f32", "f64", "i32", "i64"]
NPT = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}

# (a shape, b shape, transpose_a, transpose_b), shapes as stored (before the
# transposes apply).
SHAPES = [
    ((3, 4), (4, 5), False, False),
    ((4, 3), (4, 5), True, False),
    ((3, 4), (5, 4), False, True),
    ((4, 3), (5, 4), True, True),
    ((1, 1), (1, 1), False, False),
    ((1, 7), (7, 1), False, False),
    ((6, 1), (1, 6), False, False),
    ((2, 3, 4), (2, 4, 5), False, False),          # batched, equal batches
    ((2, 4, 3), (2, 5, 4), True, True),            # batched, both transposed
    ((2, 3, 4), (4, 5), False, False),             # b broadcast over a's batch
    ((3, 4), (2, 4, 5), False, False),             # a broadcast over b's batch
    ((1, 3, 4), (2, 4, 5), False, False),          # batch dim 1 broadcasts
    ((2, 1, 3, 4), (3, 4, 5), False, False),       # [2,1] x [3] -> [2,3]
    ((2, 1, 4, 3), (1, 3, 5, 4), True, True),      # [2,1] x [1,3] -> [2,3], transposed
    ((2, 2, 3, 4), (2, 2, 4, 2), False, False),    # rank 4, no broadcasting
    ((17, 33), (33, 9), False, False),             # odd sizes (vector remainders)
    ((1, 9), (9, 5), False, False),                # M == 1: gemv, every transpose
    ((9, 1), (9, 5), True, False),
    ((1, 9), (5, 9), False, True),
    ((9, 1), (5, 9), True, True),
    ((6, 9), (9, 1), False, False),                # N == 1: gemv, every transpose
    ((9, 6), (9, 1), True, False),
    ((6, 9), (1, 9), False, True),
    ((9, 6), (1, 9), True, True),
    ((2, 1, 9), (2, 9, 5), False, False),          # batched gemv
    ((3, 0), (0, 4), False, False),                # empty inner dim -> zeros
    ((0, 3), (3, 4), False, False),                # empty result
    ((2, 0, 3), (3, 4), False, False),             # empty batch result
]





def _cases():
    out = []
    for dt in DTYPES:
        for k, (sa, sb, ta, tb) in enumerate(SHAPES):
            tol = 1e-4 if dt == "f32" else 1e-10
            out.append(case("matmul_%s_%d" % (dt, k), """
                a = placeholder() : %s
                b = placeholder() : %s
                c = matmul(a, b)%s
            """ % (kg_typestr(dt, sa), kg_typestr(dt, sb), matmul_attrs(ta, tb)),
                feeds={"a": rand(dt, sa), "b": rand(dt, sb)}, fetch="c",
                ref=matmul_ref(ta, tb), rtol=tol, atol=tol))
    # one operand used twice, and a product of products (buffers reused)
    for dt in ["f32", "i64"]:
        out.append(case("matmul_chain_%s" % dt, """
            a = placeholder() : %s[3,3]
            b = matmul(a, a)
            c = matmul(b, a) {transpose_b=true}
        """ % dt, feeds={"a": rand(dt, (3, 3))}, fetch=["b", "c"],
            ref=lambda a: [a @ a, (a @ a) @ a.T], rtol=1e-4, atol=1e-4))
    # int32 products wrap like NumPy's
    big = np.array([[70000, 3], [2, 1]], np.int32)
    out.append(case("matmul_wrap_i32", """
        a = placeholder() : i32[2,2]
        c = matmul(a, a)
    """, feeds={"a": big}, fetch="c", ref=lambda a: np.matmul(a, a)))
    return out


CASES = _cases()
