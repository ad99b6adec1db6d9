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
    /* the ONNX importer's math (floats) and bit shifts (integers) */
    {"erf", 1, 0}, {"round", 1, 0}, {"trunc", 1, 0}, {"tan", 1, 0}, {"asin", 1, 0}, {"acos", 1, 0},
    {"atan", 1, 0}, {"sinh", 1, 0}, {"cosh", 1, 0}, {"asinh", 1, 0}, {"acosh", 1, 0}, {"atanh", 1, 0},
    {"shl", 2, 0}, {"shr", 2, 0},
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
  x->to = x->hint = -1;
  if (isdigit((unsigned char)*e->p) || *e->p == '-' || *e->p == '.' || !strncmp(e->p, "inf", 3) ||
      !strncmp(e->p, "nan", 3)) {
    char *end;
    x->kind = KC_EXPR_NUM;
    x->num = strtod(e->p, &end);
    if (end == e->p) goto bad;
    e->p = end;
    return x;
  }
  const char *s = e->p;
  while (isalnum((unsigned char)*e->p) || *e->p == '_' || *e->p == '.') e->p++;
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
  /* a dtype suffix: cast.f32(...), as.i64(...) */
  char *dot = strchr(x->prim, '.');
  if (dot) {
    kiln_dtype dt;
    if (!kg_dtype_parse(dot + 1, strlen(dot + 1), &dt)) {
      snprintf(e->err, e->errlen, "unknown dtype in '%s'", x->prim);
      return NULL;
    }
    *dot = 0;
    if (!strcmp(x->prim, "as")) {
      kc_expr *inner = parse(e);
      if (!inner) return NULL;
      skip(e);
      if (*e->p++ != ')') goto bad;
      inner->hint = dt;
      return inner;
    }
    if (strcmp(x->prim, "cast")) {
      snprintf(e->err, e->errlen, "only cast and as take a dtype suffix");
      return NULL;
    }
    x->to = dt;
  }
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

/* ---- printing and copying ---- */

typedef struct sbuf {
  kc_arena *a;
  char *p;
  size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *s) {
  size_t n = strlen(s);
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *np = kc_alloc(b->a, cap);
    if (b->len) memcpy(np, b->p, b->len);
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
}

static void print_rec(sbuf *b, const kc_expr *e) {
  char s[96];
  if (e->hint >= 0) {
    snprintf(s, sizeof s, "as.%s(", kg_dtype_name((kiln_dtype)e->hint));
    put(b, s);
  }
  if (e->kind == KC_EXPR_VAR) {
    snprintf(s, sizeof s, "x%d", e->var);
    put(b, s);
  } else if (e->kind == KC_EXPR_NUM) {
    snprintf(s, sizeof s, "%.17g", e->num);
    put(b, s);
  } else {
    if (e->to >= 0) snprintf(s, sizeof s, "%s.%s(", e->prim, kg_dtype_name((kiln_dtype)e->to));
    else snprintf(s, sizeof s, "%s(", e->prim);
    put(b, s);
    for (int i = 0; i < e->n_args; i++) {
      if (i) put(b, ", ");
      print_rec(b, e->args[i]);
    }
    put(b, ")");
  }
  if (e->hint >= 0) put(b, ")");
}

const char *kc_expr_print(kc_arena *a, const kc_expr *e) {
  sbuf b = {a, NULL, 0, 0};
  put(&b, "");
  print_rec(&b, e);
  return b.p;
}

const char *kc_expr_var_names(kc_arena *a, int n) {
  char *s = kc_alloc(a, (size_t)n * 8 + 1);
  size_t k = 0;
  for (int i = 0; i < n; i++) k += (size_t)sprintf(s + k, "%sx%d", i ? "," : "", i);
  return s;
}

kc_expr *kc_expr_copy(kc_arena *a, const kc_expr *e) {
  kc_expr *c = kc_alloc(a, sizeof *c);
  *c = *e;
  for (int i = 0; i < e->n_args; i++) c->args[i] = kc_expr_copy(a, e->args[i]);
  return c;
}

