/* nn.c — the neural-network ops, NHWC as in TensorFlow: shape rules,
 * lowerings, gradient rules and composite expansions.
 *
 *   conv2d, depthwise_conv2d            windowed products of input and filter
 *   max_pool, avg_pool                  windowed max / mean (padding ignored)
 *   conv2d_backprop_input/_filter,      the gradient ops the rules below build;
 *   depthwise_conv2d_backprop_*,        ordinary ops with lowerings of their
 *   max_pool_grad, avg_pool_grad        own (not differentiable themselves)
 *   bias_add                            an elementwise op with a strict shape rule
 *   batch_norm, batch_norm_inference,   composite: the expand pass rewrites them
 *   dropout, softmax_cross_entropy_     into primitive ops before autodiff, so
 *   with_logits, sparse_..., l2_loss    their gradients come from the primitives
 *
 * Every windowed op shares one geometry (win_geom): TF's output size and
 * SAME padding arithmetic, computed here in C from the static shapes.  For
 * each output position the taps that land inside the input form a
 * contiguous range, so the emitted loops run over exactly those taps (from
 * small constant tables) and never test for padding (im2col and Winograd
 * gather their windows with zeros for the padding instead).
 *
 * Lowerings.  The forward conv2d is GEMMs through kiln's generated GEMM
 * (lower/gemm.c): one for a 1x1 stride-1 convolution, Winograd F(2x2, 3x3)
 * for 3x3 stride-1 ones with enough channels, im2col blocks otherwise (see
 * conv2d_gemm).  The gradient ops, and forward windows too deep for an
 * im2col block, are one loop nest over (image, output row, filter tap)
 * whose body is one GEMM over the output row: with X the input rows the tap
 * reads (row stride sw*C), Y the output row and F the tap's [C,O] filter
 * slice,
 *   conv2d                 Y  += X  F
 *   conv2d_backprop_input  dX += dY F^T
 *   conv2d_backprop_filter dF += X^T dY
 * The forward depthwise_conv2d with multiplier 1 is a vector kernel over
 * channels (depthwise_forward).  The other depthwise ops and the pools
 * share one window walker (walk_windows) with per-op callbacks; the three
 * depthwise ops are one multiply-accumulate whose accumulator is whichever
 * of input, filter, output the op computes.  The forward kernels are
 * internal functions named for their geometry, shared by the layers that
 * have it (kl_kernel_begin). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "ir/expr.h" /* before lower.h, which names struct kc_expr */
#include "lower/lower.h"
#include "lower/gemm.h"
#include "ops/ops_util.h"
#include "passes/autodiff.h"

/* Errors are reported only when a shape rule runs (c set); lowerings reuse
 * the same code on nodes the verifier has accepted and pass c = NULL. */
#define NODE_ERR(c, n, ...) ((c) ? kc_node_error((c), (n), __VA_ARGS__) : false)

/* Attribute sizes beyond this are refused, so products stay far from overflow. */
enum { NN_LIMIT = 1 << 30 };

/* ======================================================================
 * window geometry (shared by the shape rules and the lowerings)
 * ====================================================================== */

typedef kc_window win_geom; /* ops_util.h */

static const char *const hw_name[2] = {"height", "width"};

/* An (h, w) pair attribute, written [h, w] or in TF's NHWC form [1, h, w, 1]. */
static bool hw_attr(kc_infer_ctx *c, const kg_node *n, const char *name, int64_t hw[2]) {
  int cnt = 0;
  const int64_t *v = NULL;
  char b[128];
  if (!kc_attr_ints(n, name, &cnt, &v)) {
    hw[0] = hw[1] = 1; /* the default of strides and dilations; ksize is required */
    return true;
  }
  if (cnt == 2) {
    hw[0] = v[0], hw[1] = v[1];
  } else if (cnt == 4 && v[0] == 1 && v[3] == 1) {
    hw[0] = v[1], hw[1] = v[2];
  } else {
    return NODE_ERR(c, n, "%s %s must be [h, w] or [1, h, w, 1] (nothing over batch or channels)", name,
                    kc_ints_str(v, cnt, b, sizeof b));
  }
  if (hw[0] <= 0 || hw[1] <= 0)
    return NODE_ERR(c, n, "%s %s must be positive", name, kc_ints_str(v, cnt, b, sizeof b));
  if (hw[0] > NN_LIMIT || hw[1] > NN_LIMIT)
    return NODE_ERR(c, n, "%s %s is too large", name, kc_ints_str(v, cnt, b, sizeof b));
  return true;
}

static bool same_padding(kc_infer_ctx *c, const kg_node *n, bool *same) {
  const char *p = kg_attr_str(n, "padding", "VALID");
  *same = !strcmp(p, "SAME");
  if (*same || !strcmp(p, "VALID")) return true;
  return NODE_ERR(c, n, "padding is \"%s\"; it must be \"VALID\" or \"SAME\"", p);
}

/* One spatial axis, as TF's GetWindowedOutputSize: the output size and the
 * padding before the first element. */
static bool out_size(kc_infer_ctx *c, const kg_node *n, int axis, int64_t in, int64_t k, int64_t s, int64_t d,
                     bool same, int64_t *out, int64_t *pad) {
  int64_t span = (k - 1) * d + 1;
  if (same) {
    *out = (in + s - 1) / s;
    int64_t need = (*out - 1) * s + span - in;
    *pad = need > 0 ? need / 2 : 0;
    return true;
  }
  if (span > in) {
    char dil[64] = "";
    if (d > 1) snprintf(dil, sizeof dil, " (%lld taps at dilation %lld)", (long long)k, (long long)d);
    return NODE_ERR(c, n, "the window %s of %lld%s exceeds the input %s of %lld (padding VALID)", hw_name[axis],
                    (long long)span, dil, hw_name[axis], (long long)in);
  }
  *out = (in - span) / s + 1;
  *pad = 0;
  return true;
}

/* Strides, dilations, padding and the output size of a window of kh x kw
 * taps over input x. */
static bool win_make(kc_infer_ctx *c, const kg_node *n, const kg_shape *x, int64_t kh, int64_t kw, bool dilated,
                     win_geom *g) {
  int64_t s[2], d[2] = {1, 1};
  bool same;
  if (!hw_attr(c, n, "strides", s) || (dilated && !hw_attr(c, n, "dilations", d)) || !same_padding(c, n, &same))
    return false;
  g->N = x->dim[0], g->H = x->dim[1], g->W = x->dim[2], g->C = x->dim[3];
  g->KH = kh, g->KW = kw, g->sh = s[0], g->sw = s[1], g->dh = d[0], g->dw = d[1];
  return out_size(c, n, 0, g->H, kh, g->sh, g->dh, same, &g->OH, &g->pt) &&
         out_size(c, n, 1, g->W, kw, g->sw, g->dw, same, &g->OW, &g->pl);
}

bool kc_window_of(const kg_node *n, const kg_shape *x, int64_t kh, int64_t kw, bool dilated, kc_window *g) {
  return win_make(NULL, n, x, kh, kw, dilated, g);
}

static bool rank4(kc_infer_ctx *c, const kg_node *n, const char *what, const char *layout, const kg_shape *s) {
  if (s->rank == 4) return true;
  char b[160];
  return NODE_ERR(c, n, "%s must be rank 4 %s, not %s", what, layout, kc_shape_str(s, b, sizeof b));
}

/* A static size attribute of the gradient ops (input_sizes, filter_sizes). */
static bool sizes_attr(kc_infer_ctx *c, const kg_node *n, const char *name, kg_shape *s) {
  int cnt = 0;
  const int64_t *v = NULL;
  char b[160];
  kc_attr_ints(n, name, &cnt, &v); /* required: the verifier checked it is there */
  if (cnt != 4) return NODE_ERR(c, n, "%s %s must have 4 entries", name, kc_ints_str(v, cnt, b, sizeof b));
  s->rank = 4;
  for (int i = 0; i < 4; i++) {
    if (v[i] < 0 || v[i] > NN_LIMIT)
      return NODE_ERR(c, n, "%s %s has an invalid size", name, kc_ints_str(v, cnt, b, sizeof b));
    s->dim[i] = v[i];
  }
  return true;
}

/* Operand k's type must share operand 0's dtype. */
static bool same_dtypes(kc_infer_ctx *c, const kg_node *n, int from, int to) {
  for (int k = from; k < to; k++)
    if (kc_in_type(c, n, k)->dtype != kc_in_type(c, n, 0)->dtype) {
      char a[160], b[160];
      return kc_node_error(c, n, "operand %d is %s but operand 0 is %s: dtypes must match", k,
                           kg_type_str(kc_in_type(c, n, k), a, sizeof a),
                           kg_type_str(kc_in_type(c, n, 0), b, sizeof b));
    }
  return true;
}

/* The output gradient operand of a gradient op must have the forward op's
 * output shape. */
static bool check_dy(kc_infer_ctx *c, const kg_node *n, const kg_shape *dy, const kg_shape *y) {
  if (kg_shape_eq(dy, y)) return true;
  char a[160], b[160];
  return NODE_ERR(c, n, "the output gradient is %s but the forward op's output is %s", kc_shape_str(dy, a, sizeof a),
                  kc_shape_str(y, b, sizeof b));
}

/* ---- conv2d and depthwise_conv2d, with their gradient ops ---- */

enum { ROLE_FWD, ROLE_INPUT_GRAD, ROLE_FILTER_GRAD };

static int conv_role(int op) {
  if (op == KC_OP_CONV2D_BACKPROP_INPUT || op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT) return ROLE_INPUT_GRAD;
  if (op == KC_OP_CONV2D_BACKPROP_FILTER || op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER) return ROLE_FILTER_GRAD;
  return ROLE_FWD;
}

static bool is_depthwise(int op) {
  return op == KC_OP_DEPTHWISE_CONV2D || op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT ||
         op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER;
}

/* The input, filter and output shapes of a conv-family node and its
 * geometry.  The forward op reads x and f from its operands; the gradient
 * ops take one of them from a size attribute and the output gradient as
 * operand 1, checked against the output shape. */
static bool conv_geom(kc_infer_ctx *c, const kg_module *m, const kg_node *n, win_geom *g, kg_shape *xs, kg_shape *fs,
                      kg_shape *ys) {
  int role = conv_role(n->op);
  bool dw = is_depthwise(n->op);
  if (role == ROLE_INPUT_GRAD) {
    if (!sizes_attr(c, n, "input_sizes", xs)) return false;
  } else {
    *xs = kg_ref_type(m, n->in[0])->shape;
  }
  if (role == ROLE_FILTER_GRAD) {
    if (!sizes_attr(c, n, "filter_sizes", fs)) return false;
  } else {
    *fs = kg_ref_type(m, n->in[role == ROLE_FWD ? 1 : 0])->shape;
  }
  const char *flayout = dw ? "[KH,KW,C,M]" : "[KH,KW,C,O]";
  if (!rank4(c, n, "the input", "[N,H,W,C]", xs) || !rank4(c, n, "the filter", flayout, fs)) return false;
  char a[160], b[160];
  if (fs->dim[2] != xs->dim[3])
    return NODE_ERR(c, n, "the input %s has %lld channels but the filter %s expects %lld",
                    kc_shape_str(xs, a, sizeof a),
                    (long long)xs->dim[3], kc_shape_str(fs, b, sizeof b), (long long)fs->dim[2]);
  if (fs->dim[0] < 1 || fs->dim[1] < 1)
    return NODE_ERR(c, n, "the filter %s has no taps", kc_shape_str(fs, b, sizeof b));
  if (!win_make(c, n, xs, fs->dim[0], fs->dim[1], true, g)) return false;
  g->M = fs->dim[3];
  if (dw && g->C * g->M > NN_LIMIT) return NODE_ERR(c, n, "the output has too many channels");
  *ys = (kg_shape){.rank = 4, .dim = {g->N, g->OH, g->OW, dw ? g->C * g->M : g->M}};
  return role == ROLE_FWD || check_dy(c, n, &kg_ref_type(m, n->in[1])->shape, ys);
}

