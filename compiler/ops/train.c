/* train.c — the training ops of a TF1 graph: the optimizers' updates
 * (tf.raw_ops.ApplyGradientDescent / ApplyMomentum / ApplyAdam /
 * ApplyRMSProp / ApplyAdagrad), gradient clipping, learning-rate schedules
 * and exponential moving averages.
 *
 * All of them are composite ops: the expand pass (passes/expand.c) rewrites
 * each into assign / assign_add / assign_sub and elementwise ops before
 * autodiff, so they need no lowering or gradient rule of their own.  The
 * formulas are TensorFlow's kernels', term for term.
 *
 * State.  An optimizer's accumulators are slot variables that the expansion
 * creates (non-trainable, zeros unless said otherwise), named as TensorFlow
 * names them: `<var>/Momentum`, `<var>/Adam` (m) and `<var>/Adam_1` (v),
 * `<var>/RMSProp` (ms, starting at ones as tf.train.RMSPropOptimizer) and
 * `<var>/RMSProp_1` (mom), `<var>/Adagrad` (starting at
 * initial_accumulator_value).  Adam's beta powers are kept per variable, as
 * `<var>/beta1_power` and `<var>/beta2_power` (TF keeps one pair per
 * optimizer, named beta1_power / beta2_power; the values are the same when
 * each variable is updated once per step): they start at beta1 / beta2, the
 * update reads them, then multiplies them by beta1 / beta2.  EMA shadows are
 * `<var>/ExponentialMovingAverage`, initialized like the variable.  The
 * parser declares all of these (kc_declare_slots, right after it resolves
 * operands), so entries and the program can fetch them by name and the
 * printed graph shows them; an expansion reuses the variable of that name
 * (of the right type) and makes it only when missing.  So two updates of
 * one variable share their accumulators.
 *
 * Results.  An apply_* op yields the variable's new value (its storage,
 * like TF's ref output), and everything the update does is done once that
 * value is: fetch it, or use the op as a run target / control dependency.
 * ema_apply has no result: it is a target; fetch the shadows by name.
 *
 * Order.  As in TensorFlow, state changes are ordered only by data and
 * control edges: an update of w runs once its operands are ready, and a
 * node elsewhere that reads w (e.g. the gradient of a later layer) is not
 * ordered against it.  Put the apply ops `after` every gradient they should
 * not race (TF's gate_gradients); examples/train_step.kg shows the pattern. */
#include "ops/ops_util.h"
#include "passes/autodiff.h"
#include <math.h>
#include <string.h>

/* ---- shape rules ---- */

/* "name" or "name.k" of an operand, for messages. */
static const char *ref_name(kc_infer_ctx *c, kg_ref r, char *buf, size_t n) {
  const char *name = c->m->nodes[r.node].name;
  if (r.index) snprintf(buf, n, "%s.%d", name, r.index);
  else snprintf(buf, n, "%s", name);
  return buf;
}

bool kc_infer_apply(kc_infer_ctx *c, kg_node *n) {
  const kg_node *var = &c->m->nodes[n->in[0].node];
  const kg_type *vt = &var->out[0], *lr = kc_in_type(c, n, 1), *gt = kc_in_type(c, n, 2);
  char a[160], b[160], na[128];
  if (!kg_attr_bool(var, "trainable", true))
    return kc_node_error(c, n, "variable '%s' is not trainable ({trainable=false}); optimizers update trainable variables only",
                         var->name);
  if (!kg_dtype_is_float(vt->dtype))
    return kc_node_error(c, n, "variable '%s' is %s; optimizers update f32/f64 variables", var->name,
                         kg_type_str(vt, a, sizeof a));
  if (lr->shape.rank != 0 || lr->dtype != vt->dtype)
    return kc_node_error(c, n, "the learning rate '%s' is %s; it must be a scalar %s[] like variable '%s'",
                         ref_name(c, n->in[1], na, sizeof na), kg_type_str(lr, a, sizeof a),
                         kg_dtype_name(vt->dtype), var->name);
  if (!kg_type_eq(gt, vt))
    return kc_node_error(c, n, "the gradient '%s' is %s, but variable '%s' is %s", ref_name(c, n->in[2], na, sizeof na),
                         kg_type_str(gt, a, sizeof a), var->name, kg_type_str(vt, b, sizeof b));
  switch (n->op) {
  case KC_OP_APPLY_ADAM: {
    double b1 = kg_attr_float(n, "beta1", 0.9), b2 = kg_attr_float(n, "beta2", 0.999);
    if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
      return kc_node_error(c, n, "beta1 and beta2 must be in [0, 1) (got %g and %g)", b1, b2);
    if (!(kg_attr_float(n, "epsilon", 1e-8) >= 0)) return kc_node_error(c, n, "epsilon must not be negative");
    break;
  }
  case KC_OP_APPLY_RMSPROP:
    if (!(kg_attr_float(n, "epsilon", 1e-10) >= 0)) return kc_node_error(c, n, "epsilon must not be negative");
    break;
  case KC_OP_APPLY_ADAGRAD:
    if (!(kg_attr_float(n, "initial_accumulator_value", 0.1) > 0))
      return kc_node_error(c, n, "initial_accumulator_value must be positive (got %g)",
                           kg_attr_float(n, "initial_accumulator_value", 0.1));
    break;
  default: break;
  }
  kc_set_out(c, n, vt->dtype, &vt->shape);
  return true;
}

