/* ops_nn.c — TensorFlow's neural-network ops: Conv2D and
 * DepthwiseConv2dNative (NHWC or NCHW; VALID, SAME or EXPLICIT padding),
 * the grappler/TF.js fused forms _FusedConv2D, FusedDepthwiseConv2dNative
 * and _FusedMatMul with their fused_ops lists (BiasAdd or FusedBatchNorm,
 * then Relu, Relu6, Elu, LeakyRelu, Prelu, Sigmoid, Tanh), MatMul and
 * BatchMatMul, MaxPool and AvgPool, BiasAdd, FusedBatchNorm in inference
 * mode, the activations, and ResizeBilinear / ResizeNearestNeighbor
 * (gathers along H and W with compile-time indices and weights, the same
 * arithmetic as TensorFlow's kernels). */
#include "frontends/graphdef/gd.h"
#include <math.h>
#include <string.h>

static kg_shape shape_of(gd_ctx *c, kg_ref r) { return gd_type(c, r)->shape; }

/* ---- convolution geometry ---- */

typedef struct conv_geom {
  bool nchw;
  int64_t strides[2], dilations[2];
  const char *padding; /* VALID or SAME (EXPLICIT becomes a pad node and VALID) */
  int64_t pads[8];     /* EXPLICIT: NHWC [before, after] per dimension */
  bool explicit_pad;
} conv_geom;

/* An [h, w] pair from a 4-element NHWC/NCHW list attribute (default 1s). */
static bool hw_pair(gd_ctx *c, gd_node *n, const char *name, bool nchw, int64_t out[2]) {
  int cnt;
  const int64_t *v = gd_attr_ints(n, name, &cnt);
  out[0] = out[1] = 1;
  if (!cnt) return true;
  if (cnt == 2) { /* some converters write [h, w] */
    out[0] = v[0], out[1] = v[1];
    if (out[0] < 1 || out[1] < 1 || out[0] > 1 << 16 || out[1] > 1 << 16)
      return gd_fail(c, n, "attribute '%s' must be positive (and sane)", name);
    return true;
  }
  if (cnt != 4) return gd_fail(c, n, "attribute '%s' has %d values; it needs 4", name, cnt);
  int h = nchw ? 2 : 1, w = nchw ? 3 : 2, b = 0, ch = nchw ? 1 : 3;
  if (v[b] != 1 || v[ch] != 1) return gd_fail(c, n, "attribute '%s' must be 1 over batch and channels", name);
  out[0] = v[h], out[1] = v[w];
  if (out[0] < 1 || out[1] < 1 || out[0] > 1 << 16 || out[1] > 1 << 16)
    return gd_fail(c, n, "attribute '%s' must be positive (and sane)", name);
  return true;
}

static bool conv_geometry(gd_ctx *c, gd_node *n, conv_geom *g) {
  const char *fmt = gd_attr_string(c, n, "data_format", "NHWC");
  if (strcmp(fmt, "NHWC") && strcmp(fmt, "NCHW")) return gd_fail(c, n, "data_format '%s' (kiln reads NHWC, NCHW)", fmt);
  g->nchw = !strcmp(fmt, "NCHW");
  if (!hw_pair(c, n, "strides", g->nchw, g->strides) || !hw_pair(c, n, "dilations", g->nchw, g->dilations)) return false;
  g->padding = gd_attr_string(c, n, "padding", "VALID");
  g->explicit_pad = !strcmp(g->padding, "EXPLICIT");
  if (g->explicit_pad) {
    int cnt;
    const int64_t *p = gd_attr_ints(n, "explicit_paddings", &cnt);
    if (cnt != 8) return gd_fail(c, n, "EXPLICIT padding needs 8 explicit_paddings, not %d", cnt);
    static const int from_nchw[4] = {0, 2, 3, 1};
    for (int d = 0; d < 4; d++)
      for (int k = 0; k < 2; k++) g->pads[2 * d + k] = p[2 * (g->nchw ? from_nchw[d] : d) + k];
    g->padding = "VALID";
  } else if (strcmp(g->padding, "VALID") && strcmp(g->padding, "SAME"))
    return gd_fail(c, n, "padding '%s' (kiln reads VALID, SAME, EXPLICIT)", g->padding);
  return true;
}

