#!/usr/bin/python3
"""digits_to_npy.py OUTDIR — the handwritten-digits data set that Debian's
python3-sklearn ships (sklearn.datasets.load_digits: 1797 8x8 images, 10
classes), written once as .npy files for examples/train_digits*.kg:

  OUTDIR/train_x.npy  f32[1437,64]  pixels scaled to [0, 1] (the raw values are 0..16)
  OUTDIR/train_y.npy  i64[1437]     class indices 0..9
  OUTDIR/test_x.npy   f32[360,64]
  OUTDIR/test_y.npy   i64[360]

The split is 80/20 after a shuffle with a fixed seed, so every machine gets
the same files.  The images are row-major 8x8, so a [N,64] row reshapes to
[N,8,8,1] (NHWC) for the CNN.  Files are written to a temporary name and
renamed, so an interrupted run leaves no half-written file behind."""
import os
import sys

import numpy as np
from sklearn.datasets import load_digits

SEED = 20240611
N_TEST = 360


def save(path, a):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(a))
    os.replace(tmp, path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/digits"
    os.makedirs(out, exist_ok=True)
    d = load_digits()
    x = (d.data.astype(np.float64) / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    assert x.shape == (1797, 64) and y.shape == (1797,)
    perm = np.random.RandomState(SEED).permutation(len(y))
    test, train = perm[:N_TEST], perm[N_TEST:]
    save(os.path.join(out, "train_x.npy"), x[train])
    save(os.path.join(out, "train_y.npy"), y[train])
    save(os.path.join(out, "test_x.npy"), x[test])
    save(os.path.join(out, "test_y.npy"), y[test])
    print("%s: %d training and %d test images" % (out, len(train), len(test)))


if __name__ == "__main__":
    main()
