"""Writes the bad ONNX models of tests/e2e/test_onnx_errors.c into a folder.

Each model is small and built with onnx.helper (Debian's python3-onnx), so
the bytes on disk are exactly what a broken exporter or a damaged download
would hand kiln: a truncated file, random bytes, a cycle, a dynamic input
dimension, a dtype kiln lacks, an op kiln lacks, a dangling input, external
data that is missing or too short.  Usage: make_bad.py OUTDIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def main(out):
    os.makedirs(out, exist_ok=True)
    x = vi("x", TensorProto.FLOAT, [2, 3])
    y = vi("y", TensorProto.FLOAT, [2, 3])
    good = model([helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    data = good.SerializeToString()
    open(f"{out}/good.onnx", "wb").write(data)
    open(f"{out}/truncated.onnx", "wb").write(data[: len(data) // 2])
    open(f"{out}/garbage.onnx", "wb").write(bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8)))
    open(f"{out}/empty.onnx", "wb").write(b"")
    cyc = model([helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                 helper.make_node("Identity", ["a"], ["y"])], [x], [y])
    onnx.save(cyc, f"{out}/cycle.onnx")
    dyn = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", TensorProto.FLOAT, ["batch", 3])],
                [vi("y", TensorProto.FLOAT, ["batch", 3])])
    onnx.save(dyn, f"{out}/dynamic.onnx")
    f16 = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", TensorProto.FLOAT16, [2])],
                [vi("y", TensorProto.FLOAT16, [2])])
    onnx.save(f16, f"{out}/float16.onnx")
    unk = model([helper.make_node("FancyNewOp", ["x"], ["y"])], [x], [y])
    onnx.save(unk, f"{out}/unknown_op.onnx")
    dom = model([helper.make_node("Relu", ["x"], ["y"], domain="com.example")], [x], [y])
    dom.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(dom, f"{out}/custom_domain.onnx")
    dang = model([helper.make_node("Add", ["x", "nowhere"], ["y"])], [x], [y])
    onnx.save(dang, f"{out}/dangling.onnx")
    # an initializer whose shape claims 2^31 floats (8 GiB) and holds none:
    # refused before anything of that size is allocated
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 31])
    onnx.save(model([helper.make_node("Add", ["x", "w"], ["y"])], [x], [y], inits=[huge]), f"{out}/huge_initializer.onnx")
    # indices fed at run time, one coordinate out of range in its own
    # dimension but not in the flattened data (the runs fail, tested)
    x34 = vi("x", TensorProto.FLOAT, [3, 4])
    gnd = model([helper.make_node("GatherND", ["x", "i"], ["y"])], [x34, vi("i", TensorProto.INT64, [1, 2])],
                [vi("y", TensorProto.FLOAT, [1])])
    onnx.save(gnd, f"{out}/gathernd_idx.onnx")
    gel = model([helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1)],
                [x34, vi("i", TensorProto.INT64, [3, 1])], [vi("y", TensorProto.FLOAT, [3, 1])])
    onnx.save(gel, f"{out}/gather_elements_idx.onnx")
    np.save(f"{out}/x34.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    # QuantizeLinear without a zero point (uint8), and to a type it does not quantize to
    half = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    q = model([helper.make_node("QuantizeLinear", ["x", "s"], ["y"])], [x], [vi("y", TensorProto.UINT8, [2, 3])],
              inits=[half])
    onnx.save(q, f"{out}/quantize_nozp.onnx")
    zp32 = numpy_helper.from_array(np.array(3, np.int32), "z")
    q32 = model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], [x], [vi("y", TensorProto.INT32, [2, 3])],
                inits=[half, zp32])
    onnx.save(q32, f"{out}/quantize_int32.onnx")
    np.save(f"{out}/nd_bad.npy", np.array([[0, 5]], np.int64))      # column 5 of 4 (flat 5: inside)
    np.save(f"{out}/nd_ok.npy", np.array([[2, -1]], np.int64))      # x[2, 3] = 11
    np.save(f"{out}/el_bad.npy", np.array([[0], [4], [1]], np.int64))  # column 4 of 4 in row 1
    np.save(f"{out}/el_ok.npy", np.array([[0], [-1], [1]], np.int64))  # 0, 7, 9
    # external data: a weight file that is missing, and one that is too short
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    ext = model([helper.make_node("Add", ["x", "w"], ["y"])], [x], [y], inits=[w])
    onnx.save_model(ext, f"{out}/external_ok.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="external_ok.data", size_threshold=0)
    data = open(f"{out}/external_ok.onnx", "rb").read()
    open(f"{out}/external_missing.onnx", "wb").write(data.replace(b"external_ok.data", b"external_no.data"))
    open(f"{out}/external_short.onnx", "wb").write(data.replace(b"external_ok.data", b"external_sh.data"))
    open(f"{out}/external_sh.data", "wb").write(open(f"{out}/external_ok.data", "rb").read()[:10])
    # a Reshape whose shape depends on a graph input (not static)
    rs = model([helper.make_node("Reshape", ["x", "s"], ["y"])], [x, vi("s", TensorProto.INT64, [2])], [y])
    onnx.save(rs, f"{out}/runtime_shape.onnx")
    # shapes that do not broadcast
    bad = model([helper.make_node("Add", ["x", "z"], ["y"])], [x, vi("z", TensorProto.FLOAT, [4])], [y])
    onnx.save(bad, f"{out}/mismatch.onnx")
    # the same inside a variadic op, whose later steps see the failed first one
    # (found by fuzzing: it read outside the node array)
    mean = model([helper.make_node("Mean", ["x", "z", "x"], ["y"])], [x, vi("z", TensorProto.FLOAT, [4])], [y])
    onnx.save(mean, f"{out}/mean_mismatch.onnx")


if __name__ == "__main__":
    main(sys.argv[1])
