"""check_train — the training ops that keep state across runs, step by step
against NumPy: each optimizer's update (TensorFlow's kernel formulas) with
its slot variables, ExponentialMovingAverage shadows, learning-rate
schedules driven by a global step, and examples/train_step.kg as a whole
(a NumPy replica of the MLP trains from the same initial state and must
print what kiln prints, and what examples/train_step.expected holds).

Each check writes a small module, builds it with kiln, runs one entry
--repeat N times in one process (variables persist across runs) and
compares the fetched tensors with the NumPy recurrence.

    /usr/bin/python3 tests/ref/train/check_train.py --kiln build/kiln [optimizers|ema|schedules|example]...

tests/e2e/test_train.c runs it.  (It lives below tests/ref/ so that the
refkit runner, which takes every tests/ref/*.py as a case file, skips it.)
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

NPT = {"f32": np.float32, "f64": np.float64}
RNG = np.random.default_rng(20240607)
FAILS = []
PASSES = [0]


def lit(a):
    """A .kg literal for a NumPy array."""
    if a.ndim == 0:
        return repr(float(a))
    return "[" + ", ".join(lit(x) for x in a) + "]"


def build(kiln, src, workdir, name):
    path = os.path.join(workdir, name + ".kg")
    exe = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(src)
    r = subprocess.run([kiln, "build", path, "-o", exe], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("kiln build %s failed:\n%s\n--- module ---\n%s" % (name, r.stderr, src))
    return exe


def run_entry(exe, entry, fetches, repeat, workdir):
    """Runs `entry` `repeat` times in one process; the fetches of the last run."""
    args = [exe, "--run", entry, "--repeat", str(repeat)]
    paths = []
    for k, name in enumerate(fetches):
        p = os.path.join(workdir, "out%d.npy" % k)
        paths.append(p)
        args += ["--fetch", "%s=%s" % (name, p)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s --run %s failed:\n%s" % (exe, entry, r.stderr))
    return [np.load(p) for p in paths]


def expect(what, got, want, rtol, atol):
    want = np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        FAILS.append("%s: got %s %s, want %s %s" % (what, got.dtype, got.shape, want.dtype, want.shape))
    elif not np.allclose(got, want, rtol=rtol, atol=atol):
        err = np.max(np.abs(got.astype(np.float64) - want))
        FAILS.append("%s: max abs error %g\n got  %s\n want %s" % (what, err, got, want))
    else:
        PASSES[0] += 1


# ---- optimizers ----------------------------------------------------------------
#
# loss = sum(c * (w - t)^2), so grad = 2 c (w - t) depends on w and the
# updates compound; the learning rate is a constant or exponential_decay of a
# global step that moves after each update.

def opt_gd(T, a):
    def step(w, g, lr, s):
        w -= lr * g
    return "apply_gradient_descent", "", [], step


def opt_momentum(T, a):
    mu, nesterov = T(a["momentum"]), a.get("use_nesterov", False)

    def step(w, g, lr, s):
        acc = s["w/Momentum"]
        acc[...] = acc * mu + g
        if nesterov:
            w -= g * lr + acc * mu * lr
        else:
            w -= lr * acc
    attrs = "{momentum=%r%s}" % (a["momentum"], ", use_nesterov=true" if nesterov else "")
    return "apply_momentum", attrs, [("w/Momentum", 0.0, "var")], step


def opt_adam(T, a):
    b1, b2, eps = T(a.get("beta1", 0.9)), T(a.get("beta2", 0.999)), T(a.get("epsilon", 1e-8))

    def step(w, g, lr, s):
        m, v, p1, p2 = s["w/Adam"], s["w/Adam_1"], s["w/beta1_power"], s["w/beta2_power"]
        alpha = lr * np.sqrt(T(1) - p2) / (T(1) - p1)
        m += (g - m) * (T(1) - b1)
        v += (g * g - v) * (T(1) - b2)
        w -= m * alpha / (np.sqrt(v) + eps)
        p1[...] = p1 * b1
        p2[...] = p2 * b2
    attrs = "{%s}" % ", ".join("%s=%r" % kv for kv in a.items())
    return "apply_adam", attrs, [("w/Adam", 0.0, "var"), ("w/Adam_1", 0.0, "var"),
                                 ("w/beta1_power", b1, "scalar"), ("w/beta2_power", b2, "scalar")], step


def opt_rmsprop(T, a):
    rho, mu, eps = T(a.get("decay", 0.9)), T(a.get("momentum", 0.0)), T(a.get("epsilon", 1e-10))

    def step(w, g, lr, s):
        ms, mom = s["w/RMSProp"], s["w/RMSProp_1"]
        ms += (g * g - ms) * (T(1) - rho)
        mom[...] = mom * mu + g * lr / np.sqrt(ms + eps)
        w -= mom
    attrs = "{%s}" % ", ".join("%s=%r" % kv for kv in a.items())
    return "apply_rmsprop", attrs, [("w/RMSProp", 1.0, "var"), ("w/RMSProp_1", 0.0, "var")], step


def opt_adagrad(T, a):
    init = a.get("initial_accumulator_value", 0.1)

    def step(w, g, lr, s):
        acc = s["w/Adagrad"]
        acc += g * g
        w -= lr * g / np.sqrt(acc)
    attrs = "{%s}" % ", ".join("%s=%r" % kv for kv in a.items())
    return "apply_adagrad", attrs, [("w/Adagrad", init, "var")], step


OPTIMIZERS = [
    ("gd", opt_gd, {}),
    ("momentum", opt_momentum, {"momentum": 0.9}),
    ("nesterov", opt_momentum, {"momentum": 0.8, "use_nesterov": True}),
    ("adam", opt_adam, {}),
    ("adam_attrs", opt_adam, {"beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3}),
    ("rmsprop", opt_rmsprop, {}),
    ("rmsprop_momentum", opt_rmsprop, {"decay": 0.8, "momentum": 0.5, "epsilon": 1e-6}),
    ("adagrad", opt_adagrad, {}),
    ("adagrad_init", opt_adagrad, {"initial_accumulator_value": 0.5}),
]


def check_optimizers(kiln, workdir):
    for k, (name, make, attrs) in enumerate(OPTIMIZERS):
        for dt in ["f32", "f64"]:
            T = NPT[dt]
            decay = k % 2 == 1  # every other one takes its rate from a schedule
            w0 = RNG.uniform(-2, 2, (3, 4)).astype(T)
            t = RNG.uniform(-1, 1, (3, 4)).astype(T)
            c = RNG.uniform(0.2, 1.5, (3, 4)).astype(T)
            op, attr_text, slots, step = make(T, attrs)
            lr_node = ("exponential_decay(gs) {learning_rate=0.05, decay_steps=2, decay_rate=0.7, dtype=%s}" % dt
                       if decay else "const<%s[]>(0.05)" % dt)
            src = """module opt_%s
