/* reduce.c — C renderings of the reductions (sum, mean, max, min, prod),
 * argmax, softmax/log_softmax and top_k, beside their LLVM lowerings in
 * ops/reduce.c and ops/reduce_onnx.c and with the same loop structure: the
 * input is viewed as alternating groups of kept and reduced dimensions, the
 * combining step is the primitive of ir/expr.h (ke_prim, the same "add",
 * "mul", "max", "min" every backend defines once), and the identities and
 * the integer mean's truncation are the same. */
#include "emitc/ke.h"
#include "ops/ops_util.h"
#include <math.h>
#include <string.h>

/* ---- the reduction view (as ops/reduce.c's rview) ---- */

typedef struct rview {
  int n;
  int64_t ext[KILN_MAX_RANK];
  bool red[KILN_MAX_RANK];
  int64_t istride[KILN_MAX_RANK], ostride[KILN_MAX_RANK];
  int n_red_groups;
  int64_t count;
} rview;

static bool reduce_mask(const kg_node *n, int rank, bool *red) {
  int cnt;
  const int64_t *v;
  bool all = !kc_attr_ints(n, "axes", &cnt, &v);
  for (int d = 0; d < rank; d++) red[d] = all;
  for (int i = 0; !all && i < cnt; i++) {
    int64_t a = v[i] < 0 ? v[i] + rank : v[i];
    if (a < 0 || a >= rank) return false;
    red[a] = true;
  }
  return true;
}

static void make_rview(const kg_shape *s, const bool *red, rview *v) {
  v->n = 0;
  v->count = 1;
  for (int d = 0; d < s->rank; d++) {
    if (red[d]) v->count *= s->dim[d];
    if (s->dim[d] == 1) continue;
    if (v->n > 0 && v->red[v->n - 1] == red[d]) v->ext[v->n - 1] *= s->dim[d];
    else {
      v->ext[v->n] = s->dim[d];
      v->red[v->n++] = red[d];
    }
  }
  if (v->n == 0) {
    v->ext[0] = 1;
    v->red[v->n++] = true;
  }
  int64_t is = 1, os = 1;
  v->n_red_groups = 0;
  for (int g = v->n - 1; g >= 0; g--) {
    v->istride[g] = is;
    is *= v->ext[g];
    v->ostride[g] = v->red[g] ? 0 : os;
    if (!v->red[g]) os *= v->ext[g];
    v->n_red_groups += v->red[g];
  }
}

typedef struct rop {
  kiln_dtype dt;
  const char *prim;
  bool mean;
  int64_t count;
} rop;

static const char *identity(ke_ctx *E, const rop *r) {
  bool is_max = !strcmp(r->prim, "max"), is_min = !strcmp(r->prim, "min");
  if (kg_dtype_is_float(r->dt)) return ke_const_f(E, r->dt, is_max ? -INFINITY : is_min ? INFINITY : !strcmp(r->prim, "mul"));
  if (!is_max && !is_min) return ke_const_i(E, r->dt, !strcmp(r->prim, "mul"));
  int bits = (int)kg_dtype_size(r->dt) * 8;
  if (kg_dtype_is_signed(r->dt)) {
    int64_t hi = (int64_t)(UINT64_MAX >> (65 - bits));
    return ke_const_i(E, r->dt, is_max ? -hi - 1 : hi);
  }
  return ke_const_i(E, r->dt, is_max ? 0 : (int64_t)(UINT64_MAX >> (64 - bits)));
}

/* mean divides by the count; the integer mean truncates toward zero (C's
 * division, as TF's), not kiln's flooring "div" */
static const char *finish(ke_ctx *E, const rop *r, const char *acc) {
  if (!r->mean) return acc;
  if (kg_dtype_is_float(r->dt)) return ke_prim2(E, "div", r->dt, acc, ke_const_f(E, r->dt, (double)r->count));
  if (r->count == 0) return ke_const_i(E, r->dt, 0);
  return ke_str(E, "(%s)(%s / %s)", ke_ctype(r->dt), acc, ke_const_i(E, r->dt, r->count));
}

