#!/usr/bin/env bash
# run.sh — the GPU checks, for a machine with an NVIDIA GPU (docs/gpu.md).
# One command, under 8 minutes; prints PASS/FAIL per check, a summary line,
# and exits non-zero when any check failed.
#
#   1. build kiln and libkilnrt (or use $KILN, e.g. a build carried here);
#   2. the machine-independent GPU tests (placement, PTX through ptxas for
#      sm_80 and sm_90, the no-GPU paths) when the test binary builds;
#   3. on the GPU: every kernel of tests/gpu/kernels.kg and ops.kg run by the
#      binaries kiln builds, against NumPy (ops.kg twice: matmuls through
#      cuBLAS where libcublas loads, and through kiln's tiled GEMM kernel
#      with KILN_CUBLAS=0); examples/gpu_elementwise, gpu_train_cnn,
#      multi_tower and tests/gpu/random.kg on the GPU against their expected
#      output (the CPU's, within rounding); a GPU that is
#      not there fails with a clear message; NumPy reference cases of
#      tests/ref/ (gradients, optimizers, the windowed ops' gradients) with
#      their nodes on the GPU (refkit.py --gpu=device);
#      tests/gpu/check.py (the raw kernels through CuPy) when CuPy is there;
#   4. the benchmark (tests/gpu/bench.py, PyTorch): ratios in one run; the
#      GEMM ratio (cuBLAS alone over kiln) with kiln's cuBLAS path and with
#      its tiled kernel.
#
#   tests/gpu/run.sh [ARCH]      ARCH: sm_80 (A100), sm_90 (H100, the default)
#   tests/gpu/run.sh --stand-in  the script itself checked where there is no
#                                GPU: steps 3's checks against the stand-in
#                                driver (tests/gpu/fakecuda.c, the kernels'
#                                emulation), without steps 2 and 4
# Environment: KILN (a built kiln; else make B=build/gpu), PYTHON (python3
# with NumPy and PyTorch; default /usr/bin/python3), PTXAS.
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$(date +%s)
STAND_IN=0
[ "${1:-}" = --stand-in ] && { STAND_IN=1; shift; }
ARCH=${1:-sm_90}
PY=${PYTHON:-/usr/bin/python3}
W=$(mktemp -d /tmp/kiln-gpu-XXXXXX)
trap 'rm -rf "$W"' EXIT
passed=0 failed=0 failures=""

ok()   { echo "PASS  $1"; passed=$((passed + 1)); }
bad()  { echo "FAIL  $1"; failed=$((failed + 1)); failures="$failures\n  $1"; }
left() { echo $((480 - ($(date +%s) - START))); }
# check NAME TIMEOUT CMD...: runs CMD with its output in $W/NAME.log
check() {
  local name=$1 t=$2; shift 2
  local budget; budget=$(left)
  [ "$budget" -lt "$t" ] && t=$budget
  if [ "$t" -le 5 ]; then bad "$name (no time left of the 8 minutes)"; return 1; fi
  local cmd=("$@")
  # a shell function runs in a child bash (timeout runs programs): exported below
  declare -F "$1" >/dev/null && cmd=(bash -c '"$@"' _ "$@")
  if timeout "$t" "${cmd[@]}" >"$W/$name.log" 2>&1; then ok "$name"; sed 's/^/      /' "$W/$name.log" | tail -n 40
  else bad "$name (exit $?)"; sed 's/^/      /' "$W/$name.log" | tail -n 40; return 1; fi
}

if [ "$STAND_IN" = 1 ]; then
  cc -std=c17 -shared -fPIC tests/gpu/fakecuda.c -o "$W/libcuda.so.1" || exit 1
  export KILN_LIBCUDA=$W/libcuda.so.1 KILN_GPU_EMULATE=1 KILN_LDFLAGS="${KILN_LDFLAGS:-} -rdynamic"
  echo "== kiln GPU checks ($ARCH) against the stand-in driver"
  NGPU=1
else
  echo "== kiln GPU checks ($ARCH) on $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"
  if ! nvidia-smi -L >/dev/null 2>&1; then echo "run.sh: no NVIDIA GPU here (nvidia-smi -L failed)"; exit 2; fi
  NGPU=$(nvidia-smi -L | grep -c '^GPU')
fi

# ---- 1. build ----
if [ -n "${KILN:-}" ]; then K=$KILN; B=$(dirname "$K")
else
  B=build/gpu K=build/gpu/kiln
  check build 300 make -j"$(nproc)" B=$B $B/kiln $B/libkilnrt.a || { echo "run.sh: kiln does not build"; exit 1; }
fi
[ -x "$K" ] || { echo "run.sh: no kiln at $K"; exit 1; }
export K B W PY ARCH # for the shell functions `check` runs in a child bash

# ---- 2. the tests that need no GPU ----
if [ "$STAND_IN" = 1 ]; then echo "SKIP  unit tests (make test runs them)"
elif timeout 200 make -j"$(nproc)" B=$B $B/tests/unit >"$W/unit-build.log" 2>&1; then
  check unit-tests 200 env KILN=$K PYTHON=$PY KILN_BUILD=$B $B/tests/unit --filter 'gpu_p*/*' -j4
  check fake-driver 200 env KILN=$K PYTHON=$PY KILN_BUILD=$B $B/tests/unit --filter 'gpu_fake/*' -j4
