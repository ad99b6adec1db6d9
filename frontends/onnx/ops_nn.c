/* ops_nn.c — ONNX neural-network ops: Conv, ConvTranspose, the pools, the
 * normalizations, Softmax / LogSoftmax / Hardmax, LRN (and, through
 * ops_rnn.c, RNN / GRU / LSTM).
 *
 * ONNX is channel-first (NCHW); kiln's conv and pool ops are channel-last
 * (NHWC, as TensorFlow).  A windowed op moves its input to channel-last,
 * runs there and moves its result back.  The moves are transposes, and a
 * chain Conv -> Relu -> MaxPool -> Conv would pay two per op; to_last()
 * avoids that: when the channel-first value is itself a transpose of a
 * channel-last one (the previous windowed op's result) it takes that
 * value, and when it is an elementwise node over such transposes (Relu,
 * BatchNormalization's affine map, a residual Add) it rebuilds the
 * elementwise node in channel-last order.  The channel-first nodes left
 * unused are then removed by dce, so a chain pays one transpose in and one
 * out.  Weights are initializers: their transposes fold into constants.
 *
 * Padding: kiln windows take VALID or SAME (TF's arithmetic).  Explicit
 * ONNX pads that TF's SAME would produce use SAME (no copy); others pad
 * explicitly and run VALID.  Pools that kiln cannot express (dilations,
 * 3-D, the Indices output of MaxPool) run as one strided slice per window
 * tap, combined elementwise. */
#include "frontends/onnx/ops_nn.h"
#include "ir/expr.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static kg_shape shape_of(ox_ctx *c, kg_ref r) { return ox_type(c, r)->shape; }
static kiln_dtype dtype_of(ox_ctx *c, kg_ref r) { return ox_type(c, r)->dtype; }

static kg_attr attr_str(const char *name, const char *v) {
  return (kg_attr){.name = name, .kind = KG_ATTR_STRING, .s = v};
}

/* ======================================================================
 * small builders
 * ====================================================================== */

kg_ref nn_slice_axis(ox_ctx *c, kg_ref x, int axis, int64_t begin, int64_t size) {
  if (c->g.failed) return KG_NOREF;
  kg_shape s = shape_of(c, x);
  if (begin == 0 && size == s.dim[axis]) return x;
  int64_t b[KILN_MAX_RANK], z[KILN_MAX_RANK];
  for (int d = 0; d < s.rank; d++) b[d] = 0, z[d] = -1;
  b[axis] = begin;
  z[axis] = size;
  kg_attr a[2] = {kb_attr_ints(&c->g, "begin", b, s.rank), kb_attr_ints(&c->g, "size", z, s.rank)};
  return kb_node(&c->g, KC_OP_SLICE, &x, 1, a, 2);
}

kg_ref nn_concat(ox_ctx *c, const kg_ref *v, int n, int axis) {
  if (n == 1) return v[0];
  kg_attr a = kb_attr_int("axis", axis);
  return kb_node(&c->g, KC_OP_CONCAT, v, n, &a, 1);
}

kg_ref nn_reduce(ox_ctx *c, int op, kg_ref x, const int64_t *axes, int n_axes, bool keep) {
  kg_attr a[2] = {kb_attr_ints(&c->g, "axes", axes, n_axes), kb_attr_bool("keepdims", keep)};
  return kb_node(&c->g, op, &x, 1, a, 2);
}

/* x[b0:e0:s0, b1:e1:s1, ...] over every dimension. */
static kg_ref strided(ox_ctx *c, kg_ref x, const int64_t *b, const int64_t *e, const int64_t *s) {
  int r = shape_of(c, x).rank;
  kg_attr a[3] = {kb_attr_ints(&c->g, "begin", b, r), kb_attr_ints(&c->g, "end", e, r),
                  kb_attr_ints(&c->g, "strides", s, r)};
  return kb_node(&c->g, KC_OP_STRIDED_SLICE, &x, 1, a, 3);
}

/* Constant padding p = [before0, after0, ...] (no node when all zero). */
static kg_ref pad_nd(ox_ctx *c, kg_ref x, const int64_t *p, double v) {
  if (c->g.failed) return KG_NOREF;
  int r = shape_of(c, x).rank;
  bool any = false;
  for (int d = 0; d < 2 * r; d++) any |= p[d] != 0;
  if (!any) return x;
  kg_attr a[2] = {kb_attr_ints(&c->g, "paddings", p, 2 * r), kb_attr_float("constant_value", v)};
  return kb_node(&c->g, KC_OP_PAD, &x, 1, a, 2);
}

static kg_ref reshape_to(ox_ctx *c, kg_ref x, int rank, const int64_t *dims) {
  if (c->g.failed) return KG_NOREF;
  kg_shape s = {.rank = rank};
  for (int d = 0; d < rank; d++) s.dim[d] = dims[d];
  return ox_reshape(c, x, &s);
}

/* A constant of x's float dtype holding v (numel values) in shape s. */
static kg_ref const_like(ox_ctx *c, kiln_dtype dt, int rank, const int64_t *dims, const double *v) {
  kg_shape s = {.rank = rank};
  for (int d = 0; d < rank; d++) s.dim[d] = dims[d];
  return ox_const_from(c, dt, &s, v);
}

static bool want_float(ox_ctx *c, ox_node *n, int i) {
  if (kg_dtype_is_float(dtype_of(c, n->in[i]))) return true;
  return ox_fail(c, n, "input %d is %s; this op takes float or double", i, kg_dtype_name(dtype_of(c, n->in[i])));
}

static bool need_inputs(ox_ctx *c, ox_node *n, int k) {
  for (int i = 0; i < k; i++)
    if (!ox_has(n, i)) return ox_fail(c, n, "input %d is required", i);
  return true;
}

/* ======================================================================
 * layout: channel-first <-> channel-last
 * ====================================================================== */

static void perm_last(int r, int64_t *p) { /* [0, 2, ..., r-1, 1] */
  p[0] = 0;
  for (int d = 1; d < r - 1; d++) p[d] = d + 1;
  p[r - 1] = 1;
}
static void perm_first(int r, int64_t *p) { /* [0, r-1, 1, ..., r-2] */
  p[0] = 0;
  p[1] = r - 1;
  for (int d = 2; d < r; d++) p[d] = d - 1;
}

static bool has_perm(const kg_node *nd, const int64_t *want, int r) {
  const kg_attr *a = kg_node_attr(nd, "perm");
  if (!a || a->kind != KG_ATTR_INTS || a->ints.n != r) return false;
  for (int d = 0; d < r; d++)
    if (a->ints.v[d] != want[d]) return false;
  return true;
}

static kg_shape last_shape(const kg_shape *s) {
  int64_t p[KILN_MAX_RANK];
  perm_last(s->rank, p);
  kg_shape t = {.rank = s->rank};
  for (int d = 0; d < s->rank; d++) t.dim[d] = s->dim[p[d]];
  return t;
}

/* An operand of an elementwise node over x (channel-first, shape xs) in
 * channel-last order, when it is a broadcast along everything but the
 * channel axis (a scalar, a [C,1,1] parameter); false otherwise. */
static bool bcast_operand_last(ox_ctx *c, kg_ref o, const kg_shape *xs, kg_ref *out) {
  kg_shape os = shape_of(c, o);
  int r = xs->rank, off = r - os.rank;
  if (off < 0) return false;
  kg_shape ns = {.rank = r};
  for (int d = 0; d < r; d++) ns.dim[d] = 1;
  bool any = false;
  for (int d = 0; d < os.rank; d++) {
    if (os.dim[d] == 1) continue;
    if (d + off != 1) return false;
    ns.dim[r - 1] = os.dim[d];
    any = true;
  }
  *out = any ? ox_reshape(c, o, &ns) : o;
  return true;
}

/* The channel-last form of channel-first x, found without a transpose:
 * x = transpose(y) back from channel-last, or an elementwise node over
 * such values and per-channel broadcasts (rebuilt channel-last). */
