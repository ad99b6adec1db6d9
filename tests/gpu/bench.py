"""bench.py — the GPU benchmark of tests/gpu/run.sh, as ratios measured in
one run on one GPU (higher is better for kiln in every line):

  elementwise  kiln's fused z = x*y + 1 over 16M floats (bench/ew.kg) as
               effective bandwidth (12 bytes per element) over a device-to-
               device copy's (torch copy_, 8 bytes per element)   target >= 0.8
  gemm         a 2048^3 f32 GEMM: cuBLAS alone (torch.mm) time over kiln's
               (bench/mm.kg), twice: kiln calling cuBLAS (the default where
               libcublas loads)                                   target >= 0.9
               and kiln's own tiled kernel (KILN_CUBLAS=0)        reported
  mlp          one SGD step of a 784-512-10 MLP at batch 256 (bench/train.kg):
               PyTorch's time over kiln's on the same GPU

kiln is timed through its binaries' generic main: the time of N+R runs minus
that of R runs, over N, so start-up (variable initialization, the upload, the
PTX JIT) is left out; every run ends with a device synchronization.
Usage: python3 bench.py DIR (DIR has the binaries ew, mm, train)"""
import os
import subprocess
import sys
import time

import torch

d = sys.argv[1]
dev = torch.device("cuda")


def wall(cmd, env=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def kiln_time(exe, entry, n, r=3, **extra):
    env = dict(os.environ, **extra)
    base = min(wall([exe, "--run", entry, "--repeat", str(r)], env) for _ in range(3))
    full = min(wall([exe, "--run", entry, "--repeat", str(r + n)], env) for _ in range(3))
    return max(full - base, 1e-9) / n


def gemm_path(exe, **extra):
    """Which GEMM the binary uses, as it says with KILN_GPU_LOG=1."""
    r = subprocess.run([exe, "--run", "step"], env=dict(os.environ, KILN_GPU_LOG="1", **extra),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in r.stderr.splitlines():
        if "GEMM through" in line:
            return line.split("GEMM through ", 1)[1]
    return "?"


def cuda_time(fn, reps=20):
    best = 1e9
    for _ in range(3):
        fn()
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        best = min(best, a.elapsed_time(b) / 1e3)
    return best


N = 16777216
t_ew = kiln_time(d + "/ew", "step", 200)
src, dst = torch.rand(N, device=dev), torch.empty(N, device=dev)
t_copy = cuda_time(lambda: dst.copy_(src))
r_ew = (12 * N / t_ew) / (8 * N / t_copy)
print("elementwise  kiln %.3f ms (%.0f GB/s)  copy %.3f ms (%.0f GB/s)  ratio %.2f  (target >= 0.8)" %
      (t_ew * 1e3, 12 * N / t_ew / 1e9, t_copy * 1e3, 8 * N / t_copy / 1e9, r_ew))

M = 2048
torch.backends.cuda.matmul.allow_tf32 = False  # kiln computes in f32
a, b = torch.rand(M, M, device=dev), torch.rand(M, M, device=dev)
t_blas = cuda_time(lambda: torch.mm(a, b))
for label, extra, target in (("cuBLAS path", {}, "  (target >= 0.9)"), ("tiled kernel", {"KILN_CUBLAS": "0"}, "")):
    t_mm = kiln_time(d + "/mm", "step", 20, **extra)
    print("gemm %-12s kiln %.3f ms (%.1f TFLOP/s)  cuBLAS %.3f ms (%.1f TFLOP/s)  ratio %.2f%s  [%s]" %
          (label, t_mm * 1e3, 2 * M ** 3 / t_mm / 1e12, t_blas * 1e3, 2 * M ** 3 / t_blas / 1e12, t_blas / t_mm,
           target, gemm_path(d + "/mm", **extra)))

torch.manual_seed(1)
x, labels = torch.rand(256, 784, device=dev), torch.rand(256, 10, device=dev)
w1 = torch.nn.init.xavier_uniform_(torch.empty(784, 512, device=dev)).requires_grad_()
b1 = torch.zeros(512, device=dev, requires_grad=True)
w2 = torch.nn.init.xavier_uniform_(torch.empty(512, 10, device=dev)).requires_grad_()
b2 = torch.zeros(10, device=dev, requires_grad=True)
params = [w1, b1, w2, b2]


def step():
    h = torch.relu(x @ w1 + b1)
    loss = -(labels * torch.log_softmax(h @ w2 + b2, dim=1)).sum(dim=1).mean()
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        torch._foreach_add_(params, grads, alpha=-0.01)
    return loss


t_torch = cuda_time(step)
t_step = kiln_time(d + "/train", "run", 100)
print("mlp          kiln %.3f ms  PyTorch %.3f ms  ratio %.2f  (PyTorch / kiln; > 1: kiln faster)" %
      (t_step * 1e3, t_torch * 1e3, t_torch / t_step))
