# Gradient rules checked against central finite differences (f64) on random
# inputs: every differentiable elementwise op (derived from its scalar
# expression), broadcasting, and the hand-written rules.
CASES = []

def g(name, body, feeds, wrt, ref, **kw):
    CASES.append(gradcase(name, body, feeds, wrt, ref, **kw))

R = lambda *s: rand("f64", s, -2, 2)
P = lambda *s: positive("f64", s, 0.5, 2.5)

unary = {
    "neg": (np.negative, R), "abs": (np.abs, R), "exp": (np.exp, R), "log": (np.log, P),
    "sqrt": (np.sqrt, P), "rsqrt": (lambda x: 1 / np.sqrt(x), P), "square": (np.square, R),
    "reciprocal": (lambda x: 1 / x, P), "tanh": (np.tanh, R), "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), R),
    "relu": (lambda x: np.maximum(x, 0), R), "sin": (np.sin, R), "cos": (np.cos, R),
}
for op, (f, gen) in unary.items():
    g("d_" + op, """
        x = placeholder() : f64[3,4]
        y = %s(x)
    """ % op, {"x": gen(3, 4)}, ["x"], f)

binary = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum,
}
for op, f in binary.items():
    for k, (sa, sb) in enumerate([((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((3, 4), ())]):
        a, b = R(*sa), R(*sb)
        if op == "div":
            b = P(*sb)
        g("d_%s_%d" % (op, k), """
            a = placeholder() : f64[%s]
            b = placeholder() : f64[%s]
            y = %s(a, b)
        """ % (",".join(map(str, sa)), ",".join(map(str, sb)), op), {"a": a, "b": b}, ["a", "b"], f)

g("d_pow", """
    a = placeholder() : f64[5]
    b = placeholder() : f64[5]
    y = pow(a, b)
""", {"a": P(5), "b": R(5)}, ["a", "b"], np.power)
g("d_select", """
    c = placeholder() : bool[6]
    a = placeholder() : f64[6]
    b = placeholder() : f64[6]
    y = select(c, a, b)
""", {"c": rand("bool", (6,)), "a": R(6), "b": R(6)}, ["a", "b"], np.where)
g("d_cast", """
    x = placeholder() : f64[4]
    y = cast(mul(cast(x) {to=f32}, const<f32[]>(2.0))) {to=f64}
""", {"x": R(4)}, ["x"], lambda x: 2 * x)
# f32 rounding makes finite differences of this path noise; the rule is exact:
# d/dx cast(2 * cast(x)) = 2, converted back to f64
CASES[-1].ref = lambda x, gw: [2 * gw.astype(np.float32).astype(np.float64)]

for op, f in {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod}.items():
    for k, (axes, keep) in enumerate([(None, False), ([1], False), ([0, 2], True), ([-1], True)]):
        at = "{keepdims=%s%s}" % ("true" if keep else "false", "" if axes is None else ", axes=%s" % axes)
        x = P(2, 3, 4) if op == "prod" else R(2, 3, 4)
        g("d_%s_%d" % (op, k), """
            x = placeholder() : f64[2,3,4]
            y = %s(x) %s
        """ % (op, at), {"x": x}, ["x"],
          lambda x, f=f, axes=axes, keep=keep: f(x, axis=None if axes is None else tuple(axes), keepdims=keep))

def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)

for axis in (-1, 0):
    g("d_softmax_%d" % (axis + 1), """
        x = placeholder() : f64[3,5]
        y = softmax(x) {axis=%d}
    """ % axis, {"x": R(3, 5)}, ["x"], lambda x, a=axis: softmax(x, a))
    g("d_log_softmax_%d" % (axis + 1), """
        x = placeholder() : f64[3,5]
        y = log_softmax(x) {axis=%d}
    """ % axis, {"x": R(3, 5)}, ["x"], lambda x, a=axis: np.log(softmax(x, a)))

for ta in (False, True):
    for tb in (False, True):
        sa = (4, 3) if ta else (3, 4)
        sb = (5, 4) if tb else (4, 5)
        g("d_matmul_%d%d" % (ta, tb), """
            a = placeholder() : f64[%d,%d]
            b = placeholder() : f64[%d,%d]
            y = matmul(a, b) {transpose_a=%s, transpose_b=%s}
        """ % (sa + sb + ("true" if ta else "false", "true" if tb else "false")), {"a": R(*sa), "b": R(*sb)},
          ["a", "b"], lambda a, b, ta=ta, tb=tb: (a.T if ta else a) @ (b.T if tb else b))
g("d_matmul_batch_bcast", """
    a = placeholder() : f64[2,3,4]
    b = placeholder() : f64[4,2]
    y = matmul(a, b)
""", {"a": R(2, 3, 4), "b": R(4, 2)}, ["a", "b"], np.matmul)

g("d_reshape_transpose", """
    x = placeholder() : f64[2,3,4]
    y = transpose(reshape(x) {shape=[6,4]}) {perm=[1,0]}
""", {"x": R(2, 3, 4)}, ["x"], lambda x: x.reshape(6, 4).T)
g("d_transpose3", """
    x = placeholder() : f64[2,3,4]
    y = transpose(x) {perm=[2,0,1]}
""", {"x": R(2, 3, 4)}, ["x"], lambda x: np.transpose(x, (2, 0, 1)))
g("d_concat", """
    a = placeholder() : f64[2,3]
    b = placeholder() : f64[2,5]
    y = concat(a, b) {axis=1}
""", {"a": R(2, 3), "b": R(2, 5)}, ["a", "b"], lambda a, b: np.concatenate([a, b], 1))
g("d_slice_pad", """
    x = placeholder() : f64[4,5]
    s = slice(x) {begin=[1,1], size=[2,3]}
    y = pad(s) {paddings=[1,0,0,2]}
""", {"x": R(4, 5)}, ["x"], lambda x: np.pad(x[1:3, 1:4], ((1, 0), (0, 2))))
g("d_broadcast_expand_squeeze", """
    x = placeholder() : f64[3,1]
    b = broadcast_to(x) {shape=[2,3,4]}
    y = squeeze(expand_dims(b) {axis=0}) {axes=[0]}
""", {"x": R(3, 1)}, ["x"], lambda x: np.broadcast_to(x, (2, 3, 4)))
g("d_chain_mlp", """
    x = placeholder() : f64[4,3]
    w1 = placeholder() : f64[3,5]
    w2 = placeholder() : f64[5,2]
    h = relu(matmul(x, w1))
    y = mean(log_softmax(matmul(h, w2)) {axis=-1})
""", {"x": R(4, 3), "w1": R(3, 5), "w2": R(5, 2)}, ["w1", "w2"],
  lambda x, w1, w2: np.mean(np.log(softmax(np.maximum(x @ w1, 0) @ w2))))
g("d_stop_gradient", """
    x = placeholder() : f64[3]
    y = mul(x, stop_gradient(x))
""", {"x": R(3)}, ["x"], lambda x: x * x, rtol=1e-4)  # replaced below: the stopped branch counts as a constant
CASES[-1].ref = lambda x, gw: [gw * x]  # d(x * const(x)) / dx = const(x)

g("d_strided_slice", """
    x = placeholder() : f64[5,6]
    y = strided_slice(x) {begin=[4, 1], end=[0, 6], strides=[-2, 2]}
""", {"x": R(5, 6)}, ["x"], lambda x: x[4:0:-2, 1:6:2])
g("d_strided_slice_masks", """
    x = placeholder() : f64[3,4,5]
    y = strided_slice(x) {begin=[1, 0], end=[2, 3], strides=[1, 1], shrink_axis_mask=1, end_mask=2}
""", {"x": R(3, 4, 5)}, ["x"], lambda x: x[1, 0:])
for ax in (0, 1):
    g("d_gather_axis%d" % ax, """
        x = placeholder() : f64[4,3]
        i = placeholder() : i32[5]
        y = gather(x, i) {axis=%d}
    """ % ax, {"x": R(4, 3), "i": np.array([0, 2, 2, 1, 0] if ax == 0 else [2, 0, 1, 1, 2], np.int32)}, ["x"],
      lambda x, i, ax=ax: np.take(x, i, axis=ax))

# prod's gradient where x holds zeros: the product of the others, as TF
def prod_grad_case(name, x):
    CASES.append(case(name, """
        x = placeholder() : f64[2,3]
        y = prod(x) {axes=[1]}
        g = gradients(sum(y), x)
    """, feeds={"x": x}, fetch="g",
        ref=lambda x: np.array([[np.prod(np.delete(r, j)) for j in range(r.size)] for r in x])))
prod_grad_case("d_prod_one_zero", np.array([[2.0, 0.0, 3.0], [1.5, -2.0, 4.0]]))
prod_grad_case("d_prod_two_zeros", np.array([[0.0, 0.0, 3.0], [0.0, 5.0, -1.0]]))