static bool find_last(ox_ctx *c, kg_ref x, int depth, kg_ref *out) {
  if (c->g.failed || x.node < 0) return false;
  const kg_node *nd = &c->m->nodes[x.node];
  kg_shape xs = shape_of(c, x);
  int r = xs.rank;
  int64_t pf[KILN_MAX_RANK];
  perm_first(r, pf);
  if (nd->op == KC_OP_TRANSPOSE && has_perm(nd, pf, r)) {
    *out = nd->in[0];
    return true;
  }
  if (depth >= 6 || !(kc_ops[nd->op].flags & KC_OP_ELEMENTWISE) || nd->op == KC_OP_BIAS_ADD || nd->n_out != 1 ||
      nd->n_in > 8 || nd->n_in < 1)
    return false;
  /* copy what the rebuild needs: building nodes moves m->nodes */
  int op = nd->op, n_in = nd->n_in, n_attrs = nd->n_attrs;
  kg_attr *attrs = nd->attrs;
  kg_ref ins[8], nin[8];
  for (int k = 0; k < n_in; k++) ins[k] = nd->in[k];
  const char *expr = op == KC_OP_FUSED ? kg_attr_str(nd, "expr", NULL) : NULL;
  kiln_dtype dt = nd->out[0].dtype;
  for (int k = 0; k < n_in; k++) {
    kg_shape os = shape_of(c, ins[k]);
    if (kg_shape_eq(&os, &xs)) {
      if (!find_last(c, ins[k], depth + 1, &nin[k])) return false;
    } else if (!bcast_operand_last(c, ins[k], &xs, &nin[k])) {
      return false;
    }
  }
  kg_shape ls = last_shape(&xs);
  if (op == KC_OP_FUSED) {
    char err[200];
    kc_expr *e = expr ? kc_expr_parse(c->m->arena, expr, kc_expr_var_names(c->m->arena, n_in), err, sizeof err) : NULL;
    if (!e) return false;
    *out = kb_fused(&c->g, e, nin, n_in, dt, &ls);
  } else {
    *out = kb_node(&c->g, op, nin, n_in, attrs, n_attrs);
  }
  if (c->g.failed) return false;
  kg_shape got = shape_of(c, *out);
  return kg_shape_eq(&got, &ls);
}

/* x permuted by p; a reshape (no copy) when p only moves dimensions of
 * size 1 (a single channel, a length-1 sequence). */
static kg_ref permute(ox_ctx *c, kg_ref x, const int64_t *p) {
  kg_shape s = shape_of(c, x), t = {.rank = s.rank};
  int last = -1;
  bool moves_data = false;
  for (int d = 0; d < s.rank; d++) {
    t.dim[d] = s.dim[p[d]];
    if (s.dim[p[d]] == 1) continue;
    moves_data |= p[d] < last;
    last = (int)p[d];
  }
  return moves_data ? ox_transpose(c, x, p, s.rank) : ox_reshape(c, x, &t);
}

/* x [N, C, d1, ...] as [N, d1, ..., C]. */
static kg_ref to_last(ox_ctx *c, kg_ref x) {
  if (c->g.failed) return KG_NOREF;
  kg_ref y;
  if (find_last(c, x, 0, &y)) return y;
  int64_t p[KILN_MAX_RANK];
  perm_last(shape_of(c, x).rank, p);
  return permute(c, x, p);
}

/* y [N, d1, ..., C] as [N, C, d1, ...]. */
static kg_ref to_first(ox_ctx *c, kg_ref y) {
  if (c->g.failed) return KG_NOREF;
  int64_t p[KILN_MAX_RANK];
  perm_first(shape_of(c, y).rank, p);
  return permute(c, y, p);
}

/* ======================================================================
 * window geometry (ONNX's pads / auto_pad / ceil_mode arithmetic)
 * ====================================================================== */

typedef struct geom {
  int nd;
  int64_t in[3], k[3], s[3], d[3];
  int64_t pb[3], pe[3]; /* padding before / after */
  int64_t ex[3];        /* ceil_mode: windows running past the padded end */
  int64_t out[3];
} geom;

/* An ints attribute of `want` values, or `dflt` everywhere when absent. */
static bool ints_attr(ox_ctx *c, ox_node *n, const char *name, int want, int64_t dflt, int64_t *dst) {
  int cnt = 0;
  const int64_t *v = ox_attr_ints(n, name, &cnt);
  if (!cnt) {
    for (int i = 0; i < want; i++) dst[i] = dflt;
    return true;
  }
  if (cnt != want) return ox_fail(c, n, "attribute '%s' has %d values; it needs %d", name, cnt, want);
  for (int i = 0; i < want; i++) dst[i] = v[i];
  return true;
}