bool kc_infer_clip_by_value(kc_infer_ctx *c, kg_node *n) {
  const kg_type *t = kc_in_type(c, n, 0);
  char a[160], b[160], na[128];
  for (int k = 1; k < 3; k++) {
    const kg_type *bt = kc_in_type(c, n, k);
    kg_shape s;
    if (bt->dtype != t->dtype)
      return kc_node_error(c, n, "the %s bound '%s' is %s, but t is %s", k == 1 ? "lower" : "upper",
                           ref_name(c, n->in[k], na, sizeof na), kg_dtype_name(bt->dtype), kg_dtype_name(t->dtype));
    if (!kc_broadcast(c, n, &t->shape, &bt->shape, &s)) return false;
    if (!kg_shape_eq(&s, &t->shape))
      return kc_node_error(c, n, "the %s bound '%s' (%s) does not broadcast to t's shape (%s)", k == 1 ? "lower" : "upper",
                           ref_name(c, n->in[k], na, sizeof na), kg_type_str(bt, a, sizeof a), kg_type_str(t, b, sizeof b));
  }
  kc_set_out(c, n, t->dtype, &t->shape);
  return true;
}

static bool clip_norm_ok(kc_infer_ctx *c, kg_node *n) {
  double cn = kg_attr_float(n, "clip_norm", 0);
  if (!(cn > 0) || isinf(cn)) return kc_node_error(c, n, "clip_norm must be positive and finite (got %g)", cn);
  return true;
}

bool kc_infer_clip_by_norm(kc_infer_ctx *c, kg_node *n) {
  const kg_type *t = kc_in_type(c, n, 0);
  if (!clip_norm_ok(c, n)) return false;
  int na;
  const int64_t *axes;
  if (kc_attr_ints(n, "axes", &na, &axes)) {
    bool seen[KILN_MAX_RANK] = {0};
    for (int i = 0; i < na; i++) {
      int ax;
      if (!kc_axis(c, n, axes[i], t->shape.rank, &ax)) return false;
      if (seen[ax]) return kc_node_error(c, n, "axis %d is given twice", ax);
      seen[ax] = true;
    }
  }
  kc_set_out(c, n, t->dtype, &t->shape);
  return true;
}

bool kc_infer_clip_by_global_norm(kc_infer_ctx *c, kg_node *n) {
  if (!clip_norm_ok(c, n)) return false;
  if (n->n_in > 255) return kc_node_error(c, n, "at most 255 tensors");
  kiln_dtype dt = kc_in_type(c, n, 0)->dtype;
  char na[128];
  for (int i = 1; i < n->n_in; i++)
    if (kc_in_type(c, n, i)->dtype != dt)
      return kc_node_error(c, n, "'%s' is %s but the first tensor is %s: all must have one dtype",
                           ref_name(c, n->in[i], na, sizeof na), kg_dtype_name(kc_in_type(c, n, i)->dtype),
                           kg_dtype_name(dt));
  int k = n->n_in;
  kg_type *out = kc_alloc(c->m->arena, sizeof(kg_type) * (size_t)(k + 1));
  for (int i = 0; i < k; i++) out[i] = *kc_in_type(c, n, i);
  out[k].dtype = dt;
  out[k].shape.rank = 0;
  n->out = out;
  n->n_out = k + 1;
  return true;
}

static bool scalar_operand(kc_infer_ctx *c, kg_node *n, int k, const char *what) {
  const kg_type *t = kc_in_type(c, n, k);
  char a[160], na[128];
  if (t->shape.rank != 0)
    return kc_node_error(c, n, "%s '%s' is %s, not a scalar", what, ref_name(c, n->in[k], na, sizeof na),
                         kg_type_str(t, a, sizeof a));
  if (t->dtype == KILN_BOOL) return kc_node_error(c, n, "%s '%s' is bool, not a number", what, ref_name(c, n->in[k], na, sizeof na));
  return true;
}

static bool float_dtype_attr(kc_infer_ctx *c, kg_node *n, kiln_dtype *dt) {
  const kg_attr *a = kg_node_attr(n, "dtype");
  *dt = a ? a->dtype : KILN_F32;
  if (!kg_dtype_is_float(*dt)) return kc_node_error(c, n, "dtype must be f32 or f64, not %s", kg_dtype_name(*dt));
  return true;
}

