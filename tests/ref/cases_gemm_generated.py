# cases_gemm_generated.py — matmul through kiln's generated GEMM
# (`kiln build --blas=generated`, compiler/lower/gemm.c) against np.matmul.
# Loaded by refkit.py, which provides case, gradcase, rand and np, and passes
# KILN_FLAGS to `kiln build`.  With the default CPU (x86-64-v2 on x86-64:
# SSE, no FMA) this exercises 4-lane vectors and fmul+fadd;
# cases_gemm_generated_native.py runs the same cases with --cpu=native.
#
# The sizes cover every edge of the blocking: 1x1x1; sizes below one vector
# and one micro-tile; row, column and k remainders (7x13x5, 65x33x129);
# several row panels and column panels (200x300x100); more than one K block
# (KC = 256) and N block (NC = 256 f32 / 128 f64) with tails (37x290x530);
# few rows, where B is read in place and A times B^T is done as dot
# products (5x300x70, 3x17x260, 6x40x48, 20x33x96: k with and without a
# vector remainder), and the batched and broadcast-batch forms.
#
# A constant B (weights) is packed at compile time where the product would
# pack it at run time (more than 2 row panels, or B^T): gemm_constb_* cover
# that layout's edges (a row-panel tail, K and N blocks with tails, the
# last panel's vector tail), B^T, a reshaped constant, and products too
# small to pack, against the same products with B fed.

KILN_FLAGS = ["--blas=generated"]

# (M, N, K): op(A) is M x K, op(B) is K x N
SIZES = [(1, 1, 1), (7, 13, 5), (65, 33, 129), (200, 300, 100), (37, 290, 530), (5, 300, 70), (3, 17, 260),
         (6, 40, 48), (20, 33, 96)]
TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]
# (a batch dims, b batch dims) on top of the matrices
BATCHES = [((3,), (3,)), ((2, 1), (3,)), ((), (4,)), ((1, 2), ())]


def _stored(mk, t):
    """The stored shape of an operand whose op() is mk (rows, cols)."""
    return (mk[1], mk[0]) if t else mk





def _tol(dt, k):
    # f32 sums of k products of values in [-3, 3]: rounding grows with k
    return (2e-5, 1e-4 * max(1, k) ** 0.5) if dt == "f32" else (1e-12, 1e-11 * max(1, k))


def _mm_case(name, dt, sa, sb, ta, tb, k):
    rtol, atol = _tol(dt, k)
    return case(name, """
        a = placeholder() : %s
        b = placeholder() : %s
        c = matmul(a, b)%s
    """ % (kg_typestr(dt, sa), kg_typestr(dt, sb), matmul_attrs(ta, tb)),
        feeds={"a": rand(dt, sa), "b": rand(dt, sb)}, fetch="c",
        ref=matmul_ref(ta, tb), rtol=rtol, atol=atol)


# (M, N, K) with a constant B: 30 rows = 2 micro-panels + 6 (f32 MR = 12 on
# AVX-512, 4 or 6 otherwise), K 300 > KC = 256, N 290 > NC (256 f32, 128
# f64) with a tail not a whole vector; 4 rows (no packing unless B^T)
CONSTB_SIZES = [(30, 290, 300), (4, 37, 45), (65, 33, 129)]


def _literal(x):
    """A kiln literal for an array of exact binary fractions."""
    if x.ndim == 1:
        return "[" + ", ".join("%g" % v for v in x) + "]"
    return "[" + ", ".join(_literal(r) for r in x) + "]"


def _constb_case(dt, m, n, k, tb, reshaped=False):
    # quarters in [-2, 2]: every product and most sums exact
    b = (rand("i32", (n, k) if tb else (k, n), -8, 8) / 4).astype("float32" if dt == "f32" else "float64")
    a = rand(dt, (m, k), -2, 2)
    rtol, atol = _tol(dt, k)
    if reshaped:  # the literal reaches matmul through a reshape (an alias)
        body = """
        a = placeholder() : %s
        w = const<%s>(%s)
        b = reshape(w) {shape=[%d,%d]}
        c = matmul(a, b)%s
        """ % (kg_typestr(dt, a.shape), kg_typestr(dt, (b.size,)), _literal(b.reshape(-1)), b.shape[0], b.shape[1],
               matmul_attrs(False, tb))
    else:
        body = """
        a = placeholder() : %s
        b = const<%s>(%s)
        c = matmul(a, b)%s
        """ % (kg_typestr(dt, a.shape), kg_typestr(dt, b.shape), _literal(b), matmul_attrs(False, tb))
    return case("gemm_constb_%s_%dx%dx%d_%s%s" % (dt, m, n, k, "t" if tb else "n", "_reshaped" if reshaped else ""),
                body, feeds={"a": a}, fetch="c", ref=lambda a, b=b: matmul_ref(False, tb)(a, b), rtol=rtol, atol=atol)


def _cases():
    out = []
    for dt in ["f32", "f64"]:
        for (m, n, k) in SIZES:
            for ta, tb in TRANSPOSES:
                out.append(_mm_case("gemm_%s_%dx%dx%d_%s%s" % (dt, m, n, k, "t" if ta else "n", "t" if tb else "n"),
                                    dt, _stored((m, k), ta), _stored((k, n), tb), ta, tb, k))
        for i, (ba, bb) in enumerate(BATCHES):
            for ta, tb in [(False, False), (True, True)]:
                m, n, k = 9, 21, 35
                sa = tuple(ba) + _stored((m, k), ta)
                sb = tuple(bb) + _stored((k, n), tb)
                out.append(_mm_case("gemm_%s_batch%d_%s%s" % (dt, i, "t" if ta else "n", "t" if tb else "n"),
                                    dt, sa, sb, ta, tb, k))
        for (m, n, k) in CONSTB_SIZES:
            for tb in (False, True):
                out.append(_constb_case(dt, m, n, k, tb))
    out.append(_constb_case("f32", 40, 24, 18, False, reshaped=True))
    # one operand used twice, and a product of products
    out.append(case("gemm_chain_f32", """
        a = placeholder() : f32[30,30]
        b = matmul(a, a)
        c = matmul(b, a) {transpose_b=true}
    """, feeds={"a": rand("f32", (30, 30), -1, 1)}, fetch=["b", "c"],
        ref=lambda a: [a @ a, (a @ a) @ a.T], rtol=1e-4, atol=1e-4))
    # a dense layer's gradients: the products autodiff builds (ta and tb forms)
    out.append(gradcase("gemm_grad_f64", """
        x = placeholder() : f64[6,9]
        w = placeholder() : f64[9,5]
        y = matmul(x, w)
    """, feeds={"x": rand("f64", (6, 9)), "w": rand("f64", (9, 5))}, wrt=["x", "w"],
        ref=lambda x, w: x @ w))
    return out


CASES = _cases()
