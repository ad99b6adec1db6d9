/* ops_linalg.c — MatMul (NumPy semantics: 1-D operands get a dimension
 * added and removed, batch dimensions broadcast), Gemm, and the integer
 * products MatMulInteger and QLinearMatMul, all on kiln's matmul, which
 * calls cblas or kiln's generated GEMM. */
#include "frontends/onnx/ox.h"
#include "passes/fold.h"

/* MatMul of a and b by NumPy's rules, through kiln's batched matmul. */
static kg_ref numpy_matmul(ox_ctx *c, kg_ref a, kg_ref b, bool ta, bool tb) {
  kg_shape as = ox_type(c, a)->shape, bs = ox_type(c, b)->shape;
  bool a1 = as.rank == 1, b1 = bs.rank == 1;
  if (a1) a = ox_reshape(c, a, &(kg_shape){2, {1, as.dim[0]}});
  if (b1) b = ox_reshape(c, b, &(kg_shape){2, {bs.dim[0], 1}});
  kg_attr at[2] = {kb_attr_bool("transpose_a", ta), kb_attr_bool("transpose_b", tb)};
  kg_ref in[2] = {a, b};
  kg_ref r = kb_node(&c->g, KC_OP_MATMUL, in, 2, at, 2);
  if ((a1 || b1) && !c->g.failed) {
    kg_shape rs = ox_type(c, r)->shape, out = rs;
    out.rank = 0;
    for (int d = 0; d < rs.rank; d++) {
      if (a1 && d == rs.rank - 2) continue;
      if (b1 && d == rs.rank - 1) continue;
      out.dim[out.rank++] = rs.dim[d];
    }
    r = ox_reshape(c, r, &out);
  }
  return r;
}

static bool cv_matmul(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0) || !ox_has(n, 1)) return ox_fail(c, n, "needs two inputs");
  n->out[0] = numpy_matmul(c, n->in[0], n->in[1], false, false);
  return !c->g.failed;
}

static bool cv_gemm(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0) || !ox_has(n, 1)) return ox_fail(c, n, "needs inputs A and B");
  if (ox_type(c, n->in[0])->shape.rank != 2 || ox_type(c, n->in[1])->shape.rank != 2)
    return ox_fail(c, n, "A and B must be matrices");
  double alpha = ox_attr_float(n, "alpha", 1.0), beta = ox_attr_float(n, "beta", 1.0);
  kg_ref b = n->in[1];
  bool tb = ox_attr_int(n, "transB", 0) != 0;
  if (tb && ox_const(c, b)) { /* weights (PyTorch's Linear is B^T): transposed once, here, not per run */
    static const int64_t swap[2] = {1, 0};
    b = ox_transpose(c, b, swap, 2);
    kc_fold_node(c->m, b.node);
    tb = false;
  }
  kg_ref r = numpy_matmul(c, n->in[0], b, ox_attr_int(n, "transA", 0), tb);
  kiln_dtype dt = ox_type(c, n->in[0])->dtype;
  if (alpha != 1.0) r = kb_binary(&c->g, KC_OP_MUL, r, kb_scalar(&c->g, dt, alpha));
  if (ox_has(n, 2) && beta != 0.0) {
    kg_ref cc = n->in[2];
    if (beta != 1.0) cc = kb_binary(&c->g, KC_OP_MUL, cc, kb_scalar(&c->g, dt, beta));
    r = kb_binary(&c->g, KC_OP_ADD, r, cc);
  }
  n->out[0] = r;
  return !c->g.failed;
}

/* MatMulInteger: (A - a_zero_point) (B - b_zero_point) as int32, computed
 * in f64 (exact for 8-bit operands); a 1-D a_zero_point is per row of A, a
 * 1-D b_zero_point per column of B. */
static bool integer_product(ox_ctx *c, ox_node *n, int a, int azp, int b, int bzp, kg_ref *out) {
  int ra = ox_type(c, n->in[a])->shape.rank, rb = ox_type(c, n->in[b])->shape.rank;
  kg_ref fa, fb;
  if (ra < 1 || rb < 1) return ox_fail(c, n, "the operands must have rank 1 or more");
  if (!ox_minus_zero_point(c, n, a, azp, ra >= 2 ? ra - 2 : 0, &fa) ||
      !ox_minus_zero_point(c, n, b, bzp, rb - 1, &fb))
    return false;
  *out = numpy_matmul(c, fa, fb, false, false);
  return !c->g.failed;
}

static bool cv_matmul_integer(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0) || !ox_has(n, 1)) return ox_fail(c, n, "needs A and B");
  kg_ref r;
  if (!integer_product(c, n, 0, 2, 1, 3, &r)) return false;
  n->out[0] = ox_cast(c, r, KILN_I32);
  return !c->g.failed;
}

/* QLinearMatMul: the integer product, scaled by a_scale b_scale / y_scale
 * and quantized to y_zero_point's type (as ONNX's reference: the scale in
 * f32, the product and rounding in f64). */
static bool cv_qlinear_matmul(ox_ctx *c, ox_node *n) {
  for (int i = 0; i < 8; i++)
    if (!ox_has(n, i)) return ox_fail(c, n, "needs a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point");
  static const int scales_and_zero_points[] = {1, 2, 4, 5, 6, 7};
  for (int k = 0; k < 6; k++)
    if (kg_shape_numel(&ox_type(c, n->in[scales_and_zero_points[k]])->shape) != 1)
      return ox_fail(c, n, "only per-tensor (scalar) scales and zero points are supported");
  kiln_dtype to = ox_type(c, n->in[7])->dtype;
  int lo, hi;
  if (!ox_quant_range(to, &lo, &hi)) return ox_fail(c, n, "quantizes only to uint8 or int8 (y_zero_point's type)");
  kg_ref in[5];
  if (!integer_product(c, n, 0, 2, 3, 5, &in[0])) return false;
  in[1] = n->in[1], in[2] = n->in[4], in[3] = n->in[6], in[4] = n->in[7];
  char e[200];
  snprintf(e, sizeof e, "cast(min(max(add(round(mul(x0, cast.f64(div(mul(x1, x2), x3)))), cast.f64(x4)), %d), %d))", lo,
           hi);
  n->out[0] = ox_expr(c, e, in, 5, to);
  return !c->g.failed;
}

const ox_op ox_ops_linalg[] = {
    {"MatMul", cv_matmul},
    {"Gemm", cv_gemm},
    {"MatMulInteger", cv_matmul_integer},
    {"QLinearMatMul", cv_qlinear_matmul},
    {NULL, NULL},
};
