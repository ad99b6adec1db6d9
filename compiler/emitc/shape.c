/* shape.c — C renderings of the data-movement ops, beside ops/shape.c:
 * transpose, concat, slice, strided_slice (and its gradient), gather,
 * scatter_add, pad, broadcast_to and one_hot.  Most are a copy between two
 * strided views of one logical shape (copy_plan), simplified as the LLVM
 * lowering simplifies it: size-1 dimensions dropped, dimensions contiguous
 * in both views merged, a unit-stride innermost run copied with memcpy.
 * Booleans move as their bytes. */
#include "emitc/ke.h"
#include "ops/ops_util.h"
#include <math.h>
#include <string.h>

typedef kc_copy_plan copy_plan; /* ops_util.h */

/* dst[dst_off + sum i_k dst_stride_k] = src[src_off + sum i_k src_stride_k] */
static void emit_copy(ke_ctx *E, kiln_dtype dt, const char *dst, const char *src, const copy_plan *p) {
  copy_plan q = {.src_off = p->src_off, .dst_off = p->dst_off};
  for (int d = 0; d < p->rank; d++) {
    if (p->dim[d] == 0) return;
    if (p->dim[d] == 1) continue;
    int o = q.rank - 1;
    if (o >= 0 && q.src_stride[o] == p->src_stride[d] * p->dim[d] && q.dst_stride[o] == p->dst_stride[d] * p->dim[d]) {
      q.dim[o] *= p->dim[d];
      q.src_stride[o] = p->src_stride[d];
      q.dst_stride[o] = p->dst_stride[d];
    } else {
      q.dim[q.rank] = p->dim[d];
      q.src_stride[q.rank] = p->src_stride[d];
      q.dst_stride[q.rank] = p->dst_stride[d];
      q.rank++;
    }
  }
  int64_t run = 1;
  if (q.rank > 0 && q.src_stride[q.rank - 1] == 1 && q.dst_stride[q.rank - 1] == 1) run = q.dim[--q.rank];
  const char *di = ke_i64(E, q.dst_off), *si = ke_i64(E, q.src_off);
  for (int d = 0; d < q.rank; d++) {
    const char *i = ke_str(E, "i%d", d);
    ke_open(E, "for (int64_t %s = 0; %s < %s; %s++)", i, i, ke_i64(E, q.dim[d]), i);
    di = ke_madd(E, i, q.dst_stride[d], di);
    si = ke_madd(E, i, q.src_stride[d], si);
  }
  (void)dt;
  if (run == 1) ke_line(E, "%s[%s] = %s[%s];", dst, di, src, si);
  else ke_line(E, "memcpy(%s + %s, %s + %s, sizeof *%s * %s);", dst, di, src, si, dst, ke_i64(E, run));
  for (int d = 0; d < q.rank; d++) ke_close(E);
}

/* Declares x (operand 0) and y (output 0) and copies through plan p. */
static bool copy_node(ke_ctx *E, int node, const copy_plan *p) {
  if (kg_shape_numel(&ke_out_type(E, node, 0)->shape) == 0) return true;
  ke_decl_in(E, "x", node, 0);
  ke_decl_out(E, "y", node, 0);
  emit_copy(E, ke_out_type(E, node, 0)->dtype, "y", "x", p);
  return true;
}

bool ke_render_transpose(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *x = ke_in_type(E, node, 0), *y = ke_out_type(E, node, 0);
  int r = x->shape.rank, cnt, perm[KILN_MAX_RANK];
  const int64_t *v;
  bool given = kc_attr_ints(n, "perm", &cnt, &v);
  for (int d = 0; d < r; d++) perm[d] = given ? (int)(v[d] < 0 ? v[d] + r : v[d]) : r - 1 - d;
  int64_t ist[KILN_MAX_RANK];
  kc_row_strides(&x->shape, ist);
  copy_plan p = kc_copy_plan_into(&y->shape);
  for (int d = 0; d < p.rank; d++) p.src_stride[d] = ist[perm[d]];
  return copy_node(E, node, &p);
}

