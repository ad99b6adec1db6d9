/* ops_quant.c — ONNX's linear quantization (opsets 10-18): QuantizeLinear,
 * DequantizeLinear and DynamicQuantizeLinear, written as kiln elementwise
 * expressions and reductions (kiln has no quantized kernels: a quantized
 * model computes in f32 between these converters, as ONNX's own reference
 * does).
 *
 *   QuantizeLinear:        y = saturate(round(x / scale) + zero_point)
 *   DequantizeLinear:      y = (x - zero_point) * scale
 *   DynamicQuantizeLinear: scale = (max(0, max x) - min(0, min x)) / 255,
 *                          zero_point = round(saturate(-min(0, min x) / scale)),
 *                          y = saturate(round(x / scale) + zero_point), u8
 *
 * round is half to even; saturate clips to the integer type's range (uint8
 * [0, 255], int8 [-128, 127]).  The output type of QuantizeLinear is the
 * zero point's (uint8 when it is absent).  A 1-D scale and zero point apply
 * along `axis` (per channel, opset 13). */
#include <stdio.h>
#include "frontends/onnx/ox.h"

/* A scale or zero point s against an x of shape xs: a scalar (or one
 * element) as it is, a 1-D tensor of xs[ax] elements shaped to broadcast
 * along axis ax. */
static bool along(ox_ctx *c, ox_node *n, kg_ref s, const kg_shape *xs, int ax, kg_ref *out) {
  const kg_shape *ss = &ox_type(c, s)->shape;
  if (kg_shape_numel(ss) == 1 && ss->rank <= 1) {
    *out = s;
    return true;
  }
  if (ss->rank != 1) return ox_fail(c, n, "the scale and zero point must be scalars or 1-D");
  if (ss->dim[0] != xs->dim[ax])
    return ox_fail(c, n, "a per-axis scale or zero point has %lld elements, but axis %d of the input has %lld",
                   (long long)ss->dim[0], ax, (long long)xs->dim[ax]);
  kg_shape b = {.rank = xs->rank};
  for (int d = 0; d < xs->rank; d++) b.dim[d] = d == ax ? xs->dim[ax] : 1;
  *out = ox_reshape(c, s, &b);
  return !c->g.failed;
}

/* along() for the node's `axis` attribute (default 1). */
static bool along_axis(ox_ctx *c, ox_node *n, kg_ref s, const kg_shape *xs, kg_ref *out) {
  int ax = 0; /* the axis matters (and must be valid) only for a 1-D s */
  if (kg_shape_numel(&ox_type(c, s)->shape) != 1 && !ox_axis(c, n, ox_attr_int(n, "axis", 1), xs->rank, &ax))
    return false;
  return along(c, n, s, xs, ax, out);
}

bool ox_minus_zero_point(ox_ctx *c, ox_node *n, int i, int zi, int axis, kg_ref *out) {
  kg_ref in[2] = {n->in[i]};
  kiln_dtype dt = ox_type(c, in[0])->dtype;
  if (dt != KILN_U8 && dt != KILN_I8 && dt != KILN_I32) return ox_fail(c, n, "input %d must be uint8 or int8", i);
  if (!ox_has(n, zi)) {
    *out = ox_cast(c, in[0], KILN_F64);
    return !c->g.failed;
  }
  kg_shape xs = ox_type(c, in[0])->shape;
  if (!along(c, n, n->in[zi], &xs, axis, &in[1])) return false;
  *out = ox_expr(c, "sub(cast.f64(x0), cast.f64(x1))", in, 2, KILN_F64);
  return !c->g.failed;
}

bool ox_quant_range(kiln_dtype dt, int *lo, int *hi) {
  if (dt == KILN_U8) return *lo = 0, *hi = 255, true;
  if (dt == KILN_I8) return *lo = -128, *hi = 127, true;
  return false;
}

