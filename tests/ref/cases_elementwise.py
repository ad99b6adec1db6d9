# NumPy reference cases for the elementwise family (ops.def: unary, binary,
# comparisons, logical, select, cast), every dtype each op claims, with
# broadcasting.  See refkit.py for the format.
NUM = ["f32", "f64", "i32", "i64"]
FLOAT = ["f32", "f64"]
NPT = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_,
       "i8": np.int8, "u8": np.uint8}

def floordiv(x, y):
    if np.issubdtype(x.dtype, np.integer):
        with np.errstate(divide="ignore"):
            r = np.where(y == 0, 0, np.floor_divide(x, np.where(y == 0, 1, y)))
        return r.astype(x.dtype)
    return x / y

def floormod(x, y):
    if np.issubdtype(x.dtype, np.integer):
        r = np.where(y == 0, 0, np.mod(x, np.where(y == 0, 1, y)))
        return r.astype(x.dtype)
    return np.mod(x, y).astype(x.dtype)

def sigmoid(x):
    return (1 / (1 + np.exp(-x))).astype(x.dtype)

unary = {
    "neg": (NUM, lambda x: -x, "rand"),
    "abs": (NUM, np.abs, "rand"),
    "sign": (NUM, lambda x: np.sign(x).astype(x.dtype), "rand"),
    "exp": (FLOAT, np.exp, "rand"),
    "log": (FLOAT, np.log, "pos"),
    "sqrt": (FLOAT, np.sqrt, "pos"),
    "rsqrt": (FLOAT, lambda x: (1 / np.sqrt(x)).astype(x.dtype), "pos"),
    "square": (NUM, np.square, "rand"),
    "reciprocal": (FLOAT, lambda x: (1 / x).astype(x.dtype), "pos"),
    "tanh": (FLOAT, np.tanh, "rand"),
    "sigmoid": (FLOAT, sigmoid, "rand"),
    "relu": (NUM, lambda x: np.maximum(x, 0).astype(x.dtype), "rand"),
    "floor": (FLOAT, np.floor, "rand"),
    "ceil": (FLOAT, np.ceil, "rand"),
    "sin": (FLOAT, np.sin, "rand"),
    "cos": (FLOAT, np.cos, "rand"),
}

binary = {
    "add": (NUM, np.add),
    "sub": (NUM, np.subtract),
    "mul": (NUM, np.multiply),
    "div": (NUM, floordiv),
    "mod": (NUM, floormod),
    "maximum": (NUM, np.maximum),
    "minimum": (NUM, np.minimum),
    "equal": (NUM + ["bool"], np.equal),
    "not_equal": (NUM + ["bool"], np.not_equal),
    "less": (NUM, np.less),
    "less_equal": (NUM, np.less_equal),
    "greater": (NUM, np.greater),
    "greater_equal": (NUM, np.greater_equal),
    "logical_and": (["bool"], np.logical_and),
    "logical_or": (["bool"], np.logical_or),
    "logical_xor": (["bool"], np.logical_xor),
}

CASES = []
for op, (dts, ref, gen) in unary.items():
    for dt in dts:
        x = positive(dt, (3, 5)) if gen == "pos" else rand(dt, (3, 5))
        CASES.append(case("%s_%s" % (op, dt), """
            x = placeholder() : %s[3,5]
            y = %s(x)
        """ % (dt, op), feeds={"x": x}, fetch="y", ref=ref))

# broadcasting shapes: same, scalar, row, column-vs-row, rank-3 vs rank-1
SHAPES = [((4, 5), (4, 5)), ((4, 5), ()), ((4, 5), (5,)), ((4, 1), (1, 5)), ((2, 3, 4), (4,)),
          ((2, 1, 4), (3, 1))]
for op, (dts, ref) in binary.items():
    for dt in dts:
        for k, (sa, sb) in enumerate(SHAPES if dt in ("f32", "i32", "bool") else SHAPES[:2]):
            x, y = rand(dt, sa), rand(dt, sb)
            if op in ("div", "mod") and dt.startswith("i"):
                y[...] = np.where(rand("bool", sb), 0, y)  # division by zero is defined as 0
            if op in ("div", "mod") and dt.startswith("f"):
                y = positive(dt, sb) * np.where(rand("bool", sb), -1, 1).astype(y.dtype)
            CASES.append(case("%s_%s_b%d" % (op, dt, k), """
                x = placeholder() : %s[%s]
                y = placeholder() : %s[%s]
                z = %s(x, y)
            """ % (dt, ",".join(map(str, sa)), dt, ",".join(map(str, sb)), op),
                feeds={"x": x, "y": y}, fetch="z", ref=lambda a, b, f=ref: np.asarray(f(a, b))))

for dt in FLOAT:
    x, y = positive(dt, (3, 4)), rand(dt, (3, 4), -2, 2)
    CASES.append(case("pow_" + dt, """
        x = placeholder() : %s[3,4]
        y = placeholder() : %s[3,4]
        z = pow(x, y)
    """ % (dt, dt), feeds={"x": x, "y": y}, fetch="z", ref=np.power, rtol=1e-5))
for dt in ["i32", "i64"]:
    x, y = rand(dt, (3, 4), -4, 4), rand(dt, (3, 4), 0, 5)
    CASES.append(case("pow_" + dt, """
        x = placeholder() : %s[3,4]
        y = placeholder() : %s[3,4]
        z = pow(x, y)
    """ % (dt, dt), feeds={"x": x, "y": y}, fetch="z", ref=np.power))

for dt in NUM + ["bool"]:
    c, x, y = rand("bool", (3, 4)), rand(dt, (3, 4)), rand(dt, (4,))
    CASES.append(case("select_" + dt, """
        c = placeholder() : bool[3,4]
        x = placeholder() : %s[3,4]
        y = placeholder() : %s[4]
        z = select(c, x, y)
    """ % (dt, dt), feeds={"c": c, "x": x, "y": y}, fetch="z", ref=np.where))

x = rand("bool", (2, 6))
CASES.append(case("logical_not_bool", """
    x = placeholder() : bool[2,6]
    y = logical_not(x)
""", feeds={"x": x}, fetch="y", ref=np.logical_not))

ALL = ["f32", "f64", "i32", "i64", "bool", "i8", "u8"]
for src in ALL:
    for dst in ALL:
        if src == dst:
            continue
        x = rand(src, (7,), -100, 100) if src in ("f32", "f64", "i32", "i64") else rand(src, (7,), 0, 100)
        if src in ("f32", "f64") and dst in ("i8", "u8"):
            x = rand(src, (7,), 0, 100)
        if src in ("i32", "i64") and dst in ("i8", "u8"):
            x = rand(src, (7,), 0, 100)
        CASES.append(case("cast_%s_%s" % (src, dst), """
            x = placeholder() : %s[7]
            y = cast(x) {to=%s}
        """ % (src, dst), feeds={"x": x}, fetch="y",
            ref=lambda a, d=dst: (a != 0) if d == "bool" else a.astype(NPT[d])))

# a fused-looking chain through several nodes and constants
x = rand("f32", (16, 33))
CASES.append(case("chain_f32", """
    x = placeholder() : f32[16,33]
    a = mul(x, const<f32[]>(0.5))
    b = tanh(a)
    c = add(b, const<f32[33]>(1.0))
    d = relu(sub(c, const<f32[]>(0.75)))
""", feeds={"x": x}, fetch="d", ref=lambda x: np.maximum(np.tanh(x * np.float32(0.5)) + 1 - np.float32(0.75), 0)))