var w : %s[3,4] = %s
var gs : i64[] = 0 {trainable=false}
graph {
  t = const<%s[3,4]>(%s)
  c = const<%s[3,4]>(%s)
  loss = sum(mul(c, square(sub(w, t))))
  g = gradients(loss, w)
  lr = %s
  upd = %s(w, lr, g) %s
  inc = assign_add(gs, const<i64[]>(1)) after [upd]
}
entry step() -> (%s)
""" % (name, dt, lit(w0), dt, lit(t), dt, lit(c), lr_node, op, attr_text,
                ", ".join(["upd", "inc"] + [s[0] for s in slots]))
            exe = build(kiln, src, workdir, "opt_%s_%s" % (name, dt))
            # the NumPy recurrence, in the variable's dtype
            w = w0.copy()
            state = {}
            for sname, init, kind in slots:
                state[sname] = np.array(T(init)) if kind == "scalar" else np.full((3, 4), T(init), T)
            want = {}
            for s in range(5):
                g = T(2) * c * (w - t)
                lr = T(0.05) * np.power(T(0.7), T(s) / T(2)) if decay else T(0.05)
                step(w, g, T(lr), state)
                want[s + 1] = [w.copy()] + [state[sn[0]].copy() for sn in slots]
            rtol, atol = (2e-5, 1e-6) if dt == "f32" else (1e-11, 1e-13)
            for n in [1, 5]:
                got = run_entry(exe, "step", ["upd", "inc"] + [s[0] for s in slots], n, workdir)
                expect("%s %s step %d: the global step" % (name, dt, n), got[1], np.array(n, np.int64), 0, 0)
                names = ["w"] + [s[0] for s in slots]
                for nm, gv, wv in zip(names, [got[0]] + got[2:], want[n]):
                    expect("%s %s after %d step(s): %s" % (name, dt, n, nm), gv, wv, rtol, atol)


# ---- exponential moving averages ---------------------------------------------------
#
# v and u change every step; the EMA (one with num_updates = the global
# step, one with a fixed decay) follows after the change.

def check_ema(kiln, workdir):
    src = """module ema