bool ke_render_concat(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *y = ke_out_type(E, node, 0);
  int64_t axis = kg_attr_int(n, "axis", 0);
  int ax = (int)(axis < 0 ? axis + y->shape.rank : axis);
  int64_t ost[KILN_MAX_RANK], at = 0;
  kc_row_strides(&y->shape, ost);
  if (kg_shape_numel(&y->shape) == 0) return true;
  ke_decl_out(E, "y", node, 0);
  for (int k = 0; k < n->n_in; k++) {
    const kg_type *t = ke_in_type(E, node, k);
    copy_plan p = kc_copy_plan_from(&t->shape);
    memcpy(p.dst_stride, ost, sizeof ost);
    p.dst_off = at * ost[ax];
    if (kg_shape_numel(&t->shape)) {
      ke_block(E);
      ke_decl_in(E, "x", node, k);
      emit_copy(E, y->dtype, "y", "x", &p);
      ke_close(E);
    }
    at += t->shape.dim[ax];
  }
  return true;
}

bool ke_render_slice(ke_ctx *E, int node) {
  const kg_type *x = ke_in_type(E, node, 0), *y = ke_out_type(E, node, 0);
  int nb;
  const int64_t *b;
  kc_attr_ints(&E->m->nodes[node], "begin", &nb, &b);
  copy_plan p = kc_copy_plan_into(&y->shape);
  kc_row_strides(&x->shape, p.src_stride);
  for (int d = 0; d < p.rank; d++) p.src_off += b[d] * p.src_stride[d];
  return copy_node(E, node, &p);
}

/* gathering the strided view out (strided_slice) or scattering into it
 * (strided_slice_grad, over zeros) */
static bool ss_copy(ke_ctx *E, int node, const kg_shape *full, const kg_shape *view, bool scatter) {
  ke_ss sp;
  if (!ke_ss_plan(E, node, full, view, &sp)) return false;
  int64_t st[KILN_MAX_RANK], off = 0, strided[KILN_MAX_RANK] = {0};
  kc_row_strides(full, st);
  for (int i = 0; i < full->rank; i++) off += sp.start[i] * st[i];
  for (int d = 0; d < view->rank; d++) {
    int f = sp.from[d];
    strided[d] = f < 0 || sp.count[f] < 2 ? 0 : sp.step[f] * st[f];
  }
  copy_plan p = scatter ? kc_copy_plan_from(view) : kc_copy_plan_into(view);
  memcpy(scatter ? p.dst_stride : p.src_stride, strided, sizeof strided);
  if (scatter) p.dst_off = off;
  else p.src_off = off;
  return copy_node(E, node, &p);
}

bool ke_render_strided_slice(ke_ctx *E, int node) {
  return ss_copy(E, node, &ke_in_type(E, node, 0)->shape, &ke_out_type(E, node, 0)->shape, false);
}

bool ke_render_strided_slice_grad(ke_ctx *E, int node) {
  const kg_type *x = ke_out_type(E, node, 0);
  ke_memset0(E, ke_out_ptr(E, node, 0), kg_type_bytes(x));
  if (kg_shape_numel(&ke_in_type(E, node, 0)->shape) == 0) return true;
  ke_ss sp;
  const kg_shape *full = &x->shape, *view = &ke_in_type(E, node, 0)->shape;
  if (!ke_ss_plan(E, node, full, view, &sp)) return false;
  int64_t st[KILN_MAX_RANK], off = 0, strided[KILN_MAX_RANK] = {0};
  kc_row_strides(full, st);
  for (int i = 0; i < full->rank; i++) off += sp.start[i] * st[i];
  for (int d = 0; d < view->rank; d++) {
    int f = sp.from[d];
    strided[d] = f < 0 || sp.count[f] < 2 ? 0 : sp.step[f] * st[f];
  }
  copy_plan p = kc_copy_plan_from(view);
  memcpy(p.dst_stride, strided, sizeof strided);
  p.dst_off = off;
  ke_decl_in(E, "x", node, 0);
  ke_decl_out(E, "y", node, 0);
  emit_copy(E, x->dtype, "y", "x", &p);
  return true;
}