bool kc_infer_exponential_decay(kc_infer_ctx *c, kg_node *n) {
  if (!scalar_operand(c, n, 0, "the global step")) return false;
  double steps = kg_attr_float(n, "decay_steps", 0);
  if (!(steps > 0)) return kc_node_error(c, n, "decay_steps must be positive (got %g)", steps);
  kiln_dtype dt;
  if (!float_dtype_attr(c, n, &dt)) return false;
  kg_shape s = {0};
  kc_set_out(c, n, dt, &s);
  return true;
}

bool kc_infer_piecewise_constant(kc_infer_ctx *c, kg_node *n) {
  const kg_attr *b = kg_node_attr(n, "boundaries"), *v = kg_node_attr(n, "values");
  if (b->floats.n < 1) return kc_node_error(c, n, "needs at least one boundary");
  if (v->floats.n != b->floats.n + 1)
    return kc_node_error(c, n, "%d boundaries need %d values, %d given", b->floats.n, b->floats.n + 1, v->floats.n);
  for (int i = 1; i < b->floats.n; i++)
    if (!(b->floats.v[i] > b->floats.v[i - 1]))
      return kc_node_error(c, n, "boundaries must increase (%g after %g)", b->floats.v[i], b->floats.v[i - 1]);
  kiln_dtype dt;
  if (!float_dtype_attr(c, n, &dt)) return false;
  kc_set_out(c, n, dt, &kc_in_type(c, n, 0)->shape);
  return true;
}

bool kc_infer_ema_apply(kc_infer_ctx *c, kg_node *n) {
  bool step = kg_attr_bool(n, "num_updates", false);
  int nv = n->n_in - (step ? 1 : 0);
  char na[128];
  if (nv < 1) return kc_node_error(c, n, "needs at least one variable%s", step ? " before num_updates" : "");
  double decay = kg_attr_float(n, "decay", 0);
  if (!(decay >= 0 && decay <= 1)) return kc_node_error(c, n, "decay must be in [0, 1] (got %g)", decay);
  for (int i = 0; i < nv; i++) {
    const kg_node *v = &c->m->nodes[n->in[i].node];
    if (v->op != KC_OP_VARIABLE)
      return kc_node_error(c, n, "operand %d ('%s') is a %s, not a variable: ema_apply keeps averages of variables", i + 1,
                           ref_name(c, n->in[i], na, sizeof na), kc_ops[v->op].name);
    if (!kg_dtype_is_float(v->out[0].dtype))
      return kc_node_error(c, n, "variable '%s' is %s; moving averages need f32/f64", v->name, kg_dtype_name(v->out[0].dtype));
    for (int j = 0; j < i; j++)
      if (n->in[j].node == n->in[i].node) return kc_node_error(c, n, "variable '%s' is given twice", v->name);
  }
  if (step && !scalar_operand(c, n, nv, "num_updates")) return false;
  if (n->out_declared && n->n_out) return kc_node_error(c, n, "has no result, but a type is declared");
  n->n_out = 0;
  return true;
}

/* ---- expansions ---- */

static kg_ref K(kc_grad_ctx *g, kiln_dtype dt, double v) { return kb_scalar(g, dt, v); }
static kg_ref B(kc_grad_ctx *g, int op, kg_ref x, kg_ref y) { return kb_binary(g, op, x, y); }
static kg_ref U(kc_grad_ctx *g, int op, kg_ref x) { return kb_unary(g, op, x); }

static void set_ctrl(kc_grad_ctx *g, kg_ref r, const int *ctrl, int n) {
  if (g->failed || r.node < 0) return;
  kg_node *nn = &g->m->nodes[r.node];
  int *v = kc_alloc(g->m->arena, sizeof(int) * (size_t)(nn->n_ctrl + n));
  if (nn->n_ctrl) memcpy(v, nn->ctrl, sizeof(int) * (size_t)nn->n_ctrl);
  memcpy(v + nn->n_ctrl, ctrl, sizeof(int) * (size_t)n);
  nn->ctrl = v;
  nn->n_ctrl += n;
}

/* The expand pass gives every node an expansion built the composite's own
 * control dependencies.  A variable must get none (fetching a slot or a
 * shadow would then run them), so the expansions here hand them out
 * themselves, to everything but the variables they created, and leave the
 * composite without any. */
static bool finish(kc_grad_ctx *g, int node, int first) {
  kg_module *m = g->m;
  if (g->failed) return false;
  int nc = m->nodes[node].n_ctrl;
  const int *ctrl = m->nodes[node].ctrl;
  for (int i = first; i < m->n_nodes && nc; i++)
    if (m->nodes[i].op != KC_OP_VARIABLE) set_ctrl(g, (kg_ref){i, 0}, ctrl, nc);
  m->nodes[node].n_ctrl = 0;
  return true;
}