var v : f32[4] = random_normal(seed=3)
var u : f64[2,2] = [[1.0, 2.0], [3.0, 4.0]]
var z : f32[3] = [0.5, -0.5, 2.0]
var r : f32[2,3] = glorot_uniform
var gs : i64[] = 0 {trainable=false}
graph {
  nv = assign(v, add(mul(v, const<f32[]>(0.5)), const<f32[]>(1.0)))
  nu = assign(u, mul(u, const<f64[]>(-1.5)))
  nz = assign_add(z, const<f32[3]>([1.0, 2.0, 3.0]))
  moved = no_op() after [nv, nu, nz]
  ema = ema_apply(v, u, gs) {decay=0.9, num_updates=true} after [moved]
  ema_z = ema_apply(z) {decay=0.75} after [moved]
  ema_r = ema_apply(r) {decay=0.5}
  inc = assign_add(gs, const<i64[]>(1)) after [ema, ema_z]
}
entry initial() -> (v, v/ExponentialMovingAverage, u/ExponentialMovingAverage, z/ExponentialMovingAverage,
                    r, r/ExponentialMovingAverage)
entry step() -> (inc, v, u, z, v/ExponentialMovingAverage, u/ExponentialMovingAverage, z/ExponentialMovingAverage)
"""
    exe = build(kiln, src, workdir, "ema")
    v0, sv0, su0, sz0, r0, sr0 = run_entry(exe, "initial", ["v", "v/ExponentialMovingAverage",
                                                             "u/ExponentialMovingAverage", "z/ExponentialMovingAverage",
                                                             "r", "r/ExponentialMovingAverage"], 1, workdir)
    # the shadows start as the variables do (same initializer, same seed)
    expect("ema: v's shadow starts at v's initial value", sv0, v0, 0, 0)
    expect("ema: u's shadow starts at u's initial value", su0, np.array([[1.0, 2.0], [3.0, 4.0]]), 0, 0)
    expect("ema: z's shadow starts at z's initial value", sz0, np.array([0.5, -0.5, 2.0], np.float32), 0, 0)
    # (a random initializer without a seed: the shadow still draws the same numbers)
    expect("ema: r's shadow starts at r's initial value", sr0, r0, 0, 0)
    if np.all(r0 == 0):
        FAILS.append("ema: r was not initialized at random")
    v, u, z = v0.copy(), np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5, 2.0], np.float32)
    sv, su, sz = v.copy(), u.copy(), z.copy()
    want = {}
    for n in range(6):
        v = v * np.float32(0.5) + np.float32(1.0)
        u = u * -1.5
        z = z + np.array([1.0, 2.0, 3.0], np.float32)
        for sh, x, T in [(sv, v, np.float32), (su, u, np.float64)]:
            d = min(T(0.9), (T(1) + T(n)) / (T(10) + T(n)))
            sh -= (sh - x) * (T(1) - T(d))
        sz -= (sz - z) * (np.float32(1) - np.float32(0.75))
        want[n + 1] = [v.copy(), u.copy(), z.copy(), sv.copy(), su.copy(), sz.copy()]
    for n in [1, 6]:
        got = run_entry(exe, "step", ["inc", "v", "u", "z", "v/ExponentialMovingAverage",
                                      "u/ExponentialMovingAverage", "z/ExponentialMovingAverage"], n, workdir)
        expect("ema: global step after %d" % n, got[0], np.array(n, np.int64), 0, 0)
        for nm, gv, wv in zip(["v", "u", "z", "v's shadow", "u's shadow", "z's shadow"], got[1:], want[n]):
            expect("ema after %d step(s): %s" % (n, nm), gv, wv, 1e-6 if gv.dtype == np.float32 else 1e-12, 1e-7)


# ---- schedules over a moving global step -------------------------------------------

def check_schedules(kiln, workdir):
    src = """module schedules
