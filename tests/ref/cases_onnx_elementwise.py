# NumPy reference cases for the elementwise ops the ONNX importer added
# (ops.def, "elementwise math the ONNX importer needs"): erf, round, trunc,
# the trigonometric and hyperbolic functions and their inverses (f32, f64,
# each on its domain), the integer shifts with counts outside [0, bits),
# the same math fused into one expression, and folded from constants.
# See refkit.py for the format.
import math

FLOAT = ["f32", "f64"]
NPT = {"f32": np.float32, "f64": np.float64, "i8": np.int8, "u8": np.uint8, "i32": np.int32, "i64": np.int64}


def vec(f):
    """A scalar math function over an array, in f64, back in the input's dtype."""
    return lambda x: np.vectorize(f, otypes=[np.float64])(x.astype(np.float64)).astype(x.dtype)


# op: (NumPy reference, input range)
unary = {
    "erf": (vec(math.erf), (-3, 3)),
    "round": (np.round, (-6, 6)),
    "trunc": (np.trunc, (-6, 6)),
    "tan": (np.tan, (-1.4, 1.4)),
    "asin": (np.arcsin, (-0.99, 0.99)),
    "acos": (np.arccos, (-0.99, 0.99)),
    "atan": (np.arctan, (-5, 5)),
    "sinh": (np.sinh, (-4, 4)),
    "cosh": (np.cosh, (-4, 4)),
    "asinh": (np.arcsinh, (-5, 5)),
    "acosh": (np.arccosh, (1.01, 5)),
    "atanh": (np.arctanh, (-0.99, 0.99)),
}

CASES = []
for op, (ref, (lo, hi)) in unary.items():
    for dt in FLOAT:
        x = rand(dt, (3, 5), lo, hi)
        CASES.append(case("%s_%s" % (op, dt), """
            x = placeholder() : %s[3,5]
            y = %s(x)
        """ % (dt, op), feeds={"x": x}, fetch="y", ref=ref))

# round: halves go to the even neighbour; trunc: toward zero; large values,
# infinities and NaN pass through
EDGES = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, -2.5001, 0.0, -0.0, 1e10, -3e15 + 0.5, np.inf, -np.inf, np.nan]
for op, ref in (("round", np.round), ("trunc", np.trunc)):
    for dt in FLOAT:
        x = np.array(EDGES, dtype=NPT[dt])
        CASES.append(case("%s_edges_%s" % (op, dt), """
            x = placeholder() : %s[%d]
            y = %s(x)
        """ % (dt, len(EDGES), op), feeds={"x": x}, fetch="y", ref=ref))

def quiet(f):
    """f without NumPy's warnings for NaN results and poles."""
    def g(a):
        with np.errstate(all="ignore"):
            return f(a)
    return g


# out of domain: NaN (asin, acos, atanh outside [-1, 1], acosh below 1) and
# the poles of atanh
OUT = {"asin": [1.5, -2.0, 1.0, -1.0], "acos": [1.5, -2.0, 1.0, -1.0], "atanh": [1.5, -2.0, 1.0, -1.0],
       "acosh": [0.5, -1.0, 1.0, 2.0]}
for op, vals in OUT.items():
    ref = unary[op][0]
    for dt in FLOAT:
        x = np.array(vals, dtype=NPT[dt])
        CASES.append(case("%s_domain_%s" % (op, dt), """
            x = placeholder() : %s[4]
            y = %s(x)
        """ % (dt, op), feeds={"x": x}, fetch="y", ref=quiet(ref)))


def shift_ref(left):
    """NumPy's shifts: a count outside [0, bits) gives 0 (-1 for >> of a negative value)."""
    return lambda x, s: np.left_shift(x, s) if left else np.right_shift(x, s)


