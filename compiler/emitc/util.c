/* util.c — the C backend's text helpers (ke.h): growing buffers, lines and
 * blocks, names, literals, typed loads and stores, buffer pointers from the
 * memory plan, status checks.  What lower/builder.c is to the LLVM
 * lowering. */
#include "emitc/ke.h"
#include "lower/symbols.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ---- */

static void reserve(ke_buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n + 1) cap *= 2;
  b->p = realloc(b->p, cap);
  b->cap = cap;
}

void ke_puts(ke_buf *b, const char *s) {
  size_t n = strlen(s);
  reserve(b, n);
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
}

static void vput(ke_buf *b, const char *fmt, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  reserve(b, (size_t)n);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void ke_printf(ke_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vput(b, fmt, ap);
  va_end(ap);
}

void ke_buf_free(ke_buf *b) {
  free(b->p);
  *b = (ke_buf){0};
}

/* ---- lines ---- */

static void indent(ke_ctx *E) {
  for (int i = 0; i < E->ind; i++) ke_puts(E->b, "  ");
}

void ke_line(ke_ctx *E, const char *fmt, ...) {
  indent(E);
  va_list ap;
  va_start(ap, fmt);
  vput(E->b, fmt, ap);
  va_end(ap);
  ke_puts(E->b, "\n");
}

void ke_open(ke_ctx *E, const char *fmt, ...) {
  indent(E);
  va_list ap;
  va_start(ap, fmt);
  vput(E->b, fmt, ap);
  va_end(ap);
  ke_puts(E->b, " {\n");
  E->ind++;
}

void ke_block(ke_ctx *E) {
  indent(E);
  ke_puts(E->b, "{\n");
  E->ind++;
}

void ke_close(ke_ctx *E) {
  E->ind--;
  indent(E);
  ke_puts(E->b, "}\n");
}

const char *ke_str(ke_ctx *E, const char *fmt, ...) {
  va_list ap, cp;
  va_start(ap, fmt);
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  char *s = kc_alloc(E->m->arena, (size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

const char *ke_fresh(ke_ctx *E, const char *prefix) { return ke_str(E, "%s%d", prefix, E->uid++); }

void ke_helper(ke_ctx *E, const char *name, const char *fmt, ...) {
  for (int i = 0; i < E->n_helpers; i++)
    if (!strcmp(E->helper_names[i], name)) return;
  if (E->n_helpers == E->cap_helpers) {
    E->cap_helpers = E->cap_helpers ? 2 * E->cap_helpers : 32;
    E->helper_names = realloc(E->helper_names, sizeof *E->helper_names * (size_t)E->cap_helpers);
  }
  E->helper_names[E->n_helpers++] = kc_strdup(E->m->arena, name);
  va_list ap;
  va_start(ap, fmt);
  vput(&E->helpers, fmt, ap);
  va_end(ap);
  ke_puts(&E->helpers, "\n");
}

void ke_declare(ke_ctx *E, const char *name, const char *prototype) {
  const char *key = ke_str(E, "decl:%s", name);
  for (int i = 0; i < E->n_helpers; i++)
    if (!strcmp(E->helper_names[i], key)) return;
  if (E->n_helpers == E->cap_helpers) {
    E->cap_helpers = E->cap_helpers ? 2 * E->cap_helpers : 32;
    E->helper_names = realloc(E->helper_names, sizeof *E->helper_names * (size_t)E->cap_helpers);
  }
  E->helper_names[E->n_helpers++] = key;
  ke_printf(&E->decls, "%s;\n", prototype);
}

const char *ke_cstring(ke_ctx *E, const char *text) {
  ke_buf b = {0};
  ke_puts(&b, "\"");
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p == '"' || *p == '\\' || *p == '?') ke_printf(&b, "\\%c", *p); /* '?': no trigraphs */
    else if (*p == '\n') ke_puts(&b, "\\n");
    else if (*p < 32 || *p >= 127) ke_printf(&b, "\\%03o", *p);
    else ke_printf(&b, "%c", *p);
  }
  ke_puts(&b, "\"");
  const char *s = kc_strdup(E->m->arena, b.p);
  ke_buf_free(&b);
  return s;
}

const char *ke_comment(ke_ctx *E, const char *text) {
  char *s = kc_strdup(E->m->arena, text);
  for (char *p = s; *p; p++) {
    if (p[0] == '*' && p[1] == '/') p[1] = '|';
    if (p[0] == '/' && p[1] == '*') p[1] = '|';
    if ((unsigned char)*p < 32) *p = ' ';
    if (p[0] == '?' && p[1] == '?') p[1] = '.'; /* no trigraphs in comments either */
  }
  return s;
}

bool ke_node_error(ke_ctx *E, int node, const char *fmt, ...) {
  const kg_node *n = &E->m->nodes[node];
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  kc_error_node(E->diag, n->loc, n->name, "%s", msg);
  E->failed = true;
  return false;
}

/* ---- types and values ---- */

const char *ke_ctype(kiln_dtype dt) {
  switch (dt) {
  case KILN_BOOL: return "uint8_t";
  case KILN_I8: return "int8_t";
  case KILN_U8: return "uint8_t";
  case KILN_I32: return "int32_t";
  case KILN_I64: return "int64_t";
  case KILN_F32: return "float";
  case KILN_F64: return "double";
  default: return "uint8_t";
  }
}

const char *ke_i64(ke_ctx *E, int64_t v) {
  if (v == INT64_MIN) return "(-9223372036854775807LL - 1)";
  if (v > 2147483647LL || v < -2147483647LL) return ke_str(E, v < 0 ? "(%lldLL)" : "%lldLL", (long long)v);
  return ke_str(E, v < 0 ? "(%lld)" : "%lld", (long long)v);
}

const char *ke_const_i(ke_ctx *E, kiln_dtype dt, int64_t v) {
  if (kg_dtype_is_float(dt)) return ke_const_f(E, dt, (double)v);
  switch (dt) {
  case KILN_BOOL: return v != 0 ? "1" : "0";
  case KILN_I8: return ke_str(E, "((int8_t)%d)", (int)(int8_t)v);
  case KILN_U8: return ke_str(E, "((uint8_t)%d)", (int)(uint8_t)v);
  case KILN_I32: {
    int32_t w = (int32_t)v;
    return w == INT32_MIN ? "((int32_t)(-2147483647 - 1))" : ke_str(E, "((int32_t)%ld)", (long)w);
  }
  default: return ke_str(E, "((int64_t)%s)", ke_i64(E, v));
  }
}

const char *ke_const_f(ke_ctx *E, kiln_dtype dt, double v) {
  if (!kg_dtype_is_float(dt)) return ke_const_i(E, dt, dt == KILN_BOOL ? v != 0 : (int64_t)v);
  bool f32 = dt == KILN_F32;
  if (isnan(v)) return f32 ? "NAN" : "((double)NAN)";
  if (isinf(v)) return v > 0 ? (f32 ? "INFINITY" : "((double)INFINITY)") : (f32 ? "(-INFINITY)" : "(-(double)INFINITY)");
  char s[64];
  snprintf(s, sizeof s, f32 ? "%.9g" : "%.17g", f32 ? (double)(float)v : v);
  if (!strpbrk(s, ".e")) strcat(s, ".0");
  return ke_str(E, v < 0 || (v == 0 && signbit(v)) ? "(%s%s)" : "%s%s", s, f32 ? "f" : "");
}

/* Saturating float-to-integer conversion (llvm.fpto[su]i.sat): NaN is 0,
 * out-of-range values clamp. */
static const char *sat(ke_ctx *E, kiln_dtype to) {
  const char *name = ke_str(E, "kiln_sat_%s", kg_dtype_name(to));
  const char *lo = "0", *hi = "0", *lo_v = "0", *hi_v = "0";
  switch (to) {
  case KILN_I8: lo = "-128.0", hi = "127.0", lo_v = "-128", hi_v = "127"; break;
  case KILN_U8: lo = "0.0", hi = "255.0", lo_v = "0", hi_v = "255"; break;
  case KILN_I32: lo = "-2147483648.0", hi = "2147483647.0", lo_v = "INT32_MIN", hi_v = "INT32_MAX"; break;
  default: lo = "-9223372036854775808.0", hi = "9223372036854775807.0", lo_v = "INT64_MIN", hi_v = "INT64_MAX"; break;
  }
  /* i64's upper bound is not a double: compare >= 2^63 instead */
  const char *hicmp = to == KILN_I64 ? "v >= 9223372036854775808.0" : ke_str(E, "v >= %s", hi);
  ke_helper(E, name,
            "/* float to %s, saturating (NaN gives 0), as LLVM's fpto%ci.sat */\n"
            "static %s %s(double v) {\n"
            "  if (v != v) return 0;\n"
            "  if (v <= %s) return %s;\n"
            "  if (%s) return %s;\n"
            "  return (%s)v;\n"
            "}\n",
            kg_dtype_name(to), kg_dtype_is_signed(to) ? 's' : 'u', ke_ctype(to), name, lo, lo_v, hicmp, hi_v,
            ke_ctype(to));
  return name;
}

const char *ke_convert(ke_ctx *E, const char *s, kiln_dtype from, kiln_dtype to) {
  if (from == to) return s;
  bool ff = kg_dtype_is_float(from), tf = kg_dtype_is_float(to);
  if (to == KILN_BOOL) return ke_str(E, "(%s != 0)", s);
  if (from == KILN_BOOL || tf || !ff) return ke_str(E, "((%s)%s)", ke_ctype(to), s);
  return ke_str(E, "%s(%s)", sat(E, to), s);
}

const char *ke_load(ke_ctx *E, kiln_dtype dt, const char *p, const char *i) {
  if (dt == KILN_BOOL) return ke_str(E, "(%s[%s] != 0)", p, i);
  return ke_str(E, "%s[%s]", p, i);
}

void ke_store(ke_ctx *E, kiln_dtype dt, const char *p, const char *i, const char *v) {
  if (dt == KILN_BOOL) ke_line(E, "%s[%s] = (uint8_t)%s;", p, i, v);
  else ke_line(E, "%s[%s] = %s;", p, i, v);
}

static bool is_lit0(const char *s) { return !s || !strcmp(s, "0"); }

const char *ke_madd(ke_ctx *E, const char *a, int64_t k, const char *b) {
  const char *t = NULL;
  if (k != 0 && !is_lit0(a)) t = k == 1 ? a : ke_str(E, strchr(a, ' ') ? "(%s) * %s" : "%s * %s", a, ke_i64(E, k));
  if (!is_lit0(b)) t = t ? ke_str(E, "%s + %s", b, t) : b;
  return t ? t : "0";
}

const char *ke_add(ke_ctx *E, const char *a, const char *b) {
  if (is_lit0(a)) return b ? b : "0";
  if (is_lit0(b)) return a;
  return ke_str(E, "%s + %s", a, b);
}

/* ---- buffers ---- */

static const char *at_offset(ke_ctx *E, const char *base, int64_t off) {
  return off ? ke_str(E, "(%s + %lld)", base, (long long)off) : base;
}

const char *ke_ref_ptr(ke_ctx *E, kg_ref r) {
  const kg_node *n = &E->m->nodes[r.node];
  if (n->op == KC_OP_CONST) {
    if (!E->node_const[r.node]) {
      const kg_attr *v = kg_node_attr(n, "value");
      E->node_const[r.node] = ke_const_data(E, v->tensor.data, kg_type_bytes(&n->out[0]), n->out[0].dtype, n->name);
    }
    return ke_str(E, "(const uint8_t *)%s", E->node_const[r.node]);
  }
  if (n->op == KC_OP_VARIABLE) return at_offset(E, "vars", E->plan->var_offset[r.node]);
  if (kc_ops[n->op].flags & KC_OP_ALIAS) return ke_ref_ptr(E, n->in[0]);
  if (!E->ep) return "0";
  const kc_slot *s = &E->ep->slots[E->plan->out_base[r.node] + r.index];
  switch (s->place) {
  case KC_PLACE_ARENA: return at_offset(E, "arena", s->offset);
  case KC_PLACE_VAR: return at_offset(E, "vars", s->offset);
  case KC_PLACE_FEED: return at_offset(E, "in_", s->offset);
  case KC_PLACE_OUT: return at_offset(E, "out_", s->offset);
  default: return "0";
  }
}

const char *ke_in_ptr(ke_ctx *E, int node, int k) { return ke_ref_ptr(E, E->m->nodes[node].in[k]); }
const char *ke_out_ptr(ke_ctx *E, int node, int k) { return ke_ref_ptr(E, (kg_ref){node, k}); }
const kg_type *ke_in_type(ke_ctx *E, int node, int k) { return kg_ref_type(E->m, E->m->nodes[node].in[k]); }
const kg_type *ke_out_type(ke_ctx *E, int node, int k) { return &E->m->nodes[node].out[k]; }

void ke_decl_in(ke_ctx *E, const char *name, int node, int k) {
  const char *t = ke_ctype(ke_in_type(E, node, k)->dtype);
  ke_line(E, "const %s *%s = (const %s *)%s;", t, name, t, ke_in_ptr(E, node, k));
}

void ke_decl_out(ke_ctx *E, const char *name, int node, int k) {
  const char *t = ke_ctype(ke_out_type(E, node, k)->dtype);
  ke_line(E, "%s *%s = (%s *)%s;", t, name, t, ke_out_ptr(E, node, k));
}

void ke_memset0(ke_ctx *E, const char *p, int64_t bytes) {
  if (bytes > 0) ke_line(E, "memset(%s, 0, %lld);", p, (long long)bytes);
}

void ke_memcpy(ke_ctx *E, const char *dst, const char *src, int64_t bytes) {
  if (bytes > 0) ke_line(E, "memcpy(%s, %s, %lld);", dst, src, (long long)bytes);
}

const char *ke_table(ke_ctx *E, const int64_t *v, int64_t n, const char *prefix) {
  const char *name = ke_fresh(E, ke_str(E, "%s_", prefix));
  ke_printf(&E->data, "static const int64_t %s[%lld] = {", name, (long long)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) ke_printf(&E->data, "%s%s%lld", i ? "," : "", i % 16 == 15 ? "\n  " : "", (long long)v[i]);
  if (!n) ke_puts(&E->data, "0");
  ke_puts(&E->data, "};\n");
  return name;
}

const char *ke_table_at(ke_ctx *E, const int64_t *v, int64_t n, const char *i, const char *prefix) {
  bool uniform = true;
  for (int64_t k = 1; k < n; k++) uniform &= v[k] == v[0];
  if (uniform) return ke_i64(E, n ? v[0] : 0);
  return ke_str(E, "%s[%s]", ke_table(E, v, n, prefix), i);
}

/* ---- status ---- */

void ke_check(ke_ctx *E, const char *call) {
  ke_line(E, "if ((st = %s) != 0) goto done;", call);
  E->used_done = true;
}

void ke_fail_if(ke_ctx *E, const char *cond, int node, const char *message) {
  const kg_node *n = &E->m->nodes[node];
  char text[700];
  snprintf(text, sizeof text, "node '%s' (%s): %s", n->name, kc_ops[n->op].name, message);
  ke_open(E, "if (%s)", cond);
  ke_line(E, "st = kiln_fail(inst, 3, \"%%s\", %s);", ke_cstring(E, text));
  ke_line(E, "goto done;");
  ke_close(E);
  E->used_done = true;
}
