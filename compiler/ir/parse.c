/* parse.c — the .kg parser: text to graph.
 *
 * Design: one recursive-descent pass builds nodes in declaration order;
 * operands are recorded by name and resolved once the whole module is read,
 * so nodes may refer forward (graph order is data order, not text order) and
 * a cycle is a verifier error rather than a parse error.  Nested calls such
 * as add(x, const<i32[]>(1)) become anonymous nodes named after their user
 * (`y/const`), so the printed form is flat and parses back to the same
 * graph.  The grammar is documented in docs/ir.md. */
#include "ir/parse.h"
#include "ir/lex.h"
#include "ir/ops.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* compiler/ops/train.c: declares the variables that training ops create
 * (optimizer slots, EMA shadows) once operands are resolved. */
bool kc_declare_slots(kg_module *m, kc_diag *d);

typedef struct pending {
  int node;    /* user node */
  int slot;    /* operand index, or -1-k for control dep k */
  const char *name;
  size_t len;
  kc_loc loc;
  const char *scope; /* the `scope` prefix where the name was used, or NULL */
} pending;

typedef struct parser {
  kc_lexer lx;
  kc_tok tok;
  kc_diag *diag;
  kg_module *m;
  kc_arena *a;
  pending *pend;
  int n_pend, cap_pend;
  bool failed;
  const char *device; /* innermost `device X { }` block */
  const char *scope;  /* innermost `scope X { }` block: "X/" (nested: "outer/X/"), or NULL */
  int depth; /* nesting of calls inside calls */
} parser;

/* A literal before it meets its dtype. */
typedef struct literal {
  int rank;
  int64_t dim[KILN_MAX_RANK];
  int n, cap;
  double *f;
  int64_t *i;
  bool any_float;
} literal;

static void next(parser *p) {
  p->tok = kc_lex_next(&p->lx);
  if (p->tok.kind == KC_TOK_ERROR && !p->failed) {
    if (p->tok.len == 19 && !memcmp(p->tok.s, "unterminated string", 19))
      kc_error(p->diag, p->tok.loc, "unterminated string");
    else
      kc_error(p->diag, p->tok.loc, "unexpected character '%c'", *p->tok.s);
    p->failed = true;
  }
}

static bool fail(parser *p, const char *what) {
  if (!p->failed) {
    if (p->tok.kind == KC_TOK_EOF)
      kc_error(p->diag, p->tok.loc, "expected %s, found end of file", what);
    else
      kc_error(p->diag, p->tok.loc, "expected %s, found '%.*s'", what, (int)p->tok.len, p->tok.s);
  }
  p->failed = true;
  return false;
}

static bool is_punct(parser *p, char c) {
  return p->tok.kind == KC_TOK_PUNCT && p->tok.s[0] == c;
}

static bool accept(parser *p, char c) {
  if (!is_punct(p, c)) return false;
  next(p);
  return true;
}

static bool expect(parser *p, char c) {
  char what[8] = {'\'', c, '\'', 0};
  if (accept(p, c)) return true;
  return fail(p, what);
}

static bool is_word(parser *p, const char *w) {
  return p->tok.kind == KC_TOK_IDENT && p->tok.len == strlen(w) && !memcmp(p->tok.s, w, p->tok.len);
}

static bool ident(parser *p, const char **s, size_t *len, const char *what) {
  *s = "";
  *len = 0;
  if (p->tok.kind != KC_TOK_IDENT) return fail(p, what);
  *s = p->tok.s;
  *len = p->tok.len;
  next(p);
  return true;
}

/* The current token as a NUL-terminated string (the source is not). */
static const char *tok_text(parser *p, char *buf, size_t n) {
  size_t len = p->tok.len < n - 1 ? p->tok.len : n - 1;
  memcpy(buf, p->tok.s, len);
  buf[len] = 0;
  return buf;
}

static bool int_tok(parser *p, int64_t *v) {
  if (p->tok.kind != KC_TOK_INT) return fail(p, "an integer");
  errno = 0;
  char buf[64];
  *v = strtoll(tok_text(p, buf, sizeof buf), NULL, 10);
  if (errno) {
    kc_error(p->diag, p->tok.loc, "integer out of range");
    p->failed = true;
    return false;
  }
  next(p);
  return true;
}

/* ---- types ---- */

static bool parse_type(parser *p, kg_type *t) {
  const char *s;
  size_t len;
  kc_loc loc = p->tok.loc;
  if (!ident(p, &s, &len, "a type such as f32[2,3]")) return false;
  if (!kg_dtype_parse(s, len, &t->dtype)) {
    kc_error(p->diag, loc, "unknown dtype '%.*s' (expected bool, i8, u8, i32, i64, f32 or f64)",
             (int)len, s);
    return p->failed = true, false;
  }
  if (!expect(p, '[')) return false;
  t->shape.rank = 0;
  if (!is_punct(p, ']')) {
    do {
      int64_t d;
      kc_loc dl = p->tok.loc;
      if (!int_tok(p, &d)) return false;
      if (d < 0) {
        kc_error(p->diag, dl, "negative dimension %lld", (long long)d);
        return p->failed = true, false;
      }
      if (t->shape.rank == KILN_MAX_RANK) {
        kc_error(p->diag, dl, "rank above %d is not supported", KILN_MAX_RANK);
        return p->failed = true, false;
      }
      t->shape.dim[t->shape.rank++] = d;
    } while (accept(p, ','));
  }
  /* sizes are computed in int64 everywhere: keep every tensor far below that */
  int64_t bytes = (int64_t)kg_dtype_size(t->dtype);
  for (int i = 0; i < t->shape.rank; i++)
    if (__builtin_mul_overflow(bytes, t->shape.dim[i], &bytes) || bytes > ((int64_t)1 << 40)) {
      kc_error(p->diag, loc, "the type is too large (more than 2^40 bytes)");
      return p->failed = true, false;
    }
  return expect(p, ']');
}

/* `T` or `(T, U, ...)`; result in arena memory. */
static bool parse_types(parser *p, int *n, kg_type **out) {
  kg_type tmp[64];
  int k = 0;
  bool paren = accept(p, '(');
  do {
    if (k == 64) return fail(p, "at most 64 types");
    if (!parse_type(p, &tmp[k++])) return false;
  } while (paren && accept(p, ','));
  if (paren && !expect(p, ')')) return false;
  *out = kc_alloc(p->a, sizeof(kg_type) * (size_t)k);
  memcpy(*out, tmp, sizeof(kg_type) * (size_t)k);
  *n = k;
  return true;
}

/* ---- literals ---- */

static bool lit_push(parser *p, literal *l, double f, int64_t i, bool is_float) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    double *nf = kc_alloc(p->a, sizeof(double) * (size_t)l->cap);
    int64_t *ni = kc_alloc(p->a, sizeof(int64_t) * (size_t)l->cap);
    if (l->n) {
      memcpy(nf, l->f, sizeof(double) * (size_t)l->n);
      memcpy(ni, l->i, sizeof(int64_t) * (size_t)l->n);
    }
    l->f = nf;
    l->i = ni;
  }
  l->f[l->n] = f;
  l->i[l->n] = i;
  l->n++;
  l->any_float |= is_float;
  return true;
}

