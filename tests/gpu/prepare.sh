#!/usr/bin/env bash
# prepare.sh — builds here (where kiln and LLVM are) what the GPU check needs
# on the device machine: the PTX of tests/gpu/kernels.kg and bench.kg and the
# kernel manifest, into build/gpu/.  Then, on the device:
#   python3 tests/gpu/check.py build/gpu
set -euo pipefail
cd "$(dirname "$0")/../.."
K=${KILN:-build/kiln}
ARCH=${1:-sm_90}
mkdir -p build/gpu
$K emit --emit=ptx --gpu-arch=$ARCH tests/gpu/kernels.kg -o build/gpu/kernels.ptx
$K emit --emit=ptx --gpu-arch=$ARCH tests/gpu/bench.kg -o build/gpu/bench.ptx
$K emit --emit=opt-graph tests/gpu/kernels.kg -o build/gpu/kernels.opt.kg
/usr/bin/python3 tests/gpu/manifest.py build/gpu/kernels.opt.kg build/gpu/manifest.json