bool kc_infer_conv(kc_infer_ctx *c, kg_node *n) {
  win_geom g;
  kg_shape xs, fs, ys;
  if (!same_dtypes(c, n, 1, n->n_in) || !conv_geom(c, c->m, n, &g, &xs, &fs, &ys)) return false;
  int role = conv_role(n->op);
  kc_set_out(c, n, kc_in_type(c, n, 0)->dtype, role == ROLE_FWD ? &ys : role == ROLE_INPUT_GRAD ? &xs : &fs);
  return true;
}

/* ---- max_pool, avg_pool, with their gradient ops ---- */

/* avg_pool_grad takes the input's shape from input_sizes; the others read
 * the input as operand 0.  The gradient ops check their output gradient. */
static bool pool_geom(kc_infer_ctx *c, const kg_module *m, const kg_node *n, win_geom *g, kg_shape *xs, kg_shape *ys) {
  if (n->op == KC_OP_AVG_POOL_GRAD) {
    if (!sizes_attr(c, n, "input_sizes", xs)) return false;
  } else {
    *xs = kg_ref_type(m, n->in[0])->shape;
  }
  int64_t k[2];
  if (!rank4(c, n, "the input", "[N,H,W,C]", xs) || !hw_attr(c, n, "ksize", k) ||
      !win_make(c, n, xs, k[0], k[1], false, g))
    return false;
  g->M = 1;
  *ys = (kg_shape){.rank = 4, .dim = {g->N, g->OH, g->OW, g->C}};
  if (n->op == KC_OP_MAX_POOL_GRAD) return check_dy(c, n, &kg_ref_type(m, n->in[1])->shape, ys);
  if (n->op == KC_OP_AVG_POOL_GRAD) return check_dy(c, n, &kg_ref_type(m, n->in[0])->shape, ys);
  return true;
}

bool kc_infer_pool(kc_infer_ctx *c, kg_node *n) {
  win_geom g;
  kg_shape xs, ys;
  if (!same_dtypes(c, n, 1, n->n_in) || !pool_geom(c, c->m, n, &g, &xs, &ys)) return false;
  bool grad = n->op == KC_OP_MAX_POOL_GRAD || n->op == KC_OP_AVG_POOL_GRAD;
  kc_set_out(c, n, kc_in_type(c, n, 0)->dtype, grad ? &xs : &ys);
  return true;
}

bool kc_window_of_node(const kg_module *m, const kg_node *n, kc_window *g) {
  kg_shape xs, fs, ys;
  switch (n->op) {
  case KC_OP_MAX_POOL: case KC_OP_AVG_POOL: case KC_OP_MAX_POOL_GRAD: case KC_OP_AVG_POOL_GRAD:
    return pool_geom(NULL, m, n, g, &xs, &ys);
  case KC_OP_CONV2D: case KC_OP_CONV2D_BACKPROP_INPUT: case KC_OP_CONV2D_BACKPROP_FILTER:
  case KC_OP_DEPTHWISE_CONV2D: case KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT: case KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER:
    return conv_geom(NULL, m, n, g, &xs, &fs, &ys);
  default: return false;
  }
}

/* ---- bias_add: elementwise add(value, bias), bias one value per channel ---- */

bool kc_infer_bias_add(kc_infer_ctx *c, kg_node *n) {
  const kg_type *v = kc_in_type(c, n, 0), *b = kc_in_type(c, n, 1);
  char a[160], bb[160];
  kc_shape_str(&v->shape, a, sizeof a);
  kc_shape_str(&b->shape, bb, sizeof bb);
  if (v->shape.rank < 1) return kc_node_error(c, n, "value must have rank >= 1 (channels last), not %s", a);
  if (b->shape.rank != 1 || b->shape.dim[0] != v->shape.dim[v->shape.rank - 1])
    return kc_node_error(c, n, "bias %s must be [%lld], one value per channel of value %s", bb,
                         (long long)v->shape.dim[v->shape.rank - 1], a);
  kc_set_out(c, n, v->dtype, &v->shape);
  return true;
}

/* ======================================================================
 * lowering helpers
 * ====================================================================== */

/* a*k + b on i64 indices (b may be NULL). */
static LLVMValueRef madd(kl_ctx *L, LLVMValueRef a, int64_t k, LLVMValueRef b) {
  LLVMValueRef v = k == 1 ? a : LLVMBuildNSWMul(L->B, a, kl_i64(L, k), "");
  return b ? LLVMBuildNSWAdd(L->B, v, b, "") : v;
}

static LLVMValueRef iadd(kl_ctx *L, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(L->B, a, b, ""); }

/* Element i of a table of per-index constants; a uniform table is just its value. */
static LLVMValueRef table_at(kl_ctx *L, const int64_t *v, int64_t n, LLVMValueRef i, const char *name) {
  bool uniform = true;
  for (int64_t k = 1; k < n; k++) uniform &= v[k] == v[0];
  if (uniform) return kl_i64(L, n ? v[0] : 0);
  LLVMValueRef t = kl_const_i64s(L, v, (int)n, name);
  return LLVMBuildLoad2(L->B, L->t_i64, LLVMBuildInBoundsGEP2(L->B, L->t_i64, t, &i, 1, ""), "");
}

/* For each a < na: the b < nb whose input position a*sa + b*sb - pad lies
 * in [0, in).  The position grows with b, so they form a range
 * [lo[a], lo[a] + cnt[a]).  (a, b) is (output, tap) for the taps an output
 * position reads, or (tap, output) for the outputs a tap contributes to. */
static void valid_ranges(int64_t na, int64_t sa, int64_t nb, int64_t sb, int64_t pad, int64_t in, int64_t *lo,
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

static int64_t *arena_i64s(kl_ctx *L, int64_t n) {
  return kc_alloc(L->m->arena, sizeof(int64_t) * (size_t)(n ? n : 1));
}

/* An accumulator slot in the entry block (mem2reg makes it a register). */
static LLVMValueRef entry_slot(kl_ctx *L, LLVMTypeRef ty, const char *name) {
  LLVMBasicBlockRef eb = LLVMGetEntryBasicBlock(L->fn);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(L->C);
  LLVMValueRef first = LLVMGetFirstInstruction(eb);
  if (first) LLVMPositionBuilderBefore(b, first);
  else LLVMPositionBuilderAtEnd(b, eb);
  LLVMValueRef s = LLVMBuildAlloca(b, ty, name);
  LLVMDisposeBuilder(b);
  return s;
}

static LLVMValueRef fprim(kl_ctx *L, const char *p, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef args[2] = {a, b};
  return kl_prim(L, p, dt, dt, args, 2);
}

/* p[i] += a * b */
static void mul_acc(kl_ctx *L, kiln_dtype dt, LLVMValueRef p, LLVMValueRef i, LLVMValueRef a, LLVMValueRef b) {
  kl_store(L, dt, p, i, fprim(L, "add", dt, kl_load(L, dt, p, i), fprim(L, "mul", dt, a, b)));
}

static bool node_fail(kl_ctx *L, int node, const char *msg) {
  const kg_node *n = &L->m->nodes[node];
  return kc_error_node(L->diag, n->loc, n->name, "%s", msg);
}

/* ======================================================================
 * conv2d family: GEMMs
 * ====================================================================== */

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

/* C += op(A) op(B), row-major, op(A) M x K and op(B) K x N. */
static void gemm_acc(kl_ctx *L, kiln_dtype dt, bool ta, bool tb, LLVMValueRef M, LLVMValueRef N, LLVMValueRef K,
                     LLVMValueRef A, int64_t lda, LLVMValueRef B, int64_t ldb, LLVMValueRef C, int64_t ldc) {
  if (L->target->generated_blas) {
    /* no cblas (--blas generated, the default with --target): plain loops,
     * i-k-j so the inner loop walks rows of C (and of B unless transposed);
     * the row count varies per tap, which lower/gemm.c's static shapes do
     * not cover */
    kl_loop li = kl_for(L, M, "conv_gi");
    kl_loop lk = kl_for(L, K, "conv_gk");
    LLVMValueRef i = li.index, k = lk.index;
    LLVMValueRef a = kl_load(L, dt, A, ta ? madd(L, k, lda, i) : madd(L, i, lda, k));
    kl_loop lj = kl_for(L, N, "conv_gj");
    LLVMValueRef j = lj.index;
    mul_acc(L, dt, C, madd(L, i, ldc, j), a, kl_load(L, dt, B, tb ? madd(L, j, ldb, k) : madd(L, k, ldb, j)));
    kl_for_end(L, &lj);
    kl_for_end(L, &lk);
    kl_for_end(L, &li);
    return;
  }
  bool f32 = dt == KILN_F32;
  LLVMTypeRef ft = f32 ? L->t_f32 : L->t_f64;
  LLVMValueRef args[14] = {kl_i32(L, CBLAS_ROW_MAJOR),
                           kl_i32(L, ta ? CBLAS_TRANS : CBLAS_NO_TRANS),
                           kl_i32(L, tb ? CBLAS_TRANS : CBLAS_NO_TRANS),
                           LLVMBuildTrunc(L->B, M, L->t_i32, ""),
                           LLVMBuildTrunc(L->B, N, L->t_i32, ""),
                           LLVMBuildTrunc(L->B, K, L->t_i32, ""),
                           LLVMConstReal(ft, 1.0),
                           A,
                           kl_i32(L, lda),
                           B,
                           kl_i32(L, ldb),
                           LLVMConstReal(ft, 1.0),
                           C,
                           kl_i32(L, ldc)};
  kl_call(L, f32 ? "cblas_sgemm" : "cblas_dgemm", L->t_void, args, 14);
}

/* ---- conv2d forward: one GEMM over a block of output pixels ----
 * HWIO is already the filter as a [KH*KW*C, O] row-major matrix, so a block
 * of output pixels is the product of their windows (one row of KH*KW*C input
 * values per pixel, zero where the window hangs over the padding) and the
 * filter.  A 1x1 convolution with stride 1 needs no copy: its windows are
 * the input's rows, and the whole batch is one GEMM.  Otherwise the windows
 * of P pixels at a time are gathered (im2col) into a stack buffer for one
 * GEMM, in place of the per-tap form's GEMM per (row, tap), whose depth is
 * only C (3 in an RGB first layer, where call overhead was all the cost). */

enum {
  IM2COL_BYTES = 256 << 10,  /* the gathered windows of one block: about L2 */
  IM2COL_MIN_PIXELS = 36,    /* at least this many rows (a multiple of 12), so the GEMM amortizes packing the filter */
  IM2COL_MAX_BYTES = 1 << 20 /* a bigger block (deep windows) keeps the per-tap GEMMs, which copy nothing */
};

/* C = A B with static shapes: A M x K with rows lda apart, B K x N and C
 * M x N dense.  Always kiln's generated GEMM, even where matmul calls cblas:
 * the shapes are static and mostly narrow (N = O, often 16 to 96), where
 * the generated kernels measured 3-4x faster than OpenBLAS 0.3.21's
 * (blazeface's convolutions, one thread; OpenBLAS also pays a call and its
 * packing per product). */
static bool gemm_static(kl_ctx *L, kiln_dtype dt, int64_t M, int64_t N, int64_t K, LLVMValueRef A, int64_t lda,
                        LLVMValueRef B, LLVMValueRef C, bool b_packed) {
  kl_gemm gg = {.dt = dt, .M = M, .N = N, .K = K, .lda = lda, .b_packed = b_packed};
  return kl_emit_gemm(L, &gg, A, B, C);
}

/* The filter of conv node `node` as the B of an M-row GEMM: packed at
 * compile time where it is a constant the GEMM would pack (*packed set). */
static LLVMValueRef filter_b(kl_ctx *L, int node, const win_geom *g, kiln_dtype dt, int64_t M, LLVMValueRef f,
                             bool *packed) {
  kl_gemm gg = {.dt = dt, .M = M, .N = g->M, .K = g->KH * g->KW * g->C};
  f = kl_gemm_constant_b(L, &gg, L->m->nodes[node].in[1], f, L->m->nodes[node].name);
  *packed = gg.b_packed;
  return f;
}

/* The name of the kernel that computes `what` for one geometry and dtype. */
static void kernel_name(char *buf, size_t size, const char *what, const win_geom *g, kiln_dtype dt) {
  snprintf(buf, size, "kiln_%s_%s_%lldx%lldx%lldx%lld_k%lldx%lld_m%lld_s%lldx%lld_d%lldx%lld_p%lldx%lld", what,
           kg_dtype_name(dt), (long long)g->N, (long long)g->H, (long long)g->W, (long long)g->C, (long long)g->KH,
           (long long)g->KW, (long long)g->M, (long long)g->sh, (long long)g->sw, (long long)g->dh, (long long)g->dw,
           (long long)g->pt, (long long)g->pl);
}

static bool pointwise(const win_geom *g) { return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1; }

/* Output pixels per im2col block; 0 where the per-tap form is kept. */
static int64_t im2col_pixels(const win_geom *g, int64_t es) {
  int64_t row = g->KH * g->KW * g->C, total = g->N * g->OH * g->OW;
  int64_t p = IM2COL_BYTES / (row * es);
  if (p < IM2COL_MIN_PIXELS) p = IM2COL_MIN_PIXELS;
  if (p > total) p = total;
  else p -= p % 12; /* whole micro-tiles of rows: MR is 4, 6 or 12 (lower/gemm.c) */
  if (p * row * es > IM2COL_MAX_BYTES) return 0;
  return p;
}

/* 0 <= i < n */
static LLVMValueRef in_range(kl_ctx *L, LLVMValueRef i, int64_t n) {
  return LLVMBuildICmp(L->B, LLVMIntULT, i, kl_i64(L, n), "");
}

typedef struct im2col {
  const win_geom *g;
  kiln_dtype dt;
  LLVMValueRef x, f, y, buf;
  bool f_packed; /* f packed at compile time (kl_gemm_constant_b) */
} im2col;

/* Branches on cond: returns the block to continue in after both arms; the
 * builder is left in the `then` arm and *els is the `else` arm. */
static LLVMBasicBlockRef branch(kl_ctx *L, LLVMValueRef cond, LLVMBasicBlockRef *els) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(L->C, L->fn, "then");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(L->C, L->fn, "join");
  *els = LLVMAppendBasicBlockInContext(L->C, L->fn, "else");
  LLVMBuildCondBr(L->B, cond, then, *els);
  LLVMPositionBuilderAtEnd(L->B, then);
  return join;
}