static kg_attr attr_init(const char *init) {
  kg_attr a = {0};
  a.name = "init";
  a.kind = KG_ATTR_STRING;
  a.s = init;
  return a;
}

/* value=<t filled with v> */
static kg_attr attr_filled(kc_grad_ctx *g, const kg_type *t, double v) {
  kg_attr a = {0};
  a.name = "value";
  a.kind = KG_ATTR_TENSOR;
  a.tensor.type = *t;
  int64_t n = kg_shape_numel(&t->shape);
  a.tensor.data = kc_alloc(g->m->arena, (size_t)kg_type_bytes(t) + 8);
  for (int64_t i = 0; i < n; i++) {
    if (t->dtype == KILN_F32) ((float *)a.tensor.data)[i] = (float)v;
    else ((double *)a.tensor.data)[i] = v;
  }
  return a;
}

/* The variable `<var>/<suffix>` of type t: the existing one when an earlier
 * update made it, else a new one, non-trainable, placed with var. */
static kg_ref slot_var(kc_grad_ctx *g, int var, const char *suffix, const kg_type *t, const kg_attr *init, int n_init) {
  kg_module *m = g->m;
  if (g->failed) return KG_NOREF;
  const char *name = kc_sprintf(m->arena, "%s/%s", m->nodes[var].name, suffix);
  int k = kc_module_find(m, name, strlen(name));
  if (k >= 0) {
    char a[160], b[160];
    if (m->nodes[k].op == KC_OP_VARIABLE && kg_type_eq(&m->nodes[k].out[0], t)) return (kg_ref){k, 0};
    g->failed = true;
    if (m->nodes[k].op != KC_OP_VARIABLE)
      kc_error(g->d, g->loc, "'%s' needs the variable '%s', but that name is a %s", g->prefix, name, kc_ops[m->nodes[k].op].name);
    else
      kc_error(g->d, g->loc, "'%s' needs the variable '%s' as %s, but it is declared %s", g->prefix, name,
               kg_type_str(t, a, sizeof a), kg_type_str(&m->nodes[k].out[0], b, sizeof b));
    return KG_NOREF;
  }
  kg_ref r = kb_variable(g, name, t, init, n_init);
  if (r.node >= 0) m->nodes[r.node].device = m->nodes[var].device;
  return r;
}

/* The variables an op keeps its state in, in the order TF makes them. */
typedef enum { S_ZEROS, S_ONES, S_FILL, S_POWER, S_COPY } slot_kind;
typedef struct slot_spec {
  const char *suffix;
  slot_kind kind;   /* S_FILL: var's type filled with `attr`; S_POWER: a scalar
                       starting at `attr`; S_COPY: initialized like the variable */
  const char *attr;
  double dflt;
} slot_spec;

enum { MOMENTUM_ACCUM, ADAM_M = 0, ADAM_V, ADAM_B1P, ADAM_B2P, RMS_MS = 0, RMS_MOM, ADAGRAD_ACCUM = 0, EMA_SHADOW = 0 };

static int slot_specs(int op, const slot_spec **out) {
  static const slot_spec momentum[] = {{"Momentum", S_ZEROS, NULL, 0}};
  static const slot_spec adam[] = {{"Adam", S_ZEROS, NULL, 0}, {"Adam_1", S_ZEROS, NULL, 0},
                                   {"beta1_power", S_POWER, "beta1", 0.9}, {"beta2_power", S_POWER, "beta2", 0.999}};
  static const slot_spec rmsprop[] = {{"RMSProp", S_ONES, NULL, 0}, {"RMSProp_1", S_ZEROS, NULL, 0}};
  static const slot_spec adagrad[] = {{"Adagrad", S_FILL, "initial_accumulator_value", 0.1}};
  static const slot_spec ema[] = {{"ExponentialMovingAverage", S_COPY, NULL, 0}};
  switch (op) {
  case KC_OP_APPLY_MOMENTUM: *out = momentum; return 1;
  case KC_OP_APPLY_ADAM: *out = adam; return 4;
  case KC_OP_APPLY_RMSPROP: *out = rmsprop; return 2;
  case KC_OP_APPLY_ADAGRAD: *out = adagrad; return 1;
  case KC_OP_EMA_APPLY: *out = ema; return 1;
  default: *out = NULL; return 0;
  }
}

