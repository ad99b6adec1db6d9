/* gpu_kernels.c — which nodes have GPU kernels (kc_gpu_kind_of), their
 * launch geometry, and the bodies of the kernels (nvptx.c wraps them into
 * PTX kernel functions; gpu_host.c runs them on the CPU when emulating).
 *
 * Every kernel has the parameters (ptr operand..., ptr result..., [u32
 * counter low, high,] i64 n).  Thread kernels do unit i < n in thread i:
 *   map       elementwise ops, fused chains, bias_add and the assignments
 *             (optimizer updates after expansion): element i, through the
 *             CPU's own expression emitter (kl_emit_map);
 *   fill      fill, zeros, ones, range: element i;
 *   random    random_uniform, random_normal (f32, f64): element i of the
 *             CPU's Philox stream;
 *   reduce    sum, mean, max, min, prod: output element i, a fold over the
 *             elements reduced into it (a block per output when large);
 *   argmax    row i; top_k: input element i finds its rank in its row;
 *   softmax   softmax, log_softmax: row i (max, sum of exp, normalize);
 *   strided   identity, transpose, slice, broadcast_to, strided_slice, pad,
 *             strided_slice_grad: output element i, read through the
 *             input strides the op implies;
 *   concat, gather, one_hot, scatter_add: output element i;
 *   window    the conv and pooling ops and their gradients (gpu_window.c).
 * The block kernel of matmul is a tiled GEMM (64 x 64 tiles of C per block).
 * Scalar math is kl_prim's, with libdevice for the GPU, so the results are
 * the CPU's up to the order of floating-point sums. */
#include "lower/nvptx.h"
#include "lower/gpu_emit.h"
#include "ir/expr.h"
#include "lower/lower.h"
#include "ops/ops_util.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

static bool is_assign(int op) {
  return op == KC_OP_ASSIGN || op == KC_OP_ASSIGN_ADD || op == KC_OP_ASSIGN_SUB || op == KC_OP_ASSIGN_MAP;
}

static int softmax_axis(const kg_node *n, int rank) {
  int64_t a = kg_attr_int(n, "axis", -1);
  return (int)(a < 0 ? a + rank : a);
}

static int argmax_axis(const kg_node *n, int rank) {
  int64_t a = kg_attr_int(n, "axis", 0);
  return (int)(a < 0 ? a + rank : a);
}

static void split_axis(const kg_shape *s, int axis, int64_t *outer, int64_t *mid, int64_t *inner) {
  *outer = *inner = 1;
  *mid = s->dim[axis];
  for (int d = 0; d < axis; d++) *outer *= s->dim[d];
  for (int d = axis + 1; d < s->rank; d++) *inner *= s->dim[d];
}

/* ---- softmax ---- */

static bool emit_softmax(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *t = kl_in_type(L, v, 0);
  kiln_dtype dt = t->dtype;
  int64_t outer = 1, mid = 1, inner = 1;
  if (t->shape.rank) split_axis(&t->shape, softmax_axis(n, t->shape.rank), &outer, &mid, &inner);
  bool log_sm = n->op == KC_OP_LOG_SOFTMAX;
  LLVMValueRef x = kl_in(L, v, 0), out = kl_out(L, v, 0);
  /* row i: elements base + a*inner, a < mid */
  LLVMValueRef base = inner == 1 ? LLVMBuildMul(L->B, i, kl_i64(L, mid), "")
                                 : LLVMBuildAdd(L->B, LLVMBuildMul(L->B, LLVMBuildUDiv(L->B, i, kl_i64(L, inner), ""),
                                                                   kl_i64(L, mid * inner), ""),
                                                LLVMBuildURem(L->B, i, kl_i64(L, inner), ""), "");
  LLVMValueRef mx = gk_slot(L, dt, kl_const_f(L, dt, -INFINITY), "mx");
  kl_loop l1 = kl_for(L, kl_i64(L, mid), "smmax");
  LLVMValueRef i1 = LLVMBuildAdd(L->B, base, LLVMBuildMul(L->B, l1.index, kl_i64(L, inner), ""), "");
  LLVMBuildStore(L->B, gk_prim2(L, "max", dt, gk_get(L, dt, mx), kl_load(L, dt, x, i1)), mx);
  kl_for_end(L, &l1);
  LLVMValueRef m = gk_get(L, dt, mx);
  LLVMValueRef sum = gk_slot(L, dt, kl_const_f(L, dt, 0), "sum");
  kl_loop l2 = kl_for(L, kl_i64(L, mid), "smexp");
  LLVMValueRef i2 = LLVMBuildAdd(L->B, base, LLVMBuildMul(L->B, l2.index, kl_i64(L, inner), ""), "");
  LLVMValueRef y = gk_prim2(L, "sub", dt, kl_load(L, dt, x, i2), m);
  LLVMValueRef ey = gk_prim1(L, "exp", dt, y);
  kl_store(L, dt, out, i2, log_sm ? y : ey);
  LLVMBuildStore(L->B, gk_prim2(L, "add", dt, gk_get(L, dt, sum), ey), sum);
  kl_for_end(L, &l2);
  LLVMValueRef s = gk_get(L, dt, sum);
  LLVMValueRef ls = log_sm ? gk_prim1(L, "log", dt, s) : NULL;
  kl_loop l3 = kl_for(L, kl_i64(L, mid), "smnorm");
  LLVMValueRef i3 = LLVMBuildAdd(L->B, base, LLVMBuildMul(L->B, l3.index, kl_i64(L, inner), ""), "");
  LLVMValueRef o = kl_load(L, dt, out, i3);
  kl_store(L, dt, out, i3, log_sm ? gk_prim2(L, "sub", dt, o, ls) : gk_prim2(L, "div", dt, o, s));
  kl_for_end(L, &l3);
  return true;
}

/* ---- strided reads: transpose, slice, broadcast_to, strided_slice, pad ---- */

/* Output element i reads input element base + sum over d of coord_d * src_stride[d];
 * pad reads coord_d - before_d, and writes the constant where that falls outside. */