/* The element offset of x[n, ih, iw, 0]; a position in the padding becomes
 * x[n, 0, 0, 0], so that the address stays inside x either way. */
static LLVMValueRef x_at(kl_ctx *L, const win_geom *g, LLVMValueRef n, LLVMValueRef ih, LLVMValueRef iw,
                         LLVMValueRef inside) {
  LLVMValueRef zero = kl_i64(L, 0);
  ih = LLVMBuildSelect(L->B, inside, ih, zero, "");
  iw = LLVMBuildSelect(L->B, inside, iw, zero, "");
  return madd(L, madd(L, madd(L, n, g->H, ih), g->W, iw), g->C, NULL);
}

/* Gathers the windows of output pixels q0 .. q0+cnt (flat over n, oh, ow)
 * into buf, then y[q0 .. q0+cnt] = buf f.  A window row is one copy of
 * KW*C elements where it lies inside the input and the taps are adjacent
 * (dilation 1), else a copy or a zero fill of C elements per tap. */
static bool im2col_block(kl_ctx *L, const im2col *b, LLVMValueRef q0, int64_t cnt) {
  const win_geom *g = b->g;
  kiln_dtype dt = b->dt;
  int64_t KK = g->KH * g->KW * g->C, es = (int64_t)kg_dtype_size(dt);
  kl_loop lp = kl_for(L, kl_i64(L, cnt), "im2col_p");
  LLVMValueRef q = iadd(L, q0, lp.index);
  LLVMValueRef ow = LLVMBuildSRem(L->B, q, kl_i64(L, g->OW), "");
  LLVMValueRef r = LLVMBuildSDiv(L->B, q, kl_i64(L, g->OW), "");
  LLVMValueRef oh = LLVMBuildSRem(L->B, r, kl_i64(L, g->OH), "");
  LLVMValueRef n = LLVMBuildSDiv(L->B, r, kl_i64(L, g->OH), "");
  LLVMValueRef iw0 = madd(L, ow, g->sw, kl_i64(L, -g->pl));
  LLVMValueRef row_in = LLVMBuildAnd(L->B, in_range(L, iw0, g->W),
                                     in_range(L, iadd(L, iw0, kl_i64(L, (g->KW - 1) * g->dw)), g->W), "");
  kl_loop lh = kl_for(L, kl_i64(L, g->KH), "im2col_kh");
  LLVMValueRef ih = madd(L, oh, g->sh, madd(L, lh.index, g->dh, kl_i64(L, -g->pt)));
  LLVMValueRef h_in = in_range(L, ih, g->H);
  LLVMValueRef dst = madd(L, lp.index, KK, madd(L, lh.index, g->KW * g->C, NULL));
  LLVMBasicBlockRef join = NULL, els = NULL;
  if (g->dw == 1 && g->KW > 1) {
    LLVMValueRef whole = LLVMBuildAnd(L->B, h_in, row_in, "");
    join = branch(L, whole, &els);
    kl_memcpy(L, kl_gep(L, dt, b->buf, dst), kl_gep(L, dt, b->x, x_at(L, g, n, ih, iw0, whole)), g->KW * g->C * es);
    LLVMBuildBr(L->B, join);
    LLVMPositionBuilderAtEnd(L->B, els);
  }
  kl_loop lw = kl_for(L, kl_i64(L, g->KW), "im2col_kw");
  LLVMValueRef iw = madd(L, lw.index, g->dw, iw0);
  LLVMValueRef inside = LLVMBuildAnd(L->B, h_in, in_range(L, iw, g->W), "");
  LLVMValueRef to = kl_gep(L, dt, b->buf, madd(L, lw.index, g->C, dst));
  LLVMBasicBlockRef pad = NULL, next = branch(L, inside, &pad);
  kl_memcpy(L, to, kl_gep(L, dt, b->x, x_at(L, g, n, ih, iw, inside)), g->C * es);
  LLVMBuildBr(L->B, next);
  LLVMPositionBuilderAtEnd(L->B, pad);
  kl_memset0(L, to, g->C * es);
  LLVMBuildBr(L->B, next);
  LLVMPositionBuilderAtEnd(L->B, next);
  kl_for_end(L, &lw);
  if (join) {
    LLVMBuildBr(L->B, join);
    LLVMPositionBuilderAtEnd(L->B, join);
  }
  kl_for_end(L, &lh);
  kl_for_end(L, &lp);
  return gemm_static(L, dt, cnt, g->M, KK, b->buf, KK, b->f, kl_gep(L, dt, b->y, madd(L, q0, g->M, NULL)), b->f_packed);
}

/* ---- conv2d forward, 3x3 with stride 1: Winograd F(2x2, 3x3) ----
 * Each 2x2 block of outputs (a tile) is A^T [(G g G^T) * (B^T d B)] A per
 * (input channel, output channel), with d the 4x4 input patch under the
 * tile and g the 3x3 filter.  Summed over the input channels, the 16
 * elementwise products become 16 independent GEMMs [tiles x C] x [C x O]:
 * 16 multiplies per tile and channel pair instead of 36.  The transforms'
 * coefficients are 0, +-1 and +-1/2, so finite results differ from the
 * direct sum by rounding only; a NaN or infinity in a tile's 4x4 input
 * patch reaches all four of its outputs (0 * inf is NaN), where the direct
 * sum spreads it only to the windows that hold it.  The filter is
 * transformed on every run (it may be a variable) into U; tiles go in
 * blocks of TB, transformed into V, multiplied into Mb and transformed
 * back into y.  Few channels (an RGB first layer) keep im2col: GEMMs of
 * depth 3 would waste the saving, and at 8 channels (cnn_b1's second
 * layer) Winograd measured 1.4x faster than im2col. */

enum {
  WINO_MIN_C = 8,        /* input and output channels at least */
  WINO_BYTES = 512 << 10 /* V and Mb of one block of tiles */
};

typedef struct wino {
  const win_geom *g;
  kiln_dtype dt;
  int64_t TH, TW, TB; /* tiles per column and row; tiles per block */
  LLVMValueRef x, f, y, U, V, Mb;
} wino;

/* Tiles per block, or 0 where Winograd does not apply. */
static int64_t wino_tiles(const win_geom *g, int64_t es) {
  if (g->KH != 3 || g->KW != 3 || g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->C < WINO_MIN_C ||
      g->M < WINO_MIN_C || 16 * g->C * g->M * es > IM2COL_MAX_BYTES)
    return 0;
  int64_t tiles = g->N * ((g->OH + 1) / 2) * ((g->OW + 1) / 2), t = WINO_BYTES / (16 * (g->C + g->M) * es);
  t -= t % 12; /* whole micro-tiles of rows, as for im2col */
  return t < 12 ? 0 : t < tiles ? t : tiles;
}

static LLVMValueRef wadd(kl_ctx *L, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b) { return fprim(L, "add", dt, a, b); }
static LLVMValueRef wsub(kl_ctx *L, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b) { return fprim(L, "sub", dt, a, b); }