static kg_ref to_nhwc(gd_ctx *c, const conv_geom *g, kg_ref x) {
  return g->nchw ? gd_transpose(c, x, (int64_t[]){0, 2, 3, 1}, 4) : x;
}
static kg_ref from_nhwc(gd_ctx *c, const conv_geom *g, kg_ref y) {
  return g->nchw ? gd_transpose(c, y, (int64_t[]){0, 3, 1, 2}, 4) : y;
}

/* conv2d or depthwise_conv2d of NHWC x; the result in NHWC. */
static kg_ref conv(gd_ctx *c, gd_node *n, const conv_geom *g, bool depthwise, kg_ref x, kg_ref w) {
  if (c->g.failed) return KG_NOREF;
  if (shape_of(c, x).rank != 4 || shape_of(c, w).rank != 4) {
    gd_fail(c, n, "needs a rank-4 input and filter");
    return KG_NOREF;
  }
  if (g->explicit_pad) {
    bool any = false;
    for (int d = 0; d < 8; d++) any |= g->pads[d] != 0;
    if (any) {
      kg_attr a[2] = {kb_attr_ints(&c->g, "paddings", g->pads, 8), kb_attr_float("constant_value", 0)};
      x = kb_node(&c->g, KC_OP_PAD, &x, 1, a, 2);
    }
  }
  kg_attr at[3] = {kb_attr_ints(&c->g, "strides", g->strides, 2), kb_attr_ints(&c->g, "dilations", g->dilations, 2),
                   gd_kattr_str("padding", g->padding)};
  kg_ref in[2] = {x, w};
  return kb_node(&c->g, depthwise ? KC_OP_DEPTHWISE_CONV2D : KC_OP_CONV2D, in, 2, at, 3);
}

static bool cv_conv2d(gd_ctx *c, gd_node *n) {
  conv_geom g;
  if (!gd_inputs(c, n, 2, false) || !conv_geometry(c, n, &g)) return false;
  gd_outputs(c, n, 1);
  bool dw = !strcmp(n->p->op, "DepthwiseConv2dNative");
  n->out[0] = from_nhwc(c, &g, conv(c, n, &g, dw, to_nhwc(c, &g, n->in[0]), n->in[1]));
  return !c->g.failed;
}

/* The epilogue of a fused op over NHWC (or [N, C] for MatMul) y: fused_ops
 * [BiasAdd | FusedBatchNorm] [activation], with its args. */
static kg_ref epilogue(gd_ctx *c, gd_node *n, kg_ref y, const kg_ref *args, int n_args) {
  if (c->g.failed) return KG_NOREF;
  int count;
  const char *first = gd_attr_list_string(c, n, "fused_ops", 0, &count);
  const char *act = gd_attr_list_string(c, n, "fused_ops", 1, &count);
  if (count > 2 || count < 1) {
    gd_fail(c, n, "fused_ops has %d entries; kiln reads [BiasAdd or FusedBatchNorm, activation]", count);
    return KG_NOREF;
  }
  int used = 0;
  kiln_dtype dt = gd_type(c, y)->dtype;
  if (!strcmp(first, "BiasAdd")) {
    if (n_args < 1) {
      gd_fail(c, n, "BiasAdd needs a bias argument");
      return KG_NOREF;
    }
    y = kb_binary(&c->g, KC_OP_BIAS_ADD, y, args[0]);
    used = 1;
  } else if (!strcmp(first, "FusedBatchNorm")) {
    if (n_args < 4) {
      gd_fail(c, n, "FusedBatchNorm needs scale, offset, mean and variance arguments");
      return KG_NOREF;
    }
    kg_ref in[6] = {y, args[0], args[1], args[2], args[3], kb_scalar(&c->g, dt, gd_attr_float(n, "epsilon", 1e-4))};
    y = gd_expr(c, "add(x2, div(mul(sub(x0, x3), x1), sqrt(add(x4, x5))))", in, 6, dt);
    used = 4;
  } else if (count == 1) {
    act = first; /* an activation alone */
  } else {
    gd_fail(c, n, "fused op '%s' (kiln reads BiasAdd, FusedBatchNorm, then an activation)", first);
    return KG_NOREF;
  }
  if (!act) return y;
  kg_ref alpha = used < n_args ? args[used] : KG_NOREF;
  return gd_activation(c, n, act, y, alpha, gd_attr_float(n, "leakyrelu_alpha", 0.2));
}