static bool emit_strided(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *x = kl_in_type(L, v, 0), *y = kl_out_type(L, v, 0);
  int rank = y->shape.rank, xr = x->shape.rank;
  int64_t ist[KILN_MAX_RANK], ost[KILN_MAX_RANK], src_stride[KILN_MAX_RANK] = {0}, base = 0;
  gk_row_strides(&x->shape, ist);
  gk_row_strides(&y->shape, ost);
  int cnt = 0;
  const int64_t *av = NULL;
  if (n->op == KC_OP_TRANSPOSE) {
    bool given = kc_attr_ints(n, "perm", &cnt, &av);
    for (int d = 0; d < rank; d++) src_stride[d] = ist[given ? (int)(av[d] < 0 ? av[d] + rank : av[d]) : rank - 1 - d];
  } else if (n->op == KC_OP_SLICE) {
    kc_attr_ints(n, "begin", &cnt, &av);
    for (int d = 0; d < rank && d < cnt; d++) base += av[d] * ist[d], src_stride[d] = ist[d];
  } else if (n->op == KC_OP_STRIDED_SLICE) {
    kc_ss_plan p;
    char err[256];
    if (!kc_strided_slice_plan(n, &x->shape, &p, err, sizeof err)) return kc_error(L->diag, n->loc, "%s", err);
    for (int k = 0; k < xr; k++) base += p.start[k] * ist[k];
    for (int d = 0; d < rank; d++) src_stride[d] = p.from[d] < 0 ? 0 : p.step[p.from[d]] * ist[p.from[d]];
  } else if (n->op == KC_OP_PAD) {
    kc_attr_ints(n, "paddings", &cnt, &av);
    LLVMValueRef src = kl_i64(L, 0), inside = LLVMConstInt(L->t_i1, 1, 0);
    for (int d = 0; d < rank; d++) {
      LLVMValueRef c = gk_urem(L, gk_udiv(L, i, ost[d]), y->shape.dim[d]);
      if (av[2 * d] || av[2 * d + 1]) {
        c = LLVMBuildSub(L->B, c, kl_i64(L, av[2 * d]), "");
        inside = LLVMBuildAnd(L->B, inside, gk_ult(L, c, kl_i64(L, x->shape.dim[d])), "");
      }
      src = gk_add(L, src, gk_mul(L, c, ist[d]));
    }
    LLVMValueRef val = kl_load(L, x->dtype, kl_in(L, v, 0), LLVMBuildSelect(L->B, inside, src, kl_i64(L, 0), ""));
    LLVMValueRef pad = kl_const_f(L, y->dtype, kg_attr_float(n, "constant_value", 0));
    kl_store(L, y->dtype, kl_out(L, v, 0), i, LLVMBuildSelect(L->B, inside, val, pad, ""));
    return true;
  } else { /* broadcast_to: the input's dims align right; size-1 dims repeat */
    int lead = rank - xr;
    for (int d = lead; d < rank; d++) src_stride[d] = x->shape.dim[d - lead] == 1 ? 0 : ist[d - lead];
  }
  LLVMValueRef src = kl_i64(L, base);
  for (int d = 0; d < rank; d++)
    if (y->shape.dim[d] > 1 && src_stride[d])
      src = gk_add(L, src, gk_coord_term(L, i, ost[d], y->shape.dim[d], src_stride[d]));
  kl_store(L, x->dtype, kl_out(L, v, 0), i, kl_load(L, x->dtype, kl_in(L, v, 0), src));
  return true;
}

/* strided_slice_grad: element i of the full shape is dy's element q where the
 * slice selects it (coordinate start + q*step in every dimension), else 0. */
static bool emit_strided_slice_grad(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *dy = kl_in_type(L, v, 0), *x = kl_out_type(L, v, 0);
  kc_ss_plan p;
  char err[256];
  if (!kc_strided_slice_plan(n, &x->shape, &p, err, sizeof err)) return kc_error(L->diag, n->loc, "%s", err);
  int64_t xst[KILN_MAX_RANK], dst[KILN_MAX_RANK], q_stride[KILN_MAX_RANK] = {0};
  gk_row_strides(&x->shape, xst);
  gk_row_strides(&dy->shape, dst);
  for (int d = 0; d < p.out_rank; d++)
    if (p.from[d] >= 0) q_stride[p.from[d]] = dst[d];
  LLVMValueRef src = kl_i64(L, 0), hit = LLVMConstInt(L->t_i1, 1, 0);
  for (int k = 0; k < x->shape.rank; k++) {
    LLVMValueRef t = LLVMBuildSub(L->B, gk_urem(L, gk_udiv(L, i, xst[k]), x->shape.dim[k]), kl_i64(L, p.start[k]), "");
    LLVMValueRef q = t;
    if (p.step[k] != 1) {
      q = LLVMBuildSDiv(L->B, t, kl_i64(L, p.step[k]), "");
      hit = LLVMBuildAnd(L->B, hit, LLVMBuildICmp(L->B, LLVMIntEQ, LLVMBuildMul(L->B, q, kl_i64(L, p.step[k]), ""), t, ""), "");
    }
    hit = LLVMBuildAnd(L->B, hit, gk_ult(L, q, kl_i64(L, p.count[k])), "");
    src = gk_add(L, src, gk_mul(L, q, q_stride[k]));
  }
  LLVMValueRef val = kl_load(L, dy->dtype, kl_in(L, v, 0), LLVMBuildSelect(L->B, hit, src, kl_i64(L, 0), ""));
  kl_store(L, dy->dtype, kl_out(L, v, 0), i, LLVMBuildSelect(L->B, hit, val, gk_zero(L, dy->dtype), ""));
  return true;
}

/* ---- fill, zeros, ones, range: element i ---- */

static bool emit_fill(kl_ctx *L, int v, LLVMValueRef i) {
  kiln_dtype dt = kl_out_type(L, v, 0)->dtype;
  LLVMValueRef x = L->m->nodes[v].op == KC_OP_RANGE ? kl_range_value(L, v, i) : kl_fill_value(L, v);
  kl_store(L, dt, kl_out(L, v, 0), i, x);
  return true;
}

/* ---- argmax: row i, the CPU's rule (kl_argmax_takes) ---- */

static bool emit_argmax(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_type *t = kl_in_type(L, v, 0);
  kiln_dtype dt = t->dtype;
  int64_t outer, mid, inner;
  split_axis(&t->shape, argmax_axis(&L->m->nodes[v], t->shape.rank), &outer, &mid, &inner);
  LLVMValueRef x = kl_in(L, v, 0);
  LLVMValueRef base = gk_add(L, gk_mul(L, gk_udiv(L, i, inner), mid * inner), gk_urem(L, i, inner));
  LLVMValueRef best = gk_slot(L, dt, kl_load(L, dt, x, base), "best");
  LLVMValueRef where = gk_slot(L, KILN_I64, kl_i64(L, 0), "where");
  kl_loop la = kl_for(L, kl_i64(L, mid), "am");
  LLVMValueRef e = kl_load(L, dt, x, gk_add(L, base, gk_mul(L, la.index, inner))), b = gk_get(L, dt, best);
  LLVMValueRef take = kl_argmax_takes(L, dt, e, b);
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, e, b, ""), best);
  LLVMBuildStore(L->B, LLVMBuildSelect(L->B, take, la.index, gk_get(L, KILN_I64, where), ""), where);
  kl_for_end(L, &la);
  kl_store(L, KILN_I64, kl_out(L, v, 0), i, gk_get(L, KILN_I64, where));
  return true;
}

/* ---- reductions: one output element per thread, or one per block ---- */

typedef struct red_geom {
  kiln_dtype dt;
  int rank;
  bool red[KILN_MAX_RANK];
  int64_t ist[KILN_MAX_RANK];
  int64_t count; /* elements reduced into each output */
  const char *prim;
} red_geom;

static void red_geom_of(const kg_module *m, int v, red_geom *g) {
  const kg_node *n = &m->nodes[v];
  const kg_type *it = kg_ref_type(m, n->in[0]);
  memset(g, 0, sizeof *g);
  g->dt = it->dtype;
  g->rank = it->shape.rank;
  int cnt = 0;
  const int64_t *axes = NULL;
  if (!kc_attr_ints(n, "axes", &cnt, &axes))
    for (int d = 0; d < g->rank; d++) g->red[d] = true;
  for (int k = 0; k < cnt; k++) g->red[axes[k] < 0 ? axes[k] + g->rank : axes[k]] = true;
  gk_row_strides(&it->shape, g->ist);
  g->count = 1;
  for (int d = 0; d < g->rank; d++)
    if (g->red[d]) g->count *= it->shape.dim[d];
  g->prim = n->op == KC_OP_PROD ? "mul" : n->op == KC_OP_MAX ? "max" : n->op == KC_OP_MIN ? "min" : "add";
}