static bool geom_make(ox_ctx *c, ox_node *n, int nd, const int64_t *in, const int64_t *k, bool ceil_mode, geom *g) {
  int64_t pads[6];
  *g = (geom){.nd = nd};
  if (!ints_attr(c, n, "strides", nd, 1, g->s) || !ints_attr(c, n, "dilations", nd, 1, g->d) ||
      !ints_attr(c, n, "pads", 2 * nd, 0, pads))
    return false;
  const char *ap = ox_attr_string(c, n, "auto_pad", "NOTSET");
  bool upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
  if (!upper && !lower && !valid && strcmp(ap, "NOTSET") && *ap)
    return ox_fail(c, n, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
  for (int i = 0; i < nd; i++) {
    int64_t s = g->s[i], d = g->d[i];
    g->in[i] = in[i], g->k[i] = k[i];
    if (s <= 0 || d <= 0 || k[i] <= 0) return ox_fail(c, n, "kernel, strides and dilations must be positive");
    int64_t span = (k[i] - 1) * d + 1;
    if (upper || lower) {
      g->out[i] = (in[i] + s - 1) / s;
      int64_t total = (g->out[i] - 1) * s + span - in[i];
      if (total < 0) total = 0;
      g->pb[i] = upper ? total / 2 : total - total / 2;
      g->pe[i] = total - g->pb[i];
    } else {
      g->pb[i] = valid ? 0 : pads[i];
      g->pe[i] = valid ? 0 : pads[nd + i];
      if (g->pb[i] < 0 || g->pe[i] < 0) return ox_fail(c, n, "negative pads are not supported");
      int64_t num = in[i] + g->pb[i] + g->pe[i] - span;
      if (num < 0)
        return ox_fail(c, n, "the window (%lld) is larger than the padded input (%lld) along spatial axis %d",
                       (long long)span, (long long)(in[i] + g->pb[i] + g->pe[i]), i);
      g->out[i] = ceil_mode ? (num + s - 1) / s + 1 : num / s + 1;
      if (ceil_mode && (g->out[i] - 1) * s >= in[i] + g->pb[i]) g->out[i]--; /* last window starts in padding */
    }
    int64_t ex = (g->out[i] - 1) * s + span - (in[i] + g->pb[i] + g->pe[i]);
    g->ex[i] = ex > 0 ? ex : 0;
  }
  return true;
}

/* A 1-D geometry as 2-D with a unit first axis (kiln's windows are 2-D). */
static geom lift2(const geom *g) {
  if (g->nd == 2) return *g;
  geom h = {.nd = 2};
  h.in[0] = h.k[0] = h.s[0] = h.d[0] = h.out[0] = 1;
  h.in[1] = g->in[0], h.k[1] = g->k[0], h.s[1] = g->s[0], h.d[1] = g->d[0];
  h.pb[1] = g->pb[0], h.pe[1] = g->pe[0], h.ex[1] = g->ex[0], h.out[1] = g->out[0];
  return h;
}

static bool no_padding(const geom *g) {
  for (int i = 0; i < g->nd; i++)
    if (g->pb[i] || g->pe[i] || g->ex[i]) return false;
  return true;
}

/* The padding equals what TF's SAME gives (kiln's SAME then needs no copy). */
static bool tf_same(const geom *g) {
  for (int i = 0; i < g->nd; i++) {
    int64_t out = (g->in[i] + g->s[i] - 1) / g->s[i];
    int64_t need = (out - 1) * g->s[i] + (g->k[i] - 1) * g->d[i] + 1 - g->in[i];
    if (need < 0) need = 0;
    if (g->out[i] != out || g->ex[i] || g->pb[i] != need / 2 || g->pe[i] != need - need / 2) return false;
  }
  return true;
}

/* Channel-last padding list for x [N, spatial..., C] (ceil_mode's extra included). */
static void last_paddings(const geom *g, int64_t *p) {
  p[0] = p[1] = 0;
  for (int i = 0; i < g->nd; i++) p[2 + 2 * i] = g->pb[i], p[3 + 2 * i] = g->pe[i] + g->ex[i];
  p[2 + 2 * g->nd] = p[3 + 2 * g->nd] = 0;
}

/* Channel-last x padded as kiln needs; *padding is "VALID" or "SAME". */
static kg_ref pad_for_kiln(ox_ctx *c, kg_ref xl, const geom *g, bool allow_same, double value, const char **padding) {
  *padding = "VALID";
  if (no_padding(g)) return xl;
  if (allow_same && tf_same(g)) {
    *padding = "SAME";
    return xl;
  }
  int64_t p[2 * KILN_MAX_RANK];
  last_paddings(g, p);
  return pad_nd(c, xl, p, value);
}

/* ======================================================================
 * Conv
 * ====================================================================== */

/* conv2d of channel-last xl [N,H,W,C] with an ONNX weight w4 [O, C/group,
 * KH, KW]: one conv2d (group 1), one depthwise_conv2d (group == C), or a
 * conv2d per group joined along channels. */
static kg_ref conv2d_grouped(ox_ctx *c, kg_ref xl, kg_ref w4, int64_t group, const int64_t *s2, const int64_t *d2,
                             const char *padding) {
  if (c->g.failed) return KG_NOREF;
  kg_shape ws = shape_of(c, w4);
  int64_t O = ws.dim[0], Cg = ws.dim[1], C = shape_of(c, xl).dim[3];
  kg_attr at[3] = {kb_attr_ints(&c->g, "strides", s2, 2), kb_attr_ints(&c->g, "dilations", d2, 2),
                   attr_str("padding", padding)};
  if (group == 1) {
    kg_ref in[2] = {xl, ox_transpose(c, w4, (int64_t[]){2, 3, 1, 0}, 4)};
    return kb_node(&c->g, KC_OP_CONV2D, in, 2, at, 3);
  }
  if (Cg == 1 && group == C) { /* depthwise: output channel c*M + m reads input channel c */
    int64_t M = O / C;
    kg_ref f = reshape_to(c, w4, 4, (int64_t[]){C, M, ws.dim[2], ws.dim[3]});
    kg_ref in[2] = {xl, ox_transpose(c, f, (int64_t[]){2, 3, 0, 1}, 4)};
    return kb_node(&c->g, KC_OP_DEPTHWISE_CONV2D, in, 2, at, 3);
  }
  int64_t Og = O / group;
  kg_ref *parts = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)group);
  for (int64_t gi = 0; gi < group; gi++) {
    kg_ref xg = nn_slice_axis(c, xl, 3, gi * Cg, Cg), wg = nn_slice_axis(c, w4, 0, gi * Og, Og);
    parts[gi] = conv2d_grouped(c, xg, wg, 1, s2, d2, padding);
  }
  return nn_concat(c, parts, (int)group, 3);
}

/* 1-D and 2-D: kiln's conv2d on channel-last data; the result channel-last. */
static kg_ref conv12(ox_ctx *c, kg_ref x, kg_ref w, const geom *g, int64_t group) {
  kg_shape xs = shape_of(c, x), ws = shape_of(c, w);
  kg_ref xl = to_last(c, x);
  geom h = lift2(g);
  if (g->nd == 1) {
    xl = reshape_to(c, xl, 4, (int64_t[]){xs.dim[0], 1, xs.dim[2], xs.dim[1]});
    w = reshape_to(c, w, 4, (int64_t[]){ws.dim[0], ws.dim[1], 1, ws.dim[2]});
  }
  const char *padding;
  xl = pad_for_kiln(c, xl, &h, true, 0.0, &padding);
  kg_ref y = conv2d_grouped(c, xl, w, group, h.s, h.d, padding);
  if (g->nd == 1) y = reshape_to(c, y, 3, (int64_t[]){xs.dim[0], g->out[0], ws.dim[0]});
  return y;
}

/* 3-D: for each depth tap kd, a 2-D convolution of every (padded) input
 * depth with that tap's filter slice, then the output depths' rows of it
 * summed over the taps. */
static kg_ref conv3(ox_ctx *c, kg_ref x, kg_ref w, const geom *g, int64_t group) {
  kg_shape xs = shape_of(c, x), ws = shape_of(c, w);
  int64_t N = xs.dim[0], C = xs.dim[1], O = ws.dim[0];
  int64_t p[10];
  last_paddings(g, p);
  kg_ref xl = pad_nd(c, to_last(c, x), p, 0.0);
  if (c->g.failed) return KG_NOREF;
  kg_shape ps = shape_of(c, xl); /* [N, Dp, Hp, Wp, C] */
  kg_ref xr = reshape_to(c, xl, 4, (int64_t[]){N * ps.dim[1], ps.dim[2], ps.dim[3], C});
  kg_ref acc = KG_NOREF;
  for (int64_t kd = 0; kd < g->k[0]; kd++) {
    kg_ref wk = reshape_to(c, nn_slice_axis(c, w, 2, kd, 1), 4, (int64_t[]){O, ws.dim[1], ws.dim[3], ws.dim[4]});
    kg_ref yk = conv2d_grouped(c, xr, wk, group, g->s + 1, g->d + 1, "VALID");
    if (c->g.failed) return KG_NOREF;
    kg_shape ys = shape_of(c, yk);
    yk = reshape_to(c, yk, 5, (int64_t[]){N, ps.dim[1], ys.dim[1], ys.dim[2], O});
    int64_t b0 = kd * g->d[0];
    int64_t b[5] = {0, b0, 0, 0, 0}, e[5] = {N, b0 + (g->out[0] - 1) * g->s[0] + 1, ys.dim[1], ys.dim[2], O},
            s[5] = {1, g->s[0], 1, 1, 1};
    yk = strided(c, yk, b, e, s);
    acc = kd ? kb_binary(&c->g, KC_OP_ADD, acc, yk) : yk;
  }
  return acc;
}

static bool cv_conv(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2) || !want_float(c, n, 0)) return false;
  kg_shape xs = shape_of(c, n->in[0]), ws = shape_of(c, n->in[1]);
  int r = xs.rank, nd = r - 2;
  if (r < 3 || r > 5) return ox_fail(c, n, "only 1-D, 2-D and 3-D convolutions are supported (input rank %d)", r);
  if (ws.rank != r) return ox_fail(c, n, "the weight has rank %d; the input has rank %d", ws.rank, r);
  int64_t group = ox_attr_int(n, "group", 1), C = xs.dim[1], O = ws.dim[0];
  if (group <= 0 || C % group || ws.dim[1] != C / group || O % group)
    return ox_fail(c, n, "group %lld does not fit %lld input channels, weight [%lld, %lld, ...]", (long long)group,
                   (long long)C, (long long)O, (long long)ws.dim[1]);
  int64_t k[3];
  if (!ints_attr(c, n, "kernel_shape", nd, 0, k)) return false;
  for (int i = 0; i < nd; i++) {
    if (k[i] && k[i] != ws.dim[2 + i]) return ox_fail(c, n, "kernel_shape does not match the weight's shape");
    k[i] = ws.dim[2 + i];
  }
  geom g;
  if (!geom_make(c, n, nd, xs.dim + 2, k, false, &g)) return false;
  kg_ref y = nd == 3 ? conv3(c, n->in[0], n->in[1], &g, group) : conv12(c, n->in[0], n->in[1], &g, group);
  if (ox_has(n, 2)) y = kb_binary(&c->g, KC_OP_ADD, y, n->in[2]); /* B [O] along the channel-last axis */
  n->out[0] = to_first(c, y);
  return !c->g.failed;
}