const kc_expr *kc_node_expr(kc_arena *a, const kg_node *n, char *err, size_t errlen) {
  static const char *assign_text[] = {"x1", "add(x0, x1)", "sub(x0, x1)"};
  if (n->op == KC_OP_ASSIGN || n->op == KC_OP_ASSIGN_ADD || n->op == KC_OP_ASSIGN_SUB)
    return kc_expr_parse(a, assign_text[n->op == KC_OP_ASSIGN ? 0 : n->op == KC_OP_ASSIGN_ADD ? 1 : 2], "x0,x1", err,
                         errlen);
  if (n->op != KC_OP_FUSED && n->op != KC_OP_ASSIGN_MAP) {
    const kc_expr *e = kc_op_expr(n->op);
    if (!e) snprintf(err, errlen, "op '%s' has no expression", kc_ops[n->op].name);
    return e;
  }
  const kg_attr *at = kg_node_attr(n, "expr");
  if (!at || at->kind != KG_ATTR_STRING) {
    snprintf(err, errlen, "a fused node needs an expr attribute");
    return NULL;
  }
  return kc_expr_parse(a, at->s, kc_expr_var_names(a, n->n_in), err, errlen);
}

/* ---- symbolic differentiation ---- */

static kc_expr *mk_num(kc_arena *a, double v) {
  kc_expr *e = kc_alloc(a, sizeof *e);
  e->kind = KC_EXPR_NUM;
  e->num = v;
  e->to = e->hint = -1;
  return e;
}

static bool is_num(const kc_expr *e, double v) { return e->kind == KC_EXPR_NUM && e->num == v && e->hint < 0; }

/* Builds prim(args) with the obvious simplifications of 0 and 1, so the
 * derivatives of simple ops stay simple. */
static kc_expr *mk(kc_arena *a, const char *prim, kc_expr *x, kc_expr *y, kc_expr *z) {
  if (!strcmp(prim, "add")) {
    if (is_num(x, 0)) return y;
    if (is_num(y, 0)) return x;
  } else if (!strcmp(prim, "sub")) {
    if (is_num(y, 0)) return x;
    if (is_num(x, 0)) return mk(a, "neg", y, NULL, NULL);
  } else if (!strcmp(prim, "mul")) {
    if (is_num(x, 0) || is_num(y, 0)) return mk_num(a, 0);
    if (is_num(x, 1)) return y;
    if (is_num(y, 1)) return x;
  } else if (!strcmp(prim, "div")) {
    if (is_num(x, 0)) return mk_num(a, 0);
    if (is_num(y, 1)) return x;
  } else if (!strcmp(prim, "neg")) {
    if (is_num(x, 0)) return x;
  } else if (!strcmp(prim, "select")) {
    if (is_num(y, 0) && is_num(z, 0)) return y;
  }
  kc_expr *e = kc_alloc(a, sizeof *e);
  e->kind = KC_EXPR_CALL;
  e->prim = prim;
  e->to = e->hint = -1;
  e->args[0] = x;
  e->args[1] = y;
  e->args[2] = z;
  e->n_args = z ? 3 : y ? 2 : 1;
  return e;
}

/* f'(x) of the unary functions the ONNX importer added (e is f(x) itself,
 * reused where the derivative is written in terms of it); false for other
 * primitives. */
static bool unary_diff(kc_arena *a, const char *p, const kc_expr *e, kc_expr *x, kc_expr **r) {
  kc_expr *one = mk_num(a, 1), *xx = mk(a, "mul", x, x, NULL);
  if (!strcmp(p, "erf")) /* 2/sqrt(pi) e^(-x^2) */
    *r = mk(a, "mul", mk_num(a, 1.1283791670955126), mk(a, "exp", mk(a, "neg", xx, NULL, NULL), NULL, NULL), NULL);
  else if (!strcmp(p, "tan")) *r = mk(a, "add", one, mk(a, "mul", (kc_expr *)e, (kc_expr *)e, NULL), NULL);
  else if (!strcmp(p, "asin")) *r = mk(a, "div", one, mk(a, "sqrt", mk(a, "sub", one, xx, NULL), NULL, NULL), NULL);
  else if (!strcmp(p, "acos"))
    *r = mk(a, "div", mk_num(a, -1), mk(a, "sqrt", mk(a, "sub", one, xx, NULL), NULL, NULL), NULL);
  else if (!strcmp(p, "atan")) *r = mk(a, "div", one, mk(a, "add", one, xx, NULL), NULL);
  else if (!strcmp(p, "sinh")) *r = mk(a, "cosh", x, NULL, NULL);
  else if (!strcmp(p, "cosh")) *r = mk(a, "sinh", x, NULL, NULL);
  else if (!strcmp(p, "asinh")) *r = mk(a, "div", one, mk(a, "sqrt", mk(a, "add", xx, one, NULL), NULL, NULL), NULL);
  else if (!strcmp(p, "acosh")) *r = mk(a, "div", one, mk(a, "sqrt", mk(a, "sub", xx, one, NULL), NULL, NULL), NULL);
  else if (!strcmp(p, "atanh")) *r = mk(a, "div", one, mk(a, "sub", one, xx, NULL), NULL);
  else return false;
  return true;
}

