/* gpu_window.c — GPU kernels of the windowed NHWC ops: conv2d,
 * depthwise_conv2d, max_pool and avg_pool, and the gradient ops of all
 * four.  The geometry is the CPU's (kc_window_of_node).
 *
 * Every kernel computes whole output elements, so no two threads write one
 * element and nothing needs atomics:
 *   conv2d, depthwise_conv2d, max_pool, avg_pool
 *       output element i per thread: a loop over the taps of its window
 *       that lie inside the input;
 *   conv2d_backprop_input, depthwise_conv2d_backprop_input, max_pool_grad,
 *   avg_pool_grad
 *       input element i per thread: a gather over the windows that read it
 *       (oh with oh*sh - pt + kh*dh = ih for some tap kh, likewise ow), in
 *       increasing (oh, ow), the order the CPU scatters in;
 *   conv2d_backprop_filter, depthwise_conv2d_backprop_filter
 *       filter element i: a fold (gpu_emit.h) over every (n, oh, ow), in one
 *       thread, or across a block where that is GK_FOLD_BLOCK_MIN terms or
 *       more (a training step's N*OH*OW usually is).
 * max_pool_grad recomputes each covering window's first maximum with the
 * CPU's rule (kl_pool_max_takes) and takes dy where that is its element. */
#include "lower/gpu_emit.h"
#include "lower/nvptx.h"
#include "ops/ops_util.h"
#include <math.h>

typedef struct win {
  kc_window g;
  kiln_dtype dt;
  int op;
  bool depthwise;
  int64_t ych; /* channels of y (or dy): O, C*M (depthwise) or C (pools) */
} win;

static bool win_of(const kg_module *m, int v, win *w) {
  const kg_node *n = &m->nodes[v];
  if (!kc_window_of_node(m, n, &w->g)) return false;
  w->op = n->op;
  w->dt = n->out[0].dtype;
  w->depthwise = n->op == KC_OP_DEPTHWISE_CONV2D || n->op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT ||
                 n->op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER;
  bool pool = n->op == KC_OP_MAX_POOL || n->op == KC_OP_AVG_POOL || n->op == KC_OP_MAX_POOL_GRAD ||
              n->op == KC_OP_AVG_POOL_GRAD;
  w->ych = w->depthwise ? w->g.C * w->g.M : pool ? w->g.C : w->g.M;
  return true;
}

static bool is_filter_grad(int op) {
  return op == KC_OP_CONV2D_BACKPROP_FILTER || op == KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER;
}

int64_t kc_gpu_window_fold_terms(const kg_module *m, int v) {
  win w;
  if (!is_filter_grad(m->nodes[v].op) || !win_of(m, v, &w)) return -1;
  return w.g.N * w.g.OH * w.g.OW;
}

/* ---- index helpers ---- */

/* The coordinates of element i of a row-major [d0, d1, d2, d3]. */
static void coords4(kl_ctx *L, LLVMValueRef i, const int64_t d[4], LLVMValueRef c[4]) {
  c[3] = gk_urem(L, i, d[3]);
  LLVMValueRef r = gk_udiv(L, i, d[3]);
  c[2] = gk_urem(L, r, d[2]);
  r = gk_udiv(L, r, d[2]);
  c[1] = gk_urem(L, r, d[1]);
  c[0] = gk_udiv(L, r, d[1]);
}

/* ((a*d1 + b)*d2 + c)*d3 + e */
static LLVMValueRef off4(kl_ctx *L, LLVMValueRef a, int64_t d1, LLVMValueRef b, int64_t d2, LLVMValueRef c, int64_t d3,
                         LLVMValueRef e) {
  return gk_add(L, gk_mul(L, gk_add(L, gk_mul(L, gk_add(L, gk_mul(L, a, d1), b), d2), c), d3), e);
}