/* ConvInteger: (x - x_zero_point) conv (w - w_zero_point) as int32,
 * computed in f64 (exact for 8-bit operands); a 1-D w_zero_point is per
 * output channel. */
static bool cv_conv_integer(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  kg_ref in[2], out = KG_NOREF;
  if (!ox_minus_zero_point(c, n, 0, 2, 1, &in[0]) || !ox_minus_zero_point(c, n, 1, 3, 0, &in[1])) return false;
  ox_node f = *n; /* the same node, its operands in f64, for Conv's converter */
  f.in = in, f.n_in = 2, f.out = &out, f.n_out = 1;
  if (!cv_conv(c, &f)) return false;
  n->out[0] = ox_cast(c, out, KILN_I32);
  return !c->g.failed;
}

/* ======================================================================
 * ConvTranspose: conv2d_backprop_input of the forward convolution whose
 * input is the full (unpadded) output, then cropped by the pads.
 * ====================================================================== */

static bool convt_pads(ox_ctx *c, ox_node *n, int nd, const int64_t *in, const int64_t *k, const int64_t *s,
                       const int64_t *d, const int64_t *op, int64_t *full, int64_t *pb, int64_t *pe) {
  int64_t pads[6], oshape[3];
  int n_os = 0;
  ox_attr_ints(n, "output_shape", &n_os);
  if (!ints_attr(c, n, "pads", 2 * nd, 0, pads)) return false;
  if (n_os && !ints_attr(c, n, "output_shape", n_os >= nd ? nd : n_os, 0, oshape)) return false;
  if (n_os > nd) { /* the full [N, C, ...] form */
    const int64_t *v = ox_attr_ints(n, "output_shape", &n_os);
    for (int i = 0; i < nd; i++) oshape[i] = v[n_os - nd + i];
  }
  const char *ap = ox_attr_string(c, n, "auto_pad", "NOTSET");
  bool upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
  for (int i = 0; i < nd; i++) {
    full[i] = (in[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 + op[i];
    if (n_os || upper || lower) {
      int64_t want = n_os ? oshape[i] : in[i] * s[i];
      int64_t total = full[i] - want;
      /* SAME_UPPER and a plain output_shape put the odd one (or, when the
       * output is larger than the full result, the zeros) at the end */
      if (upper || !lower) pb[i] = total / 2, pe[i] = total - pb[i];
      else pe[i] = total / 2, pb[i] = total - pe[i];
    } else {
      pb[i] = valid ? 0 : pads[i], pe[i] = valid ? 0 : pads[nd + i];
    }
  }
  return true;
}

/* The transposed convolution of channel-last xl [N, H, W, C] with an ONNX
 * weight w4 [C, O/group, KH, KW] at full (uncropped) size full2: per
 * group, conv2d_backprop_input of the forward conv whose filter
 * [KH, KW, O/group, C/group] is F[kh,kw,o,c] = W[c,o,kh,kw]. */
static kg_ref convt2d(ox_ctx *c, kg_ref xl, kg_ref w4, int64_t group, const int64_t *full2, const int64_t *s2,
                      const int64_t *d2) {
  if (c->g.failed) return KG_NOREF;
  kg_shape xs = shape_of(c, xl), ws = shape_of(c, w4);
  int64_t Cg = xs.dim[3] / group, Og = ws.dim[1];
  kg_ref *parts = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)group);
  for (int64_t gi = 0; gi < group; gi++) {
    kg_ref xg = nn_slice_axis(c, xl, 3, gi * Cg, Cg), wg = nn_slice_axis(c, w4, 0, gi * Cg, Cg);
    kg_ref in[2] = {ox_transpose(c, wg, (int64_t[]){2, 3, 1, 0}, 4), xg};
    int64_t sizes[4] = {xs.dim[0], full2[0], full2[1], Og};
    kg_attr at[4] = {kb_attr_ints(&c->g, "input_sizes", sizes, 4), kb_attr_ints(&c->g, "strides", s2, 2),
                     kb_attr_ints(&c->g, "dilations", d2, 2), attr_str("padding", "VALID")};
    parts[gi] = kb_node(&c->g, KC_OP_CONV2D_BACKPROP_INPUT, in, 2, at, 4);
  }
  return nn_concat(c, parts, (int)group, 3);
}

/* 3-D: per depth tap kd, a 2-D transposed convolution of every input
 * depth, spread to output depths id*sd + kd*dd (zeros between), summed. */
static kg_ref convt3(ox_ctx *c, kg_ref xl, kg_ref w, int64_t group, const int64_t *full, const int64_t *s,
                     const int64_t *d) {
  kg_shape xs = shape_of(c, xl), ws = shape_of(c, w);
  int64_t N = xs.dim[0], ID = xs.dim[1], C = xs.dim[4], O = ws.dim[1] * group;
  kg_ref xr = reshape_to(c, xl, 4, (int64_t[]){N * ID, xs.dim[2], xs.dim[3], C}), acc = KG_NOREF;
  for (int64_t kd = 0; kd < ws.dim[2] && !c->g.failed; kd++) {
    kg_ref wk = reshape_to(c, nn_slice_axis(c, w, 2, kd, 1), 4, (int64_t[]){C, ws.dim[1], ws.dim[3], ws.dim[4]});
    kg_ref z = convt2d(c, xr, wk, group, full + 1, s + 1, d + 1);
    z = reshape_to(c, z, 6, (int64_t[]){N, ID, 1, full[1], full[2], O});
    int64_t up[12] = {0, 0, 0, 0, 0, s[0] - 1};
    z = reshape_to(c, pad_nd(c, z, up, 0.0), 5, (int64_t[]){N, ID * s[0], full[1], full[2], O});
    int64_t span = (ID - 1) * s[0] + 1, at = kd * d[0];
    z = nn_slice_axis(c, z, 1, 0, span);
    int64_t place[10] = {0, 0, at, full[0] - at - span};
    z = pad_nd(c, z, place, 0.0);
    acc = kd ? kb_binary(&c->g, KC_OP_ADD, acc, z) : z;
  }
  return acc;
}