/* U[e][c][o] = (G g G^T)[e], g = f[:, :, c, o], e = 4 * row + column */
static void wino_filter(kl_ctx *L, const wino *w) {
  const win_geom *g = w->g;
  kiln_dtype dt = w->dt;
  LLVMValueRef h = kl_const_f(L, dt, 0.5);
  kl_loop lc = kl_for(L, kl_i64(L, g->C), "wino_fc");
  kl_loop lo = kl_for(L, kl_i64(L, g->M), "wino_fo");
  LLVMValueRef co = madd(L, lc.index, g->M, lo.index), k[3][3], q[4][3];
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) k[a][b] = kl_load(L, dt, w->f, iadd(L, co, kl_i64(L, (a * 3 + b) * g->C * g->M)));
  for (int b = 0; b < 3; b++) { /* G g */
    LLVMValueRef s02 = wadd(L, dt, k[0][b], k[2][b]);
    q[0][b] = k[0][b];
    q[1][b] = fprim(L, "mul", dt, h, wadd(L, dt, s02, k[1][b]));
    q[2][b] = fprim(L, "mul", dt, h, wsub(L, dt, s02, k[1][b]));
    q[3][b] = k[2][b];
  }
  for (int a = 0; a < 4; a++) { /* (G g) G^T */
    LLVMValueRef s02 = wadd(L, dt, q[a][0], q[a][2]);
    LLVMValueRef u[4] = {q[a][0], fprim(L, "mul", dt, h, wadd(L, dt, s02, q[a][1])),
                         fprim(L, "mul", dt, h, wsub(L, dt, s02, q[a][1])), q[a][2]};
    for (int b = 0; b < 4; b++) kl_store(L, dt, w->U, iadd(L, co, kl_i64(L, (4 * a + b) * g->C * g->M)), u[b]);
  }
  kl_for_end(L, &lo);
  kl_for_end(L, &lc);
}

/* The image, tile row and tile column of tile t. */
static void wino_tile_at(kl_ctx *L, const wino *w, LLVMValueRef t, LLVMValueRef *n, LLVMValueRef *th,
                         LLVMValueRef *tw) {
  *tw = LLVMBuildSRem(L->B, t, kl_i64(L, w->TW), "");
  LLVMValueRef r = LLVMBuildSDiv(L->B, t, kl_i64(L, w->TW), "");
  *th = LLVMBuildSRem(L->B, r, kl_i64(L, w->TH), "");
  *n = LLVMBuildSDiv(L->B, r, kl_i64(L, w->TH), "");
}

/* V[e][i][c] = (B^T d B)[e] for the tiles t0 + i, i < cnt */
static void wino_input(kl_ctx *L, const wino *w, LLVMValueRef t0, int64_t cnt) {
  const win_geom *g = w->g;
  kiln_dtype dt = w->dt;
  kl_loop li = kl_for(L, kl_i64(L, cnt), "wino_it");
  LLVMValueRef n, th, tw, in[4][4], off[4][4], d[4][4], t[4][4];
  wino_tile_at(L, w, iadd(L, t0, li.index), &n, &th, &tw);
  LLVMValueRef ih0 = madd(L, th, 2, kl_i64(L, -g->pt)), iw0 = madd(L, tw, 2, kl_i64(L, -g->pl));
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      LLVMValueRef ih = iadd(L, ih0, kl_i64(L, a)), iw = iadd(L, iw0, kl_i64(L, b));
      in[a][b] = LLVMBuildAnd(L->B, in_range(L, ih, g->H), in_range(L, iw, g->W), "");
      off[a][b] = x_at(L, g, n, ih, iw, in[a][b]);
    }
  kl_loop lc = kl_for(L, kl_i64(L, g->C), "wino_ic");
  LLVMValueRef zero = kl_const_f(L, dt, 0);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      d[a][b] = LLVMBuildSelect(L->B, in[a][b], kl_load(L, dt, w->x, iadd(L, off[a][b], lc.index)), zero, "");
  for (int b = 0; b < 4; b++) { /* B^T d */
    t[0][b] = wsub(L, dt, d[0][b], d[2][b]);
    t[1][b] = wadd(L, dt, d[1][b], d[2][b]);
    t[2][b] = wsub(L, dt, d[2][b], d[1][b]);
    t[3][b] = wsub(L, dt, d[1][b], d[3][b]);
  }
  LLVMValueRef row = madd(L, li.index, g->C, lc.index);
  for (int a = 0; a < 4; a++) { /* (B^T d) B */
    LLVMValueRef v[4] = {wsub(L, dt, t[a][0], t[a][2]), wadd(L, dt, t[a][1], t[a][2]), wsub(L, dt, t[a][2], t[a][1]),
                         wsub(L, dt, t[a][1], t[a][3])};
    for (int b = 0; b < 4; b++) kl_store(L, dt, w->V, iadd(L, row, kl_i64(L, (4 * a + b) * w->TB * g->C)), v[b]);
  }
  kl_for_end(L, &lc);
  kl_for_end(L, &li);
}

/* One tile's outputs from Mb: y[n, oh0 + r, ow0 + s, :] = (A^T m A)[r][s] for
 * every output channel; `keep[r][s]` (NULL: all) guards a partial tile. */
static void wino_store(kl_ctx *L, const wino *w, LLVMValueRef i, LLVMValueRef ybase, LLVMValueRef keep[2][2]) {
  const win_geom *g = w->g;
  kiln_dtype dt = w->dt;
  kl_loop lo = kl_for(L, kl_i64(L, g->M), "wino_oo");
  LLVMValueRef m[4][4], s[2][4], row = madd(L, i, g->M, lo.index);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) m[a][b] = kl_load(L, dt, w->Mb, iadd(L, row, kl_i64(L, (4 * a + b) * w->TB * g->M)));
  for (int b = 0; b < 4; b++) { /* A^T m */
    s[0][b] = wadd(L, dt, wadd(L, dt, m[0][b], m[1][b]), m[2][b]);
    s[1][b] = wsub(L, dt, wsub(L, dt, m[1][b], m[2][b]), m[3][b]);
  }
  for (int r = 0; r < 2; r++) { /* (A^T m) A */
    LLVMValueRef yv[2] = {wadd(L, dt, wadd(L, dt, s[r][0], s[r][1]), s[r][2]),
                          wsub(L, dt, wsub(L, dt, s[r][1], s[r][2]), s[r][3])};
    for (int c = 0; c < 2; c++) {
      LLVMValueRef yi = iadd(L, ybase, iadd(L, lo.index, kl_i64(L, (r * g->OW + c) * g->M)));
      if (!keep) {
        kl_store(L, dt, w->y, yi, yv[c]);
        continue;
      }
      LLVMBasicBlockRef skip = NULL, next = branch(L, keep[r][c], &skip);
      kl_store(L, dt, w->y, yi, yv[c]);
      LLVMBuildBr(L->B, next);
      LLVMPositionBuilderAtEnd(L->B, skip);
      LLVMBuildBr(L->B, next);
      LLVMPositionBuilderAtEnd(L->B, next);
    }
  }
  kl_for_end(L, &lo);
}

/* y for the tiles t0 .. t0+cnt: the outputs of a tile past the last row or
 * column (odd OH or OW) are not stored. */
static void wino_output(kl_ctx *L, const wino *w, LLVMValueRef t0, int64_t cnt) {
  const win_geom *g = w->g;
  kl_loop li = kl_for(L, kl_i64(L, cnt), "wino_ot");
  LLVMValueRef n, th, tw;
  wino_tile_at(L, w, iadd(L, t0, li.index), &n, &th, &tw);
  LLVMValueRef oh0 = madd(L, th, 2, NULL), ow0 = madd(L, tw, 2, NULL);
  LLVMValueRef ybase = madd(L, madd(L, madd(L, n, g->OH, oh0), g->OW, ow0), g->M, NULL);
  if (g->OH % 2 == 0 && g->OW % 2 == 0) {
    wino_store(L, w, li.index, ybase, NULL);
  } else {
    LLVMValueRef rin = in_range(L, iadd(L, oh0, kl_i64(L, 1)), g->OH);
    LLVMValueRef cin = in_range(L, iadd(L, ow0, kl_i64(L, 1)), g->OW);
    LLVMValueRef keep[2][2] = {{LLVMConstInt(L->t_i1, 1, 0), cin}, {rin, LLVMBuildAnd(L->B, rin, cin, "")}};
    LLVMBasicBlockRef part = NULL, join = branch(L, keep[1][1], &part);
    wino_store(L, w, li.index, ybase, NULL);
    LLVMBuildBr(L->B, join);
    LLVMPositionBuilderAtEnd(L->B, part);
    wino_store(L, w, li.index, ybase, keep);
    LLVMBuildBr(L->B, join);
    LLVMPositionBuilderAtEnd(L->B, join);
  }
  kl_for_end(L, &li);
}

static bool wino_block(kl_ctx *L, const wino *w, LLVMValueRef t0, int64_t cnt) {
  const win_geom *g = w->g;
  wino_input(L, w, t0, cnt);
  for (int64_t e = 0; e < 16; e++) {
    LLVMValueRef V = kl_gep(L, w->dt, w->V, kl_i64(L, e * w->TB * g->C));
    LLVMValueRef U = kl_gep(L, w->dt, w->U, kl_i64(L, e * g->C * g->M));
    LLVMValueRef Mb = kl_gep(L, w->dt, w->Mb, kl_i64(L, e * w->TB * g->M));
    if (!gemm_static(L, w->dt, cnt, g->M, g->C, V, g->C, U, Mb, false)) return false;
  }
  wino_output(L, w, t0, cnt);
  return true;
}

/* The body of the Winograd kernel (x, f, y its parameters). */
static bool winograd(kl_ctx *L, const win_geom *g, kiln_dtype dt, int64_t TB, LLVMValueRef x, LLVMValueRef f,
                     LLVMValueRef y) {
  wino w = {g, dt, (g->OH + 1) / 2, (g->OW + 1) / 2, TB, x, f, y, NULL, NULL, NULL};
  LLVMTypeRef et = kl_elem_type(L, dt);
  w.U = LLVMBuildArrayAlloca(L->B, et, kl_i64(L, 16 * g->C * g->M), "wino_u");
  w.V = LLVMBuildArrayAlloca(L->B, et, kl_i64(L, 16 * TB * g->C), "wino_v");
  w.Mb = LLVMBuildArrayAlloca(L->B, et, kl_i64(L, 16 * TB * g->M), "wino_m");
  LLVMSetAlignment(w.U, 64), LLVMSetAlignment(w.V, 64), LLVMSetAlignment(w.Mb, 64);
  wino_filter(L, &w);
  int64_t tiles = g->N * w.TH * w.TW, full = tiles / TB, tail = tiles % TB;
  bool ok = true;
  if (full) {
    kl_loop lb = kl_for(L, kl_i64(L, full), "wino_blk");
    ok = wino_block(L, &w, madd(L, lb.index, TB, NULL), TB);
    kl_for_end(L, &lb);
  }
  if (ok && tail) ok = wino_block(L, &w, kl_i64(L, full * TB), tail);
  return ok;
}