/* The input offset of the first element reduced into output element i (the
 * kept dimensions, in order, are the output's; keepdims adds ones). */
static LLVMValueRef red_base(kl_ctx *L, const red_geom *g, const kg_shape *s, LLVMValueRef i) {
  LLVMValueRef base = kl_i64(L, 0);
  int64_t div = 1;
  for (int d = g->rank - 1; d >= 0; d--) {
    if (g->red[d]) continue;
    if (s->dim[d] > 1) base = gk_add(L, base, gk_coord_term(L, i, div, s->dim[d], g->ist[d]));
    div *= s->dim[d];
  }
  return base;
}

/* ... plus the offset of the j-th reduced element. */
static LLVMValueRef red_off(kl_ctx *L, const red_geom *g, const kg_shape *s, LLVMValueRef base, LLVMValueRef j) {
  LLVMValueRef off = base;
  int64_t rdiv = 1;
  for (int d = g->rank - 1; d >= 0; d--) {
    if (!g->red[d] || s->dim[d] == 1) continue;
    off = gk_add(L, off, gk_coord_term(L, j, rdiv, s->dim[d], g->ist[d]));
    rdiv *= s->dim[d];
  }
  return off;
}

typedef struct red_arg {
  red_geom g;
  const kg_shape *s;
  LLVMValueRef x;
  bool mean;
} red_arg;

static LLVMValueRef red_term(kl_ctx *L, const void *arg, LLVMValueRef i, LLVMValueRef j) {
  const red_arg *r = arg;
  return kl_load(L, r->g.dt, r->x, red_off(L, &r->g, r->s, red_base(L, &r->g, r->s, i), j));
}

static LLVMValueRef red_finish(kl_ctx *L, const void *arg, LLVMValueRef r) {
  const red_arg *a = arg;
  kiln_dtype dt = a->g.dt;
  int64_t count = a->g.count;
  if (kg_dtype_is_float(dt)) return gk_prim2(L, "div", dt, r, kl_const_f(L, dt, (double)count));
  if (!count) return kl_const_i(L, dt, 0);
  /* integer mean truncates toward zero, as TF's */
  return kg_dtype_is_signed(dt) ? LLVMBuildSDiv(L->B, r, kl_const_i(L, dt, count), "")
                                : LLVMBuildUDiv(L->B, r, kl_const_i(L, dt, count), "");
}

/* Output element i by one thread, or (B set) output element B->block by a
 * whole block, for reductions of GK_FOLD_BLOCK_MIN or more elements each. */
static bool emit_reduce(kl_ctx *L, gk_blk *B, int v, LLVMValueRef i) {
  red_arg r = {.s = &kl_in_type(L, v, 0)->shape, .x = kl_in(L, v, 0), .mean = L->m->nodes[v].op == KC_OP_MEAN};
  red_geom_of(L->m, v, &r.g);
  gk_fold f = {r.g.dt, r.g.prim, r.g.count, red_term, r.mean ? red_finish : NULL, &r};
  if (B) gk_fold_block(B, &f, kl_out(L, v, 0));
  else gk_fold_thread(L, &f, i, kl_out(L, v, 0));
  return true;
}

/* ---- matmul: a tiled GEMM in shared memory ----
 *
 * Each block computes a TILE x TILE tile of C (one matrix of the batch):
 * per step it stages a TILE x KSTEP slice of A and a KSTEP x TILE slice of B
 * in shared memory (zero outside the matrices), and each of its 256 threads
 * accumulates a 4 x 4 micro-tile from them; rows tr + 16r and columns
 * tc + 16c, so the threads of a warp read consecutive columns of the B tile
 * and write consecutive columns of C.  Where cuBLAS is present the runtime
 * calls it instead (the launch carries a kiln_gpu_gemm). */

#define TILE 64
#define KSTEP 16
#define MICRO 4

typedef struct mm_geom {
  kiln_dtype dt;
  bool ta, tb;
  int64_t M, N, K, batch, tiles_m, tiles_n;
  kg_shape ab, bb, ob;
} mm_geom;

static void mm_geom_of(const kg_module *m, int v, mm_geom *g) {
  const kg_node *n = &m->nodes[v];
  const kg_type *at = kg_ref_type(m, n->in[0]), *bt = kg_ref_type(m, n->in[1]), *yt = &n->out[0];
  g->dt = at->dtype;
  g->ta = kg_attr_bool(n, "transpose_a", false);
  g->tb = kg_attr_bool(n, "transpose_b", false);
  int ar = at->shape.rank, br = bt->shape.rank, yr = yt->shape.rank;
  g->M = yt->shape.dim[yr - 2];
  g->N = yt->shape.dim[yr - 1];
  g->K = g->ta ? at->shape.dim[ar - 2] : at->shape.dim[ar - 1];
  g->ab = (kg_shape){.rank = ar - 2};
  g->bb = (kg_shape){.rank = br - 2};
  g->ob = (kg_shape){.rank = yr - 2};
  for (int d = 0; d < ar - 2; d++) g->ab.dim[d] = at->shape.dim[d];
  for (int d = 0; d < br - 2; d++) g->bb.dim[d] = bt->shape.dim[d];
  g->batch = 1;
  for (int d = 0; d < yr - 2; d++) g->ob.dim[d] = yt->shape.dim[d], g->batch *= yt->shape.dim[d];
  g->tiles_m = (g->M + TILE - 1) / TILE;
  g->tiles_n = (g->N + TILE - 1) / TILE;
}

/* The element offset of batch `b` (of the output's batch shape ob) in an
 * operand with batch shape opb and matrices of `mat` elements. */
static LLVMValueRef batch_off(kl_ctx *L, LLVMValueRef b, const kg_shape *opb, const kg_shape *ob, int64_t mat) {
  LLVMValueRef off = kl_i64(L, 0);
  int64_t div = 1, stride = mat;
  for (int d = ob->rank - 1; d >= 0; d--) {
    int od = d - (ob->rank - opb->rank);
    int64_t ext = od >= 0 ? opb->dim[od] : 1;
    if (ext > 1) off = gk_add(L, off, gk_coord_term(L, b, div, ob->dim[d], stride));
    stride *= ext;
    div *= ob->dim[d];
  }
  return off;
}

/* Thread tid's element j of a TILE x KSTEP staging: (r, kk) with the
 * operand's contiguous dimension fastest, so the global reads coalesce. */
static void stage_coords(kl_ctx *L, LLVMValueRef e, bool k_fastest, LLVMValueRef *r, LLVMValueRef *kk) {
  if (k_fastest) *r = gk_udiv(L, e, KSTEP), *kk = gk_urem(L, e, KSTEP);
  else *kk = gk_udiv(L, e, TILE), *r = gk_urem(L, e, TILE);
}