var gs : i64[] = 0 {trainable=false}
graph {
  smooth = exponential_decay(gs) {learning_rate=0.2, decay_steps=3, decay_rate=0.5}
  stair = exponential_decay(gs) {learning_rate=0.2, decay_steps=3, decay_rate=0.5, staircase=true}
  piece = piecewise_constant(gs) {boundaries=[2.0, 5.0, 9.0], values=[1.0, 0.5, 0.25, 0.125]}
  inc = assign_add(gs, const<i64[]>(1)) after [smooth, stair, piece]
}
entry step() -> (smooth, stair, piece, inc)
"""
    exe = build(kiln, src, workdir, "schedules")
    r = subprocess.run([exe, "--run", "step", "--repeat", "12", "--fetch", "smooth", "--fetch", "stair",
                        "--fetch", "piece"], capture_output=True, text=True)
    if r.returncode != 0:
        FAILS.append("schedules: run failed: " + r.stderr)
        return
    vals = [float(x) for x in r.stdout.split()]
    T = np.float32
    for s in range(12):
        p = T(s) / T(3)
        want = [T(0.2) * np.power(T(0.5), p), T(0.2) * np.power(T(0.5), np.floor(p)),
                [1.0, 0.5, 0.25, 0.125][int(np.searchsorted([2, 5, 9], s, side="left"))]]
        got = vals[3 * s:3 * s + 3]
        for nm, gv, wv in zip(["exponential_decay", "exponential_decay staircase", "piecewise_constant"], got, want):
            # the run prints 6 significant digits
            expect("schedules: %s at step %d" % (nm, s), np.array(gv), np.array(float(wv)), 2e-6, 0)


# ---- examples/train_step.kg --------------------------------------------------------------

def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))


def clip_by_norm(t, cn):
    n = np.sqrt(np.sum(t * t))
    return t * cn / max(n, cn)


def replica(x, w1, b1, w2, b2, steps):
    """The example's model and training step in NumPy (float64): returns the
    loss and accuracy before and after, and the first step with accuracy >= 0.95."""
    w_true = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0]], np.float32)
    labels = np.eye(3)[np.argmax(x @ w_true, axis=1)]
    x = x.astype(np.float64)
    params = [p.astype(np.float64) for p in (w1, b1, w2, b2)]
    accum = [np.zeros_like(p) for p in params]

    def forward(p):
        hp = x @ p[0] + p[1]
        h = np.maximum(hp, 0)
        logits = h @ p[2] + p[3]
        ls = log_softmax(logits)
        loss = np.mean(-np.sum(labels * ls, axis=1))
        acc = np.mean(np.argmax(logits, axis=1) == np.argmax(labels, axis=1))
        return hp, h, logits, loss, acc

    _, _, _, loss0, acc0 = forward(params)
    first95 = None
    for s in range(steps):
        hp, h, logits, loss, acc = forward(params)
        if first95 is None and acc >= 0.95:
            first95 = s
        dlogits = (np.exp(log_softmax(logits)) - labels) / x.shape[0]
        dw2 = h.T @ dlogits
        db2 = dlogits.sum(axis=0)
        dh = (dlogits @ params[2].T) * (hp > 0)
        dw1 = x.T @ dh
        db1 = dh.sum(axis=0)
        lr = 0.1 * 0.5 ** np.floor(s / 50)
        for p, a, g in zip(params, accum, [dw1, db1, dw2, db2]):
            a[...] = a * 0.9 + clip_by_norm(g, 0.1)
            p -= lr * a
    _, _, _, loss1, acc1 = forward(params)
    if first95 is None and acc1 >= 0.95:
        first95 = steps
    return loss0, acc0, loss1, acc1, first95, 0.1 * 0.5 ** np.floor(steps / 50)


def check_example(kiln, workdir, root):
    path = os.path.join(root, "examples", "train_step.kg")
    exe = os.path.join(workdir, "train_step")
    r = subprocess.run([kiln, "build", path, "-o", exe], capture_output=True, text=True)
    if r.returncode != 0:
        FAILS.append("example: kiln build failed:\n" + r.stderr)
        return
    x, w1, b1, w2, b2 = run_entry(exe, "initial_state", ["data/x", "hidden/w", "hidden/b", "softmax_linear/w",
                                                          "softmax_linear/b"], 1, workdir)
    loss0, acc0, loss1, acc1, first95, lr = replica(x, w1, b1, w2, b2, 200)
    print("example: NumPy replica: loss %.4f -> %.4f, accuracy %.4f -> %.4f (>= 0.95 from step %s)"
          % (loss0, loss1, acc0, acc1, first95))
    r = subprocess.run([exe], capture_output=True, text=True)
    if r.returncode != 0:
        FAILS.append("example: the program failed:\n" + r.stderr)
        return
    with open(os.path.join(root, "examples", "train_step.expected")) as f:
        expected = f.read()
    for who, text in [("the program", r.stdout), ("train_step.expected", expected)]:
        nums = [float(v) for v in re.findall(r"^-?\d[\d.e+-]*$", text, re.M)]
        if len(nums) != 6:
            FAILS.append("example: %s printed %d numbers, expected 6:\n%s" % (who, len(nums), text))
            continue
        # losses are printed rounded to 4 decimals; f32 against f64 drifts a little
        expect("example (%s): loss before" % who, np.array(nums[0]), np.array(loss0), 0, 2e-4)
        expect("example (%s): accuracy before" % who, np.array(nums[1]), np.array(acc0), 0, 1e-6)
        expect("example (%s): loss after" % who, np.array(nums[2]), np.array(loss1), 0, 3e-4)
        expect("example (%s): accuracy after" % who, np.array(nums[3]), np.array(acc1), 0, 1e-6)
        expect("example (%s): global step" % who, np.array(nums[4]), np.array(200.0), 0, 0)
        expect("example (%s): learning rate" % who, np.array(nums[5]), np.array(lr), 1e-6, 0)
        if acc1 < 0.95 or nums[3] < 0.95:
            FAILS.append("example: accuracy %g after 200 steps, expected >= 0.95" % nums[3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.environ.get("KILN", "build/kiln"))
    ap.add_argument("checks", nargs="*", default=["optimizers", "ema", "schedules", "example"])
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    checks = {"optimizers": check_optimizers, "ema": check_ema, "schedules": check_schedules,
              "example": lambda k, d: check_example(k, d, root)}
    for name in a.checks or checks:
        with tempfile.TemporaryDirectory() as d:
            try:
                checks[name](a.kiln, d)
            except RuntimeError as e:
                FAILS.append("%s: %s" % (name, e))
    for f in FAILS:
        print("FAIL " + f)
    print("%d passed, %d failed" % (PASSES[0], len(FAILS)))
    sys.exit(1 if FAILS or PASSES[0] == 0 else 0)


if __name__ == "__main__":
    main()