/* The forward conv2d as GEMMs; *done false where the per-tap form is kept. */
static bool conv2d_gemm(kl_ctx *L, int node, const win_geom *g, kiln_dtype dt, bool *done) {
  int64_t total = g->N * g->OH * g->OW, KK = g->KH * g->KW * g->C, es = (int64_t)kg_dtype_size(dt);
  LLVMValueRef x = kl_in(L, node, 0), f = kl_in(L, node, 1), y = kl_out(L, node, 0);
  *done = true;
  bool packed = false;
  if (pointwise(g)) {
    f = filter_b(L, node, g, dt, total, f, &packed);
    return gemm_static(L, dt, total, g->M, g->C, x, g->C, f, y, packed);
  }
  int64_t TB = wino_tiles(g, es), P = TB ? 0 : im2col_pixels(g, es);
  if (!TB && !P) return !(*done = false);
  if (P) f = filter_b(L, node, g, dt, P, f, &packed);
  char name[256];
  kernel_name(name, sizeof name, TB ? "winograd_conv" : packed ? "im2col_conv_packed" : "im2col_conv", g, dt);
  kl_kernel k = {0};
  LLVMValueRef args[3] = {x, f, y};
  bool ok = true;
  while (kl_kernel_variant(L, &k)) {
    kl_vec v;
    kl_vec_init(L, dt, &v);
    if (kl_kernel_begin(L, &v, name, 3, &k)) {
      LLVMValueRef kx = LLVMGetParam(k.fn, 0), kf = LLVMGetParam(k.fn, 1), ky = LLVMGetParam(k.fn, 2);
      if (TB) {
        ok = winograd(L, g, dt, TB, kx, kf, ky);
      } else {
        /* the buffer lives in the kernel's frame, only during the convolution */
        LLVMValueRef buf = LLVMBuildArrayAlloca(L->B, kl_elem_type(L, dt), kl_i64(L, P * KK), "im2col");
        LLVMSetAlignment(buf, 64);
        im2col b = {g, dt, kx, kf, ky, buf, packed};
        int64_t full = total / P, tail = total % P;
        if (full) {
          kl_loop lb = kl_for(L, kl_i64(L, full), "im2col_blk");
          ok = im2col_block(L, &b, madd(L, lb.index, P, NULL), P);
          kl_for_end(L, &lb);
        }
        if (ok && tail) ok = im2col_block(L, &b, kl_i64(L, full * P), tail);
      }
  }
  kl_kernel_end(L, &k);
  }
  kl_kernel_call(L, &k, args);
  return ok;
}

bool kl_lower_conv2d(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *rt = kl_out_type(L, node, 0);
  kiln_dtype dt = rt->dtype;
  int role = conv_role(n->op);
  win_geom g;
  kg_shape xs, fs, ys;
  if (!conv_geom(NULL, L->m, n, &g, &xs, &fs, &ys)) return node_fail(L, node, "internal: invalid conv2d geometry");
  LLVMValueRef res = kl_out(L, node, 0);
  bool empty = kg_shape_numel(&xs) == 0 || kg_shape_numel(&fs) == 0 || kg_shape_numel(&ys) == 0;
  if (role == ROLE_FWD && !empty) { /* writes every output element */
    bool done;
    if (!conv2d_gemm(L, node, &g, dt, &done)) return false;
    if (done) return true;
  }
  kl_memset0(L, res, kg_type_bytes(rt)); /* the per-tap GEMMs accumulate */
  if (empty) return true;
  if (g.sw * g.C > INT32_MAX || g.M > INT32_MAX || g.OW > INT32_MAX)
    return node_fail(L, node, "conv2d dimensions exceed BLAS's 32-bit int range");
  LLVMValueRef X = role == ROLE_INPUT_GRAD ? res : kl_in(L, node, 0);
  LLVMValueRef F = role == ROLE_FWD ? kl_in(L, node, 1) : role == ROLE_INPUT_GRAD ? kl_in(L, node, 0) : res;
  LLVMValueRef Y = role == ROLE_FWD ? res : kl_in(L, node, 1);

  /* taps along the height each output row reads; along the width, the
   * filter columns that reach any output, each with its output range */
  int64_t *khlo = arena_i64s(L, g.OH), *khn = arena_i64s(L, g.OH);
  valid_ranges(g.OH, g.sh, g.KH, g.dh, g.pt, g.H, khlo, khn);
  int64_t *owlo = arena_i64s(L, g.KW), *own = arena_i64s(L, g.KW), *kwv = arena_i64s(L, g.KW), nk = 0;
  valid_ranges(g.KW, g.dw, g.OW, g.sw, g.pl, g.W, owlo, own);
  for (int64_t kw = 0; kw < g.KW; kw++)
    if (own[kw]) kwv[nk] = kw, owlo[nk] = owlo[kw], own[nk] = own[kw], nk++;
  if (nk == 0) return true;

  int64_t C = g.C, O = g.M;
  kl_loop ln = kl_for(L, kl_i64(L, g.N), "conv_n");
  kl_loop lo = kl_for(L, kl_i64(L, g.OH), "conv_oh");
  LLVMValueRef oh = lo.index;
  kl_loop lh = kl_for(L, table_at(L, khn, g.OH, oh, "conv_khn"), "conv_kh");
  LLVMValueRef kh = iadd(L, table_at(L, khlo, g.OH, oh, "conv_khlo"), lh.index);
  LLVMValueRef ih = iadd(L, madd(L, oh, g.sh, kl_i64(L, -g.pt)), madd(L, kh, g.dh, NULL));
  kl_loop lw = kl_for(L, kl_i64(L, nk), "conv_kw");
  LLVMValueRef kw = table_at(L, kwv, nk, lw.index, "conv_kwv");
  LLVMValueRef ow0 = table_at(L, owlo, nk, lw.index, "conv_owlo");
  LLVMValueRef rows = table_at(L, own, nk, lw.index, "conv_own");
  LLVMValueRef iw0 = iadd(L, madd(L, ow0, g.sw, kl_i64(L, -g.pl)), madd(L, kw, g.dw, NULL));
  LLVMValueRef xp = kl_gep(L, dt, X, madd(L, iadd(L, madd(L, madd(L, ln.index, g.H, ih), g.W, NULL), iw0), C, NULL));
  LLVMValueRef yp = kl_gep(L, dt, Y, madd(L, iadd(L, madd(L, madd(L, ln.index, g.OH, oh), g.OW, NULL), ow0), O, NULL));
  LLVMValueRef fp = kl_gep(L, dt, F, madd(L, madd(L, kh, g.KW, kw), C * O, NULL));
  LLVMValueRef vC = kl_i64(L, C), vO = kl_i64(L, O);
  switch (role) {
  case ROLE_FWD: gemm_acc(L, dt, false, false, rows, vO, vC, xp, g.sw * C, fp, O, yp, O); break;
  case ROLE_INPUT_GRAD: gemm_acc(L, dt, false, true, rows, vC, vO, yp, O, fp, O, xp, g.sw * C); break;
  default: gemm_acc(L, dt, true, false, vC, vO, rows, xp, g.sw * C, yp, O, fp, O); break;
  }
  kl_for_end(L, &lw);
  kl_for_end(L, &lh);
  kl_for_end(L, &lo);
  kl_for_end(L, &ln);
  return true;
}

/* ======================================================================
 * the window walker (depthwise convolution and pooling)
 * ====================================================================== */

/* Where the walker stands: offsets of x[n, ih, iw, 0] (taps only) and
 * y[n, oh, ow, 0], the tap kh*KW + kw (taps only), the number of taps in the
 * window (the count of non-padding elements), and the channel c when the
 * walk loops channels around the taps. */
typedef struct win_at {
  LLVMValueRef xoff, yoff, tap, count, c;
} win_at;

typedef void (*win_fn)(kl_ctx *L, const win_geom *g, void *arg, const win_at *at);

typedef struct win_walk {
  win_fn before, tap, after; /* each may be NULL; before/after run once per output position */
  bool per_channel;          /* loop channels outside the taps (for per-channel running state) */
  int64_t ych;               /* channels of the output */
  void *arg;
} win_walk;

/* for n, oh, ow: before; for each tap inside the input: tap; after. */
static void walk_windows(kl_ctx *L, const win_geom *g, const win_walk *w) {
  int64_t *khlo = arena_i64s(L, g->OH), *khn = arena_i64s(L, g->OH);
  int64_t *kwlo = arena_i64s(L, g->OW), *kwn = arena_i64s(L, g->OW);
  valid_ranges(g->OH, g->sh, g->KH, g->dh, g->pt, g->H, khlo, khn);
  valid_ranges(g->OW, g->sw, g->KW, g->dw, g->pl, g->W, kwlo, kwn);
  win_at at = {0};
  kl_loop ln = kl_for(L, kl_i64(L, g->N), "win_n");
  kl_loop lo = kl_for(L, kl_i64(L, g->OH), "win_oh");
  LLVMValueRef oh = lo.index;
  LLVMValueRef h0 = table_at(L, khlo, g->OH, oh, "win_khlo"), hn = table_at(L, khn, g->OH, oh, "win_khn");
  kl_loop lw = kl_for(L, kl_i64(L, g->OW), "win_ow");
  LLVMValueRef ow = lw.index;
  LLVMValueRef w0 = table_at(L, kwlo, g->OW, ow, "win_kwlo"), wn = table_at(L, kwn, g->OW, ow, "win_kwn");
  at.yoff = madd(L, madd(L, madd(L, ln.index, g->OH, oh), g->OW, ow), w->ych, NULL);
  at.count = LLVMBuildNSWMul(L->B, hn, wn, "");
  kl_loop lc = {0};
  if (w->per_channel) {
    lc = kl_for(L, kl_i64(L, g->C), "win_c");
    at.c = lc.index;
  }
  if (w->before) w->before(L, g, w->arg, &at);
  kl_loop lkh = kl_for(L, hn, "win_kh");
  LLVMValueRef kh = iadd(L, h0, lkh.index);
  LLVMValueRef ih = iadd(L, madd(L, oh, g->sh, kl_i64(L, -g->pt)), madd(L, kh, g->dh, NULL));
  kl_loop lkw = kl_for(L, wn, "win_kw");
  LLVMValueRef kw = iadd(L, w0, lkw.index);
  LLVMValueRef iw = iadd(L, madd(L, ow, g->sw, kl_i64(L, -g->pl)), madd(L, kw, g->dw, NULL));
  at.xoff = madd(L, iadd(L, madd(L, madd(L, ln.index, g->H, ih), g->W, NULL), iw), g->C, NULL);
  at.tap = madd(L, kh, g->KW, kw);
  if (w->tap) w->tap(L, g, w->arg, &at);
  kl_for_end(L, &lkw);
  kl_for_end(L, &lkh);
  at.xoff = at.tap = NULL;
  if (w->after) w->after(L, g, w->arg, &at);
  if (w->per_channel) kl_for_end(L, &lc);
  kl_for_end(L, &lw);
  kl_for_end(L, &lo);
  kl_for_end(L, &ln);
}

/* ---- depthwise_conv2d family ----
 * y[n,oh,ow,c*M+m] = sum over taps of x[n,ih,iw,c] * f[kh,kw,c,m]: the
 * forward op accumulates into y, the input gradient into x and the filter
 * gradient into f, always from the product of the other two. */

typedef struct dw_arg {
  kiln_dtype dt;
  LLVMValueRef p[3]; /* x, f, y */
  int acc;           /* which of them the op computes */
} dw_arg;

static void dw_tap(kl_ctx *L, const win_geom *g, void *arg, const win_at *at) {
  dw_arg *d = arg;
  kl_loop lc = kl_for(L, kl_i64(L, g->C), "dw_c");
  LLVMValueRef c = lc.index;
  LLVMValueRef fbase = madd(L, madd(L, at->tap, g->C, c), g->M, NULL);
  LLVMValueRef ybase = madd(L, c, g->M, at->yoff);
  kl_loop lm = {0};
  LLVMValueRef mi = kl_i64(L, 0);
  if (g->M != 1) {
    lm = kl_for(L, kl_i64(L, g->M), "dw_m");
    mi = lm.index;
  }
  LLVMValueRef idx[3] = {iadd(L, at->xoff, c), iadd(L, fbase, mi), iadd(L, ybase, mi)};
  int a = (d->acc + 1) % 3, b = (d->acc + 2) % 3;
  mul_acc(L, d->dt, d->p[d->acc], idx[d->acc], kl_load(L, d->dt, d->p[a], idx[a]), kl_load(L, d->dt, d->p[b], idx[b]));
  if (g->M != 1) kl_for_end(L, &lm);
  kl_for_end(L, &lc);
}

