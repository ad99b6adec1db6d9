#!/bin/sh
# fetch.sh [DIR] — the TensorFlow.js reference and the models of the
# TensorFlow importer's tests and benchmark, from npm, into DIR (default
# build/npm-cache/tfjs):
#
#   DIR/tarballs/*.tgz                         what `npm pack` fetched
#   DIR/node_modules/@tensorflow/tfjs-core     4.22.0 (and its runtime deps long, seedrandom)
#   DIR/node_modules/@tensorflow/tfjs-backend-cpu, -converter, -backend-wasm   4.22.0
#   DIR/node_modules/@vladmandic/human         3.3.6, only its models/ folder
#
# Pure JavaScript (and the wasm backend's .wasm files): nothing native, no
# install script runs (the tarballs are unpacked by hand).  npm's own cache
# is DIR/.npm, removed after the fetch.  Idempotent: DIR/.stamp records a
# fetch that loaded in node; a second run does nothing, and works offline.
# Exit status 0 when the reference loads, 1 otherwise (the message says why).
set -eu
WHAT="TensorFlow.js"
. "$(dirname "$0")/../npm_fetch.sh"

DIR=${1:-build/npm-cache/tfjs}
TFJS=4.22.0
HUMAN=3.3.6
STAMP="$DIR/.stamp"
WANT="@tensorflow/tfjs-core@$TFJS @tensorflow/tfjs-backend-cpu@$TFJS @tensorflow/tfjs-converter@$TFJS @tensorflow/tfjs-backend-wasm@$TFJS long@4.0.0 seedrandom@3.0.5 @vladmandic/human@$HUMAN"

check() {
  (cd "$DIR" && node -e "
    const tf = require('@tensorflow/tfjs-core');
    require('@tensorflow/tfjs-backend-cpu'); require('@tensorflow/tfjs-converter');
    if (tf.version_core !== '$TFJS') throw new Error('tfjs-core ' + tf.version_core);
    require('fs').accessSync('node_modules/@vladmandic/human/models/blazeface.json');
  ") >/dev/null 2>&1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && check; then
  exit 0
fi
TARBALLS="tensorflow-tfjs-core-$TFJS.tgz tensorflow-tfjs-backend-cpu-$TFJS.tgz tensorflow-tfjs-converter-$TFJS.tgz
  tensorflow-tfjs-backend-wasm-$TFJS.tgz long-4.0.0.tgz seedrandom-3.0.5.tgz vladmandic-human-$HUMAN.tgz"
npm_pack

for p in core backend-cpu converter backend-wasm; do unpack tensorflow-tfjs-$p-$TFJS.tgz @tensorflow/tfjs-$p; done
unpack long-4.0.0.tgz long
unpack seedrandom-3.0.5.tgz seedrandom
unpack vladmandic-human-$HUMAN.tgz @vladmandic/human package/models package/package.json

if ! check; then
  echo "fetch.sh: TensorFlow.js $TFJS does not load in node $(node --version):" >&2
  (cd "$DIR" && node -e "require('@tensorflow/tfjs-core'); require('@tensorflow/tfjs-backend-cpu'); require('@tensorflow/tfjs-converter')") >&2 || true
  exit 1
fi
printf '%s\n' "$WANT" > "$STAMP"
echo "fetch.sh: TensorFlow.js $TFJS loads in node $(node --version)"
