/* geom.c — the compile-time geometry the C renderings of windowed ops and
 * strided slices need: TF's output-size and SAME-padding arithmetic
 * (ops/nn.c's win_make) and the canonical strided-slice ranges (ops/shape.c's
 * ss_compute), computed from a node the verifier accepted.  The shape
 * rules stay the authority: every result here is checked against the
 * node's verified types, and a disagreement is an internal error naming
 * the node rather than wrong code. */
#include "emitc/ke.h"
#include "ops/ops_util.h"
#include <string.h>

void ke_valid_ranges(int64_t na, int64_t sa, int64_t nb, int64_t sb, int64_t pad, int64_t in, int64_t *lo,
                     int64_t *cnt) {
  for (int64_t a = 0; a < na; a++) {
    lo[a] = cnt[a] = 0;
    for (int64_t b = 0; b < nb; b++) {
      int64_t p = a * sa + b * sb - pad;
      if (p < 0 || p >= in) continue;
      if (!cnt[a]) lo[a] = b;
      cnt[a]++;
    }
  }
}

/* [h, w] or [1, h, w, 1]; absent: 1, 1 */
static void hw_attr(const kg_node *n, const char *name, int64_t hw[2]) {
  int cnt = 0;
  const int64_t *v = NULL;
  hw[0] = hw[1] = 1;
  if (!kc_attr_ints(n, name, &cnt, &v)) return;
  if (cnt == 2) hw[0] = v[0], hw[1] = v[1];
  else if (cnt == 4) hw[0] = v[1], hw[1] = v[2];
}

static void out_size(int64_t in, int64_t k, int64_t s, int64_t d, bool same, int64_t *out, int64_t *pad) {
  int64_t span = (k - 1) * d + 1;
  if (same) {
    *out = (in + s - 1) / s;
    int64_t need = (*out - 1) * s + span - in;
    *pad = need > 0 ? need / 2 : 0;
  } else {
    *out = span > in ? 0 : (in - span) / s + 1;
    *pad = 0;
  }
}

static void win_make(const kg_node *n, const kg_shape *x, int64_t kh, int64_t kw, bool dilated, ke_win *g) {
  int64_t s[2], d[2] = {1, 1};
  hw_attr(n, "strides", s);
  if (dilated) hw_attr(n, "dilations", d);
  bool same = !strcmp(kg_attr_str(n, "padding", "VALID"), "SAME");
  g->N = x->dim[0], g->H = x->dim[1], g->W = x->dim[2], g->C = x->dim[3];
  g->KH = kh, g->KW = kw, g->sh = s[0], g->sw = s[1], g->dh = d[0], g->dw = d[1];
  out_size(g->H, kh, g->sh, g->dh, same, &g->OH, &g->pt);
  out_size(g->W, kw, g->sw, g->dw, same, &g->OW, &g->pl);
}

static bool sizes_attr(const kg_node *n, const char *name, kg_shape *s) {
  int cnt = 0;
  const int64_t *v = NULL;
  if (!kc_attr_ints(n, name, &cnt, &v) || cnt != 4) return false;
  s->rank = 4;
  for (int i = 0; i < 4; i++) s->dim[i] = v[i];
  return true;
}

static bool agrees(ke_ctx *E, int node, const kg_shape *want) {
  if (kg_shape_eq(want, &E->m->nodes[node].out[0].shape)) return true;
  return ke_node_error(E, node, "internal: the C backend's geometry disagrees with the shape rule");
}

bool ke_conv_geom(ke_ctx *E, int node, ke_win *g, int *role, kg_shape *xs, kg_shape *fs, kg_shape *ys) {
  const kg_node *n = &E->m->nodes[node];
  int op = n->op;
  bool dw = op == KC_OP_DEPTHWISE_CONV2D || op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT ||
            op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER;
  *role = op == KC_OP_CONV2D_BACKPROP_INPUT || op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT     ? KE_ROLE_INPUT_GRAD
          : op == KC_OP_CONV2D_BACKPROP_FILTER || op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER ? KE_ROLE_FILTER_GRAD
                                                                                                : KE_ROLE_FWD;
  if (*role == KE_ROLE_INPUT_GRAD) {
    if (!sizes_attr(n, "input_sizes", xs)) return ke_node_error(E, node, "internal: no input_sizes");
  } else {
    *xs = ke_in_type(E, node, 0)->shape;
  }
  if (*role == KE_ROLE_FILTER_GRAD) {
    if (!sizes_attr(n, "filter_sizes", fs)) return ke_node_error(E, node, "internal: no filter_sizes");
  } else {
    *fs = ke_in_type(E, node, *role == KE_ROLE_FWD ? 1 : 0)->shape;
  }
  if (xs->rank != 4 || fs->rank != 4) return ke_node_error(E, node, "internal: conv2d operands are not rank 4");
  win_make(n, xs, fs->dim[0], fs->dim[1], true, g);
  g->M = fs->dim[3];
  *ys = (kg_shape){.rank = 4, .dim = {g->N, g->OH, g->OW, dw ? g->C * g->M : g->M}};
  return agrees(E, node, *role == KE_ROLE_FWD ? ys : *role == KE_ROLE_INPUT_GRAD ? xs : fs);
}