static LLVMValueRef x_off(kl_ctx *L, const win *w, LLVMValueRef n, LLVMValueRef ih, LLVMValueRef iw, LLVMValueRef c) {
  return off4(L, n, w->g.H, ih, w->g.W, iw, w->g.C, c);
}
static LLVMValueRef y_off(kl_ctx *L, const win *w, LLVMValueRef n, LLVMValueRef oh, LLVMValueRef ow, LLVMValueRef ch) {
  return off4(L, n, w->g.OH, oh, w->g.OW, ow, w->ych, ch);
}
static LLVMValueRef f_off(kl_ctx *L, const win *w, LLVMValueRef kh, LLVMValueRef kw, LLVMValueRef c, LLVMValueRef o) {
  return off4(L, kh, w->g.KW, kw, w->g.C, c, w->g.M, o);
}

/* The input row of output row o at tap k: o*s - pad + k*d (signed), and
 * whether it lies in [0, H). */
static LLVMValueRef tap(kl_ctx *L, LLVMValueRef o, int64_t s, int64_t pad, LLVMValueRef k, int64_t d, int64_t H,
                        LLVMValueRef *inside) {
  LLVMValueRef x = LLVMBuildSub(L->B, gk_add(L, gk_mul(L, o, s), gk_mul(L, k, d)), kl_i64(L, pad), "");
  *inside = gk_ult(L, x, kl_i64(L, H));
  return x;
}

/* The output row that reads input row x at tap k: o with o*s - pad + k*d = x
 * and 0 <= o < OH, and whether there is one. */
static LLVMValueRef reader(kl_ctx *L, LLVMValueRef x, int64_t s, int64_t pad, LLVMValueRef k, int64_t d, int64_t OH,
                           LLVMValueRef *exists) {
  LLVMValueRef t = LLVMBuildSub(L->B, gk_add(L, x, kl_i64(L, pad)), gk_mul(L, k, d), "");
  /* unsigned: a negative t is out of range too */
  *exists = gk_ult(L, t, kl_i64(L, OH * s));
  if (s > 1) *exists = LLVMBuildAnd(L->B, *exists, LLVMBuildICmp(L->B, LLVMIntEQ, gk_urem(L, t, s), kl_i64(L, 0), ""), "");
  return gk_udiv(L, t, s);
}

/* A loop over the taps (kh, kw) of a window: taps_begin visits the taps of
 * output (oh, ow) inside the input, in window order, with (row, col) the
 * input element each reads; readers_begin visits the windows that read
 * input (ih, iw), with (row, col) the window's output position. */
typedef struct taps {
  kl_loop lh, lw;
  LLVMBasicBlockRef endh, endw;
  LLVMValueRef kh, kw, row, col;
} taps;

static void taps_begin(kl_ctx *L, const win *w, LLVMValueRef oh, LLVMValueRef ow, taps *t) {
  LLVMValueRef in;
  t->lh = kl_for(L, kl_i64(L, w->g.KH), "kh");
  t->kh = t->lh.index;
  t->row = tap(L, oh, w->g.sh, w->g.pt, t->kh, w->g.dh, w->g.H, &in);
  t->endh = gk_if_begin(L, in, "row_in");
  t->lw = kl_for(L, kl_i64(L, w->g.KW), "kw");
  t->kw = t->lw.index;
  t->col = tap(L, ow, w->g.sw, w->g.pl, t->kw, w->g.dw, w->g.W, &in);
  t->endw = gk_if_begin(L, in, "col_in");
}

static void taps_end(kl_ctx *L, taps *t) {
  gk_if_end(L, t->endw);
  kl_for_end(L, &t->lw);
  gk_if_end(L, t->endh);
  kl_for_end(L, &t->lh);
}

/* for each window (oh, ow) that reads input (ih, iw), with its tap (kh, kw):
 * taps in reverse order, so the windows come in increasing (oh, ow) */
static void readers_begin(kl_ctx *L, const win *w, LLVMValueRef ih, LLVMValueRef iw, taps *t) {
  LLVMValueRef ok;
  t->lh = kl_for(L, kl_i64(L, w->g.KH), "kh");
  t->kh = LLVMBuildSub(L->B, kl_i64(L, w->g.KH - 1), t->lh.index, "");
  t->row = reader(L, ih, w->g.sh, w->g.pt, t->kh, w->g.dh, w->g.OH, &ok);
  t->endh = gk_if_begin(L, ok, "row_reads");
  t->lw = kl_for(L, kl_i64(L, w->g.KW), "kw");
  t->kw = LLVMBuildSub(L->B, kl_i64(L, w->g.KW - 1), t->lw.index, "");
  t->col = reader(L, iw, w->g.sw, w->g.pl, t->kw, w->g.dw, w->g.OW, &ok);
  t->endw = gk_if_begin(L, ok, "col_reads");
}

