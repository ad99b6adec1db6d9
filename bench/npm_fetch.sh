# npm_fetch.sh — the steps bench/onnx/fetch.sh and bench/tf/fetch.sh share:
# sourced (`. bench/npm_fetch.sh`) after they set DIR (the npm cache
# directory), WANT (the package@version list), TARBALLS (the file names
# `npm pack` gives them) and WHAT (what they fetch, for messages).
#
#   npm_pack   checks for node, npm and tar, and `npm pack`s WANT into
#              DIR/tarballs unless every tarball is already there; npm's own
#              cache is DIR/.npm, removed afterwards, so nothing is written
#              outside DIR.  Exits 1 with a message when it cannot.
#   unpack TARBALL PACKAGE-DIR [TAR-ARGS]
#              unpacks DIR/tarballs/TARBALL into DIR/node_modules/PACKAGE-DIR
#              by hand (no install script runs), replacing what was there.

npm_pack() {
  for tool in node npm tar; do
    command -v $tool >/dev/null 2>&1 || { echo "fetch.sh: '$tool' not found: cannot fetch $WHAT" >&2; exit 1; }
  done
  mkdir -p "$DIR/tarballs"
  have=1
  for t in $TARBALLS; do [ -s "$DIR/tarballs/$t" ] || have=0; done
  if [ $have = 0 ]; then
    echo "fetch.sh: npm pack $WANT -> $DIR/tarballs"
    # shellcheck disable=SC2086
    if ! (cd "$DIR/tarballs" && npm pack --silent --cache "../.npm" --fetch-retries=1 --fetch-retry-mintimeout=2000 \
         --fetch-retry-maxtimeout=5000 $WANT >/dev/null); then
      rm -rf "$DIR/.npm"
      echo "fetch.sh: npm pack failed (no network or no registry?)" >&2
      exit 1
    fi
  fi
  rm -rf "$DIR/.npm"
}

unpack() {
  t=$1 p=$2
  shift 2
  rm -rf "$DIR/node_modules/$p.tmp"
  mkdir -p "$DIR/node_modules/$p.tmp"
  tar xzf "$DIR/tarballs/$t" -C "$DIR/node_modules/$p.tmp" --strip-components=1 "$@"
  rm -rf "$DIR/node_modules/$p"
  mv "$DIR/node_modules/$p.tmp" "$DIR/node_modules/$p"
}
