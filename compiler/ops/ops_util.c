/* ops_util.c — helpers shared by the op families' shape rules. */
#include "ops/ops_util.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const kg_type *kc_in_type(kc_infer_ctx *c, const kg_node *n, int k) {
  return kg_ref_type(c->m, n->in[k]);
}

void kc_set_out(kc_infer_ctx *c, kg_node *n, kiln_dtype dt, const kg_shape *s) {
  n->out = kc_alloc(c->m->arena, sizeof(kg_type));
  n->out[0].dtype = dt;
  n->out[0].shape = *s;
  n->n_out = 1;
}

bool kc_node_error(kc_infer_ctx *c, const kg_node *n, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return kc_error(c->diag, n->loc, "%s (%s): %s", n->name, kc_ops[n->op].name, msg);
}

bool kc_axis(kc_infer_ctx *c, const kg_node *n, int64_t axis, int rank, int *out) {
  if (axis < -rank || axis >= rank || rank == 0)
    return kc_node_error(c, n, "axis %lld is out of range for rank %d", (long long)axis,
                         rank ? rank : 0);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return true;
}

const char *kc_ints_str(const int64_t *v, int n, char *buf, size_t len) {
  size_t k = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < n && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)v[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

const char *kc_shape_str(const kg_shape *s, char *buf, size_t len) { return kc_ints_str(s->dim, s->rank, buf, len); }

bool kc_broadcast(kc_infer_ctx *c, const kg_node *n, const kg_shape *a, const kg_shape *b, kg_shape *out) {
  kg_shape r = {.rank = a->rank > b->rank ? a->rank : b->rank};
  for (int i = 0; i < r.rank; i++) {
    int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[96], sb[96];
      return kc_node_error(c, n, "shapes %s and %s do not broadcast", kc_shape_str(a, sa, sizeof sa),
                           kc_shape_str(b, sb, sizeof sb));
    }
    r.dim[i] = da == 1 ? db : da;
  }
  *out = r;
  return true;
}

bool kc_attr_ints(const kg_node *n, const char *name, int *count, const int64_t **v) {
  const kg_attr *a = kg_node_attr(n, name);
  if (!a || a->kind != KG_ATTR_INTS) return false;
  *count = a->ints.n;
  *v = a->ints.v;
  return true;
}

void kc_row_strides(const kg_shape *s, int64_t *st) {
  int64_t k = 1;
  for (int d = s->rank - 1; d >= 0; d--) {
    st[d] = k;
    k *= s->dim[d];
  }
}

int64_t kc_prod(const int64_t *v, int from, int to) {
  int64_t k = 1;
  for (int i = from; i < to; i++) k *= v[i];
  return k;
}

kc_copy_plan kc_copy_plan_into(const kg_shape *out) {
  kc_copy_plan p = {.rank = out->rank};
  memcpy(p.dim, out->dim, sizeof p.dim);
  kc_row_strides(out, p.dst_stride);
  return p;
}

kc_copy_plan kc_copy_plan_from(const kg_shape *in) {
  kc_copy_plan p = {.rank = in->rank};
  memcpy(p.dim, in->dim, sizeof p.dim);
  kc_row_strides(in, p.src_stride);
  return p;
}

kc_gather_view kc_gather_view_of(const kg_shape *full, int64_t axis, const kg_shape *indices) {
  kc_gather_view g;
  g.ax = (int)(axis < 0 ? axis + full->rank : axis);
  g.outer = kc_prod(full->dim, 0, g.ax);
  g.A = full->dim[g.ax];
  g.inner = kc_prod(full->dim, g.ax + 1, full->rank);
  g.N = kg_shape_numel(indices);
  return g;
}

bool kc_const_is_zero(kiln_dtype dt, double v) {
  if (kg_dtype_is_float(dt)) return v == 0 && !signbit(v);
  if (dt == KILN_BOOL) return v == 0;
  return !(fabs(v) >= 1);
}