for op, left in (("left_shift", True), ("right_shift", False)):
    for dt in ["i8", "u8", "i32", "i64"]:
        bits = np.dtype(NPT[dt]).itemsize * 8
        signed = not dt.startswith("u")
        lo = -100 if signed else 0
        x = rand(dt, (4, 6), lo, 100)
        s = rand(dt, (4, 6), 0, bits + 2)           # some counts at or above the width
        if signed:
            s[0, :3] = -1                            # negative counts
        CASES.append(case("%s_%s" % (op, dt), """
            x = placeholder() : %s[4,6]
            s = placeholder() : %s[4,6]
            y = %s(x, s)
        """ % (dt, dt, op), feeds={"x": x, "s": s}, fetch="y", ref=shift_ref(left)))
    # broadcasting a scalar count (ONNX BitShift's common use)
    x, s = rand("u8", (3, 4), 0, 255), np.array(3, dtype=np.uint8)
    CASES.append(case("%s_u8_scalar" % op, """
        x = placeholder() : u8[3,4]
        s = placeholder() : u8[]
        y = %s(x, s)
    """ % op, feeds={"x": x, "s": s}, fetch="y", ref=shift_ref(left)))

# the new primitives fused with old ones into one loop
for dt in FLOAT:
    x = rand(dt, (16, 9), -0.9, 0.9)
    CASES.append(case("chain_%s" % dt, """
        x = placeholder() : %s[16,9]
        a = erf(mul(x, const<%s[]>(1.5)))
        b = add(asin(x), atan(a))
        c = mul(round(mul(b, const<%s[]>(4.0))), cosh(x))
        y = sub(c, tanh(atanh(x)))
    """ % (dt, dt, dt), feeds={"x": x}, fetch="y",
        ref=lambda x: (np.round((np.arcsin(x) + np.arctan(vec(math.erf)(x * 1.5))) * 4) * np.cosh(x)
                       - x).astype(x.dtype), rtol=1e-4, atol=1e-5))

# folded at compile time: every operand a constant (kiln's folder evaluates
# each primitive as the generated code does)
K = [0.5, -0.5, 0.3, 0.1, -0.7, 0.9, -0.9, 0.0]  # in every function's domain; 5k has halves
KS = ", ".join(repr(v) for v in K)
for dt in FLOAT:
    k = np.array(K, dtype=NPT[dt])
    z = np.zeros(8, dtype=NPT[dt])
    CASES.append(case("folded_%s" % dt, """
        z = placeholder() : %s[8]
        k = const<%s[8]>([%s])
        f = add(add(erf(k), round(mul(k, const<%s[]>(5.0)))), add(trunc(mul(k, const<%s[]>(3.0))), tan(k)))
        g = add(add(asin(k), acos(k)), add(atan(k), sinh(k)))
        h = add(add(cosh(k), asinh(k)), add(atanh(k), acosh(add(abs(k), const<%s[]>(1.0)))))
        y = add(z, add(f, add(g, h)))
    """ % (dt, dt, KS, dt, dt, dt), feeds={"z": z}, fetch="y",
        ref=lambda z, k=k: (z + vec(math.erf)(k) + np.round(k * 5) + np.trunc(k * 3) + np.tan(k) + np.arcsin(k)
                       + np.arccos(k) + np.arctan(k) + np.sinh(k) + np.cosh(k) + np.arcsinh(k)
                       + np.arctanh(k) + np.arccosh(np.abs(k) + 1)).astype(z.dtype)))

xs = np.array([1, 7, 128, 255], dtype=np.uint8)
ss = np.array([1, 3, 8, 9], dtype=np.uint8)
CASES.append(case("folded_shifts_u8", """
    z = placeholder() : u8[4]
    k = const<u8[4]>([1, 7, 128, 255])
    s = const<u8[4]>([1, 3, 8, 9])
    y = add(z, add(left_shift(k, s), right_shift(k, s)))
""", feeds={"z": np.zeros(4, np.uint8)}, fetch="y",
    ref=lambda z: (z + np.left_shift(xs, ss) + np.right_shift(xs, ss)).astype(np.uint8)))