static bool parse_scalar(parser *p, literal *l) {
  if (p->tok.kind == KC_TOK_INT) {
    errno = 0;
    char buf[64];
    long long v = strtoll(tok_text(p, buf, sizeof buf), NULL, 10);
    if (errno) {
      kc_error(p->diag, p->tok.loc, "integer out of range");
      return p->failed = true, false;
    }
    next(p);
    return lit_push(p, l, (double)v, v, false);
  }
  if (p->tok.kind == KC_TOK_FLOAT) {
    char buf[64];
    double v = strtod(tok_text(p, buf, sizeof buf), NULL);
    next(p);
    /* the integer view of a float literal is only used for error checks */
    int64_t iv = v > -9.2e18 && v < 9.2e18 ? (int64_t)v : 0;
    return lit_push(p, l, v, iv, true);
  }
  if (is_word(p, "true") || is_word(p, "false")) {
    int v = is_word(p, "true");
    next(p);
    return lit_push(p, l, v, v, false);
  }
  if (is_word(p, "inf") || is_word(p, "nan")) {
    double v = is_word(p, "inf") ? INFINITY : NAN;
    next(p);
    return lit_push(p, l, v, 0, true);
  }
  if (p->tok.kind == KC_TOK_PUNCT && p->tok.s[0] == '-') { /* never produced: '-' lexes into numbers */
  }
  return fail(p, "a number");
}

/* Nested lists; every list at one depth must have the same length. */
static bool parse_lit_rec(parser *p, literal *l, int depth) {
  if (!is_punct(p, '[')) {
    if (depth != l->rank && l->n > 0) {
      kc_error(p->diag, p->tok.loc, "ragged literal: a number where a list was expected");
      return p->failed = true, false;
    }
    if (l->n == 0) l->rank = depth;
    return parse_scalar(p, l);
  }
  kc_loc loc = p->tok.loc;
  next(p);
  if (depth >= KILN_MAX_RANK) {
    kc_error(p->diag, loc, "literal nested deeper than %d", KILN_MAX_RANK);
    return p->failed = true, false;
  }
  int64_t count = 0;
  if (!is_punct(p, ']')) {
    do {
      if (!parse_lit_rec(p, l, depth + 1)) return false;
      count++;
    } while (accept(p, ','));
  } else if (l->n == 0) {
    l->rank = depth + 1;
  }
  if (!expect(p, ']')) return false;
  if (depth >= l->rank) {
    kc_error(p->diag, loc, "ragged literal: a list where a number was expected");
    return p->failed = true, false;
  }
  if (l->dim[depth] == -1) {
    l->dim[depth] = count;
  } else if (l->dim[depth] != count) {
    kc_error(p->diag, loc, "ragged literal: %lld element(s) where %lld were expected", (long long)count,
             (long long)l->dim[depth]);
    return p->failed = true, false;
  }
  return true;
}

static bool parse_literal(parser *p, literal *l) {
  memset(l, 0, sizeof *l);
  for (int i = 0; i < KILN_MAX_RANK; i++) l->dim[i] = -1;
  if (!parse_lit_rec(p, l, 0)) return false;
  for (int i = 0; i < l->rank; i++)
    if (l->dim[i] < 0) l->dim[i] = 0;
  return true;
}

static void store_elem(kiln_dtype dt, void *data, int64_t k, double f, int64_t i, bool use_f) {
  switch (dt) {
  case KILN_BOOL: ((_Bool *)data)[k] = use_f ? f != 0 : i != 0; break;
  case KILN_I8: ((int8_t *)data)[k] = (int8_t)(use_f ? (int64_t)f : i); break;
  case KILN_U8: ((uint8_t *)data)[k] = (uint8_t)(use_f ? (int64_t)f : i); break;
  case KILN_I32: ((int32_t *)data)[k] = (int32_t)(use_f ? (int64_t)f : i); break;
  case KILN_I64: ((int64_t *)data)[k] = use_f ? (int64_t)f : i; break;
  case KILN_F32: ((float *)data)[k] = (float)(use_f ? f : (double)i); break;
  case KILN_F64: ((double *)data)[k] = use_f ? f : (double)i; break;
  default: break;
  }
}

/* Constants are kept in the compiler and in the binary: a sane bound. */
#define KILN_MAX_LITERAL_BYTES ((int64_t)1 << 30)

static bool t_bytes_too_large(parser *p, const kg_type *t, kc_loc loc) {
  if (kg_type_bytes(t) <= KILN_MAX_LITERAL_BYTES) return false;
  char buf[160];
  kc_error(p->diag, loc, "a literal of type %s is larger than 1 GiB; feed it or initialize it in the program instead",
           kg_type_str(t, buf, sizeof buf));
  p->failed = true;
  return true;
}

static void int_range(kiln_dtype dt, int64_t *lo, int64_t *hi) {
  switch (dt) {
  case KILN_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
  case KILN_U8: *lo = 0, *hi = UINT8_MAX; break;
  case KILN_I32: *lo = INT32_MIN, *hi = INT32_MAX; break;
  default: *lo = INT64_MIN, *hi = INT64_MAX; break;
  }
}

/* Gives a literal its type: its shape must equal the type's, or it is a
 * scalar that fills the whole tensor. */
static bool literal_to_tensor(parser *p, const literal *l, const kg_type *t, kc_loc loc,
                              kg_tensor *out) {
  int64_t numel = kg_shape_numel(&t->shape);
  bool scalar = l->rank == 0 && l->n == 1;
  if (t_bytes_too_large(p, t, loc)) return false;
  if (!scalar && !(numel == 0 && l->n == 0)) {
    kg_shape ls = {.rank = l->rank};
    for (int i = 0; i < l->rank; i++) ls.dim[i] = l->dim[i];
    if (!kg_shape_eq(&ls, &t->shape)) {
      char a[96], b[96];
      kg_type lt = {t->dtype, ls};
      kc_error(p->diag, loc, "literal of shape %s does not match the type %s",
               kg_type_str(&lt, a, sizeof a) + strlen(kg_dtype_name(t->dtype)),
               kg_type_str(t, b, sizeof b));
      return p->failed = true, false;
    }
  }
  if (l->any_float && !kg_dtype_is_float(t->dtype) && t->dtype != KILN_BOOL) {
    kc_error(p->diag, loc, "a fractional number in a literal of integer type %s",
             kg_dtype_name(t->dtype));
    return p->failed = true, false;
  }
  if (!l->any_float && kg_dtype_is_int(t->dtype)) {
    int64_t lo, hi;
    int_range(t->dtype, &lo, &hi);
    for (int i = 0; i < l->n; i++)
      if (l->i[i] < lo || l->i[i] > hi) {
        kc_error(p->diag, loc, "%lld is out of range for %s", (long long)l->i[i], kg_dtype_name(t->dtype));
        return p->failed = true, false;
      }
  }
  out->type = *t;
  out->data = kc_alloc(p->a, (size_t)kg_type_bytes(t));
  for (int64_t k = 0; k < numel; k++) {
    int64_t s = scalar ? 0 : k;
    store_elem(t->dtype, out->data, k, l->f[s], l->i[s], l->any_float);
  }
  return true;
}

/* ---- attributes ---- */