static bool emit_matmul_tiled(kl_ctx *L, gk_blk *B, int v) {
  mm_geom g;
  mm_geom_of(L->m, v, &g);
  kiln_dtype dt = g.dt;
  LLVMValueRef A = kl_in(L, v, 0), Bm = kl_in(L, v, 1), C = kl_out(L, v, 0);
  /* uniform: which tile of which matrix */
  LLVMValueRef bn = gk_urem(L, B->block, g.tiles_n);
  LLVMValueRef bm = gk_urem(L, gk_udiv(L, B->block, g.tiles_n), g.tiles_m);
  LLVMValueRef bi = gk_udiv(L, B->block, g.tiles_n * g.tiles_m);
  LLVMValueRef a0 = batch_off(L, bi, &g.ab, &g.ob, g.M * g.K), b0 = batch_off(L, bi, &g.bb, &g.ob, g.K * g.N);
  LLVMValueRef c0 = gk_mul(L, bi, g.M * g.N);
  LLVMValueRef row0 = gk_mul(L, bm, TILE), col0 = gk_mul(L, bn, TILE);
  LLVMValueRef As = gk_shared(B, dt, KSTEP * TILE, "As"), Bs = gk_shared(B, dt, KSTEP * TILE, "Bs");
  const int NACC = MICRO * MICRO;
  LLVMValueRef acc = gk_priv(B, dt, NACC, "acc");
  LLVMValueRef zero = gk_zero(L, dt);
  gk_thr_begin(B);
  for (int j = 0; j < NACC; j++) LLVMBuildStore(L->B, zero, gk_priv_at(B, dt, acc, NACC, j));
  gk_thr_end(B);
  LLVMValueRef vM = kl_i64(L, g.M), vN = kl_i64(L, g.N), vK = kl_i64(L, g.K);
  kl_loop kt = kl_for(L, kl_i64(L, (g.K + KSTEP - 1) / KSTEP), "ktile");
  LLVMValueRef k0 = gk_mul(L, kt.index, KSTEP);
  /* stage: A[row0.., k0..] into As[kk][r], B[k0.., col0..] into Bs[kk][c] */
  gk_thr_begin(B);
  for (int j = 0; j < TILE * KSTEP / GK_BLOCK; j++) {
    LLVMValueRef e = gk_add(L, B->tid, kl_i64(L, (int64_t)j * GK_BLOCK)), r, kk;
    stage_coords(L, e, !g.ta, &r, &kk);
    LLVMValueRef row = gk_add(L, row0, r), k = gk_add(L, k0, kk);
    LLVMValueRef inb = LLVMBuildAnd(L->B, gk_ult(L, row, vM), gk_ult(L, k, vK), "");
    LLVMValueRef ai = gk_add(L, a0, g.ta ? gk_add(L, gk_mul(L, k, g.M), row) : gk_add(L, gk_mul(L, row, g.K), k));
    LLVMValueRef x = kl_load(L, dt, A, LLVMBuildSelect(L->B, inb, ai, a0, ""));
    gk_sh_store(B, dt, As, gk_add(L, gk_mul(L, kk, TILE), r), LLVMBuildSelect(L->B, inb, x, zero, ""));
    LLVMValueRef c;
    stage_coords(L, e, g.tb, &c, &kk);
    LLVMValueRef col = gk_add(L, col0, c);
    k = gk_add(L, k0, kk);
    inb = LLVMBuildAnd(L->B, gk_ult(L, col, vN), gk_ult(L, k, vK), "");
    LLVMValueRef bidx = gk_add(L, b0, g.tb ? gk_add(L, gk_mul(L, col, g.K), k) : gk_add(L, gk_mul(L, k, g.N), col));
    LLVMValueRef y = kl_load(L, dt, Bm, LLVMBuildSelect(L->B, inb, bidx, b0, ""));
    gk_sh_store(B, dt, Bs, gk_add(L, gk_mul(L, kk, TILE), c), LLVMBuildSelect(L->B, inb, y, zero, ""));
  }
  gk_thr_end(B);
  gk_barrier(B);
  /* compute: the 4 x 4 micro-tile from the staged slices */
  gk_thr_begin(B);
  LLVMValueRef tr = gk_udiv(L, B->tid, TILE / MICRO), tc = gk_urem(L, B->tid, TILE / MICRO);
  LLVMValueRef sum[MICRO * MICRO];
  for (int j = 0; j < NACC; j++) sum[j] = LLVMBuildLoad2(L->B, kl_value_type(L, dt), gk_priv_at(B, dt, acc, NACC, j), "");
  for (int kk = 0; kk < KSTEP; kk++) {
    LLVMValueRef a[MICRO], b[MICRO];
    for (int r = 0; r < MICRO; r++)
      a[r] = gk_sh_load(B, dt, As, gk_add(L, tr, kl_i64(L, (int64_t)kk * TILE + r * (TILE / MICRO))));
    for (int c = 0; c < MICRO; c++)
      b[c] = gk_sh_load(B, dt, Bs, gk_add(L, tc, kl_i64(L, (int64_t)kk * TILE + c * (TILE / MICRO))));
    for (int r = 0; r < MICRO; r++)
      for (int c = 0; c < MICRO; c++) sum[r * MICRO + c] = gk_prim2(L, "add", dt, sum[r * MICRO + c], gk_prim2(L, "mul", dt, a[r], b[c]));
  }
  for (int j = 0; j < NACC; j++) LLVMBuildStore(L->B, sum[j], gk_priv_at(B, dt, acc, NACC, j));
  gk_thr_end(B);
  gk_barrier(B);
  kl_for_end(L, &kt);
  /* write the micro-tile's elements that lie inside C */
  gk_thr_begin(B);
  tr = gk_udiv(L, B->tid, TILE / MICRO), tc = gk_urem(L, B->tid, TILE / MICRO);
  for (int r = 0; r < MICRO; r++)
    for (int c = 0; c < MICRO; c++) {
      LLVMValueRef row = gk_add(L, gk_add(L, row0, tr), kl_i64(L, r * (TILE / MICRO)));
      LLVMValueRef col = gk_add(L, gk_add(L, col0, tc), kl_i64(L, c * (TILE / MICRO)));
      LLVMBasicBlockRef after = gk_if_begin(L, LLVMBuildAnd(L->B, gk_ult(L, row, vM), gk_ult(L, col, vN), ""), "store");
      LLVMValueRef val = LLVMBuildLoad2(L->B, kl_value_type(L, dt), gk_priv_at(B, dt, acc, NACC, r * MICRO + c), "");
      kl_store(L, dt, C, gk_add(L, c0, gk_add(L, gk_mul(L, row, g.N), col)), val);
      gk_if_end(L, after);
    }
  gk_thr_end(B);
  return true;
}

bool kc_gpu_gemm_of(const kg_module *m, int v, kc_gpu_gemm *out) {
  if (kc_gpu_kind_of(m, v) != KC_GPU_MATMUL) return false;
  mm_geom g;
  mm_geom_of(m, v, &g);
  if (g.dt != KILN_F32 && g.dt != KILN_F64) return false;
  if (g.M > INT32_MAX || g.N > INT32_MAX || g.K > INT32_MAX || g.batch > INT32_MAX) return false;
  /* cuBLAS takes a batch as a constant stride: each operand's batch shape
   * is the output's, or it has none (its matrix repeats) */
  const kg_shape *ops[2] = {&g.ab, &g.bb};
  int64_t strides[2] = {g.M * g.K, g.K * g.N};
  for (int k = 0; k < 2; k++) {
    int64_t nb = kg_shape_numel(ops[k]);
    if (nb == 1) strides[k] = 0;
    else if (!kg_shape_eq(ops[k], &g.ob)) return false;
  }
  *out = (kc_gpu_gemm){g.dt, g.ta, g.tb, (int32_t)g.batch, g.M, g.N, g.K, strides[0], strides[1], g.M * g.N};
  return true;
}

/* ---- concat, gather: one output element per thread ---- */

