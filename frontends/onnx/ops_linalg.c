/* ops_linalg.c — MatMul (NumPy semantics: 1-D operands get a dimension
 * added and removed, batch dimensions broadcast) and Gemm, both on kiln's
 * matmul, which calls cblas or kiln's generated GEMM. */
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

const ox_op ox_ops_linalg[] = {
    {"MatMul", cv_matmul},
    {"Gemm", cv_gemm},
    {NULL, NULL},
};
