#!/usr/bin/env python3
"""ckpt_read.py — reads a kiln checkpoint (.kckpt) with NumPy alone.

The format is in docs/checkpoints.md; this is its reference reader (the
docs' snippet is the same logic, shorter).

    ckpt_read.py FILE.kckpt            step, then "name dtype[dims]" per variable
    ckpt_read.py FILE.kckpt NAME...    str() of each named variable, one per line

Every checksum is verified; a bad file exits with status 1 and a message.
"""
import struct
import sys
import zlib

import numpy as np

DTYPES = {"bool": "|b1", "i8": "|i1", "u8": "|u1", "i32": "<i4", "i64": "<i8",
          "f32": "<f4", "f64": "<f8"}


def read_checkpoint(path):
    """Returns (step, {name: ndarray}) in file order; raises ValueError."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 48:
        raise ValueError("%s: truncated" % path)
    magic, version, n, hsize, dsize, step, _ = struct.unpack_from("<8sIIQQqQ", buf, 0)
    if magic != b"KILNCKPT":
        raise ValueError("%s: not a kiln checkpoint" % path)
    if version != 1:
        raise ValueError("%s: unsupported version %d" % (path, version))
    if hsize + dsize != len(buf):
        raise ValueError("%s: size %d, header says %d" % (path, len(buf), hsize + dsize))
    (hcrc,) = struct.unpack_from("<I", buf, hsize - 4)
    if zlib.crc32(buf[:hsize - 4]) != hcrc:
        raise ValueError("%s: header checksum mismatch" % path)
    pos, out = 48, {}
    for _ in range(n):
        (nlen,) = struct.unpack_from("<I", buf, pos)
        name = buf[pos + 4:pos + 4 + nlen].decode("utf-8")
        pos += 4 + nlen
        dtype = buf[pos:pos + 8].rstrip(b"\0").decode("ascii")
        (rank,) = struct.unpack_from("<I", buf, pos + 8)
        dims = struct.unpack_from("<%dQ" % rank, buf, pos + 12)
        pos += 12 + 8 * rank
        offset, nbytes, crc = struct.unpack_from("<QQI", buf, pos)
        pos += 20
        data = buf[hsize + offset:hsize + offset + nbytes]
        if zlib.crc32(data) != crc:
            raise ValueError("%s: checksum mismatch in %s" % (path, name))
        out[name] = np.frombuffer(data, DTYPES[dtype]).reshape(dims)
    return step, out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    try:
        step, tensors = read_checkpoint(argv[1])
    except (ValueError, KeyError, struct.error, UnicodeDecodeError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    np.set_printoptions(threshold=sys.maxsize, linewidth=sys.maxsize)
    if len(argv) == 2:
        print("step %d" % step)
        for name, a in tensors.items():
            print("%s %s[%s]" % (name, {v: k for k, v in DTYPES.items()}[a.dtype.str],
                                 ",".join(str(d) for d in a.shape)))
        return 0
    for name in argv[2:]:
        if name not in tensors:
            print("error: no variable %r in %s" % (name, argv[1]), file=sys.stderr)
            return 1
        print(tensors[name])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