static void acc_add(kl_ctx *L, kiln_dtype dt, LLVMValueRef acc, LLVMValueRef v) {
  LLVMBuildStore(L->B, gk_prim2(L, "add", dt, gk_get(L, dt, acc), v), acc);
}

static LLVMValueRef mul(kl_ctx *L, kiln_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  return gk_prim2(L, "mul", dt, a, b);
}

/* ---- forward: conv2d, depthwise_conv2d ---- */

static void emit_conv(kl_ctx *L, const win *w, int v, LLVMValueRef i) {
  kiln_dtype dt = w->dt;
  LLVMValueRef c[4], X = kl_in(L, v, 0), F = kl_in(L, v, 1);
  coords4(L, i, (int64_t[]){w->g.N, w->g.OH, w->g.OW, w->ych}, c);
  LLVMValueRef acc = gk_slot(L, dt, kl_const_f(L, dt, 0), "acc");
  taps t;
  taps_begin(L, w, c[1], c[2], &t);
  if (w->depthwise) { /* channel ch = ci*M + m reads input channel ci */
    LLVMValueRef ci = gk_udiv(L, c[3], w->g.M), m = gk_urem(L, c[3], w->g.M);
    acc_add(L, dt, acc, mul(L, dt, kl_load(L, dt, X, x_off(L, w, c[0], t.row, t.col, ci)),
                            kl_load(L, dt, F, f_off(L, w, t.kh, t.kw, ci, m))));
  } else {
    kl_loop lc = kl_for(L, kl_i64(L, w->g.C), "ci");
    acc_add(L, dt, acc, mul(L, dt, kl_load(L, dt, X, x_off(L, w, c[0], t.row, t.col, lc.index)),
                            kl_load(L, dt, F, f_off(L, w, t.kh, t.kw, lc.index, c[3]))));
    kl_for_end(L, &lc);
  }
  taps_end(L, &t);
  kl_store(L, dt, kl_out(L, v, 0), i, gk_get(L, dt, acc));
}

/* ---- input gradients: dx[n, ih, iw, c] ---- */

static void emit_conv_input_grad(kl_ctx *L, const win *w, int v, LLVMValueRef i) {
  kiln_dtype dt = w->dt;
  LLVMValueRef c[4], F = kl_in(L, v, 0), DY = kl_in(L, v, 1);
  coords4(L, i, (int64_t[]){w->g.N, w->g.H, w->g.W, w->g.C}, c);
  LLVMValueRef acc = gk_slot(L, dt, kl_const_f(L, dt, 0), "acc");
  taps t;
  readers_begin(L, w, c[1], c[2], &t);
  /* conv2d: sum over o of dy[.., o] f[kh, kw, c, o]; depthwise: over m of dy[.., c*M + m] f[kh, kw, c, m] */
  kl_loop lo = kl_for(L, kl_i64(L, w->g.M), "o");
  LLVMValueRef ych = w->depthwise ? gk_add(L, gk_mul(L, c[3], w->g.M), lo.index) : lo.index;
  acc_add(L, dt, acc, mul(L, dt, kl_load(L, dt, DY, y_off(L, w, c[0], t.row, t.col, ych)),
                          kl_load(L, dt, F, f_off(L, w, t.kh, t.kw, c[3], lo.index))));
  kl_for_end(L, &lo);
  taps_end(L, &t);
  kl_store(L, dt, kl_out(L, v, 0), i, gk_get(L, dt, acc));
}

