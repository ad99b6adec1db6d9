# Gradients of the elementwise ops the ONNX importer added (derived from
# their scalar expressions in ir/expr.c's kc_expr_diff), checked against
# central finite differences (f64), each on its function's domain; round and
# trunc have zero gradient away from their jumps.
import math

CASES = []

# op: (NumPy function, input range)
unary = {
    "erf": (np.vectorize(math.erf), (-2, 2)),
    "tan": (np.tan, (-1.2, 1.2)),
    "asin": (np.arcsin, (-0.9, 0.9)),
    "acos": (np.arccos, (-0.9, 0.9)),
    "atan": (np.arctan, (-3, 3)),
    "sinh": (np.sinh, (-2, 2)),
    "cosh": (np.cosh, (-2, 2)),
    "asinh": (np.arcsinh, (-3, 3)),
    "acosh": (np.arccosh, (1.2, 4)),
    "atanh": (np.arctanh, (-0.9, 0.9)),
}
for op, (f, (lo, hi)) in unary.items():
    x = rand("f64", (3, 4), lo, hi)
    CASES.append(gradcase("d_" + op, """
        x = placeholder() : f64[3,4]
        y = %s(x)
    """ % op, {"x": x}, ["x"], f))

# round and trunc pass no gradient (as floor): alone, x would not reach y, so
# x also flows around them; finite differences are 0 only away from the jumps
for op, f in (("round", np.round), ("trunc", np.trunc)):
    x = np.floor(rand("f64", (3, 4), -3, 3)) + 0.25
    CASES.append(gradcase("d_" + op, """
        x = placeholder() : f64[3,4]
        y = add(%s(mul(x, x)), x)
    """ % op, {"x": x}, ["x"], lambda x, f=f: f(x * x) + x))

# through a chain, with broadcasting: the chain rule over the new primitives
a, b = rand("f64", (3, 4), -0.8, 0.8), rand("f64", (4,), -0.8, 0.8)
CASES.append(gradcase("d_chain", """
    a = placeholder() : f64[3,4]
    b = placeholder() : f64[4]
    y = mul(erf(add(a, b)), atan(sinh(mul(a, b))))
""", {"a": a, "b": b}, ["a", "b"],
    lambda a, b: np.vectorize(math.erf)(a + b) * np.arctan(np.sinh(a * b))))