static bool cv_conv_transpose(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2) || !want_float(c, n, 0)) return false;
  kg_shape xs = shape_of(c, n->in[0]), ws = shape_of(c, n->in[1]);
  int r = xs.rank, nd = r - 2;
  if (r < 3 || r > 5) return ox_fail(c, n, "only 1-D, 2-D and 3-D transposed convolutions are supported (rank %d)", r);
  if (ws.rank != r) return ox_fail(c, n, "the weight has rank %d; the input has rank %d", ws.rank, r);
  int64_t group = ox_attr_int(n, "group", 1), C = xs.dim[1];
  if (group <= 0 || C % group || ws.dim[0] != C)
    return ox_fail(c, n, "group %lld does not fit %lld input channels and weight [%lld, ...]", (long long)group,
                   (long long)C, (long long)ws.dim[0]);
  int64_t O = ws.dim[1] * group, N = xs.dim[0];
  int64_t k[3], s[3], d[3], op[3], full[3], pb[3], pe[3];
  for (int i = 0; i < nd; i++) k[i] = ws.dim[2 + i];
  if (!ints_attr(c, n, "strides", nd, 1, s) || !ints_attr(c, n, "dilations", nd, 1, d) ||
      !ints_attr(c, n, "output_padding", nd, 0, op) || !convt_pads(c, n, nd, xs.dim + 2, k, s, d, op, full, pb, pe))
    return false;
  kg_ref xl = to_last(c, n->in[0]), w = n->in[1], y;
  if (nd == 3) {
    y = convt3(c, xl, w, group, full, s, d);
  } else if (nd == 2) {
    y = convt2d(c, xl, w, group, full, s, d);
  } else {
    xl = reshape_to(c, xl, 4, (int64_t[]){N, 1, xs.dim[2], C});
    w = reshape_to(c, w, 4, (int64_t[]){C, ws.dim[1], 1, k[0]});
    y = convt2d(c, xl, w, group, (int64_t[]){1, full[0]}, (int64_t[]){1, s[0]}, (int64_t[]){1, d[0]});
    y = reshape_to(c, y, 3, (int64_t[]){N, full[0], O});
  }
  /* crop by the pads (negative pads grow with zeros) */
  int64_t grow[2 * KILN_MAX_RANK] = {0}, b[KILN_MAX_RANK] = {0}, z[KILN_MAX_RANK];
  bool crop = false;
  for (int i = 0; i < r; i++) z[i] = -1;
  for (int i = 0; i < nd; i++) {
    grow[2 + 2 * i] = pb[i] < 0 ? -pb[i] : 0;
    grow[3 + 2 * i] = pe[i] < 0 ? -pe[i] : 0;
    b[1 + i] = pb[i] > 0 ? pb[i] : 0;
    z[1 + i] = full[i] - pb[i] - pe[i];
    crop |= pb[i] > 0 || pe[i] > 0;
  }
  y = pad_nd(c, y, grow, 0.0);
  if (crop && !c->g.failed) {
    kg_attr a[2] = {kb_attr_ints(&c->g, "begin", b, r), kb_attr_ints(&c->g, "size", z, r)};
    y = kb_node(&c->g, KC_OP_SLICE, &y, 1, a, 2);
  }
  if (ox_has(n, 2)) y = kb_binary(&c->g, KC_OP_ADD, y, n->in[2]);
  n->out[0] = to_first(c, y);
  return !c->g.failed;
}

/* ======================================================================
 * MaxPool, AveragePool
 * ====================================================================== */

/* Along one axis: how many taps of output position o land in [lo, hi). */
static int64_t taps_inside(const geom *g, int i, int64_t o, int64_t lo, int64_t hi) {
  int64_t cnt = 0;
  for (int64_t t = 0; t < g->k[i]; t++) {
    int64_t pos = o * g->s[i] + t * g->d[i];
    cnt += pos >= lo && pos < hi;
  }
  return cnt;
}

/* The averaging divisor of every output position (padded coordinates). */
static double *avg_counts(ox_ctx *c, const geom *g, bool include_pad, int64_t *numel) {
  int64_t n = 1;
  for (int i = 0; i < g->nd; i++) n *= g->out[i];
  double *v = kc_alloc(c->m->arena, sizeof(double) * (size_t)n);
  for (int64_t j = 0; j < n; j++) {
    int64_t rest = j;
    double cnt = 1;
    for (int i = g->nd - 1; i >= 0; i--) {
      int64_t o = rest % g->out[i];
      rest /= g->out[i];
      int64_t lo = include_pad ? 0 : g->pb[i], hi = include_pad ? g->pb[i] + g->in[i] + g->pe[i] : g->pb[i] + g->in[i];
      cnt *= (double)taps_inside(g, i, o, lo, hi);
    }
    v[j] = cnt;
  }
  *numel = n;
  return v;
}

/* 1-D and 2-D pools without dilations: kiln's max_pool / avg_pool. */
static kg_ref pool_kiln(ox_ctx *c, kg_ref x, const geom *g, bool is_max, bool include_pad) {
  kg_shape xs = shape_of(c, x);
  kg_ref xl = to_last(c, x);
  if (g->nd == 1) xl = reshape_to(c, xl, 4, (int64_t[]){xs.dim[0], 1, xs.dim[2], xs.dim[1]});
  geom h = lift2(g);
  /* kiln's SAME never counts padding: right for max, and for avg without count_include_pad */
  const char *padding;
  xl = pad_for_kiln(c, xl, &h, is_max || !include_pad, is_max ? -INFINITY : 0.0, &padding);
  kg_attr at[3] = {kb_attr_ints(&c->g, "ksize", h.k, 2), kb_attr_ints(&c->g, "strides", h.s, 2),
                   attr_str("padding", padding)};
  kg_ref y = kb_node(&c->g, is_max ? KC_OP_MAX_POOL : KC_OP_AVG_POOL, &xl, 1, at, 3);
  if (!is_max && !strcmp(padding, "VALID") && !no_padding(&h)) {
    /* avg_pool divided by KH*KW over the padded input; rescale to the ONNX count */
    int64_t cnt;
    double *v = avg_counts(c, &h, include_pad, &cnt), kk = (double)(h.k[0] * h.k[1]);
    bool ones = true;
    for (int64_t j = 0; j < cnt; j++) ones &= v[j] == kk, v[j] = kk / v[j];
    if (!ones)
      y = kb_binary(&c->g, KC_OP_MUL, y, const_like(c, dtype_of(c, x), 3, (int64_t[]){h.out[0], h.out[1], 1}, v));
  }
  if (g->nd == 1) y = reshape_to(c, y, 3, (int64_t[]){xs.dim[0], g->out[0], xs.dim[1]});
  return to_first(c, y);
}

/* A window combination is separable: pooling along one spatial axis at a
 * time, each axis a strided slice per tap combined elementwise, costs
 * sum(k) slices instead of prod(k).  x is channel-first and padded. */
static kg_ref pool_separable(ox_ctx *c, kg_ref xp, const geom *g, bool is_max) {
  for (int i = 0; i < g->nd && !c->g.failed; i++) {
    kg_shape s = shape_of(c, xp);
    kg_ref acc = KG_NOREF;
    for (int64_t t = 0; t < g->k[i]; t++) {
      int64_t b[KILN_MAX_RANK] = {0}, e[KILN_MAX_RANK], st[KILN_MAX_RANK];
      for (int d = 0; d < s.rank; d++) e[d] = s.dim[d], st[d] = 1;
      b[2 + i] = t * g->d[i];
      e[2 + i] = b[2 + i] + (g->out[i] - 1) * g->s[i] + 1;
      st[2 + i] = g->s[i];
      kg_ref v = strided(c, xp, b, e, st);
      acc = t ? kb_binary(&c->g, is_max ? KC_OP_MAXIMUM : KC_OP_ADD, acc, v) : v;
    }
    xp = acc;
  }
  return xp;
}

/* The flat input index (ONNX's MaxPool Indices, per (n, c) plane) that
 * tap `tap` reads at each output position. */
static double *tap_indices(ox_ctx *c, const geom *g, const int64_t *tap, bool col_major) {
  int nd = g->nd;
  int64_t nout = 1;
  for (int i = 0; i < nd; i++) nout *= g->out[i];
  double *iv = kc_alloc(c->m->arena, sizeof(double) * (size_t)nout);
  for (int64_t j = 0; j < nout; j++) {
    int64_t rest = j, flat = 0, mul = 1;
    for (int i = nd - 1; i >= 0; i--) {
      int64_t o = rest % g->out[i], pos = o * g->s[i] + tap[i] * g->d[i] - g->pb[i];
      rest /= g->out[i];
      if (pos < 0 || pos >= g->in[i]) pos = 0; /* padding: never the maximum */
      flat += pos * mul;
      mul *= g->in[i];
    }
    if (col_major && nd == 2) { /* column-major: h + w * H */
      int64_t hh = flat / g->in[1], ww = flat % g->in[1];
      flat = hh + ww * g->in[0];
    }
    iv[j] = (double)flat;
  }
  return iv;
}

/* MaxPool with Indices: one strided slice per window tap, the first
 * maximum's index carried along. */