static bool emit_concat(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *y = kl_out_type(L, v, 0);
  int rank = y->shape.rank;
  int ax = (int)kg_attr_int(n, "axis", 0);
  if (ax < 0) ax += rank;
  int64_t inner = 1;
  for (int d = ax + 1; d < rank; d++) inner *= y->shape.dim[d];
  int64_t D = y->shape.dim[ax];
  LLVMValueRef o = gk_udiv(L, i, D * inner), a = gk_urem(L, gk_udiv(L, i, inner), D), in = gk_urem(L, i, inner);
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->C, L->fn, "concat_done");
  int64_t lo = 0;
  for (int k = 0; k < n->n_in; k++) {
    int64_t Dk = kl_in_type(L, v, k)->shape.dim[ax];
    if (!Dk) continue;
    LLVMBasicBlockRef take = LLVMAppendBasicBlockInContext(L->C, L->fn, "concat_take");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(L->C, L->fn, "concat_next");
    LLVMBuildCondBr(L->B, gk_ult(L, a, kl_i64(L, lo + Dk)), take, next);
    LLVMPositionBuilderAtEnd(L->B, take);
    LLVMValueRef src = gk_add(L, gk_mul(L, gk_add(L, gk_mul(L, o, Dk), LLVMBuildSub(L->B, a, kl_i64(L, lo), "")), inner), in);
    kl_store(L, y->dtype, kl_out(L, v, 0), i, kl_load(L, y->dtype, kl_in(L, v, k), src));
    LLVMBuildBr(L->B, done);
    LLVMPositionBuilderAtEnd(L->B, next);
    lo += Dk;
  }
  LLVMBuildBr(L->B, done);
  LLVMPositionBuilderAtEnd(L->B, done);
  return true;
}

/* An index operand's element k as i64. */
static LLVMValueRef index_at(kl_ctx *L, kiln_dtype dt, LLVMValueRef idx, LLVMValueRef k) {
  LLVMValueRef x = kl_load(L, dt, idx, k);
  return dt == KILN_I64 ? x : LLVMBuildSExt(L->B, x, L->t_i64, "");
}

/* out[o, k, :] = params[o, indices[k], :]; an index out of range gives
 * zeros on the GPU (as TF's GPU kernel does: a kernel cannot fail a run). */
static bool emit_gather(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *pt = kl_in_type(L, v, 0), *it = kl_in_type(L, v, 1);
  int ax = (int)kg_attr_int(n, "axis", 0);
  if (ax < 0) ax += pt->shape.rank;
  int64_t inner = 1, A = pt->shape.dim[ax], N = kg_shape_numel(&it->shape);
  for (int d = ax + 1; d < pt->shape.rank; d++) inner *= pt->shape.dim[d];
  LLVMValueRef o = gk_udiv(L, i, N * inner), k = gk_urem(L, gk_udiv(L, i, inner), N), in = gk_urem(L, i, inner);
  LLVMValueRef idx = index_at(L, it->dtype, kl_in(L, v, 1), k);
  LLVMValueRef ok = gk_ult(L, idx, kl_i64(L, A)); /* unsigned: negative indices too */
  LLVMValueRef src = gk_add(L, gk_mul(L, gk_add(L, gk_mul(L, o, A), LLVMBuildSelect(L->B, ok, idx, kl_i64(L, 0), "")), inner), in);
  LLVMValueRef x = kl_load(L, pt->dtype, kl_in(L, v, 0), src);
  kl_store(L, pt->dtype, kl_out(L, v, 0), i, LLVMBuildSelect(L->B, ok, x, gk_zero(L, pt->dtype), ""));
  return true;
}

/* one_hot, indices viewed as [B, C] and the output as [B, depth, C]:
 * out[b, d, c] = indices[b, c] == d ? on : off (as the CPU's). */
static bool emit_one_hot(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *it = kl_in_type(L, v, 0), *y = kl_out_type(L, v, 0);
  int64_t axis = kg_attr_int(n, "axis", -1);
  int ax = (int)(axis < 0 ? axis + y->shape.rank : axis);
  int64_t C = kc_prod(it->shape.dim, ax, it->shape.rank), D = y->shape.dim[ax];
  LLVMValueRef b = gk_udiv(L, i, D * C), d = gk_urem(L, gk_udiv(L, i, C), D), c = gk_urem(L, i, C);
  LLVMValueRef k = index_at(L, it->dtype, kl_in(L, v, 0), gk_add(L, gk_mul(L, b, C), c));
  LLVMValueRef on = kl_const_f(L, y->dtype, kg_attr_float(n, "on_value", 1));
  LLVMValueRef off = kl_const_f(L, y->dtype, kg_attr_float(n, "off_value", 0));
  kl_store(L, y->dtype, kl_out(L, v, 0), i, LLVMBuildSelect(L->B, LLVMBuildICmp(L->B, LLVMIntEQ, k, d, ""), on, off, ""));
  return true;
}

/* scatter_add (gather's gradient), the output viewed as [outer, A, inner]
 * and the updates as [outer, N, inner]: out[o, a, j] is the sum over k, in
 * order, of updates[o, k, j] where indices[k] == a; the CPU adds in the same
 * order.  An index out of range matches nothing (the CPU fails the run). */
static bool emit_scatter_add(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_type *ot = kl_out_type(L, v, 0), *it = kl_in_type(L, v, 1);
  kc_gather_view g = kc_gather_view_of(&ot->shape, kg_attr_int(&L->m->nodes[v], "axis", 0), &it->shape);
  kiln_dtype dt = ot->dtype;
  LLVMValueRef o = gk_udiv(L, i, g.A * g.inner), a = gk_urem(L, gk_udiv(L, i, g.inner), g.A), j = gk_urem(L, i, g.inner);
  LLVMValueRef acc = gk_slot(L, dt, gk_zero(L, dt), "acc");
  kl_loop lk = kl_for(L, kl_i64(L, g.N), "k");
  LLVMValueRef hit = LLVMBuildICmp(L->B, LLVMIntEQ, index_at(L, it->dtype, kl_in(L, v, 1), lk.index), a, "");
  LLVMBasicBlockRef after = gk_if_begin(L, hit, "hit");
  LLVMValueRef u = kl_load(L, dt, kl_in(L, v, 0), gk_add(L, gk_mul(L, gk_add(L, gk_mul(L, o, g.N), lk.index), g.inner), j));
  LLVMBuildStore(L->B, gk_prim2(L, "add", dt, gk_get(L, dt, acc), u), acc);
  gk_if_end(L, after);
  kl_for_end(L, &lk);
  kl_store(L, dt, kl_out(L, v, 0), i, gk_get(L, dt, acc));
  return true;
}

/* ---- top_k: input element i finds its rank in its row ----
 * Element a comes after every b < a that stays ahead of it and every b > a
 * it does not stay ahead of: the order of the CPU's stable insertion
 * (kl_top_k_stays_ahead).  Ranks are distinct, so each of the k places is
 * written by exactly one thread. */
