"""refs.py — the inputs and NumPy references of the GPU kernel tests
(kernels.kg, ops.kg), shared by run_kernels.py (the binaries kiln builds:
on a GPU, against the stand-in driver, or emulated) and check.py (the raw
kernels through CuPy, on a GPU)."""
import numpy as np

rng = np.random.default_rng(1)
FEEDS = {
    "x": rng.uniform(-3, 3, 1000).astype(np.float32),
    "y": (rng.uniform(0.2, 3, 1000) * rng.choice([-1, 1], 1000)).astype(np.float32),
    "r": rng.uniform(-2, 2, (8, 125)).astype(np.float32),
    "v": rng.uniform(-2, 2, 125).astype(np.float32),
    "d": rng.uniform(-9, 9, 1000),
    "a": rng.integers(-50, 50, 1000).astype(np.int32),
    "b": rng.integers(-7, 7, 1000).astype(np.int32),
    "c": rng.random(1000) < 0.5,
    "m": rng.uniform(-2, 2, (8, 125)).astype(np.float32),
    "q": rng.uniform(-1, 1, (125, 16)).astype(np.float32),
    "t3": rng.uniform(-2, 2, (4, 6, 5)).astype(np.float32),
    "big": rng.uniform(-1, 1, (6, 3000)).astype(np.float32),
    "big2": rng.uniform(-5, 5, (2000, 3)).astype(np.float32),
    "g1": rng.uniform(-1, 1, (70, 130)).astype(np.float32),
    "g2": rng.uniform(-1, 1, (130, 90)).astype(np.float32),
    "w57": rng.uniform(-1, 1, (5, 7)).astype(np.float32),
    "dm": rng.uniform(-1, 1, (33, 20)),
    "dn": rng.uniform(-1, 1, (20, 17)),
    "idx": rng.integers(0, 125, 10).astype(np.int32),
    "idx2": np.array([5, 0, 3], np.int64),
    "img": rng.uniform(-1, 1, (2, 9, 9, 3)).astype(np.float32),
    "flt": rng.uniform(-1, 1, (3, 3, 3, 4)).astype(np.float32),
}
f = FEEDS


def idiv(a, b):
    return np.where(b == 0, 0, np.floor_divide(a, np.where(b == 0, 1, b))).astype(np.int32)


def imod(a, b):
    return np.where(b == 0, 0, np.mod(a, np.where(b == 0, 1, b))).astype(np.int32)


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis):
    y = x - x.max(axis=axis, keepdims=True)
    return y - np.log(np.exp(y).sum(axis=axis, keepdims=True))


