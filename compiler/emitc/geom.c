/* geom.c — the compile-time geometry the C renderings of windowed ops and
 * strided slices need, from the same definitions the shape rules use
 * (ops_util.h: kc_window_of, kc_strided_slice_plan), checked once more
 * against the node's verified types: a disagreement is an internal error
 * naming the node rather than wrong code. */
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
  if (!kc_window_of(n, xs, fs->dim[0], fs->dim[1], true, g)) return ke_node_error(E, node, "internal: window");
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
  int cnt = 0;
  const int64_t *k = NULL;
  if (!kc_attr_ints(n, "ksize", &cnt, &k) || (cnt != 2 && cnt != 4))
    return ke_node_error(E, node, "internal: no ksize");
  if (xs->rank != 4) return ke_node_error(E, node, "internal: the pooling input is not rank 4");
  if (!kc_window_of(n, xs, k[cnt == 4], k[(cnt == 4) + 1], false, g)) return ke_node_error(E, node, "internal: window");
  g->M = 1;
  *ys = (kg_shape){.rank = 4, .dim = {g->N, g->OH, g->OW, g->C}};
  bool grad = n->op == KC_OP_MAX_POOL_GRAD || n->op == KC_OP_AVG_POOL_GRAD;
  return agrees(E, node, grad ? xs : ys);
}

bool ke_ss_plan(ke_ctx *E, int node, const kg_shape *in, const kg_shape *view, ke_ss *p) {
  char err[200];
  if (!kc_strided_slice_plan(&E->m->nodes[node], in, p, err, sizeof err))
    return ke_node_error(E, node, "internal: %s", err);
  kg_shape s = {.rank = p->out_rank};
  for (int d = 0; d < p->out_rank; d++) s.dim[d] = p->from[d] < 0 ? 1 : p->count[p->from[d]];
  if (!kg_shape_eq(&s, view)) return ke_node_error(E, node, "internal: the C backend's slice disagrees with the shape rule");
  return true;
}