/* The number of taps of output row o inside [0, H): the avg_pool divisor. */
static LLVMValueRef taps_inside(kl_ctx *L, LLVMValueRef o, int64_t s, int64_t pad, int64_t K, int64_t H) {
  LLVMValueRef lo = LLVMBuildSub(L->B, gk_mul(L, o, s), kl_i64(L, pad), "");
  LLVMValueRef hi = gk_add(L, lo, kl_i64(L, K));
  LLVMValueRef zero = kl_i64(L, 0), vH = kl_i64(L, H);
  lo = LLVMBuildSelect(L->B, LLVMBuildICmp(L->B, LLVMIntSLT, lo, zero, ""), zero, lo, "");
  hi = LLVMBuildSelect(L->B, LLVMBuildICmp(L->B, LLVMIntSGT, hi, vH, ""), vH, hi, "");
  return LLVMBuildSub(L->B, hi, lo, "");
}

/* max_pool_grad: whether the first maximum of window (n, oh, ow), channel c, is input (ih, iw) */
static LLVMValueRef window_argmax_is(kl_ctx *L, const win *w, LLVMValueRef X, LLVMValueRef n, LLVMValueRef oh,
                                     LLVMValueRef ow, LLVMValueRef c, LLVMValueRef self) {
  kiln_dtype dt = w->dt;
  LLVMValueRef best = gk_slot(L, dt, kl_const_f(L, dt, -INFINITY), "best");
  LLVMValueRef where = gk_slot(L, KILN_I64, kl_i64(L, -1), "where");
  taps t;
  taps_begin(L, w, oh, ow, &t);
  LLVMValueRef at = gk_add(L, gk_mul(L, t.row, w->g.W), t.col);
  LLVMValueRef x = kl_load(L, dt, X, x_off(L, w, n, t.row, t.col, c)), b = gk_get(L, dt, best);
  LLVMValueRef wh = gk_get(L, KILN_I64, where);
  LLVMValueRef take = kl_pool_max_takes(L, dt, x, b, LLVMBuildICmp(L->B, LLVMIntSLT, wh, kl_i64(L, 0), ""));
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, x, b, ""), best);
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, at, wh, ""), where);
  taps_end(L, &t);
  return LLVMBuildICmp(L->B, LLVMIntEQ, gk_get(L, KILN_I64, where), self, "");
}

static void emit_pool_grad(kl_ctx *L, const win *w, int v, LLVMValueRef i) {
  kiln_dtype dt = w->dt;
  bool max = w->op == KC_OP_MAX_POOL_GRAD;
  LLVMValueRef c[4], DY = kl_in(L, v, max ? 1 : 0);
  coords4(L, i, (int64_t[]){w->g.N, w->g.H, w->g.W, w->g.C}, c);
  LLVMValueRef acc = gk_slot(L, dt, kl_const_f(L, dt, 0), "acc");
  taps t;
  readers_begin(L, w, c[1], c[2], &t);
  LLVMValueRef dy = kl_load(L, dt, DY, y_off(L, w, c[0], t.row, t.col, c[3]));
  if (max) {
    LLVMValueRef self = gk_add(L, gk_mul(L, c[1], w->g.W), c[2]);
    LLVMBasicBlockRef after = gk_if_begin(L, window_argmax_is(L, w, kl_in(L, v, 0), c[0], t.row, t.col, c[3], self), "wins");
    acc_add(L, dt, acc, dy);
    gk_if_end(L, after);
  } else {
    LLVMValueRef count = LLVMBuildMul(L->B, taps_inside(L, t.row, w->g.sh, w->g.pt, w->g.KH, w->g.H),
                                      taps_inside(L, t.col, w->g.sw, w->g.pl, w->g.KW, w->g.W), "");
    acc_add(L, dt, acc, gk_prim2(L, "div", dt, dy, kl_convert(L, count, KILN_I64, dt)));
  }
  taps_end(L, &t);
  kl_store(L, dt, kl_out(L, v, 0), i, gk_get(L, dt, acc));
}

/* ---- pools: the maximum of the window's taps inside the input, or their mean ---- */