def conv2d(x, w, strides=(1, 1), dilations=(1, 1), same=False):
    """NHWC x, HWIO w, TF's padding arithmetic."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if same:
        oh, ow = -(-h // sh), -(-wd // sw)
        pt = max((oh - 1) * sh + ekh - h, 0) // 2
        pl = max((ow - 1) * sw + ekw - wd, 0) // 2
    else:
        oh, ow, pt, pl = (h - ekh) // sh + 1, (wd - ekw) // sw + 1, 0, 0
    y = np.zeros((n, oh, ow, o), np.float64)
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    ih, iw = i * sh - pt + a * dh, j * sw - pl + b * dw
                    if 0 <= ih < h and 0 <= iw < wd:
                        y[:, i, j, :] += x[:, ih, iw, :].astype(np.float64) @ w[a, b].astype(np.float64)
    return y


def pool(x, k, s, same, op):
    """max or mean over the window's taps inside x (padding not counted)."""
    n, h, wd, c = x.shape
    if same:
        oh, ow = -(-h // s[0]), -(-wd // s[1])
        pt = max((oh - 1) * s[0] + k[0] - h, 0) // 2
        pl = max((ow - 1) * s[1] + k[1] - wd, 0) // 2
    else:
        oh, ow, pt, pl = (h - k[0]) // s[0] + 1, (wd - k[1]) // s[1] + 1, 0, 0
    y = np.zeros((n, oh, ow, c), np.float64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s[0] - pt, j * s[1] - pl
            win = x[:, max(r0, 0):min(r0 + k[0], h), max(c0, 0):min(c0 + k[1], wd), :].astype(np.float64)
            y[:, i, j, :] = win.max(axis=(1, 2)) if op == "max" else win.mean(axis=(1, 2))
    return y


REF = {
    # kernels.kg
    "k_add": lambda: f["x"] + f["y"],
    "k_div": lambda: f["x"] / f["y"],
    "k_sigmoid": lambda: 1 / (1 + np.exp(-f["x"])),
    "k_tanh": lambda: np.tanh(f["x"]),
    "k_exp": lambda: np.exp(f["x"]),
    "k_log": lambda: np.log(np.abs(f["y"])),
    "k_pow": lambda: np.power(np.abs(f["x"]), f["y"]),
    "k_max": lambda: np.maximum(f["x"], f["y"]),
    "k_bcast": lambda: f["r"] * f["v"],
    "k_f64": lambda: np.sqrt(np.abs(f["d"])),
    "k_idiv": lambda: idiv(f["a"], f["b"]),
    "k_imod": lambda: imod(f["a"], f["b"]),
    "k_cmp": lambda: f["a"] < f["b"],
    "k_select": lambda: np.where(f["c"], f["x"], f["y"]),
    "k_cast": lambda: f["a"].astype(np.float32),
    "chain": lambda: np.maximum(f["x"] * f["y"] + np.exp(-f["x"]), 0),
    # ops.kg
    "r_sum": lambda: f["r"].sum(axis=1),
    "r_mean0": lambda: f["r"].mean(axis=0),
    "r_max": lambda: f["t3"].max(axis=(0, 2)),
    "r_min_keep": lambda: f["t3"].min(axis=1, keepdims=True),
    "r_prod": lambda: np.prod(f["r"].astype(np.float64), axis=1),
    "r_all": lambda: f["r"].sum(),
    "r_imean": lambda: np.int32(np.trunc(f["a"].astype(np.int64).sum() / f["a"].size)),
    "sm": lambda: softmax(f["r"], 1),
    "lsm": lambda: log_softmax(f["t3"], 1),
    "tr": lambda: np.transpose(f["t3"], (2, 0, 1)),
    "sl": lambda: f["t3"][1:3, 2:5, 0:5],
    "bc": lambda: np.broadcast_to(f["q"], (3, 125, 16)),
    "mm": lambda: f["r"] @ f["q"],
    "mm_tt": lambda: f["q"].T @ f["m"].T,
    "mm_batch": lambda: f["t3"] @ np.transpose(f["t3"], (0, 2, 1)),
    "r_big": lambda: f["big"].astype(np.float64).sum(axis=1),
    "r_bigmax0": lambda: f["big2"].max(axis=0),
    "mm_big": lambda: f["g1"].astype(np.float64) @ f["g2"],
    "mm_big_t": lambda: f["g2"].T.astype(np.float64) @ f["g1"].T,
    "mm_bcast": lambda: f["t3"] @ f["w57"],
    "mm_f64": lambda: f["dm"] @ f["dn"],
    "cc": lambda: np.concatenate([f["r"], f["m"]], axis=1),
    "cc0": lambda: np.concatenate([f["q"]] * 3, axis=0),
    "gt": lambda: f["q"][f["idx"]],
    "gt1": lambda: f["t3"][:, f["idx2"]],
    "cv": lambda: conv2d(f["img"], f["flt"], strides=(2, 2), same=True),
    "cv_dil": lambda: conv2d(f["img"], f["flt"], dilations=(2, 2)),
    "mp": lambda: pool(f["img"], (3, 3), (2, 2), True, "max"),
    "ap": lambda: pool(f["img"], (2, 3), (1, 2), True, "mean"),
    "ap_valid": lambda: pool(f["img"], (2, 2), (2, 2), False, "mean"),
    "upd": lambda: f["m"],  # acc starts at zeros; one run adds m
}


def close(got, want):
    """(ok, max error) of a kernel's result against its reference."""
    want = np.asarray(want)
    if np.issubdtype(want.dtype, np.floating) or np.issubdtype(np.asarray(got).dtype, np.floating):
        got64, want64 = np.asarray(got, np.float64), want.astype(np.float64)
        tol = 1e-12 if np.asarray(got).dtype == np.float64 else 2e-5
        ok = got64.shape == want64.shape and np.allclose(got64, want64, rtol=tol, atol=1e-5)
        err = float(np.max(np.abs(got64 - want64))) if got64.shape == want64.shape and got64.size else 0.0
        return ok, err
    return np.array_equal(got, want.astype(np.asarray(got).dtype)), 0.0