/* The current string token's text with its escapes (\n \t \" \\) decoded. */
static char *string_tok(parser *p) {
  char *s = kc_alloc(p->a, p->tok.len);
  size_t k = 0;
  for (size_t i = 1; i + 1 < p->tok.len; i++) {
    char c = p->tok.s[i];
    if (c == '\\' && i + 2 < p->tok.len) {
      c = p->tok.s[++i];
      c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
    }
    s[k++] = c;
  }
  s[k] = 0;
  return s;
}

static bool parse_attr_value(parser *p, kg_attr *at) {
  if (p->tok.kind == KC_TOK_STRING) {
    at->kind = KG_ATTR_STRING;
    at->s = string_tok(p);
    next(p);
    return true;
  }
  if (is_word(p, "true") || is_word(p, "false")) {
    at->kind = KG_ATTR_BOOL;
    at->b = is_word(p, "true");
    next(p);
    return true;
  }
  if (p->tok.kind == KC_TOK_IDENT && !is_word(p, "inf") && !is_word(p, "nan")) {
    /* a bare word: a dtype or a string; the verifier coerces by the op's spec */
    at->kind = KG_ATTR_STRING;
    at->s = kc_strndup(p->a, p->tok.s, p->tok.len);
    next(p);
    if (is_punct(p, '[')) { /* a shape: f32[2,3] style is not an attr; reject clearly */
      return fail(p, "',' or '}'");
    }
    return true;
  }
  literal l;
  if (!parse_literal(p, &l)) return false;
  if (l.rank == 0) {
    if (l.any_float) {
      at->kind = KG_ATTR_FLOAT;
      at->f = l.f[0];
    } else {
      at->kind = KG_ATTR_INT;
      at->i = l.i[0];
    }
    return true;
  }
  if (l.rank > 1) {
    kc_error(p->diag, at->loc, "attribute '%s': nested lists are not attribute values", at->name);
    return p->failed = true, false;
  }
  if (l.any_float) {
    at->kind = KG_ATTR_FLOATS;
    at->floats.n = l.n;
    at->floats.v = l.f;
  } else {
    at->kind = KG_ATTR_INTS;
    at->ints.n = l.n;
    at->ints.v = l.i;
  }
  return true;
}

static bool parse_attrs_until(parser *p, kg_node *n, char close) {
  kg_attr tmp[64];
  int k = n->n_attrs;
  if (k) memcpy(tmp, n->attrs, sizeof(kg_attr) * (size_t)k);
  if (!is_punct(p, close)) {
    do {
      const char *s;
      size_t len;
      kc_loc loc = p->tok.loc;
      if (!ident(p, &s, &len, "an attribute name")) return false;
      if (k == 64) return fail(p, "at most 64 attributes");
      for (int i = 0; i < k; i++)
        if (strlen(tmp[i].name) == len && !memcmp(tmp[i].name, s, len)) {
          kc_error(p->diag, loc, "attribute '%.*s' given twice", (int)len, s);
          return p->failed = true, false;
        }
      kg_attr *at = &tmp[k++];
      memset(at, 0, sizeof *at);
      at->name = kc_strndup(p->a, s, len);
      at->loc = loc;
      if (!expect(p, '=') || !parse_attr_value(p, at)) return false;
    } while (accept(p, ','));
  }
  if (!expect(p, close)) return false;
  n->attrs = kc_alloc(p->a, sizeof(kg_attr) * (size_t)(k ? k : 1));
  memcpy(n->attrs, tmp, sizeof(kg_attr) * (size_t)k);
  n->n_attrs = k;
  return true;
}

static bool parse_attrs(parser *p, kg_node *n) { return parse_attrs_until(p, n, '}'); }
static bool parse_attrs_paren(parser *p, kg_node *n) { return parse_attrs_until(p, n, ')'); }

static void set_attr_tensor(parser *p, kg_node *n, const char *name, const kg_tensor *t, kc_loc loc) {
  kg_attr *na = kc_alloc(p->a, sizeof(kg_attr) * (size_t)(n->n_attrs + 1));
  if (n->n_attrs) memcpy(na, n->attrs, sizeof(kg_attr) * (size_t)n->n_attrs);
  kg_attr *at = &na[n->n_attrs];
  at->name = name;
  at->kind = KG_ATTR_TENSOR;
  at->loc = loc;
  at->tensor = *t;
  n->attrs = na;
  n->n_attrs++;
}

static void set_attr_string(parser *p, kg_node *n, const char *name, const char *v, kc_loc loc) {
  kg_attr *na = kc_alloc(p->a, sizeof(kg_attr) * (size_t)(n->n_attrs + 1));
  if (n->n_attrs) memcpy(na, n->attrs, sizeof(kg_attr) * (size_t)n->n_attrs);
  kg_attr *at = &na[n->n_attrs];
  at->name = name;
  at->kind = KG_ATTR_STRING;
  at->loc = loc;
  at->s = v;
  n->attrs = na;
  n->n_attrs++;
}

/* ---- devices ---- */

static bool parse_device(parser *p, const char **out) {
  const char *s;
  size_t len;
  kc_loc loc = p->tok.loc;
  if (p->tok.kind == KC_TOK_STRING) {
    s = p->tok.s + 1;
    len = p->tok.len - 2;
    next(p);
  } else {
    if (!ident(p, &s, &len, "a device such as gpu:0")) return false;
    if (accept(p, ':')) {
      int64_t k;
      if (!int_tok(p, &k)) return false;
      *out = kc_sprintf(p->a, "%.*s:%lld", (int)len, s, (long long)k);
      s = *out;
      len = strlen(s);
    }
  }
  /* "/device:GPU:0", "/gpu:0" and "gpu:0" all name the same device */
  const char *d = kc_strndup(p->a, s, len);
  if (!strncmp(d, "/device:", 8)) d += 8;
  else if (*d == '/') d++;
  char kind[8] = {0};
  int idx = -1, used = 0;
  if (sscanf(d, "%7[A-Za-z]:%d%n", kind, &idx, &used) != 2 || d[used] || idx < 0 ||
      (strcasecmp(kind, "cpu") && strcasecmp(kind, "gpu"))) {
    kc_error(p->diag, loc, "unknown device '%s' (expected cpu:N or gpu:N)", d);
    return p->failed = true, false;
  }
  *out = kc_sprintf(p->a, "%s:%d", strcasecmp(kind, "cpu") ? "gpu" : "cpu", idx);
  return true;
}

/* ---- nodes ---- */

static void add_pending(parser *p, int node, int slot, const char *s, size_t len, kc_loc loc) {
  if (p->n_pend == p->cap_pend) {
    p->cap_pend = p->cap_pend ? p->cap_pend * 2 : 64;
    pending *np = kc_alloc(p->a, sizeof(pending) * (size_t)p->cap_pend);
    if (p->n_pend) memcpy(np, p->pend, sizeof(pending) * (size_t)p->n_pend);
    p->pend = np;
  }
  p->pend[p->n_pend++] = (pending){node, slot, s, len, loc, p->scope};
}

static const char *unique_name(parser *p, const char *base) {
  const char *name = base;
  for (int k = 1; kc_module_find(p->m, name, strlen(name)) >= 0; k++)
    name = kc_sprintf(p->a, "%s_%d", base, k);
  return name;
}

static int parse_call(parser *p, const char *name, kc_loc loc);

/* The operands of a call: names (resolved later), nested calls, and for
 * const a literal. */