static kg_ref max_pool_indices(ox_ctx *c, kg_ref xp, const geom *g, const kg_shape *xs, bool col_major, kg_ref *idx) {
  int r = xs->rank, nd = g->nd;
  int64_t ntaps = 1, plane = 1;
  for (int i = 0; i < nd; i++) ntaps *= g->k[i], plane *= g->in[i];
  kg_ref acc = KG_NOREF, best = KG_NOREF;
  kg_shape ps = shape_of(c, xp);
  for (int64_t t = 0; t < ntaps && !c->g.failed; t++) {
    int64_t tap[3], b[KILN_MAX_RANK] = {0}, e[KILN_MAX_RANK], s[KILN_MAX_RANK];
    for (int64_t rest = t, i = nd - 1; i >= 0; i--) tap[i] = rest % g->k[i], rest /= g->k[i];
    for (int d = 0; d < r; d++) e[d] = ps.dim[d], s[d] = 1;
    for (int i = 0; i < nd; i++) {
      b[2 + i] = tap[i] * g->d[i];
      e[2 + i] = b[2 + i] + (g->out[i] - 1) * g->s[i] + 1;
      s[2 + i] = g->s[i];
    }
    kg_ref v = strided(c, xp, b, e, s);
    kg_ref it = const_like(c, KILN_I64, nd, g->out, tap_indices(c, g, tap, col_major));
    best = t ? ox_expr(c, "select(gt(x1, x0), x2, x3)", (kg_ref[]){acc, v, it, best}, 4, KILN_I64) : it;
    acc = t ? kb_binary(&c->g, KC_OP_MAXIMUM, acc, v) : v;
  }
  if (c->g.failed) return KG_NOREF;
  /* plus each (n, c) plane's offset */
  int64_t N = xs->dim[0], C = xs->dim[1], bd[KILN_MAX_RANK];
  double *bv = kc_alloc(c->m->arena, sizeof(double) * (size_t)(N * C));
  for (int64_t j = 0; j < N * C; j++) bv[j] = (double)(j * plane);
  bd[0] = N, bd[1] = C;
  for (int d = 2; d < r; d++) bd[d] = 1;
  kg_shape as = shape_of(c, acc);
  *idx = kb_binary(&c->g, KC_OP_ADD, kb_broadcast(&c->g, best, &as), const_like(c, KILN_I64, r, bd, bv));
  return acc;
}

/* Pools kiln cannot run itself (dilations, 3-D, Indices), channel-first. */
static kg_ref pool_taps(ox_ctx *c, kg_ref x, const geom *g, bool is_max, bool include_pad, bool col_major,
                        kg_ref *idx) {
  kg_shape xs = shape_of(c, x);
  int64_t p[2 * KILN_MAX_RANK] = {0};
  for (int i = 0; i < g->nd; i++) p[4 + 2 * i] = g->pb[i], p[5 + 2 * i] = g->pe[i] + g->ex[i];
  kg_ref xp = pad_nd(c, x, p, is_max ? -INFINITY : 0.0);
  if (idx) return max_pool_indices(c, xp, g, &xs, col_major, idx);
  kg_ref acc = pool_separable(c, xp, g, is_max);
  if (!is_max && !c->g.failed) {
    int64_t cnt;
    double *v = avg_counts(c, g, include_pad, &cnt);
    for (int64_t j = 0; j < cnt; j++) v[j] = 1.0 / v[j];
    acc = kb_binary(&c->g, KC_OP_MUL, acc, const_like(c, dtype_of(c, x), g->nd, g->out, v));
  }
  return acc;
}

static bool cv_pool(ox_ctx *c, ox_node *n, bool is_max) {
  if (!need_inputs(c, n, 1)) return false;
  kg_ref x = n->in[0];
  kg_shape xs = shape_of(c, x);
  int r = xs.rank, nd = r - 2;
  if (r < 3 || r > 5) return ox_fail(c, n, "only 1-D, 2-D and 3-D pooling is supported (input rank %d)", r);
  int64_t k[3];
  int nk = 0;
  ox_attr_ints(n, "kernel_shape", &nk);
  if (nk != nd) return ox_fail(c, n, "kernel_shape must have %d values", nd);
  if (!ints_attr(c, n, "kernel_shape", nd, 1, k)) return false;
  geom g;
  if (!geom_make(c, n, nd, xs.dim + 2, k, ox_attr_int(n, "ceil_mode", 0) != 0, &g)) return false;
  bool include_pad = ox_attr_int(n, "count_include_pad", 0) != 0;
  bool want_idx = is_max && n->n_out > 1 && n->p->output[1][0];
  bool dilated = false;
  for (int i = 0; i < nd; i++) dilated |= g.d[i] != 1;
  kiln_dtype dt = dtype_of(c, x);
  if (!kg_dtype_is_float(dt)) {
    if (!is_max) return want_float(c, n, 0);
    x = ox_cast(c, x, KILN_F32); /* max of 8-bit (and small) integers is exact in f32 */
  }
  kg_ref idx = KG_NOREF, y;
  if (want_idx || dilated || nd == 3)
    y = pool_taps(c, x, &g, is_max, include_pad, ox_attr_int(n, "storage_order", 0) != 0, want_idx ? &idx : NULL);
  else
    y = pool_kiln(c, x, &g, is_max, include_pad);
  n->out[0] = ox_cast(c, y, dt);
  if (want_idx) n->out[1] = idx;
  return !c->g.failed;
}

static bool cv_max_pool(ox_ctx *c, ox_node *n) { return cv_pool(c, n, true); }
static bool cv_average_pool(ox_ctx *c, ox_node *n) { return cv_pool(c, n, false); }

/* MaxUnpool: X's values scattered at MaxPool's flat indices into zeros of
 * the unpooled shape (output_shape, or the size MaxPool came from). */
static bool cv_max_unpool(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2)) return false;
  kg_shape xs = shape_of(c, n->in[0]), os = xs;
  int r = xs.rank, nd = r - 2;
  if (r < 3 || r > 5) return ox_fail(c, n, "only 1-D, 2-D and 3-D unpooling is supported (input rank %d)", r);
  /* the indices count positions in the pooled input's shape (the default
   * output shape); output_shape may be larger: the same coordinates there */
  int64_t k[3], s[3], p[6];
  int nk = 0;
  ox_attr_ints(n, "kernel_shape", &nk);
  if (nk != nd) return ox_fail(c, n, "kernel_shape must have %d values", nd);
  if (!ints_attr(c, n, "kernel_shape", nd, 1, k) || !ints_attr(c, n, "strides", nd, 1, s) ||
      !ints_attr(c, n, "pads", 2 * nd, 0, p))
    return false;
  kg_shape ds = xs;
  for (int i = 0; i < nd; i++) ds.dim[2 + i] = (xs.dim[2 + i] - 1) * s[i] + k[i] - p[i] - p[nd + i];
  os = ds;
  if (ox_has(n, 2)) {
    int64_t *v;
    int cnt;
    if (!ox_const_ints(c, n, 2, &v, &cnt)) return false;
    if (cnt != r) return ox_fail(c, n, "output_shape must have %d values", r);
    for (int d = 0; d < r; d++) {
      if (v[d] < ds.dim[d]) return ox_fail(c, n, "output_shape[%d] = %lld is below the pooled size %lld", d,
                                            (long long)v[d], (long long)ds.dim[d]);
      os.dim[d] = v[d];
    }
  }
  int64_t total = kg_shape_numel(&os), numel = kg_shape_numel(&xs);
  kg_shape flat = {1, {numel}};
  kg_ref in[2] = {ox_reshape(c, n->in[0], &flat), ox_reshape(c, n->in[1], &flat)};
  if (!kg_shape_eq(&os, &ds)) { /* re-ravel: unravel in ds, ravel in os */
    char e[1024] = "0", t[1024];
    int64_t div = 1, stride = 1;
    size_t len = 1;
    for (int d = r - 1; d >= 0; d--) {
      len = (size_t)snprintf(t, sizeof t, "add(%s, mul(mod(div(x0, %lld), %lld), %lld))", e, (long long)div,
                             (long long)ds.dim[d], (long long)stride);
      if (len >= sizeof t) break;
      memcpy(e, t, len + 1);
      div *= ds.dim[d];
      stride *= os.dim[d];
    }
    if (len >= sizeof t) return ox_fail(c, n, "internal: index expression too long");
    in[1] = ox_expr(c, e, &in[1], 1, ox_type(c, in[1])->dtype);
  }
  kg_attr a = kb_attr_ints(&c->g, "shape", &total, 1);
  kg_ref y = kb_node(&c->g, KC_OP_SCATTER_ADD, in, 2, &a, 1);
  n->out[0] = ox_reshape(c, y, &os);
  return !c->g.failed;
}