/* Slot k of composite `node` for variable `var`: the existing one, or a new one. */
static kg_ref slot_for(kc_grad_ctx *g, int node, int var, int k) {
  kg_module *m = g->m;
  const slot_spec *sp;
  if (k >= slot_specs(m->nodes[node].op, &sp)) return KG_NOREF;
  sp += k;
  const kg_node *vn = &m->nodes[var];
  kg_type t = vn->out[0];
  kg_attr init[32];
  int ni = 0;
  switch (sp->kind) {
  case S_ZEROS: init[ni++] = attr_init("zeros"); break;
  case S_ONES: init[ni++] = attr_init("ones"); break;
  case S_POWER: t.shape.rank = 0; /* fall through */
  case S_FILL:
    init[ni++] = attr_init("value");
    init[ni++] = attr_filled(g, &t, kg_attr_float(&m->nodes[node], sp->attr, sp->dflt));
    break;
  case S_COPY:
    for (int i = 0; i < vn->n_attrs && ni < 31; i++)
      if (strcmp(vn->attrs[i].name, "trainable")) init[ni++] = vn->attrs[i];
    /* a random initializer without a seed draws from a stream named after
     * its variable: give the copy that seed explicitly */
    if (!kg_node_attr(vn, "seed")) {
      kg_attr seed = {0};
      seed.name = "seed";
      seed.kind = KG_ATTR_INT;
      seed.i = (int64_t)kc_node_seed(vn);
      const char *how = kg_attr_str(vn, "init", "zeros");
      if (strcmp(how, "zeros") && strcmp(how, "ones") && strcmp(how, "value")) init[ni++] = seed;
    }
    break;
  }
  return slot_var(g, var, sp->suffix, &t, init, ni);
}

/* The variables of the composite node v, or none while its operands are not
 * what it needs (the verifier says why). */
static int slot_vars(const kg_module *m, int v, int *vars) {
  const kg_node *n = &m->nodes[v];
  int nv = n->op == KC_OP_EMA_APPLY ? n->n_in - (kg_attr_bool(n, "num_updates", false) ? 1 : 0) : 1;
  int k = 0;
  for (int i = 0; i < nv && i < n->n_in; i++) {
    const kg_node *var = &m->nodes[n->in[i].node];
    if (var->op != KC_OP_VARIABLE || !kg_dtype_is_float(var->out[0].dtype)) continue;
    if (n->op != KC_OP_EMA_APPLY && !kg_attr_bool(var, "trainable", true)) continue;
    vars[k++] = n->in[i].node;
  }
  return k;
}

bool kc_declare_slots(kg_module *m, kc_diag *d) {
  int n = m->n_nodes;
  for (int v = 0; v < n; v++) {
    const slot_spec *sp;
    int ns = slot_specs(m->nodes[v].op, &sp);
    if (!ns || m->nodes[v].dead) continue;
    int vars[256];
    int nv = slot_vars(m, v, vars);
    kc_grad_ctx g = {m, d, m->nodes[v].name, m->nodes[v].loc, false};
    for (int i = 0; i < nv; i++)
      for (int k = 0; k < ns; k++) slot_for(&g, v, vars[i], k);
    if (g.failed) return false;
  }
  return true;
}

typedef struct apply_args {
  int node, var, first;
  kg_ref v, lr, grad;
  kiln_dtype dt;
} apply_args;

static apply_args apply_begin(kc_grad_ctx *g, int node) {
  const kg_node *n = &g->m->nodes[node];
  apply_args a = {node, n->in[0].node, g->m->n_nodes, n->in[0], n->in[1], n->in[2], n->out[0].dtype};
  a.v.index = 0;
  return a;
}

static double attr(kc_grad_ctx *g, int node, const char *name, double dflt) {
  return kg_attr_float(&g->m->nodes[node], name, dflt);
}

/* ApplyGradientDescent: var -= alpha * delta */
bool kc_expand_apply_gradient_descent(kc_grad_ctx *g, int node, kg_ref *out) {
  apply_args a = apply_begin(g, node);
  out[0] = B(g, KC_OP_ASSIGN_SUB, a.v, B(g, KC_OP_MUL, a.lr, a.grad));
  return finish(g, node, a.first);
}

/* ApplyMomentum:
 *   accum = accum * momentum + grad
 *   var -= lr * accum                                  (use_nesterov=false)
 *   var -= grad * lr + accum * momentum * lr           (use_nesterov=true) */
bool kc_expand_apply_momentum(kc_grad_ctx *g, int node, kg_ref *out) {
  apply_args a = apply_begin(g, node);
  double mu = attr(g, node, "momentum", 0);
  bool nesterov = kg_attr_bool(&g->m->nodes[node], "use_nesterov", false);
  kg_ref accum = slot_for(g, node, a.var, MOMENTUM_ACCUM);
  kg_ref mom = K(g, a.dt, mu);
  kg_ref acc = B(g, KC_OP_ASSIGN, accum, B(g, KC_OP_ADD, B(g, KC_OP_MUL, accum, mom), a.grad));
  kg_ref delta = nesterov ? B(g, KC_OP_ADD, B(g, KC_OP_MUL, a.grad, a.lr), B(g, KC_OP_MUL, B(g, KC_OP_MUL, acc, mom), a.lr))
                          : B(g, KC_OP_MUL, a.lr, acc);
  out[0] = B(g, KC_OP_ASSIGN_SUB, a.v, delta);
  return finish(g, node, a.first);
}