else echo "SKIP  unit tests (the test binary does not build here: $(tail -1 "$W/unit-build.log"))"; fi

# ---- 3. on the GPU ----
check kernels 120 "$PY" tests/gpu/run_kernels.py --gpu "$K" tests/gpu/kernels.kg "$W/kernels"
check ops 120 env KILN_GPU_LOG=1 "$PY" tests/gpu/run_kernels.py --gpu "$K" tests/gpu/ops.kg "$W/ops"
check ops-tiled-gemm 120 env KILN_GPU_LOG=1 KILN_CUBLAS=0 "$PY" tests/gpu/run_kernels.py --gpu "$K" tests/gpu/ops.kg "$W/ops-tiled"

run_example() { # NAME|PATH.kg [kiln flags...]: built without soft placement, so it must run on the GPU
  # NAME is examples/NAME.kg; the output must be the .kg's .expected, its numbers
  # within $RTOL/$ATOL of the CPU's (default 1e-4, 1e-5)
  local kg=$1 name; shift
  case $kg in *.kg) ;; *) kg=examples/$kg.kg ;; esac
  name=$(basename "$kg" .kg)
  "$K" build --gpu-arch=$ARCH "$@" "$kg" -o "$W/$name" || return 1
  KILN_GPU_SYNC=1 "$W/$name" >"$W/$name.out" 2>"$W/$name.err" || { cat "$W/$name.err"; return 1; }
  cat "$W/$name.err"
  "$PY" - "$W/$name.out" "${kg%.kg}.expected" "${RTOL:-1e-4}" "${ATOL:-1e-5}" <<'PYEOF'
import sys
got, want = open(sys.argv[1]).read().split(), open(sys.argv[2]).read().split()
rtol, atol = float(sys.argv[3]), float(sys.argv[4])
def nums(v):
    out = []
    for t in v:
        try:
            out.append(float(t.strip("[],")))
        except ValueError:
            out.append(t)  # text must match exactly
    return out
g, w = nums(got), nums(want)
bad = len(g) != len(w) or any(a != b if isinstance(b, str) or isinstance(a, str) else abs(a - b) > rtol * abs(b) + atol
                              for a, b in zip(g, w))
print("got:", " ".join(got[:16]), "..." if len(got) > 16 else "")
sys.exit("differs from the expected output beyond rtol %g, atol %g" % (rtol, atol) if bad else 0)
PYEOF
}
export -f run_example
check gpu_elementwise 120 run_example gpu_elementwise
RTOL=1e-3 ATOL=1e-5 check gpu_train_cnn 120 run_example gpu_train_cnn
RTOL=1e-5 ATOL=1e-6 check random 60 run_example tests/gpu/random.kg
if [ "$NGPU" -ge 2 ]; then check multi_tower 180 run_example multi_tower
else check multi_tower-one-gpu 180 run_example multi_tower --device-map gpu:1=gpu:0; fi

bad_input() { # a GPU that is not there is a clear error, never a hang (out of memory, a failing
  # launch: tests/e2e/test_gpu_devices.c against tests/gpu/fakecuda.c)
  printf 'module far\ngraph {\n  x = const<f32[2]>([1.0, -1.0])\n  y = relu(x) @gpu:7\n}\nprogram {\n  run y\n  print y\n}\n' >"$W/far.kg"
  "$K" build "$W/far.kg" -o "$W/far" || return 1
  if "$W/far" 2>"$W/far.err"; then echo "gpu:7 ran"; return 1; fi
  grep -q "gpu:7 is not available" "$W/far.err" || { cat "$W/far.err"; return 1; }
}
export -f bad_input
check bad-input 60 bad_input

# the NumPy reference cases with their nodes on gpu:0 (refkit --gpu=device):
# the gradients and optimizer updates, and the windowed ops' gradient kernels
check cases-grads-train 120 "$PY" tests/ref/refkit.py --gpu=device --kiln "$K" tests/ref/grads_nn.py tests/ref/cases_train.py
check cases-window-grads 90 "$PY" tests/ref/refkit.py --gpu=device --kiln "$K" --only 'backprop|pool_grad|depthwise' tests/ref/cases_nn.py

if [ "$STAND_IN" = 0 ] && "$PY" -c 'import cupy' 2>/dev/null; then
  check cupy-raw-kernels 120 bash -c "KILN=$K tests/gpu/prepare.sh $ARCH >/dev/null && $PY tests/gpu/check.py build/gpu"
else echo "SKIP  cupy-raw-kernels (no CuPy; the kernels ran through kiln's own binaries above)"; fi

# ---- 4. the benchmark ----
bench() {
  for m in ew mm train; do "$K" build --gpu-arch=$ARCH tests/gpu/bench/$m.kg -o "$W/$m" || return 1; done
  "$PY" tests/gpu/bench.py "$W"
}
export -f bench
if [ "$STAND_IN" = 1 ]; then echo "SKIP  benchmark (timings need a GPU)"; else check benchmark 200 bench; fi

echo "== $passed passed, $failed failed in $(( $(date +%s) - START )) s"
[ "$failed" -eq 0 ] || { printf "failed:$failures\n"; exit 1; }