static void emit_pool(kl_ctx *L, const win *w, int v, LLVMValueRef i) {
  kiln_dtype dt = w->dt;
  bool max = w->op == KC_OP_MAX_POOL;
  LLVMValueRef c[4];
  coords4(L, i, (int64_t[]){w->g.N, w->g.OH, w->g.OW, w->g.C}, c);
  LLVMValueRef acc = gk_slot(L, dt, kl_const_f(L, dt, max ? -INFINITY : 0), "acc");
  LLVMValueRef count = gk_slot(L, KILN_I64, kl_i64(L, 0), "taps");
  taps t;
  taps_begin(L, w, c[1], c[2], &t);
  LLVMValueRef x = kl_load(L, dt, kl_in(L, v, 0), x_off(L, w, c[0], t.row, t.col, c[3]));
  LLVMBuildStore(L->B, gk_prim2(L, max ? "max" : "add", dt, gk_get(L, dt, acc), x), acc);
  LLVMBuildStore(L->B, gk_add(L, gk_get(L, KILN_I64, count), kl_i64(L, 1)), count);
  taps_end(L, &t);
  LLVMValueRef r = gk_get(L, dt, acc);
  if (!max) r = gk_prim2(L, "div", dt, r, kl_convert(L, gk_get(L, KILN_I64, count), KILN_I64, dt));
  kl_store(L, dt, kl_out(L, v, 0), i, r);
}

/* ---- filter gradients: df[kh, kw, c, o] = sum over (n, oh, ow) of x * dy ---- */

typedef struct fgrad {
  const win *w;
  LLVMValueRef X, DY;
} fgrad;

static LLVMValueRef fgrad_term(kl_ctx *L, const void *arg, LLVMValueRef i, LLVMValueRef j) {
  const fgrad *a = arg;
  const win *w = a->w;
  LLVMValueRef f[4], p[3];
  coords4(L, i, (int64_t[]){w->g.KH, w->g.KW, w->g.C, w->g.M}, f);
  p[2] = gk_urem(L, j, w->g.OW);
  p[1] = gk_urem(L, gk_udiv(L, j, w->g.OW), w->g.OH);
  p[0] = gk_udiv(L, j, w->g.OW * w->g.OH);
  LLVMValueRef inh, inw;
  LLVMValueRef ih = tap(L, p[1], w->g.sh, w->g.pt, f[0], w->g.dh, w->g.H, &inh);
  LLVMValueRef iw = tap(L, p[2], w->g.sw, w->g.pl, f[1], w->g.dw, w->g.W, &inw);
  LLVMValueRef inside = LLVMBuildAnd(L->B, inh, inw, "");
  LLVMValueRef zero = kl_i64(L, 0);
  /* a tap in the padding reads element 0 and contributes 0: no branch */
  LLVMValueRef xi = LLVMBuildSelect(L->B, inside, x_off(L, w, p[0], ih, iw, f[2]), zero, "");
  LLVMValueRef ych = w->depthwise ? gk_add(L, gk_mul(L, f[2], w->g.M), f[3]) : f[3];
  LLVMValueRef prod = mul(L, w->dt, kl_load(L, w->dt, a->X, xi), kl_load(L, w->dt, a->DY, y_off(L, w, p[0], p[1], p[2], ych)));
  return LLVMBuildSelect(L->B, inside, prod, gk_zero(L, w->dt), "");
}

bool kl_gpu_emit_window(kl_ctx *L, gk_blk *B, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  win w;
  if (!win_of(L->m, v, &w)) return kc_error(L->diag, n->loc, "internal: invalid window geometry of '%s'", n->name);
  switch (n->op) {
  case KC_OP_CONV2D: case KC_OP_DEPTHWISE_CONV2D: emit_conv(L, &w, v, i); return true;
  case KC_OP_CONV2D_BACKPROP_INPUT: case KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT: emit_conv_input_grad(L, &w, v, i); return true;
  case KC_OP_MAX_POOL: case KC_OP_AVG_POOL: emit_pool(L, &w, v, i); return true;
  case KC_OP_MAX_POOL_GRAD: case KC_OP_AVG_POOL_GRAD: emit_pool_grad(L, &w, v, i); return true;
  default: break;
  }
  fgrad a = {&w, kl_in(L, v, 0), kl_in(L, v, 1)};
  gk_fold f = {w.dt, "add", w.g.N * w.g.OH * w.g.OW, fgrad_term, NULL, &a};
  if (B) gk_fold_block(B, &f, kl_out(L, v, 0));
  else gk_fold_thread(L, &f, i, kl_out(L, v, 0));
  return true;
}