/* ---- gather and scatter_add: [outer, A, inner] views ---- */

typedef kc_gather_view gview; /* ops_util.h */

/* every index is checked first, so a bad one ends the run before anything
 * is read or written out of bounds */
static void check_indices(ke_ctx *E, int node, const gview *g, const char *what) {
  ke_open(E, "for (int64_t k = 0; k < %s; k++)", ke_i64(E, g->N));
  ke_fail_if(E, ke_str(E, "(uint64_t)(int64_t)idx[k] >= (uint64_t)%s", ke_i64(E, g->A)), node,
             ke_str(E, "%s index out of range [0, %lld) for axis %d", what, (long long)g->A, g->ax));
  ke_close(E);
}

bool ke_render_gather(ke_ctx *E, int node) {
  const kg_type *pt = ke_in_type(E, node, 0), *it = ke_in_type(E, node, 1);
  gview g = kc_gather_view_of(&pt->shape, kg_attr_int(&E->m->nodes[node], "axis", 0), &it->shape);
  if (g.N == 0) return true;
  ke_decl_in(E, "idx", node, 1);
  check_indices(E, node, &g, "gather");
  if (g.outer == 0 || g.inner == 0) return true;
  ke_decl_in(E, "x", node, 0);
  ke_decl_out(E, "y", node, 0);
  ke_open(E, "for (int64_t o = 0; o < %s; o++)", ke_i64(E, g.outer));
  ke_open(E, "for (int64_t k = 0; k < %s; k++)", ke_i64(E, g.N));
  const char *si = ke_madd(E, ke_str(E, "(o * %s + (int64_t)idx[k])", ke_i64(E, g.A)), g.inner, NULL);
  const char *di = ke_madd(E, ke_str(E, "(o * %s + k)", ke_i64(E, g.N)), g.inner, NULL);
  if (g.inner == 1) ke_line(E, "y[%s] = x[%s];", di, si);
  else ke_line(E, "memcpy(y + %s, x + %s, sizeof *y * %s);", di, si, ke_i64(E, g.inner));
  ke_close(E);
  ke_close(E);
  return true;
}

bool ke_render_scatter_add(ke_ctx *E, int node) {
  const kg_type *ot = ke_out_type(E, node, 0), *it = ke_in_type(E, node, 1);
  gview g = kc_gather_view_of(&ot->shape, kg_attr_int(&E->m->nodes[node], "axis", 0), &it->shape);
  ke_decl_out(E, "y", node, 0);
  ke_memset0(E, "y", kg_type_bytes(ot));
  if (g.N == 0) return true;
  ke_decl_in(E, "idx", node, 1);
  check_indices(E, node, &g, "scatter");
  if (g.outer == 0 || g.inner == 0) return true;
  ke_decl_in(E, "u", node, 0);
  ke_open(E, "for (int64_t o = 0; o < %s; o++)", ke_i64(E, g.outer));
  ke_open(E, "for (int64_t k = 0; k < %s; k++)", ke_i64(E, g.N));
  ke_open(E, "for (int64_t j = 0; j < %s; j++)", ke_i64(E, g.inner));
  const char *di = ke_str(E, "(o * %s + (int64_t)idx[k]) * %s + j", ke_i64(E, g.A), ke_i64(E, g.inner));
  const char *si = ke_str(E, "(o * %s + k) * %s + j", ke_i64(E, g.N), ke_i64(E, g.inner));
  ke_line(E, "y[%s] = %s;", di, ke_prim2(E, "add", ot->dtype, ke_str(E, "y[%s]", di), ke_str(E, "u[%s]", si)));
  ke_close(E);
  ke_close(E);
  ke_close(E);
  return !E->failed;
}