kc_expr *kc_expr_diff(kc_arena *a, const kc_expr *e, int var, char *err, size_t errlen) {
  if (e->kind == KC_EXPR_NUM) return mk_num(a, 0);
  if (e->kind == KC_EXPR_VAR) return mk_num(a, e->var == var ? 1 : 0);
  kc_expr *x = e->n_args > 0 ? (kc_expr *)e->args[0] : NULL, *y = e->n_args > 1 ? (kc_expr *)e->args[1] : NULL;
  kc_expr *dx = NULL, *dy = NULL;
  if (kc_prim_is_compare(e->prim) || !strcmp(e->prim, "and") || !strcmp(e->prim, "or") ||
      !strcmp(e->prim, "xor") || !strcmp(e->prim, "not") || !strcmp(e->prim, "floor") || !strcmp(e->prim, "ceil") ||
      !strcmp(e->prim, "round") || !strcmp(e->prim, "trunc") || !strcmp(e->prim, "shl") || !strcmp(e->prim, "shr"))
    return mk_num(a, 0); /* piecewise constant: no gradient */
  if (strcmp(e->prim, "select")) {
    if (x && !(dx = kc_expr_diff(a, x, var, err, errlen))) return NULL;
    if (y && !(dy = kc_expr_diff(a, y, var, err, errlen))) return NULL;
  }
  const char *p = e->prim;
  kc_expr *r;
  if (!strcmp(p, "add")) r = mk(a, "add", dx, dy, NULL);
  else if (!strcmp(p, "sub")) r = mk(a, "sub", dx, dy, NULL);
  else if (!strcmp(p, "mul")) r = mk(a, "add", mk(a, "mul", dx, y, NULL), mk(a, "mul", x, dy, NULL), NULL);
  else if (!strcmp(p, "div")) /* (dx*y - x*dy) / y^2 = dx/y - x*dy/y^2 */
    r = mk(a, "sub", mk(a, "div", dx, y, NULL), mk(a, "div", mk(a, "mul", x, dy, NULL), mk(a, "mul", y, y, NULL), NULL), NULL);
  else if (!strcmp(p, "mod")) /* x - floor(x/y)*y */
    r = mk(a, "sub", dx, mk(a, "mul", mk(a, "floor", mk(a, "div", x, y, NULL), NULL, NULL), dy, NULL), NULL);
  else if (!strcmp(p, "neg")) r = mk(a, "neg", dx, NULL, NULL);
  else if (!strcmp(p, "abs")) /* sign(x), 0 at 0 as TF */
    r = mk(a, "mul", mk(a, "select", mk(a, "gt", x, mk_num(a, 0), NULL),
                        mk_num(a, 1), mk(a, "select", mk(a, "lt", x, mk_num(a, 0), NULL), mk_num(a, -1), mk_num(a, 0))),
           dx, NULL);
  else if (!strcmp(p, "exp")) r = mk(a, "mul", (kc_expr *)e, dx, NULL);
  else if (!strcmp(p, "log")) r = mk(a, "div", dx, x, NULL);
  else if (!strcmp(p, "sqrt")) r = mk(a, "div", dx, mk(a, "mul", mk_num(a, 2), (kc_expr *)e, NULL), NULL);
  else if (!strcmp(p, "tanh")) r = mk(a, "mul", mk(a, "sub", mk_num(a, 1), mk(a, "mul", (kc_expr *)e, (kc_expr *)e, NULL), NULL), dx, NULL);
  else if (!strcmp(p, "sin")) r = mk(a, "mul", mk(a, "cos", x, NULL, NULL), dx, NULL);
  else if (!strcmp(p, "cos")) r = mk(a, "neg", mk(a, "mul", mk(a, "sin", x, NULL, NULL), dx, NULL), NULL, NULL);
  else if (!strcmp(p, "pow")) { /* y*x^(y-1)*dx + x^y*log(x)*dy, log taken as 0 where x <= 0 (as TF) */
    kc_expr *t1 = mk(a, "mul", mk(a, "mul", y, mk(a, "pow", x, mk(a, "sub", y, mk_num(a, 1), NULL), NULL), NULL), dx, NULL);
    kc_expr *logx = mk(a, "select", mk(a, "gt", x, mk_num(a, 0), NULL), mk(a, "log", mk(a, "max", x, mk_num(a, 1e-300), NULL), NULL, NULL), mk_num(a, 0));
    kc_expr *t2 = is_num(dy, 0) ? mk_num(a, 0) : mk(a, "mul", mk(a, "mul", (kc_expr *)e, logx, NULL), dy, NULL);
    r = mk(a, "add", t1, t2, NULL);
  } else if (unary_diff(a, p, e, x, &r)) r = mk(a, "mul", r, dx, NULL);
  else if (!strcmp(p, "max")) r = mk(a, "select", mk(a, "ge", x, y, NULL), dx, dy);
  else if (!strcmp(p, "min")) r = mk(a, "select", mk(a, "le", x, y, NULL), dx, dy);
  else if (!strcmp(p, "select")) {
    kc_expr *da = kc_expr_diff(a, e->args[1], var, err, errlen), *db = kc_expr_diff(a, e->args[2], var, err, errlen);
    if (!da || !db) return NULL;
    r = mk(a, "select", e->args[0], da, db);
  } else if (!strcmp(p, "cast")) r = dx;
  else {
    snprintf(err, errlen, "no derivative for primitive '%s'", p);
    return NULL;
  }
  return r;
}