/* ApplyAdam, with beta1_power = beta1^t and beta2_power = beta2^t at step t:
 *   alpha = lr * sqrt(1 - beta2_power) / (1 - beta1_power)
 *   m += (grad - m) * (1 - beta1)
 *   v += (grad^2 - v) * (1 - beta2)
 *   var -= m * alpha / (sqrt(v) + epsilon)
 * then beta1_power *= beta1, beta2_power *= beta2 (after the update read them). */
bool kc_expand_apply_adam(kc_grad_ctx *g, int node, kg_ref *out) {
  apply_args a = apply_begin(g, node);
  double b1 = attr(g, node, "beta1", 0.9), b2 = attr(g, node, "beta2", 0.999), eps = attr(g, node, "epsilon", 1e-8);
  kg_ref m = slot_for(g, node, a.var, ADAM_M);
  kg_ref v = slot_for(g, node, a.var, ADAM_V);
  kg_ref b1p = slot_for(g, node, a.var, ADAM_B1P);
  kg_ref b2p = slot_for(g, node, a.var, ADAM_B2P);
  kg_ref one = K(g, a.dt, 1);
  kg_ref alpha = B(g, KC_OP_DIV, B(g, KC_OP_MUL, a.lr, U(g, KC_OP_SQRT, B(g, KC_OP_SUB, one, b2p))),
                   B(g, KC_OP_SUB, one, b1p));
  kg_ref mn = B(g, KC_OP_ASSIGN_ADD, m, B(g, KC_OP_MUL, B(g, KC_OP_SUB, a.grad, m), K(g, a.dt, 1 - b1)));
  kg_ref vn = B(g, KC_OP_ASSIGN_ADD, v, B(g, KC_OP_MUL, B(g, KC_OP_SUB, U(g, KC_OP_SQUARE, a.grad), v), K(g, a.dt, 1 - b2)));
  kg_ref delta = B(g, KC_OP_DIV, B(g, KC_OP_MUL, mn, alpha), B(g, KC_OP_ADD, U(g, KC_OP_SQRT, vn), K(g, a.dt, eps)));
  kg_ref upd = B(g, KC_OP_ASSIGN_SUB, a.v, delta);
  kg_ref p1 = B(g, KC_OP_ASSIGN, b1p, B(g, KC_OP_MUL, b1p, K(g, a.dt, b1)));
  kg_ref p2 = B(g, KC_OP_ASSIGN, b2p, B(g, KC_OP_MUL, b2p, K(g, a.dt, b2)));
  set_ctrl(g, p1, &upd.node, 1);
  set_ctrl(g, p2, &upd.node, 1);
  /* the result: the variable's storage, once the beta powers moved on too */
  out[0] = U(g, KC_OP_STOP_GRADIENT, upd);
  int powers[] = {p1.node, p2.node};
  set_ctrl(g, out[0], powers, 2);
  return finish(g, node, a.first);
}

/* ApplyRMSProp (rho = decay):
 *   ms += (grad^2 - ms) * (1 - rho)
 *   mom = mom * momentum + grad * lr / sqrt(ms + epsilon)
 *   var -= mom */
bool kc_expand_apply_rmsprop(kc_grad_ctx *g, int node, kg_ref *out) {
  apply_args a = apply_begin(g, node);
  double rho = attr(g, node, "decay", 0.9), mu = attr(g, node, "momentum", 0), eps = attr(g, node, "epsilon", 1e-10);
  kg_ref ms = slot_for(g, node, a.var, RMS_MS);
  kg_ref mom = slot_for(g, node, a.var, RMS_MOM);
  kg_ref msn = B(g, KC_OP_ASSIGN_ADD, ms, B(g, KC_OP_MUL, B(g, KC_OP_SUB, U(g, KC_OP_SQUARE, a.grad), ms), K(g, a.dt, 1 - rho)));
  kg_ref step = B(g, KC_OP_DIV, B(g, KC_OP_MUL, a.grad, a.lr), U(g, KC_OP_SQRT, B(g, KC_OP_ADD, msn, K(g, a.dt, eps))));
  kg_ref momn = B(g, KC_OP_ASSIGN, mom, B(g, KC_OP_ADD, B(g, KC_OP_MUL, mom, K(g, a.dt, mu)), step));
  out[0] = B(g, KC_OP_ASSIGN_SUB, a.v, momn);
  return finish(g, node, a.first);
}

/* ApplyAdagrad:
 *   accum += grad^2
 *   var -= lr * grad / sqrt(accum) */