/* ---- pad: the constant everywhere, then the operand into the interior ---- */

static const char *const_of(ke_ctx *E, kiln_dtype dt, double v) {
  if (kg_dtype_is_float(dt)) return ke_const_f(E, dt, v);
  if (dt == KILN_BOOL) return v != 0 ? "1" : "0";
  if (!(fabs(v) < 9.2e18)) v = 0;
  return ke_const_i(E, dt, (int64_t)v);
}

bool ke_render_pad(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *x = ke_in_type(E, node, 0), *y = ke_out_type(E, node, 0);
  double cv = kg_attr_float(n, "constant_value", 0);
  int64_t total = kg_shape_numel(&y->shape);
  if (total == 0) return true;
  ke_decl_out(E, "y", node, 0);
  if (total != kg_shape_numel(&x->shape)) {
    if (kc_const_is_zero(y->dtype, cv)) ke_memset0(E, "y", kg_type_bytes(y));
    else ke_line(E, "for (int64_t i = 0; i < %s; i++) y[i] = %s;", ke_i64(E, total), const_of(E, y->dtype, cv));
  }
  if (kg_shape_numel(&x->shape) == 0) return true;
  int cnt;
  const int64_t *pads;
  kc_attr_ints(n, "paddings", &cnt, &pads);
  copy_plan p = kc_copy_plan_from(&x->shape);
  kc_row_strides(&y->shape, p.dst_stride);
  for (int d = 0; d < p.rank; d++) p.dst_off += pads[2 * d] * p.dst_stride[d];
  ke_decl_in(E, "x", node, 0);
  emit_copy(E, x->dtype, "y", "x", &p);
  return true;
}

bool ke_render_broadcast_to(ke_ctx *E, int node) {
  const kg_type *x = ke_in_type(E, node, 0), *y = ke_out_type(E, node, 0);
  int64_t ist[KILN_MAX_RANK];
  kc_row_strides(&x->shape, ist);
  copy_plan p = kc_copy_plan_into(&y->shape);
  int lead = y->shape.rank - x->shape.rank;
  for (int d = lead; d < p.rank; d++) p.src_stride[d] = x->shape.dim[d - lead] == 1 ? 0 : ist[d - lead];
  return copy_node(E, node, &p);
}

/* indices as [B, C] split at axis, the output as [B, depth, C]:
 * y[b, d, c] = indices[b, c] == d ? on : off */
bool ke_render_one_hot(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *it = ke_in_type(E, node, 0), *y = ke_out_type(E, node, 0);
  int64_t axis = kg_attr_int(n, "axis", -1);
  int ax = (int)(axis < 0 ? axis + y->shape.rank : axis);
  int64_t B = kc_prod(it->shape.dim, 0, ax), C = kc_prod(it->shape.dim, ax, it->shape.rank), D = y->shape.dim[ax];
  if (kg_shape_numel(&y->shape) == 0) return true;
  const char *on = const_of(E, y->dtype, kg_attr_float(n, "on_value", 1));
  const char *off = const_of(E, y->dtype, kg_attr_float(n, "off_value", 0));
  ke_decl_in(E, "idx", node, 0);
  ke_decl_out(E, "y", node, 0);
  ke_open(E, "for (int64_t b = 0; b < %s; b++)", ke_i64(E, B));
  ke_open(E, "for (int64_t d = 0; d < %s; d++)", ke_i64(E, D));
  ke_open(E, "for (int64_t c = 0; c < %s; c++)", ke_i64(E, C));
  ke_line(E, "y[%s] = (int64_t)idx[%s] == d ? %s : %s;", ke_madd(E, ke_madd(E, "b", D, "d"), C, "c"), ke_madd(E, "b", C, "c"), on, off);
  ke_close(E);
  ke_close(E);
  ke_close(E);
  return true;
}