typedef struct arg {
  bool is_node; /* a nested call already added: node index in `node` */
  int node;
  const char *s;
  size_t len;
  kc_loc loc;
} arg;

static int parse_call(parser *p, const char *name, kc_loc loc) {
  const char *s;
  size_t len;
  kc_loc oploc = p->tok.loc;
  if (!ident(p, &s, &len, "an op name")) return -1;
  int op = kc_op_find(s, len);
  if (op < 0) {
    kc_error(p->diag, oploc, "unknown op '%.*s'", (int)len, s);
    p->failed = true;
    return -1;
  }
  kg_node n = {0};
  n.name = name;
  n.op = op;
  n.loc = loc;
  n.device = p->device;
  if (accept(p, '<')) {
    if (!parse_types(p, &n.n_out, &n.out)) return -1;
    n.out_declared = true;
    if (!expect(p, '>')) return -1;
  }
  if (!expect(p, '(')) return -1;
  int cap_args = 8, n_args = 0;
  arg *args = kc_alloc(p->a, sizeof(arg) * (size_t)cap_args);
  bool has_literal = false;
  literal lit;
  kc_loc litloc = p->tok.loc;
  if (!is_punct(p, ')')) {
    do {
      if (n_args == 256) return fail(p, "at most 256 operands"), -1;
      if (n_args == cap_args) {
        arg *na = kc_alloc(p->a, sizeof(arg) * (size_t)cap_args * 2);
        memcpy(na, args, sizeof(arg) * (size_t)n_args);
        args = na;
        cap_args *= 2;
      }
      arg *ag = &args[n_args];
      ag->loc = p->tok.loc;
      if (op == KC_OP_CONST && n_args == 0 && p->tok.kind != KC_TOK_IDENT) {
        litloc = p->tok.loc;
        if (!parse_literal(p, &lit)) return -1;
        has_literal = true;
        continue;
      }
      if (op == KC_OP_CONST && (is_word(p, "true") || is_word(p, "false") || is_word(p, "inf") ||
                                is_word(p, "nan"))) {
        litloc = p->tok.loc;
        if (!parse_literal(p, &lit)) return -1;
        has_literal = true;
        continue;
      }
      if (p->tok.kind != KC_TOK_IDENT) return fail(p, "an operand"), -1;
      /* a nested call if the name is followed by '(' or '<' */
      kc_lexer save = p->lx;
      kc_tok save_tok = p->tok;
      next(p);
      bool nested = is_punct(p, '(') || is_punct(p, '<');
      p->lx = save;
      p->tok = save_tok;
      if (nested) {
        const char *base = kc_sprintf(p->a, "%s/%.*s", name, (int)p->tok.len, p->tok.s);
        if (++p->depth > 100) {
          kc_error(p->diag, p->tok.loc, "calls nested more than 100 deep; name the intermediate nodes");
          p->failed = true;
          return -1;
        }
        int k = parse_call(p, unique_name(p, base), p->tok.loc);
        p->depth--;
        if (k < 0) return -1;
        ag->is_node = true;
        ag->node = k;
      } else {
        ag->is_node = false;
        ag->s = p->tok.s;
        ag->len = p->tok.len;
        next(p);
      }
      n_args++;
    } while (accept(p, ','));
  }
  if (!expect(p, ')')) return -1;
  if (accept(p, '{') && !parse_attrs(p, &n)) return -1;
  if (op == KC_OP_CONST) {
    if (!has_literal) {
      kc_error(p->diag, oploc, "const needs a literal value: const<T>(...)");
      p->failed = true;
      return -1;
    }
    if (!n.out_declared) {
      kc_error(p->diag, oploc, "const needs its type: const<T>(...)");
      p->failed = true;
      return -1;
    }
    kg_tensor t;
    if (!literal_to_tensor(p, &lit, &n.out[0], litloc, &t)) return -1;
    set_attr_tensor(p, &n, "value", &t, litloc);
  }
  n.n_in = n_args;
  n.in = kc_alloc(p->a, sizeof(kg_ref) * (size_t)(n_args ? n_args : 1));
  int idx = kc_module_add_node(p->m, &n);
  for (int i = 0; i < n_args; i++) {
    if (args[i].is_node)
      p->m->nodes[idx].in[i] = (kg_ref){args[i].node, 0};
    else
      add_pending(p, idx, i, args[i].s, args[i].len, args[i].loc);
  }
  return idx;
}

/* ---- scopes: `scope NAME { ... }` puts "NAME/" before the names declared
 * inside (nested scopes stack up), as a TF variable scope does; a name used
 * inside means the innermost scoped one that exists (see resolve_scoped). */

static void scoped_name(parser *p, const char **s, size_t *len) {
  if (!p->scope) return;
  *s = kc_sprintf(p->a, "%s%.*s", p->scope, (int)*len, *s);
  *len = strlen(*s);
}

/* `scope` followed by a name (not `scope = ...`, a node called scope) */
static bool is_scope(parser *p) {
  if (!is_word(p, "scope")) return false;
  kc_lexer save = p->lx;
  kc_tok save_tok = p->tok;
  next(p);
  bool yes = p->tok.kind == KC_TOK_IDENT;
  p->lx = save;
  p->tok = save_tok;
  return yes;
}

/* 'scope' NAME '{': enters the scope; *outer is what to restore after '}'. */
static bool enter_scope(parser *p, const char **outer) {
  const char *s;
  size_t len;
  next(p);
  kc_loc loc = p->tok.loc;
  if (!ident(p, &s, &len, "a scope name")) return false;
  if (memchr(s, '.', len)) {
    kc_error(p->diag, loc, "a scope name cannot contain '.': '%.*s'", (int)len, s);
    return p->failed = true, false;
  }
  *outer = p->scope;
  p->scope = kc_sprintf(p->a, "%s%.*s/", *outer ? *outer : "", (int)len, s);
  return expect(p, '{');
}

static bool check_new_name(parser *p, const char *s, size_t len, kc_loc loc) {
  static const char *const keywords[] = {"module", "var", "queue", "graph", "device", "entry", "program", "after",
                                         "scope", "true", "false", "inf", "nan"};
  for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
    if (strlen(keywords[i]) == len && !memcmp(keywords[i], s, len)) {
      kc_error(p->diag, loc, "'%s' is a keyword and cannot name a node", keywords[i]);
      return p->failed = true, false;
    }
  int prev = kc_module_find(p->m, s, len);
  if (prev >= 0) {
    kc_error(p->diag, loc, "'%.*s' is already defined", (int)len, s);
    kc_note(p->diag, p->m->nodes[prev].loc, "previous definition is here");
    return p->failed = true, false;
  }
  for (size_t i = 0; i < len; i++)
    if (s[i] == '.') {
      kc_error(p->diag, loc, "a name cannot contain '.' (it selects an output): '%.*s'", (int)len, s);
      return p->failed = true, false;
    }
  return true;
}