static bool emit_top_k(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  const kg_type *t = kl_in_type(L, v, 0);
  kiln_dtype dt = t->dtype;
  int64_t k = kg_attr_int(n, "k", 0), outer, mid, inner;
  bool largest = kg_attr_bool(n, "largest", true);
  int64_t axis = kg_attr_int(n, "axis", -1);
  split_axis(&t->shape, (int)(axis < 0 ? axis + t->shape.rank : axis), &outer, &mid, &inner);
  LLVMValueRef x = kl_in(L, v, 0);
  LLVMValueRef o = gk_udiv(L, i, mid * inner), a = gk_urem(L, gk_udiv(L, i, inner), mid), in = gk_urem(L, i, inner);
  LLVMValueRef base = gk_add(L, gk_mul(L, o, mid * inner), in), xa = kl_load(L, dt, x, i);
  LLVMValueRef rank = gk_slot(L, KILN_I64, kl_i64(L, 0), "rank");
  kl_loop lb = kl_for(L, kl_i64(L, mid), "b");
  LLVMValueRef xb = kl_load(L, dt, x, gk_add(L, base, gk_mul(L, lb.index, inner)));
  LLVMValueRef earlier = LLVMBuildICmp(L->B, LLVMIntULT, lb.index, a, "");
  LLVMValueRef later = LLVMBuildICmp(L->B, LLVMIntUGT, lb.index, a, "");
  LLVMValueRef before = LLVMBuildOr(L->B, LLVMBuildAnd(L->B, earlier, kl_top_k_stays_ahead(L, dt, largest, xb, xa), ""),
                                    LLVMBuildAnd(L->B, later, LLVMBuildNot(L->B, kl_top_k_stays_ahead(L, dt, largest, xa, xb), ""), ""), "");
  LLVMBuildStore(L->B, gk_add(L, gk_get(L, KILN_I64, rank), LLVMBuildZExt(L->B, before, L->t_i64, "")), rank);
  kl_for_end(L, &lb);
  LLVMValueRef r = gk_get(L, KILN_I64, rank);
  LLVMBasicBlockRef after = gk_if_begin(L, gk_ult(L, r, kl_i64(L, k)), "kept");
  LLVMValueRef at = gk_add(L, gk_add(L, gk_mul(L, o, k * inner), gk_mul(L, r, inner)), in);
  kl_store(L, dt, kl_out(L, v, 0), at, xa);
  kl_store(L, KILN_I64, kl_out(L, v, 1), at, a);
  gk_if_end(L, after);
  return true;
}

/* ---- random_uniform, random_normal: element i of the CPU's stream ----
 * runtime/random.c draws 32-bit words in order from Philox4x32-10 blocks
 * (counter + b, key = the seed): f32 uniform takes word i, f64 uniform
 * words 2i, 2i+1; normal takes a pair of uniforms per two elements (two
 * words for f32, four for f64) through Box-Muller.  Each word's block is
 * known from i, so thread i computes its element alone, bit for bit the
 * CPU's up to the math library's rounding of log, sqrt, cos and sin. */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* The four words of block `ctr` (i64) for a constant key. */
static void philox(kl_ctx *L, LLVMValueRef ctr, uint64_t seed, LLVMValueRef w[4]) {
  LLVMTypeRef i32 = L->t_i32, i64 = L->t_i64;
  LLVMValueRef c0 = LLVMBuildTrunc(L->B, ctr, i32, ""), c1 = LLVMBuildTrunc(L->B, LLVMBuildLShr(L->B, ctr, kl_i64(L, 32), ""), i32, "");
  LLVMValueRef c2 = kl_i32(L, 0), c3 = kl_i32(L, 0);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    if (r > 0) k0 += PHILOX_W0, k1 += PHILOX_W1;
    LLVMValueRef p0 = LLVMBuildMul(L->B, LLVMBuildZExt(L->B, c0, i64, ""), kl_i64(L, PHILOX_M0), "");
    LLVMValueRef p1 = LLVMBuildMul(L->B, LLVMBuildZExt(L->B, c2, i64, ""), kl_i64(L, PHILOX_M1), "");
    LLVMValueRef hi1 = LLVMBuildTrunc(L->B, LLVMBuildLShr(L->B, p1, kl_i64(L, 32), ""), i32, "");
    LLVMValueRef hi0 = LLVMBuildTrunc(L->B, LLVMBuildLShr(L->B, p0, kl_i64(L, 32), ""), i32, "");
    LLVMValueRef n0 = LLVMBuildXor(L->B, LLVMBuildXor(L->B, hi1, c1, ""), LLVMConstInt(i32, k0, 0), "");
    LLVMValueRef n2 = LLVMBuildXor(L->B, LLVMBuildXor(L->B, hi0, c3, ""), LLVMConstInt(i32, k1, 0), "");
    c1 = LLVMBuildTrunc(L->B, p1, i32, "");
    c3 = LLVMBuildTrunc(L->B, p0, i32, "");
    c0 = n0, c2 = n2;
  }
  w[0] = c0, w[1] = c1, w[2] = c2, w[3] = c3;
}

/* word k (an i64 in [0, 4)) of w */
static LLVMValueRef pick(kl_ctx *L, LLVMValueRef w[4], LLVMValueRef k) {
  LLVMValueRef r = w[3];
  for (int j = 2; j >= 0; j--) r = LLVMBuildSelect(L->B, LLVMBuildICmp(L->B, LLVMIntEQ, k, kl_i64(L, j), ""), w[j], r, "");
  return r;
}

/* (hi << 32 | lo) >> 11, scaled to [0, 1) (plus `one` ulp of 2^-53: (0, 1]) */
static LLVMValueRef unit53(kl_ctx *L, LLVMValueRef hi, LLVMValueRef lo, double one) {
  LLVMValueRef x = LLVMBuildOr(L->B, LLVMBuildShl(L->B, LLVMBuildZExt(L->B, hi, L->t_i64, ""), kl_i64(L, 32), ""),
                               LLVMBuildZExt(L->B, lo, L->t_i64, ""), "");
  LLVMValueRef d = LLVMBuildUIToFP(L->B, LLVMBuildLShr(L->B, x, kl_i64(L, 11), ""), L->t_f64, "");
  if (one) d = LLVMBuildFAdd(L->B, d, LLVMConstReal(L->t_f64, one), "");
  return LLVMBuildFMul(L->B, d, LLVMConstReal(L->t_f64, 0x1p-53), "");
}

static LLVMValueRef f64op(kl_ctx *L, const char *p, LLVMValueRef a, LLVMValueRef b) {
  return b ? gk_prim2(L, p, KILN_F64, a, b) : gk_prim1(L, p, KILN_F64, a);
}

/* v if v < hi or the interval is empty, else the float below hi (the CPU's half-open [lo, hi)) */
static LLVMValueRef half_open(kl_ctx *L, kiln_dtype dt, LLVMValueRef v, double lo, double hi) {
  bool f32 = dt == KILN_F32;
  double below = f32 ? (double)nextafterf((float)hi, (float)lo) : nextafter(hi, lo);
  bool empty = f32 ? !((float)lo < (float)hi) : !(lo < hi);
  if (empty) return v;
  LLVMValueRef lt = LLVMBuildFCmp(L->B, LLVMRealOLT, v, kl_const_f(L, dt, hi), "");
  return LLVMBuildSelect(L->B, lt, v, kl_const_f(L, dt, below), "");
}

static bool is_random_kernel(const kg_node *n) {
  return (n->op == KC_OP_RANDOM_UNIFORM || n->op == KC_OP_RANDOM_NORMAL) &&
         (n->out[0].dtype == KILN_F32 || n->out[0].dtype == KILN_F64);
}

int64_t kc_gpu_random_blocks(const kg_module *m, int v) {
  const kg_node *n = &m->nodes[v];
  int64_t e = kg_shape_numel(&n->out[0].shape), pairs = (e + 1) / 2;
  bool f32 = n->out[0].dtype == KILN_F32;
  int64_t words = n->op == KC_OP_RANDOM_UNIFORM ? (f32 ? e : 2 * e) : (f32 ? 2 * pairs : 4 * pairs);
  return (words + 3) / 4;
}

