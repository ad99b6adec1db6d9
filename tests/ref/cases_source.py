# NumPy reference cases for the source family (const, fill, zeros, ones,
# identity, random_uniform, random_normal) and variables read by entries.
NPT = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_,
       "i8": np.int8, "u8": np.uint8}
ALL = ["f32", "f64", "i32", "i64", "bool", "i8", "u8"]
CASES = []

for dt in ALL:
    lit = "[[1, 0, 3], [4, 5, 0]]" if dt != "bool" else "[[true, false, true], [false, true, true]]"
    want = np.array([[1, 0, 3], [4, 5, 0]]) if dt != "bool" else np.array([[1, 0, 1], [0, 1, 1]])
    x = rand(dt, (2, 3))
    CASES.append(case("const_" + dt, """
        x = placeholder() : %s[2,3]
        c = const<%s[2,3]>(%s)
        y = identity(c)
    """ % (dt, dt, lit), feeds={"x": x}, fetch="y", ref=lambda x, w=want, d=dt: w.astype(NPT[d])))
    CASES.append(case("zeros_ones_" + dt, """
        x = placeholder() : %s[2,3]
        z = zeros<%s[2,3]>()
        o = ones<%s[4]>()
    """ % (dt, dt, dt), feeds={"x": x}, fetch=["z", "o"],
        ref=lambda x, d=dt: [np.zeros((2, 3), NPT[d]), np.ones(4, NPT[d])]))
    CASES.append(case("fill_" + dt, """
        v = placeholder() : %s[]
        y = fill<%s[3,2]>(v)
    """ % (dt, dt), feeds={"v": rand(dt, ())}, fetch="y", ref=lambda v: np.full((3, 2), v)))
    CASES.append(case("identity_" + dt, """
        x = placeholder() : %s[5]
        y = identity(x)
    """ % dt, feeds={"x": rand(dt, (5,))}, fetch="y", ref=lambda x: x))

# a scalar literal fills the whole const
CASES.append(case("const_scalar_fill", """
    x = placeholder() : f32[]
    c = const<f32[2,2]>(2.5)
    y = add(c, x)
""", feeds={"x": np.float32(1)}, fetch="y", ref=lambda x: np.full((2, 2), 3.5, np.float32)))

def uniform_check(lo, hi, n):
    def check(y, feeds):
        if y.shape != (n,):
            return "shape %s" % (y.shape,)
        if y.min() < lo or y.max() >= hi:
            return "values outside [%g, %g): %g..%g" % (lo, hi, y.min(), y.max())
        mean, want = y.astype(np.float64).mean(), (lo + hi) / 2
        if abs(mean - want) > 0.05 * (hi - lo):
            return "mean %g, expected about %g" % (mean, want)
        return None
    return check

def normal_check(mu, sd, n):
    def check(y, feeds):
        m, s = y.astype(np.float64).mean(), y.astype(np.float64).std()
        if abs(m - mu) > 0.05 * sd or abs(s - sd) > 0.05 * sd:
            return "mean %g std %g, expected %g %g" % (m, s, mu, sd)
        return None
    return check

for dt in ["f32", "f64"]:
    CASES.append(case("random_uniform_" + dt, """
        x = placeholder() : f32[]
        y = random_uniform<%s[20000]>() {minval=-2.0, maxval=3.0, seed=7}
    """ % dt, feeds={"x": np.float32(0)}, fetch="y", check=uniform_check(-2, 3, 20000)))
    CASES.append(case("random_normal_" + dt, """
        x = placeholder() : f32[]
        y = random_normal<%s[20000]>() {mean=1.5, stddev=2.0, seed=3}
    """ % dt, feeds={"x": np.float32(0)}, fetch="y", check=normal_check(1.5, 2.0, 20000)))
for dt in ["i32", "i64"]:
    CASES.append(case("random_uniform_" + dt, """
        x = placeholder() : f32[]
        y = random_uniform<%s[20000]>() {minval=-5, maxval=9, seed=11}
    """ % dt, feeds={"x": np.float32(0)}, fetch="y", check=uniform_check(-5, 9, 20000)))

# two random ops with the same seed in one run draw the same numbers
CASES.append(case("random_same_seed", """
    x = placeholder() : f32[]
    a = random_uniform<f32[64]>() {seed=5}
    b = random_uniform<f32[64]>() {seed=5}
    d = sub(a, b)
""", feeds={"x": np.float32(0)}, fetch="d", ref=lambda x: np.zeros(64, np.float32)))

# an aliasing op over a constant reads the constant's storage
CASES.append(case("reshape_of_const", """
    x = placeholder() : f32[3,2]
    c = const<f32[2,3]>([[1, 2, 3], [4, 5, 6]])
    r = reshape(c) {shape=[3,2]}
    y = add(neg(r), x)
""", feeds={"x": np.ones((3, 2), np.float32)}, fetch="y",
    ref=lambda x: 1 - np.arange(1, 7, dtype=np.float32).reshape(3, 2)))