static bool cv_fused_conv(gd_ctx *c, gd_node *n) {
  conv_geom g;
  if (!gd_inputs(c, n, 2, true) || !conv_geometry(c, n, &g)) return false;
  gd_outputs(c, n, 1);
  bool dw = !strcmp(n->p->op, "FusedDepthwiseConv2dNative");
  kg_ref y = conv(c, n, &g, dw, to_nhwc(c, &g, n->in[0]), n->in[1]);
  y = epilogue(c, n, y, n->in + 2, n->n_in - 2);
  n->out[0] = from_nhwc(c, &g, y);
  return !c->g.failed;
}

static kg_ref matmul(gd_ctx *c, gd_node *n, kg_ref a, kg_ref b, bool ta, bool tb) {
  kg_attr at[2] = {kb_attr_bool("transpose_a", ta), kb_attr_bool("transpose_b", tb)};
  kg_ref in[2] = {a, b};
  return kb_node(&c->g, KC_OP_MATMUL, in, 2, at, 2);
}

static bool cv_matmul(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 2, !strcmp(n->p->op, "_FusedMatMul"))) return false;
  gd_outputs(c, n, 1);
  bool batch = !strncmp(n->p->op, "BatchMatMul", 11);
  bool ta = gd_attr_bool(n, batch ? "adj_x" : "transpose_a", false), tb = gd_attr_bool(n, batch ? "adj_y" : "transpose_b", false);
  kg_ref y = matmul(c, n, n->in[0], n->in[1], ta, tb);
  if (!strcmp(n->p->op, "_FusedMatMul")) y = epilogue(c, n, y, n->in + 2, n->n_in - 2);
  n->out[0] = y;
  return !c->g.failed;
}

static bool cv_pool(gd_ctx *c, gd_node *n) {
  conv_geom g = {0};
  const char *fmt = gd_attr_string(c, n, "data_format", "NHWC");
  g.nchw = !strcmp(fmt, "NCHW");
  int64_t k[2];
  if (!gd_inputs(c, n, 1, false) || !hw_pair(c, n, "ksize", g.nchw, k) || !hw_pair(c, n, "strides", g.nchw, g.strides))
    return false;
  const char *pad = gd_attr_string(c, n, "padding", "VALID");
  if (strcmp(pad, "VALID") && strcmp(pad, "SAME")) return gd_fail(c, n, "padding '%s' (kiln reads VALID, SAME)", pad);
  gd_outputs(c, n, 1);
  kg_attr at[3] = {kb_attr_ints(&c->g, "ksize", k, 2), kb_attr_ints(&c->g, "strides", g.strides, 2),
                   gd_kattr_str("padding", pad)};
  kg_ref x = to_nhwc(c, &g, n->in[0]);
  n->out[0] = from_nhwc(c, &g, kb_node(&c->g, !strcmp(n->p->op, "MaxPool") ? KC_OP_MAX_POOL : KC_OP_AVG_POOL, &x, 1, at, 3));
  return !c->g.failed;
}

static bool cv_bias_add(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 2, false)) return false;
  gd_outputs(c, n, 1);
  const char *fmt = gd_attr_string(c, n, "data_format", "NHWC");
  if (!strcmp(fmt, "NCHW") && shape_of(c, n->in[0]).rank >= 3) {
    kg_shape s = {.rank = shape_of(c, n->in[0]).rank - 1};
    s.dim[0] = shape_of(c, n->in[1]).dim[0];
    for (int d = 1; d < s.rank; d++) s.dim[d] = 1;
    kg_ref in[2] = {n->in[0], gd_reshape(c, n->in[1], &s)};
    n->out[0] = gd_expr(c, "add(x0, x1)", in, 2, gd_type(c, n->in[0])->dtype);
  } else
    n->out[0] = kb_binary(&c->g, KC_OP_BIAS_ADD, n->in[0], n->in[1]);
  return !c->g.failed;
}