/* saturate(round(x0 / x1) + x2) in f32, then cast to dt (x2 absent: 0). */
static kg_ref quantize(ox_ctx *c, kg_ref x, kg_ref scale, kg_ref zp, kiln_dtype dt) {
  int lo = 0, hi = 255;
  ox_quant_range(dt, &lo, &hi);
  char e[200];
  snprintf(e, sizeof e, "cast(min(max(add(round(div(cast.f32(x0), x1)), %s), %d), %d))",
           zp.node >= 0 ? "cast.f32(x2)" : "0", lo, hi);
  kg_ref in[3] = {x, scale, zp};
  return ox_expr(c, e, in, zp.node >= 0 ? 3 : 2, dt);
}

static bool cv_quantize_linear(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0) || !ox_has(n, 1)) return ox_fail(c, n, "needs x and y_scale");
  kg_shape xs = ox_type(c, n->in[0])->shape;
  kiln_dtype to = ox_has(n, 2) ? ox_type(c, n->in[2])->dtype : KILN_U8;
  int lo, hi;
  if (!ox_quant_range(to, &lo, &hi)) return ox_fail(c, n, "quantizes only to uint8 or int8 (y_zero_point's type)");
  if (ox_type(c, n->in[1])->dtype != KILN_F32) return ox_fail(c, n, "y_scale must be float32");
  kg_ref scale, zp = KG_NOREF;
  if (!along_axis(c, n, n->in[1], &xs, &scale) || (ox_has(n, 2) && !along_axis(c, n, n->in[2], &xs, &zp)))
    return false;
  n->out[0] = quantize(c, n->in[0], scale, zp, to);
  return !c->g.failed;
}

static bool cv_dequantize_linear(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0) || !ox_has(n, 1)) return ox_fail(c, n, "needs x and x_scale");
  kg_shape xs = ox_type(c, n->in[0])->shape;
  if (ox_type(c, n->in[1])->dtype != KILN_F32) return ox_fail(c, n, "x_scale must be float32");
  kg_ref in[3];
  in[0] = n->in[0];
  if (!along_axis(c, n, n->in[1], &xs, &in[1]) || (ox_has(n, 2) && !along_axis(c, n, n->in[2], &xs, &in[2])))
    return false;
  n->out[0] = ox_has(n, 2) ? ox_expr(c, "mul(sub(cast.f32(x0), cast.f32(x2)), x1)", in, 3, KILN_F32)
                           : ox_expr(c, "mul(cast.f32(x0), x1)", in, 2, KILN_F32);
  return !c->g.failed;
}

static bool cv_dynamic_quantize_linear(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0)) return ox_fail(c, n, "needs an input");
  if (ox_type(c, n->in[0])->dtype != KILN_F32) return ox_fail(c, n, "x must be float32");
  kg_ref x = n->in[0];
  kg_ref mm[2] = {kb_node(&c->g, KC_OP_MIN, &x, 1, NULL, 0), kb_node(&c->g, KC_OP_MAX, &x, 1, NULL, 0)};
  /* the range always holds 0 */
  kg_ref scale = ox_expr(c, "div(sub(max(x1, 0), min(x0, 0)), 255)", mm, 2, KILN_F32);
  kg_ref zin[2] = {mm[0], scale};
  kg_ref zp = ox_expr(c, "cast(round(min(max(sub(0, div(min(x0, 0), x1)), 0), 255)))", zin, 2, KILN_U8);
  n->out[0] = quantize(c, x, scale, zp, KILN_U8);
  if (n->n_out > 1) n->out[1] = scale;
  if (n->n_out > 2) n->out[2] = zp;
  return !c->g.failed;
}

const ox_op ox_ops_quant[] = {
    {"QuantizeLinear", cv_quantize_linear},
    {"DequantizeLinear", cv_dequantize_linear},
    {"DynamicQuantizeLinear", cv_dynamic_quantize_linear},
    {NULL, NULL},
};
