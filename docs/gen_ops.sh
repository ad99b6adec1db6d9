#!/bin/sh
# gen_ops.sh — regenerates the op table in docs/ops.md from `kiln ops --markdown`.
#
#   docs/gen_ops.sh [KILN]        (KILN defaults to build/kiln)
#
# Only the lines between <!-- ops:begin --> and <!-- ops:end --> change; the
# prose around them is kept.  `kiln ops --markdown` already escapes a '|'
# or '<' in the last column (the meaning, e.g. `|x|`); the awk pass below
# escapes only what is still bare, so the Markdown table keeps its columns
# either way and nothing is escaped twice.
set -eu
cd "$(dirname "$0")/.."
KILN=${1:-build/kiln}
DOC=docs/ops.md
TABLE=$(mktemp)
OUT=$(mktemp)
trap 'rm -f "$TABLE" "$OUT"' EXIT

"$KILN" ops --markdown | awk '
  NR <= 2 { print; next }                        # header and separator rows
  {
    # | op | operands | attributes | dtypes | meaning |
    # The first four cells never contain " | "; the meaning may contain "|".
    line = substr($0, 3, length($0) - 4)         # drop the outer "| " and " |"
    out = "|"
    for (i = 0; i < 4; i++) {
      k = index(line, " | ")
      out = out " " substr(line, 1, k - 1) " |"
      line = substr(line, k + 3)
    }
    # escape a bare | everywhere in the meaning, and < outside `code`
    n = split(line, part, "`")
    m = ""
    for (j = 1; j <= n; j++) {
      p = part[j]
      gsub(/\\\|/, "\001", p)                   # already escaped: keep
      gsub(/\|/, "\\|", p)
      gsub(/\001/, "\\|", p)
      if (j % 2 == 1) gsub(/</, "\\&lt;", p)
      m = m (j > 1 ? "`" : "") p
    }
    print out " " m " |"
  }' > "$TABLE"

grep -q '^<!-- ops:begin -->$' "$DOC" && grep -q '^<!-- ops:end -->$' "$DOC" || {
  echo "gen_ops.sh: $DOC lacks the <!-- ops:begin --> / <!-- ops:end --> markers" >&2
  exit 1
}
awk -v table="$TABLE" '
  /^<!-- ops:begin -->$/ { print; while ((getline l < table) > 0) print l; skip = 1; next }
  /^<!-- ops:end -->$/   { skip = 0 }
  !skip { print }' "$DOC" > "$OUT"
cat "$OUT" > "$DOC"