/* node := NAME '=' call attrs? (':' types)? ('after' '[' names ']')? ('@' device)? */
static bool parse_node(parser *p) {
  const char *s;
  size_t len;
  kc_loc loc = p->tok.loc;
  if (!ident(p, &s, &len, "a node name")) return false;
  scoped_name(p, &s, &len);
  if (!check_new_name(p, s, len, loc)) return false;
  if (!expect(p, '=')) return false;
  int first = p->m->n_nodes; /* nested calls get indices first..idx-1 */
  int idx = parse_call(p, kc_strndup(p->a, s, len), loc);
  if (idx < 0) return false;
  kg_node *n = &p->m->nodes[idx];
  if (accept(p, ':')) {
    kc_loc tl = p->tok.loc;
    int cnt;
    kg_type *types;
    if (!parse_types(p, &cnt, &types)) return false;
    if (n->out_declared) {
      kc_error(p->diag, tl, "the type is given twice (in <...> and after ':')");
      return p->failed = true, false;
    }
    n->n_out = cnt;
    n->out = types;
    n->out_declared = true;
  }
  if (is_word(p, "after")) {
    next(p);
    if (!expect(p, '[')) return false;
    int k = 0, cap = 8;
    int *ctrl = kc_alloc(p->a, sizeof(int) * (size_t)cap);
    if (!is_punct(p, ']')) {
      do {
        kc_loc cl = p->tok.loc;
        const char *cs;
        size_t cl_len;
        if (!ident(p, &cs, &cl_len, "a node name")) return false;
        if (k == cap) {
          int *nc = kc_alloc(p->a, sizeof(int) * (size_t)cap * 2);
          memcpy(nc, ctrl, sizeof(int) * (size_t)k);
          ctrl = nc;
          cap *= 2;
        }
        ctrl[k] = -1;
        add_pending(p, idx, -1 - k, cs, cl_len, cl);
        k++;
      } while (accept(p, ','));
    }
    if (!expect(p, ']')) return false;
    p->m->nodes[idx].ctrl = ctrl;
    p->m->nodes[idx].n_ctrl = k;
  }
  if (accept(p, '@')) {
    const char *dev;
    if (!parse_device(p, &dev)) return false;
    /* the nested calls of a placed node go where it goes */
    for (int i = first; i <= idx; i++) p->m->nodes[i].device = dev;
  }
  return true;
}

static bool parse_graph_items(parser *p) {
  while (!p->failed && !is_punct(p, '}')) {
    if (p->tok.kind == KC_TOK_EOF) return fail(p, "'}'");
    if (is_word(p, "device")) {
      next(p);
      const char *dev, *outer = p->device;
      if (!parse_device(p, &dev) || !expect(p, '{')) return false;
      p->device = dev;
      bool ok = parse_graph_items(p) && expect(p, '}');
      p->device = outer;
      if (!ok) return false;
      continue;
    }
    if (is_scope(p)) {
      const char *outer;
      if (!enter_scope(p, &outer)) return false;
      bool ok = parse_graph_items(p) && expect(p, '}');
      p->scope = outer;
      if (!ok) return false;
      continue;
    }
    if (!parse_node(p)) return false;
  }
  return !p->failed;
}

/* var NAME : TYPE ('=' init)? attrs? ('@' device)? */
static bool parse_var(parser *p) {
  const char *s;
  size_t len;
  kc_loc loc = p->tok.loc;
  if (!ident(p, &s, &len, "a variable name")) return false;
  scoped_name(p, &s, &len);
  if (!check_new_name(p, s, len, loc)) return false;
  kg_node n = {0};
  n.name = kc_strndup(p->a, s, len);
  n.op = KC_OP_VARIABLE;
  n.loc = loc;
  n.device = p->device;
  n.out = kc_alloc(p->a, sizeof(kg_type));
  n.n_out = 1;
  n.out_declared = true;
  if (!expect(p, ':') || !parse_type(p, &n.out[0])) return false;
  n.in = kc_alloc(p->a, sizeof(kg_ref));
  if (accept(p, '=')) {
    kc_loc il = p->tok.loc;
    if (p->tok.kind == KC_TOK_IDENT && !is_word(p, "true") && !is_word(p, "false") &&
        !is_word(p, "inf") && !is_word(p, "nan")) {
      const char *is;
      size_t il_len;
      ident(p, &is, &il_len, "an initializer");
      set_attr_string(p, &n, "init", kc_strndup(p->a, is, il_len), il);
      if (accept(p, '(') && !parse_attrs_paren(p, &n)) return false;
    } else {
      literal lit;
      kg_tensor t;
      if (!parse_literal(p, &lit) || !literal_to_tensor(p, &lit, &n.out[0], il, &t)) return false;
      set_attr_string(p, &n, "init", "value", il);
      set_attr_tensor(p, &n, "value", &t, il);
    }
  }
  if (accept(p, '{') && !parse_attrs(p, &n)) return false;
  if (accept(p, '@') && !parse_device(p, &n.device)) return false;
  kc_module_add_node(p->m, &n);
  return true;
}

/* queue NAME : KIND '(' attrs ')' 'of' '(' types ')' ('@' device)? */
static bool parse_queue(parser *p) {
  const char *s, *ks;
  size_t len, klen;
  kc_loc loc = p->tok.loc;
  if (!ident(p, &s, &len, "a queue name")) return false;
  scoped_name(p, &s, &len);
  if (!check_new_name(p, s, len, loc)) return false;
  kg_node n = {0};
  n.name = kc_strndup(p->a, s, len);
  n.op = KC_OP_QUEUE;
  n.loc = loc;
  n.device = p->device;
  n.in = kc_alloc(p->a, sizeof(kg_ref));
  if (!expect(p, ':')) return false;
  kc_loc kl = p->tok.loc;
  if (!ident(p, &ks, &klen, "a queue kind such as fifo")) return false;
  set_attr_string(p, &n, "kind", kc_strndup(p->a, ks, klen), kl);
  if (!expect(p, '(') || !parse_attrs_paren(p, &n)) return false;
  if (!is_word(p, "of")) return fail(p, "'of' and the element types");
  next(p);
  if (!is_punct(p, '(')) return fail(p, "'(' and the element types");
  if (!parse_types(p, &n.n_comp, &n.comp)) return false;
  if (accept(p, '@') && !parse_device(p, &n.device)) return false;
  kc_module_add_node(p->m, &n);
  return true;
}

/* scope NAME '{' (var | queue | scope)* '}' at the top level */
static bool parse_scoped_decls(parser *p) {
  const char *outer;
  if (!enter_scope(p, &outer)) return false;
  while (!p->failed && !is_punct(p, '}')) {
    if (is_word(p, "var")) { next(p); parse_var(p); }
    else if (is_word(p, "queue")) { next(p); parse_queue(p); }
    else if (is_scope(p)) parse_scoped_decls(p);
    else fail(p, "'var', 'queue', 'scope' or '}'");
  }
  p->scope = outer;
  return !p->failed && expect(p, '}');
}

/* ---- entries and the program ---- */

/* A reference by name, resolved after the whole module is read. */
typedef struct nref {
  const char *s;
  size_t len;
  kc_loc loc;
} nref;

static bool parse_names(parser *p, nref **out, int *n, char close) {
  int cap = 8, k = 0;
  nref *v = kc_alloc(p->a, sizeof(nref) * (size_t)cap);
  if (!is_punct(p, close)) {
    do {
      if (k == cap) {
        nref *nv = kc_alloc(p->a, sizeof(nref) * (size_t)cap * 2);
        memcpy(nv, v, sizeof(nref) * (size_t)k);
        v = nv;
        cap *= 2;
      }
      v[k].loc = p->tok.loc;
      if (!ident(p, &v[k].s, &v[k].len, "a node name")) return false;
      k++;
    } while (accept(p, ','));
  }
  *out = v;
  *n = k;
  return true;
}