static kiln_dtype first_typed(const kc_expr_typing *t, const kc_expr *e, kiln_dtype dflt) {
  if (e->hint >= 0) return (kiln_dtype)e->hint;
  if (e->kind == KC_EXPR_VAR) return t->var_dt[e->var];
  if (e->kind == KC_EXPR_NUM) return dflt;
  if (!strcmp(e->prim, "cast")) return e->to >= 0 ? (kiln_dtype)e->to : dflt;
  if (kc_prim_is_compare(e->prim)) return KILN_BOOL;
  int from = !strcmp(e->prim, "select") ? 1 : 0;
  for (int i = from; i < e->n_args; i++) {
    kiln_dtype d = first_typed(t, e->args[i], (kiln_dtype)-1);
    if ((int)d >= 0) return d;
  }
  return dflt;
}

kiln_dtype kc_expr_arg_hint(const kc_expr_typing *t, const kc_expr *e, kiln_dtype hint) {
  if (kc_prim_is_compare(e->prim) || !strcmp(e->prim, "cast")) {
    kiln_dtype d = (kiln_dtype)-1;
    for (int i = 0; i < e->n_args && (int)d < 0; i++) d = first_typed(t, e->args[i], (kiln_dtype)-1);
    return (int)d >= 0 ? d : hint;
  }
  return !strcmp(e->prim, "select") ? hint : first_typed(t, e, hint);
}

kiln_dtype kc_expr_call_dtype(const kc_expr_typing *t, const kc_expr *e, const kiln_dtype *dts, kiln_dtype *out) {
  bool sel = !strcmp(e->prim, "select");
  kiln_dtype dt = sel ? dts[1] : dts[0];
  *out = kc_prim_is_compare(e->prim) ? KILN_BOOL
         : !strcmp(e->prim, "cast") ? (e->to >= 0 ? (kiln_dtype)e->to : t->out_dt)
                                    : dt;
  return dt;
}