/* ---- depthwise_conv2d forward with multiplier 1: vectors along channels ----
 * y[n,oh,ow,c] = sum over taps of x[n,ih,iw,c] * f[kh,kw,c], and c is
 * contiguous in x, f and y.  A tile of NP output pixels times NV vectors of
 * channels keeps its sums in registers across the taps, loads each filter
 * vector once per tap for all NP pixels and stores once.  Pixels whose
 * window lies inside the input (the interior rows and columns) run tiles
 * over every tap, unrolled at emission; the border pixels run one at a time
 * over their valid tap range (valid_ranges' tables), so no tap tests for
 * padding.  The channel tail is a shorter tile with a masked last vector. */

enum { DW_UNROLL_TAPS = 64 }; /* windows with more taps loop over them instead */

typedef struct dwk {
  const win_geom *g;
  kiln_dtype dt;
  kl_vec v;
  int NV, NP;                       /* the largest tile: NV vectors of channels x NP pixels */
  LLVMValueRef x, f, y, n;          /* the operands; the image */
  int64_t *khlo, *khn, *kwlo, *kwn; /* each output row's / column's valid taps */
} dwk;

/* acc[p*nv + j] += x[n, ih, iw(p), c0 + jW ..] * f[kh, kw, c0 + jW ..] for the
 * np pixels from ow0; the last vector holds `last` lanes. */
static void dw_taps(kl_ctx *L, const dwk *d, LLVMValueRef oh, LLVMValueRef ow0, int np, LLVMValueRef c0, int nv,
                    int last, LLVMValueRef kh, LLVMValueRef kw, LLVMValueRef *acc) {
  const win_geom *g = d->g;
  int W = d->v.W;
  LLVMValueRef row = madd(L, d->n, g->H, madd(L, oh, g->sh, madd(L, kh, g->dh, kl_i64(L, -g->pt))));
  LLVMValueRef fo = madd(L, madd(L, kh, g->KW, kw), g->C, c0);
  LLVMValueRef fv[16];
  for (int j = 0; j < nv; j++)
    fv[j] = kl_vec_load(L, &d->v, kl_gep(L, d->dt, d->f, iadd(L, fo, kl_i64(L, j * W))), j == nv - 1 ? last : W);
  for (int p = 0; p < np; p++) {
    LLVMValueRef iw = madd(L, iadd(L, ow0, kl_i64(L, p)), g->sw, madd(L, kw, g->dw, kl_i64(L, -g->pl)));
    LLVMValueRef xo = madd(L, madd(L, row, g->W, iw), g->C, c0);
    for (int j = 0; j < nv; j++) {
      LLVMValueRef xv =
          kl_vec_load(L, &d->v, kl_gep(L, d->dt, d->x, iadd(L, xo, kl_i64(L, j * W))), j == nv - 1 ? last : W);
      acc[p * nv + j] = kl_vec_mac(L, &d->v, xv, fv[j], acc[p * nv + j]);
    }
  }
}

/* y[n, oh, ow0 .. ow0+np, c0 .. c0+lanes): over every tap when `full`, else
 * (np == 1) over the pixel's valid taps. */
static void dw_tile(kl_ctx *L, const dwk *d, LLVMValueRef oh, LLVMValueRef ow0, int np, LLVMValueRef c0,
                    int64_t lanes, bool full) {
  const win_geom *g = d->g;
  int W = d->v.W, nv = (int)((lanes + W - 1) / W), last = (int)(lanes - (int64_t)(nv - 1) * W), na = np * nv;
  LLVMValueRef acc[64];
  for (int i = 0; i < na; i++) acc[i] = LLVMConstNull(d->v.vt);
  if (full && g->KH * g->KW <= DW_UNROLL_TAPS) {
    for (int64_t kh = 0; kh < g->KH; kh++)
      for (int64_t kw = 0; kw < g->KW; kw++)
        dw_taps(L, d, oh, ow0, np, c0, nv, last, kl_i64(L, kh), kl_i64(L, kw), acc);
  } else {
    /* loops over the taps, the sums in stack slots that mem2reg turns into registers */
    LLVMValueRef slot[64];
    for (int i = 0; i < na; i++) {
      slot[i] = entry_slot(L, d->v.vt, "dw_acc");
      LLVMBuildStore(L->B, acc[i], slot[i]);
    }
    LLVMValueRef h0 = full ? kl_i64(L, 0) : table_at(L, d->khlo, g->OH, oh, "dw_khlo");
    LLVMValueRef hn = full ? kl_i64(L, g->KH) : table_at(L, d->khn, g->OH, oh, "dw_khn");
    LLVMValueRef w0 = full ? kl_i64(L, 0) : table_at(L, d->kwlo, g->OW, ow0, "dw_kwlo");
    LLVMValueRef wn = full ? kl_i64(L, g->KW) : table_at(L, d->kwn, g->OW, ow0, "dw_kwn");
    kl_loop lh = kl_for(L, hn, "dw_kh");
    kl_loop lw = kl_for(L, wn, "dw_kw");
    for (int i = 0; i < na; i++) acc[i] = LLVMBuildLoad2(L->B, d->v.vt, slot[i], "");
    dw_taps(L, d, oh, ow0, np, c0, nv, last, iadd(L, h0, lh.index), iadd(L, w0, lw.index), acc);
    for (int i = 0; i < na; i++) LLVMBuildStore(L->B, acc[i], slot[i]);
    kl_for_end(L, &lw);
    kl_for_end(L, &lh);
    for (int i = 0; i < na; i++) acc[i] = LLVMBuildLoad2(L->B, d->v.vt, slot[i], "");
  }
  LLVMValueRef prow = madd(L, madd(L, d->n, g->OH, oh), g->OW, ow0);
  for (int p = 0; p < np; p++)
    for (int j = 0; j < nv; j++) {
      LLVMValueRef yo = madd(L, iadd(L, prow, kl_i64(L, p)), g->C, iadd(L, c0, kl_i64(L, j * W)));
      kl_vec_store(L, &d->v, acc[p * nv + j], kl_gep(L, d->dt, d->y, yo), j == nv - 1 ? last : W);
    }
}

/* The channel blocks of np pixels from ow0. */
static void dw_chans(kl_ctx *L, const dwk *d, LLVMValueRef oh, LLVMValueRef ow0, int np, bool full) {
  int64_t blk = (int64_t)d->NV * d->v.W, nb = d->g->C / blk, tail = d->g->C % blk;
  if (nb == 1) {
    dw_tile(L, d, oh, ow0, np, kl_i64(L, 0), blk, full);
  } else if (nb > 1) {
    kl_loop lc = kl_for(L, kl_i64(L, nb), "dw_cb");
    dw_tile(L, d, oh, ow0, np, madd(L, lc.index, blk, NULL), blk, full);
    kl_for_end(L, &lc);
  }
  if (tail) dw_tile(L, d, oh, ow0, np, kl_i64(L, nb * blk), tail, full);
}

/* Output columns [lo, hi) of row oh: tiles of NP pixels over every tap
 * (full), else one pixel at a time over its valid taps. */
static void dw_cols(kl_ctx *L, const dwk *d, LLVMValueRef oh, int64_t lo, int64_t hi, bool full) {
  if (hi <= lo) return;
  int64_t np = full ? d->NP : 1, cnt = (hi - lo) / np, tail = (hi - lo) % np;
  if (cnt) {
    kl_loop lw = kl_for(L, kl_i64(L, cnt), "dw_ow");
    dw_chans(L, d, oh, madd(L, lw.index, np, kl_i64(L, lo)), (int)np, full);
    kl_for_end(L, &lw);
  }
  if (tail) dw_chans(L, d, oh, kl_i64(L, lo + cnt * np), (int)tail, full);
}

/* The range [*lo, *hi) of the a < n whose window holds all k taps (it is
 * contiguous: the windows slide one way); empty when there are none. */
static void full_range(const int64_t *lo, const int64_t *cnt, int64_t n, int64_t k, int64_t *a, int64_t *b) {
  *a = *b = n;
  for (int64_t i = 0; i < n; i++)
    if (lo[i] == 0 && cnt[i] == k) {
      if (*a == n) *a = i;
      *b = i + 1;
    }
}

/* Output rows [lo, hi); `inner`: their windows hold every row of taps. */
static void dw_rows(kl_ctx *L, const dwk *d, int64_t lo, int64_t hi, bool inner, int64_t wa, int64_t wb) {
  if (hi <= lo) return;
  kl_loop lh = kl_for(L, kl_i64(L, hi - lo), "dw_oh");
  LLVMValueRef oh = iadd(L, lh.index, kl_i64(L, lo));
  if (inner) {
    dw_cols(L, d, oh, 0, wa, false);
    dw_cols(L, d, oh, wa, wb, true);
    dw_cols(L, d, oh, wb, d->g->OW, false);
  } else {
    dw_cols(L, d, oh, 0, d->g->OW, false);
  }
  kl_for_end(L, &lh);
}

/* One kernel per geometry: blazeface's 32 depthwise layers have 7. */
static void depthwise_forward(kl_ctx *L, int node, const win_geom *g, kiln_dtype dt) {
  char name[256];
  kernel_name(name, sizeof name, "depthwise", g, dt);
  kl_kernel k = {0};
  LLVMValueRef args[3] = {kl_in(L, node, 0), kl_in(L, node, 1), kl_out(L, node, 0)};
  while (kl_kernel_variant(L, &k)) {
    dwk d = {.g = g, .dt = dt};
    kl_vec_init(L, dt, &d.v);
    if (kl_kernel_begin(L, &d.v, name, 3, &k)) {
      d.x = LLVMGetParam(k.fn, 0), d.f = LLVMGetParam(k.fn, 1), d.y = LLVMGetParam(k.fn, 2);
      /* accumulators, the filter vectors, an input vector and a product fit the registers */
      d.NV = d.v.regs >= 32 ? 4 : 2;
      d.NP = 4;
      d.khlo = arena_i64s(L, g->OH), d.khn = arena_i64s(L, g->OH);
      d.kwlo = arena_i64s(L, g->OW), d.kwn = arena_i64s(L, g->OW);
      valid_ranges(g->OH, g->sh, g->KH, g->dh, g->pt, g->H, d.khlo, d.khn);
      valid_ranges(g->OW, g->sw, g->KW, g->dw, g->pl, g->W, d.kwlo, d.kwn);
      int64_t ha, hb, wa, wb;
      full_range(d.khlo, d.khn, g->OH, g->KH, &ha, &hb);
      full_range(d.kwlo, d.kwn, g->OW, g->KW, &wa, &wb);
      kl_loop ln = kl_for(L, kl_i64(L, g->N), "dw_n");
      d.n = ln.index;
      dw_rows(L, &d, 0, ha, false, 0, 0);
      dw_rows(L, &d, ha, hb, true, wa, wb);
      dw_rows(L, &d, hb, g->OH, false, 0, 0);
      kl_for_end(L, &ln);
  }
  kl_kernel_end(L, &k);
  }
  kl_kernel_call(L, &k, args);
}

