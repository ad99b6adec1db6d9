# Gradient of top_k (compiler/ops/reduce_onnx.c) against central finite
# differences: each output's gradient flows back to the element it was
# taken from.  Distinct random values, so a small step never reorders them.
CASES = []


def top_k_values(x, k, axis, largest):
    idx = np.argsort(-x if largest else x, axis=axis, kind="stable")
    return np.take_along_axis(x, np.take(idx, np.arange(k), axis=axis), axis=axis)


for i, (shape, axis, k, largest) in enumerate([((6,), 0, 3, True), ((4, 5), 1, 2, False),
                                               ((3, 4, 2), 1, 4, True), ((3, 4, 2), 0, 1, False)]):
    CASES.append(gradcase("d_top_k_%d" % i, """
        x = placeholder() : f64[%s]
        y = top_k(x) {k=%d, axis=%d, largest=%s}
    """ % (",".join(str(d) for d in shape), k, axis, "true" if largest else "false"),
        {"x": rand("f64", shape, -2, 2)}, ["x"],
        lambda x, k=k, axis=axis, largest=largest: top_k_values(x, k, axis, largest)))