int kc_gpu_counter_params(const kg_module *m, int v) { return kc_gpu_kind_of(m, v) == KC_GPU_RANDOM ? 2 : 0; }

LLVMValueRef kl_gpu_join_counter(kl_ctx *L, LLVMValueRef lo, LLVMValueRef hi) {
  return LLVMBuildOr(L->B, LLVMBuildZExt(L->B, lo, L->t_i64, ""),
                     LLVMBuildShl(L->B, LLVMBuildZExt(L->B, hi, L->t_i64, ""), kl_i64(L, 32), ""), "");
}

static bool emit_random(kl_ctx *L, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  kiln_dtype dt = n->out[0].dtype;
  bool f32 = dt == KILN_F32, normal = n->op == KC_OP_RANDOM_NORMAL;
  uint64_t seed = kc_node_seed(n);
  double a = normal ? kg_attr_float(n, "mean", 0) : kg_attr_float(n, "minval", 0);
  double b = normal ? kg_attr_float(n, "stddev", 1) : kg_attr_float(n, "maxval", 1);
  LLVMValueRef base = L->kernel_counter, w[4], r;
  if (!normal && f32) { /* word i */
    philox(L, gk_add(L, base, gk_udiv(L, i, 4)), seed, w);
    LLVMValueRef word = pick(L, w, gk_urem(L, i, 4));
    LLVMValueRef u = LLVMBuildFMul(L->B, LLVMBuildUIToFP(L->B, LLVMBuildLShr(L->B, word, kl_i32(L, 8), ""), L->t_f32, ""),
                                   LLVMConstReal(L->t_f32, 0x1p-24), "");
    float fa = (float)a, fb = (float)b;
    r = LLVMBuildFAdd(L->B, LLVMConstReal(L->t_f32, fa), LLVMBuildFMul(L->B, LLVMConstReal(L->t_f32, fb - fa), u, ""), "");
    r = half_open(L, dt, r, fa, fb);
  } else if (!normal) { /* words 2i, 2i+1 */
    philox(L, gk_add(L, base, gk_udiv(L, i, 2)), seed, w);
    LLVMValueRef k = gk_mul(L, gk_urem(L, i, 2), 2);
    LLVMValueRef u = unit53(L, pick(L, w, k), pick(L, w, gk_add(L, k, kl_i64(L, 1))), 0);
    r = LLVMBuildFAdd(L->B, LLVMConstReal(L->t_f64, a), LLVMBuildFMul(L->B, LLVMConstReal(L->t_f64, b - a), u, ""), "");
    r = half_open(L, dt, r, a, b);
  } else { /* the pair i/2: z0 for even i, z1 for odd */
    LLVMValueRef pair = gk_udiv(L, i, 2), u1, u2;
    if (f32) { /* words 2p, 2p+1 */
      philox(L, gk_add(L, base, gk_udiv(L, pair, 2)), seed, w);
      LLVMValueRef k = gk_mul(L, gk_urem(L, pair, 2), 2);
      LLVMValueRef w1 = LLVMBuildLShr(L->B, pick(L, w, k), kl_i32(L, 8), "");
      LLVMValueRef w2 = LLVMBuildLShr(L->B, pick(L, w, gk_add(L, k, kl_i64(L, 1))), kl_i32(L, 8), "");
      u1 = LLVMBuildFMul(L->B, LLVMBuildFAdd(L->B, LLVMBuildUIToFP(L->B, w1, L->t_f64, ""), LLVMConstReal(L->t_f64, 1), ""),
                         LLVMConstReal(L->t_f64, 0x1p-24), "");
      u2 = LLVMBuildFPExt(L->B, LLVMBuildFMul(L->B, LLVMBuildUIToFP(L->B, w2, L->t_f32, ""), LLVMConstReal(L->t_f32, 0x1p-24), ""),
                          L->t_f64, "");
    } else { /* the block of four words */
      philox(L, gk_add(L, base, pair), seed, w);
      u1 = unit53(L, w[0], w[1], 1);
      u2 = unit53(L, w[2], w[3], 0);
    }
    LLVMValueRef rad = f64op(L, "sqrt", LLVMBuildFMul(L->B, LLVMConstReal(L->t_f64, -2.0), f64op(L, "log", u1, NULL), ""), NULL);
    LLVMValueRef t = LLVMBuildFMul(L->B, LLVMConstReal(L->t_f64, 6.283185307179586476925), u2, "");
    LLVMValueRef odd = LLVMBuildICmp(L->B, LLVMIntNE, gk_urem(L, i, 2), kl_i64(L, 0), "");
    LLVMValueRef z = LLVMBuildFMul(L->B, rad, LLVMBuildSelect(L->B, odd, f64op(L, "sin", t, NULL), f64op(L, "cos", t, NULL), ""), "");
    r = LLVMBuildFAdd(L->B, LLVMConstReal(L->t_f64, a), LLVMBuildFMul(L->B, LLVMConstReal(L->t_f64, b), z, ""), "");
    if (f32) r = LLVMBuildFPTrunc(L->B, r, L->t_f32, "");
  }
  kl_store(L, dt, kl_out(L, v, 0), i, r);
  return true;
}

/* ---- kinds, geometry, whole kernels ---- */

kc_gpu_kind kc_gpu_kind_of(const kg_module *m, int v) {
  const kg_node *n = &m->nodes[v];
  unsigned f = kc_ops[n->op].flags;
  if (n->op == KC_OP_VARIABLE || n->op == KC_OP_NO_OP || n->op == KC_OP_DEVICE_COPY || (f & KC_OP_ALIAS))
    return KC_GPU_NOCODE;
  if ((f & KC_OP_ELEMENTWISE) || is_assign(n->op)) return KC_GPU_MAP;
  switch (n->op) {
  case KC_OP_FILL: case KC_OP_ZEROS: case KC_OP_ONES: case KC_OP_RANGE: return KC_GPU_FILL;
  case KC_OP_RANDOM_UNIFORM: case KC_OP_RANDOM_NORMAL: return is_random_kernel(n) ? KC_GPU_RANDOM : KC_GPU_NONE;
  case KC_OP_SUM: case KC_OP_MEAN: case KC_OP_MAX: case KC_OP_MIN: case KC_OP_PROD: return KC_GPU_REDUCE;
  case KC_OP_ARGMAX: return KC_GPU_ARGMAX;
  case KC_OP_TOP_K: return KC_GPU_TOP_K;
  case KC_OP_SOFTMAX: case KC_OP_LOG_SOFTMAX: return KC_GPU_SOFTMAX;
  case KC_OP_IDENTITY: case KC_OP_TRANSPOSE: case KC_OP_SLICE: case KC_OP_BROADCAST_TO: case KC_OP_STRIDED_SLICE: case KC_OP_PAD:
  case KC_OP_STRIDED_SLICE_GRAD:
    return KC_GPU_STRIDED;
  case KC_OP_MATMUL: return KC_GPU_MATMUL;
  case KC_OP_CONCAT: return KC_GPU_CONCAT;
  case KC_OP_GATHER: case KC_OP_SCATTER_ADD: case KC_OP_ONE_HOT: return KC_GPU_GATHER;
  case KC_OP_CONV2D: case KC_OP_CONV2D_BACKPROP_INPUT: case KC_OP_CONV2D_BACKPROP_FILTER: case KC_OP_DEPTHWISE_CONV2D:
  case KC_OP_DEPTHWISE_CONV2D_BACKPROP_INPUT: case KC_OP_DEPTHWISE_CONV2D_BACKPROP_FILTER: case KC_OP_MAX_POOL:
  case KC_OP_AVG_POOL: case KC_OP_MAX_POOL_GRAD: case KC_OP_AVG_POOL_GRAD:
    return KC_GPU_WINDOW;
  default: return KC_GPU_NONE;
  }
}

