"""torch_train.py — the peer baseline for bench/train.kg: the same SGD step
of a 784-512-10 MLP (batch 256, softmax cross-entropy, lr 0.01) in PyTorch on
the CPU with one thread, timed the same way (best of 20 after a warm-up);
prints both times and the ratio."""
import argparse
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--kiln-ms", type=float, required=True)
a = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(1)
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


step()
best = 1e9
for _ in range(20):
    t0 = time.perf_counter()
    step()
    best = min(best, time.perf_counter() - t0)
t = best * 1e3
print("%-34s %12s %12s %8s" % ("benchmark", "kiln (ms)", "torch (ms)", "ratio"))
print("%-34s %12.3f %12.3f %8.2f" % ("train step 784-512-10 b256", a.kiln_ms, t, t / a.kiln_ms))
print("(ratio > 1: kiln faster than PyTorch %s on the CPU)" % torch.__version__)