bool ke_pool_geom(ke_ctx *E, int node, ke_win *g, kg_shape *xs, kg_shape *ys) {
  const kg_node *n = &E->m->nodes[node];
  if (n->op == KC_OP_AVG_POOL_GRAD) {
    if (!sizes_attr(n, "input_sizes", xs)) return ke_node_error(E, node, "internal: no input_sizes");
  } else {
    *xs = ke_in_type(E, node, 0)->shape;
  }
  int64_t k[2];
  hw_attr(n, "ksize", k);
  if (xs->rank != 4) return ke_node_error(E, node, "internal: the pooling input is not rank 4");
  win_make(n, xs, k[0], k[1], false, g);
  g->M = 1;
  *ys = (kg_shape){.rank = 4, .dim = {g->N, g->OH, g->OW, g->C}};
  bool grad = n->op == KC_OP_MAX_POOL_GRAD || n->op == KC_OP_AVG_POOL_GRAD;
  return agrees(E, node, grad ? xs : ys);
}

/* ---- strided slices (TF's ValidateStridedSliceOp for static shapes) ---- */

enum { SS_NEW_AXIS = -1, SS_SHRINK = -2, SS_MAX_SPEC = 32 };

static int64_t ss_clamp(int64_t x, int64_t dim, int64_t lo, int64_t hi) {
  if (x < 0) x = x < -dim ? lo : x + dim;
  return x < lo ? lo : x > hi ? hi : x;
}

bool ke_ss_plan(ke_ctx *E, int node, const kg_shape *in, const kg_shape *view, ke_ss *p) {
  const kg_node *n = &E->m->nodes[node];
  int nb = 0, ne = 0, ns = 0, r = in->rank;
  const int64_t *b = NULL, *e = NULL, *st = NULL;
  memset(p, 0, sizeof *p);
  if (!kc_attr_ints(n, "begin", &nb, &b) || !kc_attr_ints(n, "end", &ne, &e) || ne != nb || nb > SS_MAX_SPEC)
    return ke_node_error(E, node, "internal: malformed strided slice");
  bool have_strides = kc_attr_ints(n, "strides", &ns, &st);
  uint64_t low = (1ull << nb) - 1;
  uint64_t bmask = (uint64_t)kg_attr_int(n, "begin_mask", 0) & low;
  uint64_t emask = (uint64_t)kg_attr_int(n, "end_mask", 0) & low;
  uint64_t smask = (uint64_t)kg_attr_int(n, "shrink_axis_mask", 0) & low;
  uint64_t nmask = (uint64_t)kg_attr_int(n, "new_axis_mask", 0) & low;
  uint64_t elmask = (uint64_t)kg_attr_int(n, "ellipsis_mask", 0) & low;
  int sparse = nb, new_after = 0;
  bool seen = false;
  for (int i = 0; i < nb; i++) {
    if (seen && (nmask >> i & 1)) new_after++;
    if (elmask >> i & 1) seen = true;
  }
  if (!seen) elmask |= 1ull << sparse++;
  int64_t db[KILN_MAX_RANK] = {0}, de[KILN_MAX_RANK] = {0}, ds[KILN_MAX_RANK];
  for (int i = 0; i < KILN_MAX_RANK; i++) ds[i] = 1;
  bool dbm[KILN_MAX_RANK] = {0}, dem[KILN_MAX_RANK] = {0}, dshrink[KILN_MAX_RANK] = {0};
  int final[SS_MAX_SPEC + KILN_MAX_RANK + 1], n_final = 0, full = 0;
  for (int i = 0; i < sparse; i++) {
    if (elmask >> i & 1) {
      int next = r - (sparse - i) + 1 + new_after;
      if (next > r) next = r;
      for (; full < next; full++) {
        dbm[full] = dem[full] = true;
        final[n_final++] = full;
      }
    } else if (nmask >> i & 1) {
      final[n_final++] = SS_NEW_AXIS;
    } else {
      if (full == r) return ke_node_error(E, node, "internal: strided slice past the operand's rank");
      db[full] = b[i];
      de[full] = e[i];
      ds[full] = have_strides && i < ns ? st[i] : 1;
      dbm[full] = bmask >> i & 1;
      dem[full] = emask >> i & 1;
      dshrink[full] = smask >> i & 1;
      final[n_final++] = dshrink[full] ? SS_SHRINK : full;
      full++;
    }
  }
  for (int i = 0; i < r; i++) {
    int64_t dim = in->dim[i], s = ds[i];
    if (s == 0) return ke_node_error(E, node, "internal: zero stride");
    if (dshrink[i]) {
      p->start[i] = db[i] < 0 ? db[i] + dim : db[i], p->step[i] = 1, p->count[i] = 1;
      continue;
    }
    int64_t lo = s > 0 ? 0 : -1, hi = s > 0 ? dim : dim - 1;
    int64_t bi = dbm[i] ? (s > 0 ? lo : hi) : ss_clamp(db[i], dim, lo, hi);
    int64_t ei = dem[i] ? (s > 0 ? hi : lo) : ss_clamp(de[i], dim, lo, hi);
    int64_t len = ei - bi;
    p->start[i] = bi;
    p->step[i] = s;
    p->count[i] = len == 0 || (len < 0) != (s < 0) ? 0 : len / s + (len % s != 0);
  }
  for (int k = 0; k < n_final; k++) {
    if (final[k] == SS_SHRINK) continue;
    if (p->out_rank == KILN_MAX_RANK) return ke_node_error(E, node, "internal: strided slice rank");
    p->from[p->out_rank++] = final[k];
  }
  kg_shape s = {.rank = p->out_rank};
  for (int d = 0; d < p->out_rank; d++) s.dim[d] = p->from[d] < 0 ? 1 : p->count[p->from[d]];
  if (!kg_shape_eq(&s, view)) return ke_node_error(E, node, "internal: the C backend's slice disagrees with the shape rule");
  return true;
}