/* Entries and run statements name nodes before they may exist; keep the
 * names and resolve them with the rest. */
typedef struct pending_entry {
  int entry;
  nref *feeds, *fetches;
  int n_feeds, n_fetches;
} pending_entry;

typedef struct pending_stmt {
  kg_stmt *stmt;
  nref *names;
  int n_names;
} pending_stmt;

typedef struct resolve_lists {
  pending_entry *entries;
  int n_entries, cap_entries;
  pending_stmt *stmts;
  int n_stmts, cap_stmts;
} resolve_lists;

static void *grow_arr(kc_arena *a, void *old, int n, int *cap, size_t elem) {
  if (n < *cap) return old;
  int nc = *cap ? *cap * 2 : 8;
  void *v = kc_alloc(a, (size_t)nc * elem);
  if (n) memcpy(v, old, (size_t)n * elem);
  *cap = nc;
  return v;
}

/* entry NAME '(' feeds ')' '->' ( '(' fetches ')' | fetches ) */
static bool parse_entry(parser *p, resolve_lists *rl) {
  const char *s;
  size_t len;
  kc_loc loc = p->tok.loc;
  if (!ident(p, &s, &len, "an entry name")) return false;
  kg_entry e = {0};
  e.name = kc_strndup(p->a, s, len);
  e.loc = loc;
  if (kc_module_find_entry(p->m, e.name) >= 0) {
    kc_error(p->diag, loc, "entry '%s' is already defined", e.name);
    return p->failed = true, false;
  }
  pending_entry pe = {0};
  if (!expect(p, '(') || !parse_names(p, &pe.feeds, &pe.n_feeds, ')') || !expect(p, ')'))
    return false;
  if (p->tok.kind != KC_TOK_ARROW) return fail(p, "'->' and the fetches");
  next(p);
  bool paren = accept(p, '(');
  if (!parse_names(p, &pe.fetches, &pe.n_fetches, paren ? ')' : 0)) return false;
  if (paren && !expect(p, ')')) return false;
  pe.entry = kc_module_add_entry(p->m, &e);
  rl->entries = grow_arr(p->a, rl->entries, rl->n_entries, &rl->cap_entries, sizeof(pending_entry));
  rl->entries[rl->n_entries++] = pe;
  return true;
}

static bool parse_stmts(parser *p, resolve_lists *rl, kg_stmt ***out, int *n_out);

static kg_stmt *parse_stmt(parser *p, resolve_lists *rl) {
  kg_stmt *st = kc_alloc(p->a, sizeof *st);
  st->loc = p->tok.loc;
  st->entry = -1;
  st->node = -1;
  if (is_word(p, "run") || is_word(p, "spawn")) {
    st->kind = is_word(p, "run") ? KG_STMT_RUN : KG_STMT_SPAWN;
    next(p);
    if (st->kind == KG_STMT_SPAWN) { /* spawn N run a, b [close q] */
      kc_loc cl = p->tok.loc;
      if (!int_tok(p, &st->count)) return NULL;
      if (st->count < 1 || st->count > 1024) {
        kc_error(p->diag, cl, "spawn needs 1 to 1024 threads");
        p->failed = true;
        return NULL;
      }
      if (!is_word(p, "run")) return fail(p, "'run' and what each thread runs"), NULL;
      next(p);
    }
    pending_stmt ps = {st, NULL, 0};
    if (!parse_names(p, &ps.names, &ps.n_names, 0)) return NULL;
    if (!ps.n_names) return fail(p, "the nodes to run"), NULL;
    if (st->kind == KG_STMT_RUN && is_word(p, "trace")) { /* run ... trace ["tag"] */
      next(p);
      st->trace = true;
      if (p->tok.kind == KC_TOK_STRING) {
        st->text = string_tok(p);
        next(p);
      }
    }
    if (st->kind == KG_STMT_SPAWN && is_word(p, "close")) { /* the queue the threads feed */
      next(p);
      const char *qs;
      size_t ql;
      if (!ident(p, &qs, &ql, "a queue name")) return NULL;
      st->text = kc_strndup(p->a, qs, ql);
    }
    rl->stmts = grow_arr(p->a, rl->stmts, rl->n_stmts, &rl->cap_stmts, sizeof(pending_stmt));
    rl->stmts[rl->n_stmts++] = ps;
    return st;
  }
  if (is_word(p, "save") || is_word(p, "restore")) { /* save "prefix" [step v] [keep N] */
    st->kind = is_word(p, "save") ? KG_STMT_SAVE : KG_STMT_RESTORE;
    next(p);
    if (p->tok.kind != KC_TOK_STRING) return fail(p, "a checkpoint path in quotes"), NULL;
    st->text = string_tok(p);
    next(p);
    st->count = 5; /* tf.train.Saver's max_to_keep */
    pending_stmt ps = {st, NULL, 0};
    while (st->kind == KG_STMT_SAVE && (is_word(p, "step") || is_word(p, "keep"))) {
      bool step = is_word(p, "step");
      next(p);
      if (step) {
        ps.names = kc_alloc(p->a, sizeof(nref));
        ps.n_names = 1;
        ps.names[0].loc = p->tok.loc;
        if (!ident(p, &ps.names[0].s, &ps.names[0].len, "the step variable")) return NULL;
      } else {
        kc_loc kl = p->tok.loc;
        if (!int_tok(p, &st->count)) return NULL;
        if (st->count < 1) {
          kc_error(p->diag, kl, "keep must be at least 1");
          p->failed = true;
          return NULL;
        }
      }
    }
    if (ps.n_names) {
      rl->stmts = grow_arr(p->a, rl->stmts, rl->n_stmts, &rl->cap_stmts, sizeof(pending_stmt));
      rl->stmts[rl->n_stmts++] = ps;
    }
    return st;
  }
  if (is_word(p, "stop")) {
    next(p);
    st->kind = KG_STMT_STOP;
    return st;
  }
  if (is_word(p, "join")) { /* join [grace SECONDS] */
    next(p);
    st->kind = KG_STMT_JOIN;
    st->count = 10000; /* TF's Coordinator.join: 120 s; a compiled program needs less */
    if (is_word(p, "grace")) {
      next(p);
      int64_t sec;
      kc_loc gl = p->tok.loc;
      if (!int_tok(p, &sec)) return NULL;
      if (sec < 0 || sec > 86400) {
        kc_error(p->diag, gl, "grace must be 0 to 86400 seconds");
        p->failed = true;
        return NULL;
      }
      st->count = sec * 1000;
    }
    return st;
  }
  if (is_word(p, "summary")) { /* summary "logdir" | summary write [step v] | summary graph | summary close */
    next(p);
    if (p->tok.kind == KC_TOK_STRING) {
      st->kind = KG_STMT_SUMMARY_OPEN;
      st->text = string_tok(p);
      next(p);
      return st;
    }
    if (is_word(p, "graph") || is_word(p, "close")) {
      st->kind = is_word(p, "graph") ? KG_STMT_SUMMARY_GRAPH : KG_STMT_SUMMARY_CLOSE;
      next(p);
      return st;
    }
    if (!is_word(p, "write")) return fail(p, "a log directory in quotes, 'write', 'graph' or 'close'"), NULL;
    next(p);
    st->kind = KG_STMT_SUMMARY_WRITE;
    if (is_word(p, "step")) {
      next(p);
      pending_stmt ps = {st, kc_alloc(p->a, sizeof(nref)), 1};
      ps.names[0].loc = p->tok.loc;
      if (!ident(p, &ps.names[0].s, &ps.names[0].len, "the step variable")) return NULL;
      rl->stmts = grow_arr(p->a, rl->stmts, rl->n_stmts, &rl->cap_stmts, sizeof(pending_stmt));
      rl->stmts[rl->n_stmts++] = ps;
    }
    return st;
  }
  if (is_word(p, "repeat") || is_word(p, "loop")) {
    st->kind = is_word(p, "repeat") ? KG_STMT_REPEAT : KG_STMT_LOOP;
    next(p);
    if (st->kind == KG_STMT_REPEAT) {
      kc_loc cl = p->tok.loc;
      if (!int_tok(p, &st->count)) return NULL;
      if (st->count < 0) {
        kc_error(p->diag, cl, "repeat count must not be negative");
        p->failed = true;
        return NULL;
      }
    }
    if (!expect(p, '{') || !parse_stmts(p, rl, &st->body, &st->n_body) || !expect(p, '}'))
      return NULL;
    return st;
  }
  if (is_word(p, "print")) {
    next(p);
    if (p->tok.kind == KC_TOK_STRING) {
      st->kind = KG_STMT_PRINT_TEXT;
      st->text = string_tok(p);
      next(p);
      return st;
    }
    st->kind = KG_STMT_PRINT;
    pending_stmt ps = {st, kc_alloc(p->a, sizeof(nref)), 1};
    ps.names[0].loc = p->tok.loc;
    if (!ident(p, &ps.names[0].s, &ps.names[0].len, "a node to print or a string")) return NULL;
    rl->stmts = grow_arr(p->a, rl->stmts, rl->n_stmts, &rl->cap_stmts, sizeof(pending_stmt));
    rl->stmts[rl->n_stmts++] = ps;
    return st;
  }
  if (is_word(p, "close")) {
    next(p);
    st->kind = KG_STMT_CLOSE;
    pending_stmt ps = {st, kc_alloc(p->a, sizeof(nref)), 1};
    ps.names[0].loc = p->tok.loc;
    if (!ident(p, &ps.names[0].s, &ps.names[0].len, "a queue name")) return NULL;
    if (is_word(p, "cancel_pending")) {
      next(p);
      st->count = 1;
    }
    rl->stmts = grow_arr(p->a, rl->stmts, rl->n_stmts, &rl->cap_stmts, sizeof(pending_stmt));
    rl->stmts[rl->n_stmts++] = ps;
    return st;
  }
  fail(p, "a statement (run, repeat, loop, print, close, spawn, stop, join, save, restore, summary)");
  return NULL;
}