static bool global_pool(ox_ctx *c, ox_node *n, int op) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  int r = shape_of(c, n->in[0]).rank;
  if (r < 3) return ox_fail(c, n, "the input must have rank 3 or more (N, C, spatial...)");
  int64_t axes[KILN_MAX_RANK];
  kg_ref xl;
  if (find_last(c, n->in[0], 0, &xl)) { /* after a conv: reduce channel-last, no transpose */
    for (int d = 1; d < r - 1; d++) axes[d - 1] = d;
    kg_shape s = shape_of(c, n->in[0]);
    for (int d = 2; d < r; d++) s.dim[d] = 1;
    n->out[0] = ox_reshape(c, nn_reduce(c, op, xl, axes, r - 2, true), &s);
    return !c->g.failed;
  }
  for (int d = 2; d < r; d++) axes[d - 2] = d;
  n->out[0] = nn_reduce(c, op, n->in[0], axes, r - 2, true);
  return !c->g.failed;
}
static bool cv_global_average_pool(ox_ctx *c, ox_node *n) { return global_pool(c, n, KC_OP_MEAN); }
static bool cv_global_max_pool(ox_ctx *c, ox_node *n) { return global_pool(c, n, KC_OP_MAX); }

/* ======================================================================
 * normalizations
 * ====================================================================== */

/* A per-channel parameter [C] of x (rank r) as [C, 1, ..., 1] in x's dtype. */
static kg_ref per_channel(ox_ctx *c, kg_ref p, int r, kiln_dtype dt) {
  if (c->g.failed) return KG_NOREF;
  kg_shape ps = shape_of(c, p), s = {.rank = r - 1};
  for (int d = 0; d < s.rank; d++) s.dim[d] = 1;
  s.dim[0] = kg_shape_numel(&ps);
  return ox_reshape(c, ox_cast(c, p, dt), &s);
}

static kg_ref expr_eps(ox_ctx *c, const char *fmt, double eps, const kg_ref *in, int n_in, kiln_dtype dt) {
  char e[256];
  snprintf(e, sizeof e, fmt, eps);
  return ox_expr(c, e, in, n_in, dt);
}

/* (x - mean) / sqrt(var + eps) over axes (biased variance); the mean,
 * variance and 1 / sqrt(var + eps) (dimensions kept) where asked. */
static kg_ref standardize(ox_ctx *c, kg_ref x, const int64_t *axes, int na, double eps, kg_ref *mean, kg_ref *inv,
                          kg_ref *variance) {
  kiln_dtype dt = dtype_of(c, x);
  kg_ref m = nn_reduce(c, KC_OP_MEAN, x, axes, na, true);
  kg_ref d = ox_expr(c, "sub(x0, x1)", (kg_ref[]){x, m}, 2, dt);
  kg_ref var = nn_reduce(c, KC_OP_MEAN, ox_expr(c, "mul(x0, x0)", &d, 1, dt), axes, na, true);
  kg_ref iv = expr_eps(c, "div(1, sqrt(add(x0, %.17g)))", eps, &var, 1, dt);
  if (mean) *mean = m;
  if (inv) *inv = iv;
  if (variance) *variance = var;
  return ox_expr(c, "mul(x0, x1)", (kg_ref[]){d, iv}, 2, dt);
}

static bool cv_batch_norm(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 5) || !want_float(c, n, 0)) return false;
  kg_ref x = n->in[0];
  kg_shape xs = shape_of(c, x);
  kiln_dtype dt = dtype_of(c, x);
  int r = xs.rank;
  if (r < 2) return ox_fail(c, n, "the input must have rank 2 or more (N, C, ...)");
  if (c->opset < 9 && ox_attr_int(n, "spatial", 1) == 0)
    return ox_fail(c, n, "spatial=0 (per-activation statistics) is not supported");
  double eps = ox_attr_float(n, "epsilon", 1e-5);
  bool training = c->opset >= 14 && ox_attr_int(n, "training_mode", 0);
  kg_ref s = per_channel(c, n->in[1], r, dt), b = per_channel(c, n->in[2], r, dt);
  if (!training) { /* y = x * a + (B - mean * a), a = scale / sqrt(var + eps): constants fold */
    kg_ref mean = per_channel(c, n->in[3], r, dt), var = per_channel(c, n->in[4], r, dt);
    kg_ref a = expr_eps(c, "div(x0, sqrt(add(x1, %.17g)))", eps, (kg_ref[]){s, var}, 2, dt);
    kg_ref bb = ox_expr(c, "sub(x0, mul(x1, x2))", (kg_ref[]){b, mean, a}, 3, dt);
    n->out[0] = ox_expr(c, "add(mul(x0, x1), x2)", (kg_ref[]){x, a, bb}, 3, dt);
    return !c->g.failed;
  }
  int64_t axes[KILN_MAX_RANK];
  int na = 0;
  for (int d = 0; d < r; d++)
    if (d != 1) axes[na++] = d;
  kg_ref mean, var;
  kg_ref z = standardize(c, x, axes, na, eps, &mean, NULL, &var);
  n->out[0] = ox_expr(c, "add(mul(x0, x1), x2)", (kg_ref[]){z, s, b}, 3, dt);
  double mom = ox_attr_float(n, "momentum", 0.9);
  char e[160];
  snprintf(e, sizeof e, "add(mul(x0, %.17g), mul(x1, %.17g))", mom, 1.0 - mom);
  kg_shape cs = {1, {xs.dim[1]}};
  if (n->n_out > 1) {
    kg_ref bm = ox_reshape(c, mean, &cs);
    n->out[1] = ox_expr(c, e, (kg_ref[]){ox_cast(c, n->in[3], dt), bm}, 2, dt);
  }
  if (n->n_out > 2) {
    kg_ref bv = ox_reshape(c, var, &cs);
    n->out[2] = ox_expr(c, e, (kg_ref[]){ox_cast(c, n->in[4], dt), bv}, 2, dt);
  }
  return !c->g.failed;
}

static bool cv_instance_norm(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 3) || !want_float(c, n, 0)) return false;
  kg_ref x = n->in[0];
  int r = shape_of(c, x).rank;
  kiln_dtype dt = dtype_of(c, x);
  if (r < 3) return ox_fail(c, n, "the input must have rank 3 or more (N, C, spatial...)");
  int64_t axes[KILN_MAX_RANK];
  for (int d = 2; d < r; d++) axes[d - 2] = d;
  kg_ref z = standardize(c, x, axes, r - 2, ox_attr_float(n, "epsilon", 1e-5), NULL, NULL, NULL);
  kg_ref s = per_channel(c, n->in[1], r, dt), b = per_channel(c, n->in[2], r, dt);
  n->out[0] = ox_expr(c, "add(mul(x0, x1), x2)", (kg_ref[]){z, s, b}, 3, dt);
  return !c->g.failed;
}