bool kl_lower_depthwise_conv2d(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *rt = kl_out_type(L, node, 0);
  int role = conv_role(n->op);
  win_geom g;
  kg_shape xs, fs, ys;
  if (!conv_geom(NULL, L->m, n, &g, &xs, &fs, &ys)) return node_fail(L, node, "internal: invalid depthwise geometry");
  LLVMValueRef res = kl_out(L, node, 0);
  bool empty = kg_shape_numel(&xs) == 0 || kg_shape_numel(&fs) == 0 || kg_shape_numel(&ys) == 0;
  if (role == ROLE_FWD && g.M == 1 && !empty) { /* writes every output element */
    depthwise_forward(L, node, &g, rt->dtype);
    return true;
  }
  kl_memset0(L, res, kg_type_bytes(rt));
  if (empty) return true;
  dw_arg d = {rt->dtype, {0}, role == ROLE_FWD ? 2 : role == ROLE_INPUT_GRAD ? 0 : 1};
  d.p[0] = role == ROLE_INPUT_GRAD ? res : kl_in(L, node, 0);
  d.p[1] = role == ROLE_FWD ? kl_in(L, node, 1) : role == ROLE_INPUT_GRAD ? kl_in(L, node, 0) : res;
  d.p[2] = role == ROLE_FWD ? res : kl_in(L, node, 1);
  win_walk w = {NULL, dw_tap, NULL, false, g.C * g.M, &d};
  walk_windows(L, &g, &w);
  return true;
}

/* ---- pooling ----
 * max_pool:      y = max over the window (y starts at -inf)
 * avg_pool:      y = sum over the window / number of non-padding taps
 * avg_pool_grad: dx += dy / number of non-padding taps, for every tap
 * max_pool_grad: per channel, dx at the window's first maximum += dy */

typedef struct pool_arg {
  int op;
  kiln_dtype dt;
  LLVMValueRef x, y;       /* the input side (x, or avg_pool_grad's dx) and the output side (y or dy) */
  LLVMValueRef dx;         /* max_pool_grad: the result it scatters into */
  LLVMValueRef best, bidx; /* max_pool_grad: the running maximum and its offset in x */
} pool_arg;

enum { POOL_BEFORE, POOL_TAP, POOL_AFTER };

/* The channel loop of max_pool, avg_pool and avg_pool_grad at one step of
 * the walk (before the taps, at a tap, after them). */
static void pool_chan(kl_ctx *L, const win_geom *g, const pool_arg *p, const win_at *at, int step) {
  kiln_dtype dt = p->dt;
  bool max = p->op == KC_OP_MAX_POOL;
  if (step == POOL_BEFORE && !max) return;     /* the sums start from the zeroed result */
  if (step == POOL_AFTER && p->op != KC_OP_AVG_POOL) return;
  kl_loop lc = kl_for(L, kl_i64(L, g->C), "pool_c");
  LLVMValueRef yi = iadd(L, at->yoff, lc.index);
  LLVMValueRef xi = at->xoff ? iadd(L, at->xoff, lc.index) : NULL;
  LLVMValueRef count = kl_convert(L, at->count, KILN_I64, dt);
  if (step == POOL_BEFORE) {
    kl_store(L, dt, p->y, yi, kl_const_f(L, dt, -INFINITY));
  } else if (step == POOL_AFTER) {
    kl_store(L, dt, p->y, yi, fprim(L, "div", dt, kl_load(L, dt, p->y, yi), count));
  } else if (p->op == KC_OP_AVG_POOL_GRAD) {
    LLVMValueRef share = fprim(L, "div", dt, kl_load(L, dt, p->y, yi), count);
    kl_store(L, dt, p->x, xi, fprim(L, "add", dt, kl_load(L, dt, p->x, xi), share));
  } else {
    kl_store(L, dt, p->y, yi, fprim(L, max ? "max" : "add", dt, kl_load(L, dt, p->y, yi), kl_load(L, dt, p->x, xi)));
  }
  kl_for_end(L, &lc);
}

static void pool_before(kl_ctx *L, const win_geom *g, void *arg, const win_at *at) {
  pool_arg *p = arg;
  if (p->op != KC_OP_MAX_POOL_GRAD) {
    pool_chan(L, g, p, at, POOL_BEFORE);
    return;
  }
  LLVMBuildStore(L->B, kl_const_f(L, p->dt, -INFINITY), p->best);
  LLVMBuildStore(L->B, kl_i64(L, -1), p->bidx);
}

LLVMValueRef kl_pool_max_takes(kl_ctx *L, kiln_dtype dt, LLVMValueRef v, LLVMValueRef best, LLVMValueRef first) {
  LLVMValueRef args[2] = {v, best};
  return LLVMBuildOr(L->B, kl_prim(L, "gt", dt, KILN_BOOL, args, 2), first, "");
}

static void pool_tap(kl_ctx *L, const win_geom *g, void *arg, const win_at *at) {
  pool_arg *p = arg;
  if (p->op != KC_OP_MAX_POOL_GRAD) {
    pool_chan(L, g, p, at, POOL_TAP);
    return;
  }
  /* strictly greater, so the first maximum in window order wins (as TF);
   * the first tap is always taken, so a window of NaN or -inf still has one */
  LLVMValueRef xi = iadd(L, at->xoff, at->c);
  LLVMValueRef v = kl_load(L, p->dt, p->x, xi), best = LLVMBuildLoad2(L->B, kl_value_type(L, p->dt), p->best, "");
  LLVMValueRef bidx = LLVMBuildLoad2(L->B, L->t_i64, p->bidx, "");
  LLVMValueRef take = kl_pool_max_takes(L, p->dt, v, best, LLVMBuildICmp(L->B, LLVMIntSLT, bidx, kl_i64(L, 0), ""));
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, v, best, ""), p->best);
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, xi, bidx, ""), p->bidx);
}

static void pool_after(kl_ctx *L, const win_geom *g, void *arg, const win_at *at) {
  pool_arg *p = arg;
  if (p->op != KC_OP_MAX_POOL_GRAD) {
    pool_chan(L, g, p, at, POOL_AFTER);
    return;
  }
  /* every window holds at least one input element, so bidx is set */
  LLVMValueRef bidx = LLVMBuildLoad2(L->B, L->t_i64, p->bidx, "");
  LLVMValueRef dy = kl_load(L, p->dt, p->y, iadd(L, at->yoff, at->c));
  kl_store(L, p->dt, p->dx, bidx, fprim(L, "add", p->dt, kl_load(L, p->dt, p->dx, bidx), dy));
}

bool kl_lower_pool(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *rt = kl_out_type(L, node, 0);
  win_geom g;
  kg_shape xs, ys;
  if (!pool_geom(NULL, L->m, n, &g, &xs, &ys)) return node_fail(L, node, "internal: invalid pooling geometry");
  LLVMValueRef res = kl_out(L, node, 0);
  if (n->op != KC_OP_MAX_POOL) kl_memset0(L, res, kg_type_bytes(rt));
  if (kg_shape_numel(&ys) == 0) return true;
  pool_arg p = {n->op, rt->dtype, kl_in(L, node, 0), res, NULL, NULL, NULL};
  if (n->op == KC_OP_AVG_POOL_GRAD) p.x = res, p.y = kl_in(L, node, 0);
  if (n->op == KC_OP_MAX_POOL_GRAD) {
    p.y = kl_in(L, node, 1), p.dx = res;
    p.best = entry_slot(L, kl_value_type(L, p.dt), "mpg_best");
    p.bidx = entry_slot(L, L->t_i64, "mpg_idx");
  }
  win_walk w = {pool_before, pool_tap, pool_after, n->op == KC_OP_MAX_POOL_GRAD, g.C, &p};
  walk_windows(L, &g, &w);
  return true;
}

/* ======================================================================
 * gradient rules: the gradient ops above, with the forward op's window
 * attributes and the shape of the operand they compute
 * ====================================================================== */

/* Copies the attributes of n named in `names` that it has; returns the count. */
static int copy_attrs(const kg_node *n, const char *const *names, kg_attr *out) {
  int k = 0;
  for (int i = 0; names[i]; i++) {
    const kg_attr *a = kg_node_attr(n, names[i]);
    if (a) out[k++] = *a;
  }
  return k;
}

static const char *const conv_attr_names[] = {"strides", "dilations", "padding", NULL};
static const char *const pool_attr_names[] = {"ksize", "strides", "padding", NULL};

/* dx = backprop_input(filter, dy) {input_sizes}, df = backprop_filter(x, dy) {filter_sizes} */
static bool conv_grad(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx, int input_op, int filter_op) {
  const kg_node *n = &g->m->nodes[node];
  kg_ref x = n->in[0], f = n->in[1];
  kg_shape xs = kb_type(g, x)->shape, fs = kb_type(g, f)->shape;
  kg_attr a[4];
  int na = copy_attrs(n, conv_attr_names, a); /* n is not used after this: building moves nodes */
  a[na] = kb_attr_ints(g, "input_sizes", xs.dim, 4);
  kg_ref in_x[] = {f, dy[0]};
  dx[0] = kb_node(g, input_op, in_x, 2, a, na + 1);
  a[na] = kb_attr_ints(g, "filter_sizes", fs.dim, 4);
  kg_ref in_f[] = {x, dy[0]};
  dx[1] = kb_node(g, filter_op, in_f, 2, a, na + 1);
  return true;
}

bool kc_grad_conv2d(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  return conv_grad(g, node, dy, dx, KC_OP_CONV2D_BACKPROP_INPUT, KC_OP_CONV2D_BACKPROP_FILTER);
}

bool kc_grad_depthwise_conv2d(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  return conv_grad(g, node, dy, dx, KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT, KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER);
}

bool kc_grad_max_pool(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  kg_attr a[3];
  int na = copy_attrs(n, pool_attr_names, a);
  kg_ref in[] = {n->in[0], dy[0]};
  dx[0] = kb_node(g, KC_OP_MAX_POOL_GRAD, in, 2, a, na);
  return true;
}

bool kc_grad_avg_pool(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  kg_shape xs = kb_type(g, n->in[0])->shape;
  kg_attr a[4];
  int na = copy_attrs(n, pool_attr_names, a);
  a[na] = kb_attr_ints(g, "input_sizes", xs.dim, 4);
  dx[0] = kb_node(g, KC_OP_AVG_POOL_GRAD, dy, 1, a, na + 1);
  return true;
}

/* ======================================================================
 * composite ops: shape rules here, expansions into primitive ops below
 * ====================================================================== */

/* ---- batch_norm, batch_norm_inference ---- */

/* The axes normalized over (default: all but the last), the statistics'
 * shape (x's other dimensions, in order) and x's shape with the normalized
 * dimensions set to 1 (for broadcasting the statistics back). */
typedef struct bn_axes {
  int n;
  int64_t axis[KILN_MAX_RANK];
  kg_shape stat, kept;
} bn_axes;

static bool bn_axes_of(kc_infer_ctx *c, const kg_node *n, const kg_shape *x, bn_axes *b) {
  bool red[KILN_MAX_RANK] = {0};
  int cnt = 0;
  const int64_t *v = NULL;
  if (x->rank < 1) return NODE_ERR(c, n, "x must have rank >= 1, not a scalar");
  if (kc_attr_ints(n, "axes", &cnt, &v)) {
    for (int i = 0; i < cnt; i++) {
      int a = (int)(v[i] < 0 ? v[i] + x->rank : v[i]);
      if (c && !kc_axis(c, n, v[i], x->rank, &a)) return false;
      if (red[a]) return NODE_ERR(c, n, "axis %lld is listed twice in axes", (long long)v[i]);
      red[a] = true;
    }
  } else {
    for (int d = 0; d < x->rank - 1; d++) red[d] = true;
  }
  b->n = 0;
  b->stat = (kg_shape){0};
  b->kept = *x;
  for (int d = 0; d < x->rank; d++) {
    if (red[d]) {
      b->axis[b->n++] = d;
      b->kept.dim[d] = 1;
    } else {
      b->stat.dim[b->stat.rank++] = x->dim[d];
    }
  }
  if (!b->n) return NODE_ERR(c, n, "there is no axis to normalize over (x is rank 1: give axes=[0])");
  return true;
}