bool ke_render_reduce(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *it = ke_in_type(E, node, 0);
  int64_t on = kg_shape_numel(&ke_out_type(E, node, 0)->shape);
  if (on == 0) return true;
  bool red[KILN_MAX_RANK];
  if (!reduce_mask(n, it->shape.rank, red)) return ke_node_error(E, node, "invalid axes reached the C backend");
  rview v;
  make_rview(&it->shape, red, &v);
  rop r = {it->dtype, "add", n->op == KC_OP_MEAN, v.count};
  if (n->op == KC_OP_PROD) r.prim = "mul";
  else if (n->op == KC_OP_MAX) r.prim = "max";
  else if (n->op == KC_OP_MIN) r.prim = "min";
  const char *T = ke_ctype(r.dt);
  ke_decl_in(E, "x", node, 0);
  ke_decl_out(E, "y", node, 0);
  if (v.count == 0) {
    ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, on));
    ke_store(E, r.dt, "y", "i", finish(E, &r, identity(E, &r)));
    ke_close(E);
    return true;
  }
  bool fused = v.n_red_groups == 1 && v.red[v.n - 1];
  if (!fused) {
    ke_line(E, "for (int64_t i = 0; i < %s; i++) y[i] = %s;", ke_i64(E, on), identity(E, &r));
  }
  const char *xo = "0", *oo = "0";
  for (int g = 0; g < v.n - 1; g++) {
    const char *i = ke_str(E, "g%d", g);
    ke_open(E, "for (int64_t %s = 0; %s < %s; %s++)", i, i, ke_i64(E, v.ext[g]), i);
    xo = ke_madd(E, i, v.istride[g], xo);
    if (!v.red[g]) oo = ke_madd(E, i, v.ostride[g], oo);
  }
  int g = v.n - 1;
  if (v.red[g] && kg_dtype_is_float(r.dt) && !strcmp(r.prim, "add") && v.ext[g] >= 64) {
    /* a long float sum: 16 partial sums, combined pairwise, as the LLVM
     * backend's vectorized (reassociated) reduction sums; one running sum
     * would lose precision on long rows */
    const char *x0 = ke_add(E, xo, "k");
    int64_t whole = v.ext[g] / 16 * 16;
    ke_line(E, "%s part[16] = {0};", T);
    ke_line(E, "%s acc = %s;", T, fused ? identity(E, &r) : ke_load(E, r.dt, "y", oo));
    ke_line(E, "for (int64_t k = 0; k < %s; k += 16)", ke_i64(E, whole));
    ke_line(E, "  for (int j = 0; j < 16; j++) part[j] += x[%s + j];", x0);
    ke_line(E, "for (int j = 0; j < 4; j++) part[j] = (part[j] + part[j + 4]) + (part[j + 8] + part[j + 12]);");
    ke_line(E, "acc += (part[0] + part[2]) + (part[1] + part[3]);");
    if (whole < v.ext[g]) ke_line(E, "for (int64_t k = %s; k < %s; k++) acc += x[%s];", ke_i64(E, whole), ke_i64(E, v.ext[g]), x0);
    ke_store(E, r.dt, "y", oo, fused ? finish(E, &r, "acc") : "acc");
  } else if (v.red[g]) { /* an accumulator over contiguous input */
    ke_line(E, "%s acc = %s;", T, fused ? identity(E, &r) : ke_load(E, r.dt, "y", oo));
    ke_open(E, "for (int64_t k = 0; k < %s; k++)", ke_i64(E, v.ext[g]));
    const char *step = ke_prim2(E, r.prim, r.dt, "acc", ke_load(E, r.dt, "x", ke_add(E, xo, "k")));
    if (!step) return false;
    ke_line(E, "acc = %s;", step);
    ke_close(E);
    ke_store(E, r.dt, "y", oo, fused ? finish(E, &r, "acc") : "acc");
  } else { /* y[o+k] op= x[x0+k], contiguous on both sides */
    ke_open(E, "for (int64_t k = 0; k < %s; k++)", ke_i64(E, v.ext[g]));
    const char *oi = ke_add(E, oo, "k");
    const char *step = ke_prim2(E, r.prim, r.dt, ke_load(E, r.dt, "y", oi), ke_load(E, r.dt, "x", ke_add(E, xo, "k")));
    if (!step) return false;
    ke_store(E, r.dt, "y", oi, step);
    ke_close(E);
  }
  for (int k = 0; k < v.n - 1; k++) ke_close(E);
  if (!fused && r.mean) {
    ke_line(E, "for (int64_t i = 0; i < %s; i++) y[i] = %s;", ke_i64(E, on), finish(E, &r, "y[i]"));
  }
  return true;
}