int64_t kc_gpu_threads(const kg_module *m, int v) {
  const kg_node *n = &m->nodes[v];
  kc_gpu_kind k = kc_gpu_kind_of(m, v);
  if (k == KC_GPU_SOFTMAX || k == KC_GPU_ARGMAX) { /* a row per thread */
    const kg_shape *s = &kg_ref_type(m, n->in[0])->shape;
    if (!s->rank) return 1;
    int64_t outer, mid, inner;
    split_axis(s, k == KC_GPU_SOFTMAX ? softmax_axis(n, s->rank) : argmax_axis(n, s->rank), &outer, &mid, &inner);
    return mid ? outer * inner : 0;
  }
  if (k == KC_GPU_TOP_K) return kg_shape_numel(&kg_ref_type(m, n->in[0])->shape); /* an input element per thread */
  return k == KC_GPU_NONE || k == KC_GPU_NOCODE ? 0 : kg_shape_numel(&n->out[0].shape);
}

/* The terms each output element folds, for the kernels that are folds (-1: not one). */
static int64_t fold_terms(const kg_module *m, int v) {
  switch (kc_gpu_kind_of(m, v)) {
  case KC_GPU_REDUCE: {
    red_geom g;
    red_geom_of(m, v, &g);
    return g.count;
  }
  case KC_GPU_WINDOW: return kc_gpu_window_fold_terms(m, v);
  default: return -1;
  }
}

/* Block kernels: the tiled GEMM, and folds of many terms into each output. */
static bool is_blocked(const kg_module *m, int v) {
  return kc_gpu_kind_of(m, v) == KC_GPU_MATMUL || fold_terms(m, v) >= GK_FOLD_BLOCK_MIN;
}

kc_gpu_geom kc_gpu_geometry(const kg_module *m, int v) {
  kc_gpu_geom g = {.block = GK_BLOCK};
  if (!is_blocked(m, v)) {
    g.n = kc_gpu_threads(m, v);
    g.grid = g.n > 0 ? (g.n + GK_BLOCK - 1) / GK_BLOCK : 0;
    return g;
  }
  g.blocked = true;
  if (kc_gpu_kind_of(m, v) == KC_GPU_MATMUL) {
    mm_geom mg;
    mm_geom_of(m, v, &mg);
    g.grid = mg.batch * mg.tiles_m * mg.tiles_n;
  } else {
    g.grid = kg_shape_numel(&m->nodes[v].out[0].shape);
  }
  g.n = g.grid * GK_BLOCK;
  return g;
}

/* One thread's unit of a thread kernel (B NULL), or a block's output
 * element of a blocked fold. */
static bool emit_body(kl_ctx *L, gk_blk *B, int v, LLVMValueRef i) {
  const kg_node *n = &L->m->nodes[v];
  switch (kc_gpu_kind_of(L->m, v)) {
  case KC_GPU_MAP: {
    char err[160];
    const kc_expr *e = kc_node_expr(L->m->arena, n, err, sizeof err);
    return e ? kl_emit_map(L, v, e) : kc_error(L->diag, n->loc, "%s", err);
  }
  case KC_GPU_FILL: return emit_fill(L, v, i);
  case KC_GPU_RANDOM: return emit_random(L, v, i);
  case KC_GPU_REDUCE: return emit_reduce(L, B, v, i);
  case KC_GPU_ARGMAX: return emit_argmax(L, v, i);
  case KC_GPU_TOP_K: return emit_top_k(L, v, i);
  case KC_GPU_SOFTMAX: return emit_softmax(L, v, i);
  case KC_GPU_STRIDED: return n->op == KC_OP_STRIDED_SLICE_GRAD ? emit_strided_slice_grad(L, v, i) : emit_strided(L, v, i);
  case KC_GPU_CONCAT: return emit_concat(L, v, i);
  case KC_GPU_GATHER:
    return n->op == KC_OP_GATHER ? emit_gather(L, v, i) : n->op == KC_OP_ONE_HOT ? emit_one_hot(L, v, i) : emit_scatter_add(L, v, i);
  case KC_GPU_WINDOW: return kl_gpu_emit_window(L, B, v, i);
  default: return kc_error(L->diag, n->loc, "internal: '%s' (%s) has no GPU kernel", n->name, kc_ops[n->op].name);
  }
}

static LLVMValueRef sreg(kl_ctx *L, const char *name) {
  LLVMTypeRef fty = LLVMFunctionType(L->t_i32, NULL, 0, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(L->M, name);
  if (!fn) fn = LLVMAddFunction(L->M, name, fty);
  return LLVMBuildZExt(L->B, LLVMBuildCall2(L->B, fty, fn, NULL, 0, ""), L->t_i64, "");
}

bool kl_gpu_emit_kernel(kl_ctx *L, int v, LLVMValueRef *args, LLVMValueRef n, bool emulate) {
  L->kernel_args = args;
  const kg_node *nd = &L->m->nodes[v];
  L->kernel_counter = kc_gpu_counter_params(L->m, v) ? args[nd->n_in + nd->n_out] : NULL;
  bool ok;
  if (is_blocked(L->m, v)) {
    gk_blk B = {.L = L, .emu = emulate};
    kl_loop gl;
    if (emulate) {
      gl = kl_for(L, LLVMBuildUDiv(L->B, n, kl_i64(L, GK_BLOCK), ""), "block");
      B.block = gl.index;
    } else {
      B.block = sreg(L, "llvm.nvvm.read.ptx.sreg.ctaid.x");
      B.gpu_tid = sreg(L, "llvm.nvvm.read.ptx.sreg.tid.x");
    }
    ok = kc_gpu_kind_of(L->m, v) == KC_GPU_MATMUL ? emit_matmul_tiled(L, &B, v) : emit_body(L, &B, v, B.block);
    if (emulate) kl_for_end(L, &gl);
  } else if (emulate) {
    kl_loop lp = kl_for(L, n, "emulated");
    L->kernel_index = lp.index;
    ok = emit_body(L, NULL, v, lp.index);
    kl_for_end(L, &lp);
  } else {
    LLVMValueRef i = gk_add(L, LLVMBuildMul(L->B, sreg(L, "llvm.nvvm.read.ptx.sreg.ctaid.x"),
                                         sreg(L, "llvm.nvvm.read.ptx.sreg.ntid.x"), ""),
                         sreg(L, "llvm.nvvm.read.ptx.sreg.tid.x"));
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(L->C, L->fn, "body");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->C, L->fn, "done");
    LLVMBuildCondBr(L->B, LLVMBuildICmp(L->B, LLVMIntSLT, i, n, ""), body, done);
    LLVMPositionBuilderAtEnd(L->B, body);
    L->kernel_index = i;
    ok = emit_body(L, NULL, v, i);
    LLVMBuildBr(L->B, done);
    LLVMPositionBuilderAtEnd(L->B, done);
  }
  L->kernel_args = NULL;
  L->kernel_index = NULL;
  L->kernel_counter = NULL;
  return ok;
}