bool kc_expand_apply_adagrad(kc_grad_ctx *g, int node, kg_ref *out) {
  apply_args a = apply_begin(g, node);
  kg_ref accum = slot_for(g, node, a.var, ADAGRAD_ACCUM);
  kg_ref an = B(g, KC_OP_ASSIGN_ADD, accum, U(g, KC_OP_SQUARE, a.grad));
  out[0] = B(g, KC_OP_ASSIGN_SUB, a.v, B(g, KC_OP_MUL, B(g, KC_OP_MUL, a.grad, a.lr), U(g, KC_OP_RSQRT, an)));
  return finish(g, node, a.first);
}

/* clip_by_value: max(min(t, hi), lo), in TF's order (lo wins when lo > hi) */
bool kc_expand_clip_by_value(kc_grad_ctx *g, int node, kg_ref *out) {
  int first = g->m->n_nodes;
  const kg_node *n = &g->m->nodes[node];
  kg_ref t = n->in[0], lo = n->in[1], hi = n->in[2];
  out[0] = B(g, KC_OP_MAXIMUM, B(g, KC_OP_MINIMUM, t, hi), lo);
  return finish(g, node, first);
}

/* clip_by_norm, as tf.clip_by_norm:
 *   l2sum = sum(t * t, axes, keepdims)
 *   l2norm = l2sum > 0 ? sqrt(l2sum) : l2sum      (no NaN gradient at 0)
 *   t * clip_norm / max(l2norm, clip_norm) */
bool kc_expand_clip_by_norm(kc_grad_ctx *g, int node, kg_ref *out) {
  int first = g->m->n_nodes;
  const kg_node *n = &g->m->nodes[node];
  kg_ref t = n->in[0];
  kiln_dtype dt = n->out[0].dtype;
  double cn = kg_attr_float(n, "clip_norm", 1);
  kg_attr sa[2];
  int nsa = 0;
  int nax;
  const int64_t *axes;
  if (kc_attr_ints(n, "axes", &nax, &axes)) sa[nsa++] = kb_attr_ints(g, "axes", axes, nax);
  sa[nsa++] = kb_attr_bool("keepdims", true);
  kg_ref sq = B(g, KC_OP_MUL, t, t);
  kg_ref l2sum = kb_node(g, KC_OP_SUM, &sq, 1, sa, nsa);
  kg_ref pos = B(g, KC_OP_GREATER, l2sum, K(g, dt, 0));
  kg_ref in1[] = {pos, l2sum, K(g, dt, 1)};
  kg_ref safe = kb_node(g, KC_OP_SELECT, in1, 3, NULL, 0);
  kg_ref in2[] = {pos, U(g, KC_OP_SQRT, safe), l2sum};
  kg_ref l2norm = kb_node(g, KC_OP_SELECT, in2, 3, NULL, 0);
  kg_ref c = K(g, dt, cn);
  out[0] = B(g, KC_OP_DIV, B(g, KC_OP_MUL, t, c), B(g, KC_OP_MAXIMUM, l2norm, c));
  return finish(g, node, first);
}

/* clip_by_global_norm, as tf.clip_by_global_norm:
 *   global_norm = sqrt(sum_i sum(t_i * t_i))
 *   scale = clip_norm * min(1 / global_norm, 1 / clip_norm) + (global_norm - global_norm)
 *   outputs: t_i * scale for each i, then global_norm
 * (the last term makes every output NaN when the norm is not finite). */
bool kc_expand_clip_by_global_norm(kc_grad_ctx *g, int node, kg_ref *out) {
  int first = g->m->n_nodes;
  const kg_node *n = &g->m->nodes[node];
  int k = n->n_in;
  kg_ref t[256];
  memcpy(t, n->in, sizeof(kg_ref) * (size_t)k);
  kiln_dtype dt = n->out[k].dtype;
  double cn = kg_attr_float(n, "clip_norm", 1);
  kg_ref total = KG_NOREF;
  for (int i = 0; i < k; i++) {
    kg_ref s = kb_unary(g, KC_OP_SUM, B(g, KC_OP_MUL, t[i], t[i]));
    total = i ? B(g, KC_OP_ADD, total, s) : s;
  }
  kg_ref gn = U(g, KC_OP_SQRT, total);
  kg_ref m = B(g, KC_OP_MINIMUM, B(g, KC_OP_DIV, K(g, dt, 1), gn), K(g, dt, 1 / cn));
  kg_ref scale = B(g, KC_OP_ADD, B(g, KC_OP_MUL, K(g, dt, cn), m), B(g, KC_OP_SUB, gn, gn));
  for (int i = 0; i < k; i++) out[i] = B(g, KC_OP_MUL, t[i], scale);
  out[k] = gn;
  return finish(g, node, first);
}