/* ---- argmax ---- */

static void split_at_axis(const kg_shape *s, int axis, int64_t *outer, int64_t *mid, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= s->dim[d];
  for (int d = axis + 1; d < s->rank; d++) *inner *= s->dim[d];
  *mid = s->dim[axis];
}

static int norm_axis(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

bool ke_render_argmax(ke_ctx *E, int node) {
  const kg_type *t = ke_in_type(E, node, 0);
  kiln_dtype dt = t->dtype;
  int axis = norm_axis(kg_attr_int(&E->m->nodes[node], "axis", 0), t->shape.rank);
  int64_t outer, mid, inner;
  split_at_axis(&t->shape, axis, &outer, &mid, &inner);
  if (outer * inner == 0) return true;
  ke_decl_in(E, "x", node, 0);
  ke_decl_out(E, "y", node, 0);
  ke_open(E, "for (int64_t o = 0; o < %s; o++)", ke_i64(E, outer));
  ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, inner));
  const char *base = ke_madd(E, "o", mid * inner, "i");
  ke_line(E, "%s best = %s, v;", dt == KILN_BOOL ? "int" : ke_ctype(dt), ke_load(E, dt, "x", base));
  ke_line(E, "int64_t at = 0;");
  ke_open(E, "for (int64_t a = 0; a < %s; a++)", ke_i64(E, mid));
  ke_line(E, "v = %s;", ke_load(E, dt, "x", ke_madd(E, "a", inner, base)));
  /* strictly greater, so the first maximum wins; for floats the first NaN
   * (NumPy's argmax treats NaN as the maximum) */
  const char *take = ke_prim(E, "gt", dt, KILN_BOOL, (const char *[]){"v", "best"}, 2);
  if (kg_dtype_is_float(dt)) take = ke_str(E, "%s || (v != v && best == best)", take);
  ke_line(E, "if (%s) best = v, at = a;", take);
  ke_close(E);
  ke_line(E, "y[%s] = at;", ke_madd(E, "o", inner, "i"));
  ke_close(E);
  ke_close(E);
  return true;
}

/* ---- softmax, log_softmax ----
 * per row: m = max(x); y = x - m; s = sum(exp(y));
 * softmax = exp(y) / s, log_softmax = y - log(s) */

bool ke_render_softmax(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *t = ke_in_type(E, node, 0);
  kiln_dtype dt = t->dtype;
  bool log_sm = n->op == KC_OP_LOG_SOFTMAX;
  int axis = norm_axis(kg_attr_int(n, "axis", -1), t->shape.rank);
  int64_t outer, mid, inner;
  split_at_axis(&t->shape, axis, &outer, &mid, &inner);
  if (outer * mid * inner == 0) return true;
  const char *T = ke_ctype(dt);
  ke_decl_in(E, "x", node, 0);
  ke_decl_out(E, "y", node, 0);
  ke_open(E, "for (int64_t o = 0; o < %s; o++)", ke_i64(E, outer));
  ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, inner));
  const char *base = ke_madd(E, "o", mid * inner, "i");
  const char *at = ke_madd(E, "a", inner, base);
  ke_line(E, "%s m = %s, s = %s;", T, ke_const_f(E, dt, -INFINITY), ke_const_f(E, dt, 0));
  ke_line(E, "for (int64_t a = 0; a < %s; a++) m = %s;", ke_i64(E, mid), ke_prim2(E, "max", dt, "m", ke_str(E, "x[%s]", at)));
  ke_open(E, "for (int64_t a = 0; a < %s; a++)", ke_i64(E, mid));
  ke_line(E, "%s d = %s, e = %s;", T, ke_prim2(E, "sub", dt, ke_str(E, "x[%s]", at), "m"), ke_prim1(E, "exp", dt, "d"));
  ke_line(E, "y[%s] = %s;", at, log_sm ? "d" : "e");
  ke_line(E, "s = %s;", ke_prim2(E, "add", dt, "s", "e"));
  ke_close(E);
  if (log_sm) {
    ke_line(E, "s = %s;", ke_prim1(E, "log", dt, "s"));
    ke_line(E, "for (int64_t a = 0; a < %s; a++) y[%s] = %s;", ke_i64(E, mid), at, ke_prim2(E, "sub", dt, ke_str(E, "y[%s]", at), "s"));
  } else {
    ke_line(E, "for (int64_t a = 0; a < %s; a++) y[%s] = %s;", ke_i64(E, mid), at, ke_prim2(E, "div", dt, ke_str(E, "y[%s]", at), "s"));
  }
  ke_close(E);
  ke_close(E);
  return !E->failed;
}

