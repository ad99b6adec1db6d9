/* ops_misc.c — ONNX ops that are not computation: Constant (every value
 * attribute form), Identity, Dropout at inference, and the window
 * functions, which become constants. */
#include "frontends/onnx/ox.h"
#include <math.h>
#include <string.h>

static bool cv_constant(ox_ctx *c, ox_node *n) {
  const Onnx__AttributeProto *a;
  kg_shape scalar = {0};
  if ((a = ox_attr(n, "value"))) {
    kg_tensor t;
    if (!a->t) return ox_fail(c, n, "attribute 'value' holds no tensor");
    if (!ox_tensor(c, a->t, n->label, &t)) return false;
    n->out[0] = ox_tensor_const(c, &t);
  } else if ((a = ox_attr(n, "value_float"))) {
    n->out[0] = ox_const_from(c, KILN_F32, &scalar, (double[]){a->f});
  } else if ((a = ox_attr(n, "value_int"))) {
    n->out[0] = ox_const_from(c, KILN_I64, &scalar, (double[]){(double)a->i});
  } else if ((a = ox_attr(n, "value_floats")) || (a = ox_attr(n, "value_ints"))) {
    bool f = !strcmp(a->name, "value_floats");
    int cnt = (int)(f ? a->n_floats : a->n_ints);
    kg_tensor t = {.type = {f ? KILN_F32 : KILN_I64, {1, {cnt}}}};
    t.data = kc_alloc(c->m->arena, (size_t)kg_type_bytes(&t.type) + 1);
    for (int i = 0; i < cnt; i++) {
      if (f) ((float *)t.data)[i] = a->floats[i];
      else ((int64_t *)t.data)[i] = a->ints[i];
    }
    n->out[0] = ox_tensor_const(c, &t);
  } else if (ox_attr(n, "sparse_value")) {
    return ox_fail(c, n, "sparse constants are not supported");
  } else if (ox_attr(n, "value_string") || ox_attr(n, "value_strings")) {
    return ox_fail(c, n, "unsupported data type string");
  } else {
    return ox_fail(c, n, "has no value attribute");
  }
  return !c->g.failed;
}

static bool cv_identity(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0)) return ox_fail(c, n, "needs an input");
  n->out[0] = kb_unary(&c->g, KC_OP_IDENTITY, n->in[0]);
  return !c->g.failed;
}

/* Dropout at inference (training_mode absent or false): the identity, and
 * an all-true mask when asked for. */
static bool cv_dropout(ox_ctx *c, ox_node *n) {
  if (!ox_has(n, 0)) return ox_fail(c, n, "needs an input");
  if (ox_has(n, 2)) {
    const kg_tensor *t = ox_const(c, n->in[2]);
    if (!t) return ox_fail(c, n, "training_mode must be a constant");
    const kg_tensor *ratio = ox_has(n, 1) ? ox_const(c, n->in[1]) : NULL;
    if (kg_tensor_get_i(t, 0) && ox_has(n, 1) && !ratio)
      return ox_fail(c, n, "input 1 ('%s') must be known at compile time in training mode", n->p->input[1]);
    bool no_drop = ox_has(n, 1) ? ratio && kg_tensor_get_f(ratio, 0) == 0 : ox_attr_float(n, "ratio", 0.5) == 0;
    /* training with ratio 0 keeps everything; any other ratio draws a mask */
    if (kg_tensor_get_i(t, 0) && !no_drop)
      return ox_fail(c, n, "training_mode=true with a non-zero ratio is not supported (kiln imports inference graphs)");
  }
  n->out[0] = kb_unary(&c->g, KC_OP_IDENTITY, n->in[0]);
  if (n->n_out > 1) {
    kg_type t = *ox_type(c, n->in[0]);
    t.dtype = KILN_BOOL;
    n->out[1] = kb_typed_node(&c->g, KC_OP_ONES, &t, NULL, 0, NULL, 0);
  }
  return !c->g.failed;
}

/* Hann, Hamming and Blackman windows (opset 17): constants computed here,
 * as ONNX's reference does, from a size known at compile time:
 * w[n] = a0 - a1 cos(2 pi n / N1) + a2 cos(4 pi n / N1), N1 = size when
 * periodic (the default), size - 1 when symmetric. */
static bool window(ox_ctx *c, ox_node *n, double a0, double a1, double a2) {
  int64_t *size;
  int cnt;
  if (!ox_has(n, 0) || !ox_const_ints(c, n, 0, &size, &cnt)) return false;
  if (cnt != 1 || *size < 0 || *size > (1 << 24)) return ox_fail(c, n, "size must be one integer in [0, 2^24]");
  kiln_dtype dt;
  int32_t ot = (int32_t)ox_attr_int(n, "output_datatype", 1);
  if (!ox_dtype(ot, &dt)) return ox_fail(c, n, "unsupported output_datatype %s", ox_dtype_name(ot));
  double N1 = (double)(ox_attr_int(n, "periodic", 1) ? *size : *size - 1), pi = 3.14159265358979323846;
  double *v = kc_alloc(c->m->arena, (size_t)(*size ? *size : 1) * sizeof *v);
  for (int64_t i = 0; i < *size; i++)
    v[i] = a0 - a1 * cos(2 * pi * (double)i / N1) + a2 * cos(4 * pi * (double)i / N1);
  n->out[0] = ox_const_from(c, dt, &(kg_shape){1, {*size}}, v);
  return !c->g.failed;
}

static bool cv_hann_window(ox_ctx *c, ox_node *n) { return window(c, n, 0.5, 0.5, 0); }
static bool cv_hamming_window(ox_ctx *c, ox_node *n) { return window(c, n, 25.0 / 46, 21.0 / 46, 0); }
static bool cv_blackman_window(ox_ctx *c, ox_node *n) { return window(c, n, 0.42, 0.5, 0.08); }

const ox_op ox_ops_misc[] = {
    {"Constant", cv_constant},
    {"Identity", cv_identity},
    {"Dropout", cv_dropout},
    {"HannWindow", cv_hann_window},
    {"HammingWindow", cv_hamming_window},
    {"BlackmanWindow", cv_blackman_window},
    {NULL, NULL},
};
