/* ops.c — the op table built from ops.def, and queries on its spec strings. */
#include "ir/ops.h"
#include <string.h>

const kc_op kc_ops[KC_OP_COUNT] = {
#define OP(id, name, operands, attrs, dtypes, expr, flags, infer, lower, grad, expand, doc) \
  {name, operands, attrs, dtypes, expr, flags, infer, lower, grad, expand, doc},
#include "ir/ops.def"
#undef OP
};

int kc_op_find(const char *name, size_t len) {
  for (int i = 0; i < KC_OP_COUNT; i++)
    if (strlen(kc_ops[i].name) == len && !memcmp(kc_ops[i].name, name, len)) return i;
  return -1;
}

static int count_operands(const char *spec, bool *variadic) {
  *variadic = strstr(spec, "...") != NULL;
  if (!*spec) return 0;
  int n = 1;
  for (const char *p = spec; *p; p++) n += *p == ',';
  return *variadic ? n - 1 : n;
}

int kc_op_min_operands(int op) {
  bool v;
  return count_operands(kc_ops[op].operands, &v);
}

int kc_op_max_operands(int op) {
  bool v;
  int n = count_operands(kc_ops[op].operands, &v);
  return v ? -1 : n;
}