bool kc_infer_batch_norm(kc_infer_ctx *c, kg_node *n) {
  static const char *const names[] = {"x", "scale", "offset", "mean", "variance"};
  bool inference = n->op == KC_OP_BATCH_NORM_INFERENCE;
  bool training = !inference && kg_attr_bool(n, "training", true);
  if (training && n->n_in != 3)
    return kc_node_error(c, n, "with training=true the operands are x, scale, offset (%d given): the mean and "
                         "variance come from the batch", n->n_in);
  if (!training && n->n_in != 5)
    return kc_node_error(c, n, "with training=false the operands are x, scale, offset, mean, variance (%d given)",
                         n->n_in);
  if (kg_attr_float(n, "epsilon", 0.001) < 0) return kc_node_error(c, n, "epsilon must not be negative");
  const kg_type *x = kc_in_type(c, n, 0);
  bn_axes b;
  if (!same_dtypes(c, n, 1, n->n_in) || !bn_axes_of(c, n, &x->shape, &b)) return false;
  for (int k = 1; k < n->n_in; k++)
    if (!kg_shape_eq(&kc_in_type(c, n, k)->shape, &b.stat)) {
      char s1[160], s2[160], s3[160];
      return kc_node_error(c, n, "%s is %s but must be %s: the dimensions of x %s not normalized over", names[k],
                           kc_shape_str(&kc_in_type(c, n, k)->shape, s1, sizeof s1),
                           kc_shape_str(&b.stat, s2, sizeof s2), kc_shape_str(&x->shape, s3, sizeof s3));
    }
  n->n_out = inference ? 1 : 3;
  n->out = kc_alloc(c->m->arena, sizeof(kg_type) * (size_t)n->n_out);
  n->out[0] = *x;
  for (int k = 1; k < n->n_out; k++) n->out[k] = (kg_type){x->dtype, b.stat};
  return true;
}

/* ---- dropout ---- */

bool kc_infer_dropout(kc_infer_ctx *c, kg_node *n) {
  double rate = kg_attr_float(n, "rate", 0);
  if (!(rate >= 0 && rate < 1)) return kc_node_error(c, n, "rate %g must be in [0, 1)", rate);
  const kg_type *x = kc_in_type(c, n, 0);
  kc_set_out(c, n, x->dtype, &x->shape);
  return true;
}

/* ---- the cross-entropy losses ---- */

bool kc_infer_softmax_cross_entropy(kc_infer_ctx *c, kg_node *n) {
  const kg_type *lab = kc_in_type(c, n, 0), *log = kc_in_type(c, n, 1);
  char a[160], b[160];
  kg_type_str(lab, a, sizeof a);
  kg_type_str(log, b, sizeof b);
  if (!kg_dtype_is_float(log->dtype)) return kc_node_error(c, n, "logits %s must be f32 or f64", b);
  if (log->shape.rank < 1 || log->shape.dim[log->shape.rank - 1] < 1)
    return kc_node_error(c, n, "logits %s need a last dimension of classes", b);
  kg_shape s = log->shape;
  s.rank--;
  if (n->op == KC_OP_SPARSE_SOFTMAX_CROSS_ENTROPY_WITH_LOGITS) {
    if (lab->dtype != KILN_I32 && lab->dtype != KILN_I64)
      return kc_node_error(c, n, "labels %s must be i32 or i64 class indices", a);
    if (!kg_shape_eq(&lab->shape, &s))
      return kc_node_error(c, n, "labels %s must have the shape of logits %s without its last dimension", a, b);
  } else if (!kg_type_eq(lab, log)) {
    return kc_node_error(c, n, "labels %s and logits %s must have the same type", a, b);
  }
  kc_set_out(c, n, log->dtype, &s);
  return true;
}

/* ---- l2_loss ---- */

bool kc_infer_l2_loss(kc_infer_ctx *c, kg_node *n) {
  kg_shape s = {0};
  kc_set_out(c, n, kc_in_type(c, n, 0)->dtype, &s);
  return true;
}

/* ---- expansions ---- */

/* sum or mean of x over axes (all of them when axes is NULL). */
static kg_ref reduce_over(kc_grad_ctx *g, int op, kg_ref x, const int64_t *axes, int n_axes, bool keepdims) {
  kg_attr a[2] = {kb_attr_bool("keepdims", keepdims)};
  int na = 1;
  if (axes) a[na++] = kb_attr_ints(g, "axes", axes, n_axes);
  return kb_node(g, op, &x, 1, a, na);
}

/* y = d * rsqrt(variance + epsilon) * scale + offset, with d = x - mean and
 * the statistics in x's rank (kept shape); scale and offset are reshaped. */
static kg_ref bn_normalize(kc_grad_ctx *g, kg_ref d, kg_ref var, kg_ref scale, kg_ref offset, double eps,
                           const kg_shape *kept) {
  kiln_dtype dt = kb_type(g, d)->dtype;
  kg_ref inv = kb_unary(g, KC_OP_RSQRT, kb_binary(g, KC_OP_ADD, var, kb_scalar(g, dt, eps)));
  kg_ref a = kb_binary(g, KC_OP_MUL, inv, kb_reshape(g, scale, kept));
  return kb_binary(g, KC_OP_ADD, kb_binary(g, KC_OP_MUL, d, a), kb_reshape(g, offset, kept));
}

/* Training: the batch's mean and biased variance (as fused_batch_norm
 * normalizes with), returned as outputs 1 and 2.  Inference (training=false,
 * or batch_norm_inference): the given mean and variance. */
bool kc_expand_batch_norm(kc_grad_ctx *g, int node, kg_ref *out) {
  const kg_node *n = &g->m->nodes[node];
  bool inference = n->op == KC_OP_BATCH_NORM_INFERENCE || !kg_attr_bool(n, "training", true);
  double eps = kg_attr_float(n, "epsilon", 0.001);
  kg_ref x = n->in[0], scale = n->in[1], offset = n->in[2];
  kg_ref mean_in = inference ? n->in[3] : KG_NOREF, var_in = inference ? n->in[4] : KG_NOREF;
  bool multi = n->op == KC_OP_BATCH_NORM;
  bn_axes b;
  if (!bn_axes_of(NULL, n, &kb_type(g, x)->shape, &b)) return kc_error(g->d, g->loc, "internal: batch_norm axes");
  kg_ref mean, var = KG_NOREF;
  if (inference) {
    mean = kb_reshape(g, mean_in, &b.kept);
    var = kb_reshape(g, var_in, &b.kept);
  } else {
    mean = reduce_over(g, KC_OP_MEAN, x, b.axis, b.n, true);
  }
  kg_ref d = kb_binary(g, KC_OP_SUB, x, mean);
  if (!inference) var = reduce_over(g, KC_OP_MEAN, kb_unary(g, KC_OP_SQUARE, d), b.axis, b.n, true);
  out[0] = bn_normalize(g, d, var, scale, offset, eps, &b.kept);
  if (multi) {
    out[1] = inference ? mean_in : kb_reshape(g, mean, &b.stat);
    out[2] = inference ? var_in : kb_reshape(g, var, &b.stat);
  }
  return true;
}

/* keep = random_uniform(x's type) >= rate; y = keep ? x / (1 - rate) : 0.
 * The random op gets the dropout's seed (without one, the seed derived from
 * the dropout's name, so that two dropouts draw different masks): the mask
 * is reproducible, and new each run. */
bool kc_expand_dropout(kc_grad_ctx *g, int node, kg_ref *out) {
  const kg_node *n = &g->m->nodes[node];
  kg_ref x = n->in[0];
  double rate = kg_attr_float(n, "rate", 0);
  kg_attr seed = kb_attr_int("seed", (int64_t)kc_node_seed(n));
  kg_type t = *kb_type(g, x);
  kg_ref u = kb_typed_node(g, KC_OP_RANDOM_UNIFORM, &t, NULL, 0, &seed, 1);
  kg_ref keep = kb_binary(g, KC_OP_GREATER_EQUAL, u, kb_scalar(g, t.dtype, rate));
  kg_ref scaled = kb_binary(g, KC_OP_MUL, x, kb_scalar(g, t.dtype, 1.0 / (1.0 - rate)));
  kg_ref sel[] = {keep, scaled, kb_scalar(g, t.dtype, 0)};
  out[0] = kb_node(g, KC_OP_SELECT, sel, 3, NULL, 0);
  return true;
}

/* loss = -sum(labels * log_softmax(logits), last axis).  The sparse form
 * one-hot encodes its labels first; a label outside [0, classes) gives a
 * NaN loss (as TF on GPUs) rather than a silently wrong one. */
bool kc_expand_softmax_cross_entropy(kc_grad_ctx *g, int node, kg_ref *out) {
  const kg_node *n = &g->m->nodes[node];
  bool sparse = n->op == KC_OP_SPARSE_SOFTMAX_CROSS_ENTROPY_WITH_LOGITS;
  kg_ref labels = n->in[0], logits = n->in[1];
  const kg_type *lt = kb_type(g, logits);
  kiln_dtype dt = lt->dtype, ldt = kb_type(g, labels)->dtype;
  int64_t last = lt->shape.rank - 1, classes = lt->shape.dim[last];
  kg_ref dense = labels;
  if (sparse) {
    kg_attr oh[] = {kb_attr_int("depth", classes), kb_attr_dtype("dtype", dt)};
    dense = kb_node(g, KC_OP_ONE_HOT, &labels, 1, oh, 2);
  }
  kg_attr ax = kb_attr_int("axis", -1);
  kg_ref lsm = kb_node(g, KC_OP_LOG_SOFTMAX, &logits, 1, &ax, 1);
  kg_ref loss = kb_unary(g, KC_OP_NEG, reduce_over(g, KC_OP_SUM, kb_binary(g, KC_OP_MUL, dense, lsm), &last, 1, false));
  if (sparse) {
    kg_ref lo = kb_binary(g, KC_OP_GREATER_EQUAL, labels, kb_scalar(g, ldt, 0));
    kg_ref hi = kb_binary(g, KC_OP_LESS, labels, kb_scalar(g, ldt, (double)classes));
    kg_ref sel[] = {kb_binary(g, KC_OP_LOGICAL_AND, lo, hi), loss, kb_scalar(g, dt, NAN)};
    loss = kb_node(g, KC_OP_SELECT, sel, 3, NULL, 0);
  }
  out[0] = loss;
  return true;
}

/* sum(x * x) / 2 */
bool kc_expand_l2_loss(kc_grad_ctx *g, int node, kg_ref *out) {
  kg_ref x = g->m->nodes[node].in[0];
  kg_ref s = reduce_over(g, KC_OP_SUM, kb_unary(g, KC_OP_SQUARE, x), NULL, 0, false);
  out[0] = kb_binary(g, KC_OP_MUL, s, kb_scalar(g, kb_type(g, x)->dtype, 0.5));
  return true;
}
