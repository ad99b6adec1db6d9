/* expr.c — parsing the scalar expressions of elementwise ops (see expr.h). */
#include "ir/expr.h"
#include "ir/ops.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  int arity;
  bool compare;
} prims[] = {
    {"add", 2, 0}, {"sub", 2, 0}, {"mul", 2, 0}, {"div", 2, 0}, {"mod", 2, 0},  {"pow", 2, 0},
    {"max", 2, 0}, {"min", 2, 0}, {"neg", 1, 0}, {"abs", 1, 0}, {"exp", 1, 0},  {"log", 1, 0},
    {"sqrt", 1, 0}, {"tanh", 1, 0}, {"floor", 1, 0}, {"ceil", 1, 0}, {"sin", 1, 0}, {"cos", 1, 0},
    {"not", 1, 0}, {"lt", 2, 1}, {"le", 2, 1},  {"gt", 2, 1},  {"ge", 2, 1},   {"eq", 2, 1},
    {"ne", 2, 1},  {"and", 2, 0}, {"or", 2, 0},  {"xor", 2, 0}, {"select", 3, 0}, {"cast", 1, 0},
};

int kc_prim_arity(const char *prim) {
  for (size_t i = 0; i < sizeof prims / sizeof *prims; i++)
    if (!strcmp(prims[i].name, prim)) return prims[i].arity;
  return -1;
}

bool kc_prim_is_compare(const char *prim) {
  for (size_t i = 0; i < sizeof prims / sizeof *prims; i++)
    if (!strcmp(prims[i].name, prim)) return prims[i].compare;
  return false;
}

typedef struct {
  kc_arena *a;
  const char *p, *vars;
  char *err;
  size_t errlen;
} eparser;

static void skip(eparser *e) {
  while (isspace((unsigned char)*e->p)) e->p++;
}

static int var_index(const char *vars, const char *name, size_t len) {
  int idx = 0;
  const char *p = vars;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    const char *s = p;
    while (*p && *p != ',' && *p != ' ' && *p != ':' && *p != '.') p++;
    if ((size_t)(p - s) == len && !memcmp(s, name, len)) return idx;
    while (*p && *p != ',') p++;
    idx++;
  }
  return -1;
}

static kc_expr *parse(eparser *e) {
  skip(e);
  kc_expr *x = kc_alloc(e->a, sizeof *x);
  if (isdigit((unsigned char)*e->p) || *e->p == '-' || *e->p == '.') {
    char *end;
    x->kind = KC_EXPR_NUM;
    x->num = strtod(e->p, &end);
    if (end == e->p) goto bad;
    e->p = end;
    return x;
  }
  const char *s = e->p;
  while (isalnum((unsigned char)*e->p) || *e->p == '_') e->p++;
  size_t len = (size_t)(e->p - s);
  if (!len) goto bad;
  skip(e);
  if (*e->p != '(') {
    x->kind = KC_EXPR_VAR;
    x->var = var_index(e->vars, s, len);
    if (x->var < 0) {
      snprintf(e->err, e->errlen, "unknown operand '%.*s'", (int)len, s);
      return NULL;
    }
    return x;
  }
  e->p++;
  x->kind = KC_EXPR_CALL;
  x->prim = kc_strndup(e->a, s, len);
  int arity = kc_prim_arity(x->prim);
  if (arity < 0) {
    snprintf(e->err, e->errlen, "unknown primitive '%s'", x->prim);
    return NULL;
  }
  for (int i = 0; i < arity; i++) {
    if (i) {
      skip(e);
      if (*e->p++ != ',') goto bad;
    }
    if (!(x->args[i] = parse(e))) return NULL;
  }
  x->n_args = arity;
  skip(e);
  if (*e->p++ != ')') goto bad;
  return x;
bad:
  snprintf(e->err, e->errlen, "malformed expression near '%.10s'", e->p);
  return NULL;
}

kc_expr *kc_expr_parse(kc_arena *a, const char *text, const char *vars, char *err, size_t errlen) {
  eparser e = {a, text, vars, err, errlen};
  kc_expr *x = parse(&e);
  skip(&e);
  if (x && *e.p) {
    snprintf(err, errlen, "trailing text '%s'", e.p);
    return NULL;
  }
  return x;
}

/* The op table is constant, so its expressions are parsed once and kept for
 * the life of the process. */
const kc_expr *kc_op_expr(int op) {
  static kc_arena *arena;
  static const kc_expr *cache[KC_OP_COUNT];
  static bool done[KC_OP_COUNT];
  if (op < 0 || op >= KC_OP_COUNT || !kc_ops[op].expr) return NULL;
  if (!done[op]) {
    if (!arena) arena = kc_arena_new();
    char err[128];
    cache[op] = kc_expr_parse(arena, kc_ops[op].expr, kc_ops[op].operands, err, sizeof err);
    done[op] = true;
  }
  return cache[op];
}