/* FusedBatchNorm(V2, V3) in inference mode: y, and the statistics given. */
static bool cv_fused_batch_norm(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 5, false)) return false;
  if (gd_attr_bool(n, "is_training", true))
    return gd_fail(c, n, "is_training=true (batch statistics) is not supported in an imported graph; freeze the "
                         "graph for inference");
  gd_outputs(c, n, !strcmp(n->p->op, "FusedBatchNormV3") ? 6 : 5);
  const char *fmt = gd_attr_string(c, n, "data_format", "NHWC");
  kg_ref in[6] = {n->in[0], n->in[1], n->in[2], n->in[3], n->in[4], KG_NOREF};
  kiln_dtype dt = gd_type(c, n->in[0])->dtype;
  if (!strcmp(fmt, "NCHW") && shape_of(c, n->in[0]).rank == 4) {
    kg_shape s = {.rank = 3, .dim = {shape_of(c, n->in[1]).dim[0], 1, 1}};
    for (int i = 1; i < 5; i++) in[i] = gd_reshape(c, n->in[i], &s);
  }
  in[5] = kb_scalar(&c->g, dt, gd_attr_float(n, "epsilon", 1e-4));
  n->out[0] = gd_expr(c, "add(x2, div(mul(sub(x0, x3), x1), sqrt(add(x4, x5))))", in, 6, dt);
  for (int i = 1; i < n->n_out; i++) n->out[i] = n->in[i % 2 ? 3 : 4];
  return !c->g.failed;
}

static bool cv_activation(gd_ctx *c, gd_node *n) {
  bool prelu = !strcmp(n->p->op, "Prelu");
  if (!gd_inputs(c, n, prelu ? 2 : 1, false)) return false;
  gd_outputs(c, n, 1);
  n->out[0] = gd_activation(c, n, n->p->op, n->in[0], prelu ? n->in[1] : KG_NOREF, gd_attr_float(n, "alpha", 0.2));
  return !c->g.failed;
}

/* ---- resizing ---- */

/* x gathered at constant indices along axis. */
static kg_ref gather(gd_ctx *c, kg_ref x, int axis, const int64_t *idx, int64_t n) {
  double *v = kc_alloc(c->m->arena, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) v[i] = (double)idx[i];
  kg_ref in[2] = {x, gd_const_from(c, KILN_I32, &(kg_shape){1, {n}}, v)};
  kg_attr a = kb_attr_int("axis", axis);
  return kb_node(&c->g, KC_OP_GATHER, in, 2, &a, 1);
}

/* The source coordinate of output i (TensorFlow's scaler). */
static double source(int64_t i, double scale, bool half_pixel) { return half_pixel ? (i + 0.5) * scale - 0.5 : i * scale; }

static double resize_scale(int64_t in, int64_t out, bool align) {
  return align && out > 1 ? (double)(in - 1) / (double)(out - 1) : (double)in / (double)out;
}

/* Bilinear along one axis of NHWC x: lo + (hi - lo) * frac. */
static kg_ref lerp_axis(gd_ctx *c, kg_ref x, int axis, int64_t out, bool align, bool half) {
  int64_t in = shape_of(c, x).dim[axis];
  if (in == out && !half && !align) return x;
  double scale = resize_scale(in, out, align);
  int64_t *lo = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)out), *hi = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)out);
  double *frac = kc_alloc(c->m->arena, sizeof(double) * (size_t)out);
  for (int64_t i = 0; i < out; i++) {
    double s = source(i, scale, half), f = floor(s);
    lo[i] = f > 0 ? (int64_t)f : 0;
    hi[i] = (int64_t)ceil(s) < in - 1 ? (int64_t)ceil(s) : in - 1;
    if (hi[i] < 0) hi[i] = 0;
    frac[i] = (float)(s - f);
  }
  kg_shape fs = {.rank = 4, .dim = {1, 1, 1, 1}};
  fs.dim[axis] = out;
  kg_ref in3[3] = {gather(c, x, axis, lo, out), gather(c, x, axis, hi, out), gd_const_from(c, KILN_F32, &fs, frac)};
  return gd_expr(c, "add(x0, mul(sub(x1, x0), x2))", in3, 3, KILN_F32);
}

