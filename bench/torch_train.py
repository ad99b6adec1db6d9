"""torch_train.py — the peer baseline for the training benchmarks, in PyTorch
on the CPU with one thread (torch.set_num_threads(1); the Makefile also sets
OPENBLAS_NUM_THREADS=1), timed the way bench/bench.c times kiln (warm-up
steps, then the best of N steps), on the same inputs:

  - bench/train.kg: an SGD step of a 784-512-10 MLP (batch 256, softmax
    cross-entropy, lr 0.01); printed as torch / kiln (> 1: kiln faster);
  - bench/train128.kg, bench/train8.kg: a plain-SGD step of a 784-512-512-10
    MLP (relu, softmax cross-entropy with class-index labels, mean over the
    batch, lr 0.01) at batch 128 and at batch 8, in PyTorch's usual idiom
    (nn.Linear, F.cross_entropy, torch.autograd.grad and an in-place
    foreach update: the fastest of the variants tried);
    printed as kiln / torch (< 1: kiln faster) against the targets
    (<= 0.9 at batch 128, <= 0.5 at batch 8).

    python3 bench/torch_train.py --kiln-ms T256 [--kiln-mlp-ms T128 T8]
"""
import argparse
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--kiln-ms", type=float, required=True)
ap.add_argument("--kiln-mlp-ms", type=float, nargs=2, metavar=("B128", "B8"))
a = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(1)


def openblas_core():
    """The OpenBLAS kernel set in use (torch's BLAS and kiln's: the same
    library, so both processes pick the same one; OPENBLAS_CORETYPE
    overrides the detection for both)."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"


def best_ms(step, reps, warmup=3):
    for _ in range(warmup):
        step()
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


# ---- bench/train.kg: 784-512-10, batch 256 ------------------------------------
w1 = torch.nn.init.xavier_uniform_(torch.empty(784, 512)).requires_grad_()
b1 = torch.zeros(512, requires_grad=True)
w2 = torch.nn.init.xavier_uniform_(torch.empty(512, 10)).requires_grad_()
b2 = torch.zeros(10, requires_grad=True)
x = torch.tensor([[((i * 7 + j * 3) % 17) / 17.0 for j in range(784)] for i in range(256)])
labels = torch.zeros(256, 10)
labels[torch.arange(256), torch.arange(256) % 10] = 1


def step():
    h = torch.relu(x @ w1 + b1)
    loss = -(labels * torch.log_softmax(h @ w2 + b2, -1)).sum(1).mean()
    loss.backward()
    with torch.no_grad():
        for p in (w1, b1, w2, b2):
            p -= 0.01 * p.grad
            p.grad = None
    return loss


t = best_ms(step, 20, warmup=1)
print("%-34s %12s %12s %8s" % ("benchmark", "kiln (ms)", "torch (ms)", "ratio"))
print("%-34s %12.3f %12.3f %8.2f" % ("train step 784-512-10 b256", a.kiln_ms, t, t / a.kiln_ms))
print("(ratio > 1: kiln faster than PyTorch %s on the CPU)" % torch.__version__)

# ---- bench/train128.kg, bench/train8.kg: 784-512-512-10 ------------------------
if a.kiln_mlp_ms:
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                torch.nn.ReLU(), torch.nn.Linear(512, 10))
    params = list(model.parameters())

    def mlp_step(xb, yb):
        # the fastest plain-SGD step of the variants tried (optim.SGD with
        # zero_grad(set_to_none=True), with and without foreach, was 2-6% slower)
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-0.01)
        return loss

    print()
    print("%-34s %12s %12s %10s %8s" % ("benchmark", "kiln (ms)", "torch (ms)", "kiln/torch", "target"))
    for batch, kiln_ms, reps, target in ((128, a.kiln_mlp_ms[0], 50, 0.9), (8, a.kiln_mlp_ms[1], 500, 0.5)):
        xb = torch.tensor([[((i * 7 + j * 3) % 17) / 17.0 for j in range(784)] for i in range(batch)])
        yb = torch.arange(batch) % 10
        t = best_ms(lambda: mlp_step(xb, yb), reps)
        r = kiln_ms / t
        print("%-34s %12.4f %12.4f %10.2f %8s" % ("train step 784-512-512-10 b%d" % batch, kiln_ms, t, r,
                                                  "<= %.1f %s" % (target, "ok" if r <= target else "MISS")))
    print("(kiln/torch < 1: kiln faster; plain SGD, one thread, best of N after warm-up; OpenBLAS core %s)"
          % openblas_core())