static bool cv_layer_norm(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 2) || !want_float(c, n, 0)) return false;
  kg_ref x = n->in[0];
  int r = shape_of(c, x).rank, ax;
  kiln_dtype dt = dtype_of(c, x);
  if (!ox_axis(c, n, ox_attr_int(n, "axis", -1), r, &ax)) return false;
  int64_t axes[KILN_MAX_RANK];
  for (int d = ax; d < r; d++) axes[d - ax] = d;
  kg_ref mean, inv;
  kg_ref z = standardize(c, x, axes, r - ax, ox_attr_float(n, "epsilon", 1e-5), &mean, &inv, NULL);
  kg_ref in[3] = {z, ox_cast(c, n->in[1], dt), ox_has(n, 2) ? ox_cast(c, n->in[2], dt) : KG_NOREF};
  n->out[0] = ox_has(n, 2) ? ox_expr(c, "add(mul(x0, x1), x2)", in, 3, dt) : ox_expr(c, "mul(x0, x1)", in, 2, dt);
  if (n->n_out > 1) n->out[1] = mean;
  if (n->n_out > 2) n->out[2] = inv;
  return !c->g.failed;
}

static bool cv_mvn(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  kg_ref x = n->in[0];
  kiln_dtype dt = dtype_of(c, x);
  int r = shape_of(c, x).rank, na = 0;
  const int64_t *av = ox_attr_ints(n, "axes", &na);
  int64_t axes[KILN_MAX_RANK], dflt[3] = {0, 2, 3};
  if (!av) av = dflt, na = 3;
  if (na > r) return ox_fail(c, n, "more axes than the input's rank %d", r);
  for (int i = 0; i < na; i++) {
    int a;
    if (!ox_axis(c, n, av[i], r, &a)) return false;
    axes[i] = a;
  }
  /* as ONNX's function: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) */
  kg_ref m = nn_reduce(c, KC_OP_MEAN, x, axes, na, true);
  kg_ref m2 = nn_reduce(c, KC_OP_MEAN, ox_expr(c, "mul(x0, x0)", &x, 1, dt), axes, na, true);
  n->out[0] = ox_expr(c, "div(sub(x0, x1), add(sqrt(sub(x2, mul(x1, x1))), 1e-9))", (kg_ref[]){x, m, m2}, 3, dt);
  return !c->g.failed;
}

static bool cv_lp_norm(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  kg_ref x = n->in[0];
  kiln_dtype dt = dtype_of(c, x);
  int r = shape_of(c, x).rank, ax;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", -1), r, &ax)) return false;
  int64_t p = ox_attr_int(n, "p", 2), axes[1] = {ax};
  if (p != 1 && p != 2) return ox_fail(c, n, "p must be 1 or 2, not %lld", (long long)p);
  kg_ref t = ox_expr(c, p == 1 ? "abs(x0)" : "mul(x0, x0)", &x, 1, dt);
  kg_ref s = nn_reduce(c, KC_OP_SUM, t, axes, 1, true);
  n->out[0] = ox_expr(c, p == 1 ? "div(x0, x1)" : "div(x0, sqrt(x1))", (kg_ref[]){x, s}, 2, dt);
  return !c->g.failed;
}

/* LRN: x / (bias + alpha / size * sum of squares over a channel window)^beta. */
static bool cv_lrn(ox_ctx *c, ox_node *n) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  kg_ref x = n->in[0];
  kg_shape xs = shape_of(c, x);
  kiln_dtype dt = dtype_of(c, x);
  int64_t size = ox_attr_int(n, "size", 0), C = xs.dim[1];
  if (size <= 0) return ox_fail(c, n, "attribute 'size' is required and must be positive");
  if (xs.rank < 2) return ox_fail(c, n, "the input must have rank 2 or more (N, C, ...)");
  double alpha = ox_attr_float(n, "alpha", 1e-4), beta = ox_attr_float(n, "beta", 0.75),
         bias = ox_attr_float(n, "bias", 1.0);
  int64_t p[2 * KILN_MAX_RANK] = {0};
  p[2] = (size - 1) / 2, p[3] = size - 1 - p[2];
  kg_ref sq = pad_nd(c, ox_expr(c, "mul(x0, x0)", &x, 1, dt), p, 0.0), sum = KG_NOREF;
  for (int64_t i = 0; i < size; i++) {
    kg_ref v = nn_slice_axis(c, sq, 1, i, C);
    sum = i ? kb_binary(&c->g, KC_OP_ADD, sum, v) : v;
  }
  char e[256];
  snprintf(e, sizeof e, "div(x0, pow(add(%.17g, mul(%.17g, x1)), %.17g))", bias, alpha / (double)size, beta);
  n->out[0] = ox_expr(c, e, (kg_ref[]){x, sum}, 2, dt);
  return !c->g.failed;
}

/* ======================================================================
 * Softmax, LogSoftmax, Hardmax
 * ====================================================================== */

enum { SM_SOFT, SM_LOG, SM_HARD };

static kg_ref softmax_axis(ox_ctx *c, kg_ref x, int ax, int kind) {
  if (c->g.failed) return KG_NOREF;
  if (kind != SM_HARD) {
    kg_attr a = kb_attr_int("axis", ax);
    return kb_node(&c->g, kind == SM_LOG ? KC_OP_LOG_SOFTMAX : KC_OP_SOFTMAX, &x, 1, &a, 1);
  }
  kg_shape xs = shape_of(c, x);
  kg_attr a = kb_attr_int("axis", ax);
  kg_ref am = kb_node(&c->g, KC_OP_ARGMAX, &x, 1, &a, 1);
  kg_attr oh[3] = {kb_attr_int("depth", xs.dim[ax]), kb_attr_int("axis", ax), kb_attr_dtype("dtype", dtype_of(c, x))};
  return kb_node(&c->g, KC_OP_ONE_HOT, &am, 1, oh, 3);
}

static bool softmax_like(ox_ctx *c, ox_node *n, int kind) {
  if (!need_inputs(c, n, 1) || !want_float(c, n, 0)) return false;
  kg_ref x = n->in[0];
  kg_shape xs = shape_of(c, x);
  int r = xs.rank, ax;
  if (r == 0) return ox_fail(c, n, "the input must have rank 1 or more");
  bool old = c->opset < 13;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", old ? 1 : -1), r, &ax)) return false;
  if (!old || ax == r - 1) {
    n->out[0] = softmax_axis(c, x, ax, kind);
    return !c->g.failed;
  }
  /* before opset 13: over the whole trailing block from axis on */
  int64_t a = 1, b = 1;
  for (int d = 0; d < r; d++) *(d < ax ? &a : &b) *= xs.dim[d];
  kg_ref y = softmax_axis(c, reshape_to(c, x, 2, (int64_t[]){a, b}), 1, kind);
  n->out[0] = ox_reshape(c, y, &xs);
  return !c->g.failed;
}

static bool cv_softmax(ox_ctx *c, ox_node *n) { return softmax_like(c, n, SM_SOFT); }
static bool cv_log_softmax(ox_ctx *c, ox_node *n) { return softmax_like(c, n, SM_LOG); }
static bool cv_hardmax(ox_ctx *c, ox_node *n) { return softmax_like(c, n, SM_HARD); }

const ox_op ox_ops_nn[] = {
    {"Conv", cv_conv},
    {"ConvInteger", cv_conv_integer},
    {"ConvTranspose", cv_conv_transpose},
    {"MaxPool", cv_max_pool},
    {"AveragePool", cv_average_pool},
    {"MaxUnpool", cv_max_unpool},
    {"GlobalAveragePool", cv_global_average_pool},
    {"GlobalMaxPool", cv_global_max_pool},
    {"BatchNormalization", cv_batch_norm},
    {"InstanceNormalization", cv_instance_norm},
    {"LayerNormalization", cv_layer_norm},
    {"MeanVarianceNormalization", cv_mvn},
    {"LpNormalization", cv_lp_norm},
    {"LRN", cv_lrn},
    {"Softmax", cv_softmax},
    {"LogSoftmax", cv_log_softmax},
    {"Hardmax", cv_hardmax},
    {"RNN", ox_cv_rnn},
    {"GRU", ox_cv_gru},
    {"LSTM", ox_cv_lstm},
    {NULL, NULL},
};