static bool parse_stmts(parser *p, resolve_lists *rl, kg_stmt ***out, int *n_out) {
  int cap = 8, k = 0;
  kg_stmt **v = kc_alloc(p->a, sizeof(kg_stmt *) * (size_t)cap);
  while (!p->failed && !is_punct(p, '}')) {
    if (p->tok.kind == KC_TOK_EOF) return fail(p, "'}'");
    kg_stmt *st = parse_stmt(p, rl);
    if (!st) return false;
    v = grow_arr(p->a, v, k, &cap, sizeof(kg_stmt *));
    v[k++] = st;
  }
  *out = v;
  *n_out = k;
  return !p->failed;
}

/* ---- resolution ---- */

static bool resolve_ref(parser *p, const char *s, size_t len, kc_loc loc, kg_ref *out) {
  size_t base = len;
  int index = 0;
  for (size_t i = len; i-- > 0;)
    if (s[i] == '.') {
      base = i;
      for (size_t k = i + 1; k < len && index <= 65536; k++) index = index * 10 + (s[k] - '0');
      if (index > 65535) {
        kc_error(p->diag, loc, "output index in '%.*s' is out of range", (int)len, s);
        p->failed = true;
        return false;
      }
      break;
    }
  int k = kc_module_find(p->m, s, base);
  if (k < 0) {
    kc_error(p->diag, loc, "undefined name '%.*s'", (int)base, s);
    p->failed = true;
    return false;
  }
  out->node = k;
  out->index = index;
  return true;
}

/* A name used inside `scope a { scope b { ... } }` means a/b/NAME if that
 * exists, else a/NAME, else NAME. */
static bool resolve_scoped(parser *p, const pending *pd, kg_ref *out) {
  const char *dot = memchr(pd->name, '.', pd->len);
  size_t base = dot ? (size_t)(dot - pd->name) : pd->len;
  for (size_t k = pd->scope ? strlen(pd->scope) : 0; k > 0;) {
    const char *full = kc_sprintf(p->a, "%.*s%.*s", (int)k, pd->scope, (int)pd->len, pd->name);
    if (kc_module_find(p->m, full, k + base) >= 0) return resolve_ref(p, full, k + pd->len, pd->loc, out);
    do k--; while (k > 0 && pd->scope[k - 1] != '/');
  }
  return resolve_ref(p, pd->name, pd->len, pd->loc, out);
}

static bool same_refs(const kg_ref *a, int na, const kg_ref *b, int nb) {
  if (na != nb) return false;
  for (int i = 0; i < na; i++)
    if (a[i].node != b[i].node || a[i].index != b[i].index) return false;
  return true;
}

/* A `run` statement becomes an entry point with those fetches (shared by
 * identical run statements). */
static int entry_for_run(parser *p, kg_ref *fetches, int n, kc_loc loc) {
  for (int i = 0; i < p->m->n_entries; i++) {
    kg_entry *e = &p->m->entries[i];
    if (e->synthesized && same_refs(e->fetches, e->n_fetches, fetches, n)) return i;
  }
  kg_entry e = {0};
  int k = 0;
  for (int i = 0; i < p->m->n_entries; i++) k += p->m->entries[i].synthesized;
  e.name = kc_sprintf(p->a, "run%d", k);
  while (kc_module_find_entry(p->m, e.name) >= 0) e.name = kc_sprintf(p->a, "run%d", ++k);
  e.loc = loc;
  e.fetches = fetches;
  e.n_fetches = n;
  e.synthesized = true;
  return kc_module_add_entry(p->m, &e);
}