/* exponential_decay, as tf.train.exponential_decay:
 *   p = cast(global_step) / decay_steps      (floor(p) when staircase)
 *   learning_rate * decay_rate ^ p */
bool kc_expand_exponential_decay(kc_grad_ctx *g, int node, kg_ref *out) {
  int first = g->m->n_nodes;
  const kg_node *n = &g->m->nodes[node];
  kg_ref step = n->in[0];
  kiln_dtype dt = n->out[0].dtype;
  double lr = kg_attr_float(n, "learning_rate", 0), steps = kg_attr_float(n, "decay_steps", 1),
         rate = kg_attr_float(n, "decay_rate", 1);
  bool staircase = kg_attr_bool(n, "staircase", false);
  if (kb_type(g, step)->dtype != dt) {
    kg_attr to = kb_attr_dtype("to", dt);
    step = kb_node(g, KC_OP_CAST, &step, 1, &to, 1);
  }
  kg_ref p = B(g, KC_OP_DIV, step, K(g, dt, steps));
  if (staircase) p = U(g, KC_OP_FLOOR, p);
  out[0] = B(g, KC_OP_MUL, K(g, dt, lr), B(g, KC_OP_POW, K(g, dt, rate), p));
  return finish(g, node, first);
}

/* piecewise_constant, as tf.train.piecewise_constant: values[0] while
 * x <= boundaries[0], values[i] while boundaries[i-1] < x <= boundaries[i],
 * values[n] beyond boundaries[n-1]; elementwise over x. */
bool kc_expand_piecewise_constant(kc_grad_ctx *g, int node, kg_ref *out) {
  int first = g->m->n_nodes;
  const kg_node *n = &g->m->nodes[node];
  kg_ref x = n->in[0];
  kiln_dtype xt = kb_type(g, x)->dtype, dt = n->out[0].dtype;
  const kg_attr *b = kg_node_attr(n, "boundaries"), *v = kg_node_attr(n, "values");
  int nb = b->floats.n;
  const double *bv = b->floats.v, *vv = v->floats.v;
  kg_ref r = K(g, dt, vv[nb]);
  for (int i = nb; i-- > 0;) {
    kg_ref in[] = {B(g, KC_OP_LESS_EQUAL, x, K(g, xt, bv[i])), K(g, dt, vv[i]), r};
    r = kb_node(g, KC_OP_SELECT, in, 3, NULL, 0);
  }
  /* a scalar x gives a scalar already; otherwise the selects broadcast */
  out[0] = r;
  return finish(g, node, first);
}

/* ema_apply, as tf.train.ExponentialMovingAverage.apply: for each variable
 * v a shadow `<v>/ExponentialMovingAverage` initialized like v, and
 *   decay_t = min(decay, (1 + n) / (10 + n))       (with num_updates n)
 *   shadow -= (shadow - v) * (1 - decay_t) */
bool kc_expand_ema_apply(kc_grad_ctx *g, int node, kg_ref *out) {
  int first = g->m->n_nodes;
  kg_module *m = g->m;
  const kg_node *n = &m->nodes[node];
  bool has_step = kg_attr_bool(n, "num_updates", false);
  int nv = n->n_in - (has_step ? 1 : 0);
  double decay = kg_attr_float(n, "decay", 0);
  kg_ref vars[256], step = has_step ? n->in[nv] : KG_NOREF;
  memcpy(vars, n->in, sizeof(kg_ref) * (size_t)nv);
  kg_ref one_minus[2] = {KG_NOREF, KG_NOREF}; /* per float dtype: 1 - decay_t */
  for (int i = 0; i < nv && !g->failed; i++) {
    int var = vars[i].node;
    kiln_dtype dt = m->nodes[var].out[0].dtype;
    int d = dt == KILN_F64;
    if (one_minus[d].node < 0) {
      kg_ref dec = K(g, dt, decay);
      if (has_step) {
        kg_ref s = step;
        if (kb_type(g, s)->dtype != dt) {
          kg_attr to = kb_attr_dtype("to", dt);
          s = kb_node(g, KC_OP_CAST, &s, 1, &to, 1);
        }
        dec = B(g, KC_OP_MINIMUM, dec, B(g, KC_OP_DIV, B(g, KC_OP_ADD, K(g, dt, 1), s), B(g, KC_OP_ADD, K(g, dt, 10), s)));
      }
      one_minus[d] = B(g, KC_OP_SUB, K(g, dt, 1), dec);
    }
    /* the shadow starts as the variable does: same initializer attributes */
    kg_ref shadow = slot_for(g, node, var, EMA_SHADOW);
    B(g, KC_OP_ASSIGN_SUB, shadow, B(g, KC_OP_MUL, B(g, KC_OP_SUB, shadow, vars[i]), one_minus[d]));
  }
  (void)out;
  return finish(g, node, first);
}
