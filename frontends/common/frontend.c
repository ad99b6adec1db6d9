/* frontend.c — names and builders shared by the importers (frontend.h). */
#include "frontends/common/frontend.h"
#include "ir/expr.h"
#include "passes/fold.h"
#include <ctype.h>
#include <string.h>

const char *kc_fe_sanitize(kc_arena *a, const char *name, bool keep_scopes) {
  static const char *const keywords[] = {"module", "var", "queue", "graph", "device", "entry", "program", "after",
                                         "scope", "true", "false", "inf", "nan"};
  size_t n = strlen(name);
  char *s = kc_alloc(a, n + 3);
  size_t k = 0;
  if (!n || isdigit((unsigned char)name[0])) s[k++] = 'v';
  for (size_t i = 0; i < n; i++) {
    bool scope = keep_scopes && name[i] == '/' && k > 0 && i + 1 < n;
    s[k++] = isalnum((unsigned char)name[i]) || name[i] == '_' || scope ? name[i] : '_';
  }
  s[k] = 0;
  for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
    if (!strcmp(s, keywords[i])) return kc_sprintf(a, "v_%s", s);
  return s;
}

const char *kc_fe_fresh_name(kg_module *m, const char *name, bool keep_scopes) {
  const char *base = kc_fe_sanitize(m->arena, name, keep_scopes), *out = base;
  for (int k = 1; kc_module_find(m, out, strlen(out)) >= 0; k++) out = kc_sprintf(m->arena, "%s_%d", base, k);
  return out;
}

uint64_t kc_fe_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

kg_ref kc_fe_tensor_const(kc_grad_ctx *g, const kg_tensor *t) {
  kg_attr a = {.name = "value", .kind = KG_ATTR_TENSOR, .tensor = *t};
  size_t bytes = (size_t)kg_type_bytes(&t->type);
  a.tensor.data = kc_alloc(g->m->arena, bytes + 1);
  if (bytes) memcpy(a.tensor.data, t->data, bytes);
  return kb_typed_node(g, KC_OP_CONST, &t->type, NULL, 0, &a, 1);
}

kg_ref kc_fe_const_from(kc_grad_ctx *g, kiln_dtype dt, const kg_shape *s, const double *v) {
  kg_tensor t = {.type = {dt, *s}};
  int64_t n = kg_shape_numel(s);
  t.data = kc_alloc(g->m->arena, (size_t)kg_type_bytes(&t.type) + 1);
  for (int64_t i = 0; i < n; i++) kg_tensor_set(&t, i, v[i], (int64_t)v[i]);
  return kc_fe_tensor_const(g, &t);
}

kg_ref kc_fe_expr(kc_grad_ctx *g, const char *expr, const kg_ref *in, int n_in, kiln_dtype dt) {
  if (g->failed) return KG_NOREF;
  for (int i = 0; i < n_in; i++)
    if (in[i].node < 0) {
      g->failed = true;
      return KG_NOREF;
    }
  char err[200];
  kc_expr *e = kc_expr_parse(g->m->arena, expr, kc_expr_var_names(g->m->arena, n_in), err, sizeof err);
  if (!e) {
    kc_error(g->d, g->loc, "internal: bad converter expression '%s': %s", expr, err);
    g->failed = true;
    return KG_NOREF;
  }
  kg_shape s = kb_type(g, in[0])->shape;
  for (int i = 1; i < n_in; i++) {
    const kg_shape *b = &kb_type(g, in[i])->shape;
    kg_shape r = {.rank = s.rank > b->rank ? s.rank : b->rank};
    for (int d = 0; d < r.rank; d++) {
      int da = d - (r.rank - s.rank), db = d - (r.rank - b->rank);
      int64_t x = da >= 0 ? s.dim[da] : 1, y = db >= 0 ? b->dim[db] : 1;
      if (x != y && x != 1 && y != 1) {
        char sa[64], sb[64];
        kc_error(g->d, g->loc, "%s: operands %s and %s do not broadcast", g->prefix,
                 kg_type_str(kb_type(g, in[0]), sa, sizeof sa), kg_type_str(kb_type(g, in[i]), sb, sizeof sb));
        g->failed = true;
        return KG_NOREF;
      }
      r.dim[d] = x == 1 ? y : x;
    }
    s = r;
  }
  return kb_fused(g, e, in, n_in, dt, &s);
}

kg_ref kc_fe_transpose(kc_grad_ctx *g, kg_ref x, const int64_t *perm, int rank) {
  bool ident = true;
  for (int d = 0; d < rank; d++) ident &= perm[d] == d;
  if (ident || g->failed) return x;
  kg_attr a = kb_attr_ints(g, "perm", perm, rank);
  return kb_node(g, KC_OP_TRANSPOSE, &x, 1, &a, 1);
}

kg_ref kc_fe_cast(kc_grad_ctx *g, kg_ref x, kiln_dtype to) {
  if (x.node < 0 || kb_type(g, x)->dtype == to) return x;
  kg_attr a = kb_attr_dtype("to", to);
  return kb_node(g, KC_OP_CAST, &x, 1, &a, 1);
}

kg_ref kc_fe_select(kc_grad_ctx *g, kg_ref cond, kg_ref a, kg_ref b) {
  if (cond.node < 0 || a.node < 0 || b.node < 0) return KG_NOREF;
  if (kb_type(g, cond)->shape.rank) cond = kb_reshape(g, cond, &(kg_shape){0});
  kg_ref in[3] = {cond, a, b};
  return kb_node(g, KC_OP_SELECT, in, 3, NULL, 0);
}