/* ---- top_k: per row, a sorted best-so-far list in the outputs, each new
 * element inserted at its place (ties keep index order; NaN is largest) ---- */

bool ke_render_top_k(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *t = ke_in_type(E, node, 0);
  kiln_dtype dt = t->dtype;
  int axis = norm_axis(kg_attr_int(n, "axis", -1), t->shape.rank);
  int64_t k = kg_attr_int(n, "k", 0);
  bool largest = kg_attr_bool(n, "largest", true);
  int64_t outer, mid, inner;
  split_at_axis(&t->shape, axis, &outer, &mid, &inner);
  if (outer * inner * k == 0) return true;
  const char *T = dt == KILN_BOOL ? "int" : ke_ctype(dt);
  ke_decl_in(E, "x", node, 0);
  ke_decl_out(E, "vals", node, 0);
  ke_decl_out(E, "idxs", node, 1);
  ke_open(E, "for (int64_t o = 0; o < %s; o++)", ke_i64(E, outer));
  ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, inner));
  const char *base = ke_madd(E, "o", mid * inner, "i"), *obase = ke_madd(E, "o", k * inner, "i");
  ke_open(E, "for (int64_t e = 0; e < %s; e++)", ke_i64(E, mid));
  ke_line(E, "%s v = %s;", T, ke_load(E, dt, "x", ke_madd(E, "e", inner, base)));
  ke_line(E, "int64_t f = e < %s ? e : %s, p = 0;", ke_i64(E, k), ke_i64(E, k));
  /* p: how many of the kept stay ahead of v */
  ke_open(E, "for (int64_t j = 0; j < f; j++)");
  ke_line(E, "%s b = %s;", T, ke_load(E, dt, "vals", ke_madd(E, "j", inner, obase)));
  const char *ahead = ke_prim(E, largest ? "ge" : "le", dt, KILN_BOOL, (const char *[]){"b", "v"}, 2);
  if (kg_dtype_is_float(dt)) ahead = ke_str(E, "%s || %s", ahead, largest ? "b != b" : "v != v");
  ke_line(E, "p += (%s) ? 1 : 0;", ahead);
  ke_close(E);
  /* shift the entries from p on down one place; v goes to p */
  ke_open(E, "for (int64_t j = %s; j > p; j--)", ke_i64(E, k - 1));
  const char *jat = ke_madd(E, "j", inner, obase), *prev = ke_madd(E, "(j - 1)", inner, obase);
  ke_line(E, "vals[%s] = vals[%s];", jat, prev);
  ke_line(E, "idxs[%s] = idxs[%s];", jat, prev);
  ke_close(E);
  ke_open(E, "if (p < %s)", ke_i64(E, k));
  ke_store(E, dt, "vals", ke_madd(E, "p", inner, obase), "v");
  ke_line(E, "idxs[%s] = e;", ke_madd(E, "p", inner, obase));
  ke_close(E);
  ke_close(E);
  ke_close(E);
  ke_close(E);
  return !E->failed;
}