static bool resolve_all(parser *p, resolve_lists *rl) {
  for (int i = 0; i < p->n_pend; i++) {
    pending *pd = &p->pend[i];
    kg_ref r;
    if (!resolve_scoped(p, pd, &r)) continue;
    if (pd->slot >= 0)
      p->m->nodes[pd->node].in[pd->slot] = r;
    else
      p->m->nodes[pd->node].ctrl[-1 - pd->slot] = r.node;
  }
  /* the variables that training ops make (optimizer slots, EMA shadows)
   * exist from here on, so entries and the program can name them */
  if (!p->failed && !p->diag->n_errors && !kc_declare_slots(p->m, p->diag)) p->failed = true;
  for (int i = 0; i < rl->n_entries; i++) {
    pending_entry *pe = &rl->entries[i];
    kg_entry *e = &p->m->entries[pe->entry];
    e->feeds = kc_alloc(p->a, sizeof(int) * (size_t)(pe->n_feeds + 1));
    e->fetches = kc_alloc(p->a, sizeof(kg_ref) * (size_t)(pe->n_fetches + 1));
    e->fetch_names = kc_alloc(p->a, sizeof(char *) * (size_t)(pe->n_fetches + 1));
    for (int k = 0; k < pe->n_feeds; k++) {
      kg_ref r;
      if (resolve_ref(p, pe->feeds[k].s, pe->feeds[k].len, pe->feeds[k].loc, &r))
        e->feeds[e->n_feeds++] = r.node;
    }
    for (int k = 0; k < pe->n_fetches; k++) {
      kg_ref r;
      if (resolve_ref(p, pe->fetches[k].s, pe->fetches[k].len, pe->fetches[k].loc, &r)) {
        e->fetch_names[e->n_fetches] = kc_strndup(p->a, pe->fetches[k].s, pe->fetches[k].len);
        e->fetches[e->n_fetches++] = r;
      }
    }
  }
  /* Statements are resolved in program order, so a print finds the latest
   * run before it that fetched its node. */
  kg_stmt *last_runs[4096];
  int n_runs = 0;
  for (int i = 0; i < rl->n_stmts; i++) {
    pending_stmt *ps = &rl->stmts[i];
    kg_stmt *st = ps->stmt;
    if (st->kind == KG_STMT_SAVE || st->kind == KG_STMT_SUMMARY_WRITE) { /* the step variable */
      kg_ref r;
      if (!resolve_ref(p, ps->names[0].s, ps->names[0].len, ps->names[0].loc, &r)) continue;
      const kg_node *v = &p->m->nodes[r.node];
      if (v->op != KC_OP_VARIABLE || !v->n_out || v->out[0].shape.rank != 0 || !kg_dtype_is_int(v->out[0].dtype)) {
        kc_error(p->diag, ps->names[0].loc, "step: '%s' must be a scalar integer variable", v->name);
        p->failed = true;
        continue;
      }
      st->node = r.node;
      continue;
    }
    if (st->kind == KG_STMT_SPAWN && st->text) {
      int q = kc_module_find(p->m, st->text, strlen(st->text));
      if (q < 0 || p->m->nodes[q].op != KC_OP_QUEUE) {
        kc_error(p->diag, st->loc, "spawn ... close: '%s' is not a queue", st->text);
        p->failed = true;
        continue;
      }
      st->node = q;
    }
    if (st->kind == KG_STMT_RUN || st->kind == KG_STMT_SPAWN) {
      kg_ref *refs = kc_alloc(p->a, sizeof(kg_ref) * (size_t)ps->n_names);
      int n = 0;
      for (int k = 0; k < ps->n_names; k++)
        if (resolve_ref(p, ps->names[k].s, ps->names[k].len, ps->names[k].loc, &refs[n])) n++;
      if (n != ps->n_names) continue;
      st->entry = entry_for_run(p, refs, n, st->loc);
      if (st->kind == KG_STMT_RUN && n_runs < 4096) last_runs[n_runs++] = st;
    } else if (st->kind == KG_STMT_PRINT) {
      if (!resolve_ref(p, ps->names[0].s, ps->names[0].len, ps->names[0].loc, &st->ref)) continue;
      for (int k = n_runs; k-- > 0 && !st->source;) {
        kg_entry *e = &p->m->entries[last_runs[k]->entry];
        for (int f = 0; f < e->n_fetches; f++)
          if (e->fetches[f].node == st->ref.node && e->fetches[f].index == st->ref.index) {
            st->source = last_runs[k];
            st->fetch_index = f;
            break;
          }
      }
      if (!st->source) {
        kc_error(p->diag, st->loc, "print '%.*s': no earlier run statement fetches it",
                 (int)ps->names[0].len, ps->names[0].s);
        p->failed = true;
      }
    } else if (st->kind == KG_STMT_CLOSE) {
      kg_ref r;
      if (!resolve_ref(p, ps->names[0].s, ps->names[0].len, ps->names[0].loc, &r)) continue;
      if (p->m->nodes[r.node].op != KC_OP_QUEUE) {
        kc_error(p->diag, ps->names[0].loc, "close: '%s' is not a queue", p->m->nodes[r.node].name);
        p->failed = true;
        continue;
      }
      st->node = r.node;
    }
  }
  return !p->failed;
}

/* ---- the module ---- */

kg_module *kc_parse(const char *file, const char *src, size_t len, kc_diag *diag) {
  kg_module *m = kc_module_new("module");
  if (!m) return NULL;
  parser P = {0}, *p = &P;
  p->diag = diag;
  p->m = m;
  p->a = m->arena;
  m->file = kc_strdup(m->arena, file ? file : "<input>");
  kc_lex_init(&p->lx, m->file, src, len);
  resolve_lists rl = {0};
  next(p);
  if (is_word(p, "module")) {
    next(p);
    const char *s;
    size_t n;
    if (ident(p, &s, &n, "a module name")) m->name = kc_strndup(p->a, s, n);
  }
  bool seen_graph = false;
  while (!p->failed && p->tok.kind != KC_TOK_EOF) {
    if (is_word(p, "var")) {
      next(p);
      parse_var(p);
    } else if (is_word(p, "queue")) {
      next(p);
      parse_queue(p);
    } else if (is_word(p, "graph")) {
      next(p);
      seen_graph = true;
      if (expect(p, '{') && parse_graph_items(p)) expect(p, '}');
    } else if (is_word(p, "device")) {
      /* a device block at top level holds var/queue declarations too */
      next(p);
      const char *dev;
      if (!parse_device(p, &dev) || !expect(p, '{')) break;
      p->device = dev;
      while (!p->failed && !is_punct(p, '}')) {
        if (is_word(p, "var")) { next(p); parse_var(p); }
        else if (is_word(p, "queue")) { next(p); parse_queue(p); }
        else fail(p, "'var', 'queue' or '}'");
      }
      p->device = NULL;
      expect(p, '}');
    } else if (is_scope(p)) {
      parse_scoped_decls(p);
    } else if (is_word(p, "entry")) {
      next(p);
      parse_entry(p, &rl);
    } else if (is_word(p, "program")) {
      next(p);
      if (m->has_program) {
        kc_error(diag, p->tok.loc, "a module has at most one program block");
        p->failed = true;
        break;
      }
      m->has_program = true;
      if (expect(p, '{') && parse_stmts(p, &rl, &m->program, &m->n_program)) expect(p, '}');
    } else {
      fail(p, "'var', 'queue', 'graph', 'entry' or 'program'");
    }
  }
  (void)seen_graph;
  if (!p->failed) resolve_all(p, &rl);
  if (p->failed || diag->n_errors) {
    kc_module_free(m);
    return NULL;
  }
  return m;
}

kg_module *kc_parse_file(const char *path, kc_diag *diag) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    kc_error(diag, (kc_loc){path, 0, 0}, "cannot open: %s", strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t r;
  while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
    len += r;
    if (len == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (!buf) {
    kc_error(diag, (kc_loc){path, 0, 0}, "out of memory reading the file");
    return NULL;
  }
  kg_module *m = kc_parse(path, buf, len, diag);
  free(buf);
  return m;
}