static kg_ref nearest_axis(gd_ctx *c, kg_ref x, int axis, int64_t out, bool align, bool half) {
  int64_t in = shape_of(c, x).dim[axis];
  if (in == out) return x;
  double scale = resize_scale(in, out, align);
  int64_t *idx = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)out);
  for (int64_t i = 0; i < out; i++) {
    double s = half ? (i + 0.5) * scale : i * scale;
    int64_t k = (int64_t)(align ? round(s) : floor(s));
    idx[i] = k < in - 1 ? k : in - 1;
    if (idx[i] < 0) idx[i] = 0;
  }
  return gather(c, x, axis, idx, out);
}

static bool cv_resize(gd_ctx *c, gd_node *n) {
  int64_t *size;
  int cnt;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 1, &size, &cnt)) return false;
  if (cnt != 2 || size[0] <= 0 || size[1] <= 0 || size[0] > 1 << 14 || size[1] > 1 << 14) return gd_fail(c, n, "size must be two positive integers [height, width]");
  if (shape_of(c, n->in[0]).rank != 4) return gd_fail(c, n, "images must be rank 4 [N, H, W, C]");
  gd_outputs(c, n, 1);
  bool align = gd_attr_bool(n, "align_corners", false), half = gd_attr_bool(n, "half_pixel_centers", false);
  if (align && half) return gd_fail(c, n, "align_corners and half_pixel_centers cannot both be true");
  if (!strcmp(n->p->op, "ResizeBilinear")) {
    kg_ref x = gd_cast(c, n->in[0], KILN_F32); /* TensorFlow's result is float */
    x = lerp_axis(c, x, 2, size[1], align, half); /* along W, then H: top and bottom rows, then between them */
    n->out[0] = lerp_axis(c, x, 1, size[0], align, half);
  } else {
    kg_ref x = nearest_axis(c, n->in[0], 1, size[0], align, half);
    n->out[0] = nearest_axis(c, x, 2, size[1], align, half);
  }
  if (n->out[0].node == n->in[0].node) n->out[0] = kb_unary(&c->g, KC_OP_IDENTITY, n->in[0]);
  return !c->g.failed;
}

const gd_op gd_ops_nn[] = {
    {"Conv2D", cv_conv2d},
    {"DepthwiseConv2dNative", cv_conv2d},
    {"_FusedConv2D", cv_fused_conv},
    {"FusedDepthwiseConv2dNative", cv_fused_conv},
    {"MatMul", cv_matmul},
    {"BatchMatMul", cv_matmul},
    {"BatchMatMulV2", cv_matmul},
    {"BatchMatMulV3", cv_matmul},
    {"_FusedMatMul", cv_matmul},
    {"MaxPool", cv_pool},
    {"AvgPool", cv_pool},
    {"BiasAdd", cv_bias_add},
    {"BiasAddV1", cv_bias_add},
    {"FusedBatchNorm", cv_fused_batch_norm},
    {"FusedBatchNormV2", cv_fused_batch_norm},
    {"FusedBatchNormV3", cv_fused_batch_norm},
    {"Relu", cv_activation},
    {"Relu6", cv_activation},
    {"Elu", cv_activation},
    {"LeakyRelu", cv_activation},
    {"Prelu", cv_activation},
    {"Sigmoid", cv_activation},
    {"Tanh", cv_activation},
    {"ResizeBilinear", cv_resize},
    {"ResizeNearestNeighbor", cv_resize},
    {NULL, NULL},
};
