/* ops_rnn.c — ONNX RNN, GRU and LSTM (forward, reverse, bidirectional;
 * both layouts; sequence_lens; initial states; peepholes; clip; every
 * activation ONNX names), unrolled over the static sequence length.
 *
 * Per direction, the input projection of every time step is one matmul
 * X [T*B, I] x W^T with both biases folded in; each step then adds one
 * matmul of the previous hidden state with R^T and applies the cell's
 * elementwise equations (which the fuse pass joins into few loops).
 * sequence_lens masks steps at or past a batch entry's length: the state
 * keeps its value and the output is 0, which also makes the reverse
 * direction start each entry at its own last step. */
#include "frontends/onnx/ops_nn.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { K_RNN, K_GRU, K_LSTM };

typedef struct rnn_ctx {
  int kind, G;         /* gates: 1, 3, 4 */
  int64_t T, B, I, H;  /* sequence, batch, input, hidden */
  int nd;              /* directions */
  kiln_dtype dt;
  char act[2][3][200]; /* per direction, activations f, g, h as expressions over x0 */
  double clip;         /* 0: none */
  bool lbr;            /* GRU linear_before_reset */
  bool input_forget;   /* LSTM: f = 1 - i */
  kg_ref lens;         /* sequence_lens [B, 1], or KG_NOREF */
} rnn_ctx;

/* ONNX activation `name` with alpha, beta as an expression over x0. */
static bool act_expr(const char *name, double a, double b, bool has_a, bool has_b, char *out, size_t len) {
  static const struct {
    const char *name, *fmt;
    double a, b;
  } acts[] = {
      {"Relu", "max(x0, 0)", 0, 0},
      {"Tanh", "tanh(x0)", 0, 0},
      {"Sigmoid", "div(1, add(1, exp(neg(x0))))", 0, 0},
      {"Affine", "add(mul(%.17g, x0), %.17g)", 1, 0},
      {"LeakyRelu", "select(lt(x0, 0), mul(%.17g, x0), x0)", 0.01, 0},
      {"ThresholdedRelu", "select(gt(x0, %.17g), x0, 0)", 1, 0},
      {"ScaledTanh", "mul(%.17g, tanh(mul(%.17g, x0)))", 1, 1},
      {"HardSigmoid", "max(0, min(1, add(mul(%.17g, x0), %.17g)))", 0.2, 0.5},
      {"Elu", "select(ge(x0, 0), x0, mul(%.17g, sub(exp(x0), 1)))", 1, 0},
      {"Softsign", "div(x0, add(1, abs(x0)))", 0, 0},
      {"Softplus", "log(add(exp(x0), 1))", 0, 0},
  };
  for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
    if (strcasecmp(acts[i].name, name)) continue;
    snprintf(out, len, acts[i].fmt, has_a ? a : acts[i].a, has_b ? b : acts[i].b);
    return true;
  }
  return false;
}

static bool read_activations(ox_ctx *c, ox_node *n, rnn_ctx *r) {
  static const char *const dflt[3][3] = {{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
  int per = r->kind == K_RNN ? 1 : r->kind == K_GRU ? 2 : 3, na = 0, nal = 0, nbe = 0;
  const Onnx__AttributeProto *acts = ox_attr(n, "activations");
  if (acts) na = (int)acts->n_strings;
  const float *al = ox_attr_floats(n, "activation_alpha", &nal), *be = ox_attr_floats(n, "activation_beta", &nbe);
  if (na && na != per * r->nd)
    return ox_fail(c, n, "activations lists %d functions; %d are needed (%d per direction)", na, per * r->nd, per);
  for (int d = 0; d < r->nd; d++)
    for (int k = 0; k < per; k++) {
      int i = d * per + k;
      char name[64];
      if (na) snprintf(name, sizeof name, "%.*s", (int)acts->strings[i].len, (const char *)acts->strings[i].data);
      else snprintf(name, sizeof name, "%s", dflt[r->kind][k]);
      if (!act_expr(name, i < nal ? al[i] : 0, i < nbe ? be[i] : 0, i < nal, i < nbe, r->act[d][k], sizeof r->act[d][k]))
        return ox_fail(c, n, "unknown activation '%s'", name);
    }
  return true;
}

/* f(pre), clipped first when the node has clip. */
static kg_ref activate(ox_ctx *c, const rnn_ctx *r, const char *act, kg_ref pre) {
  if (r->clip > 0) {
    char e[128];
    snprintf(e, sizeof e, "max(neg(%.17g), min(%.17g, x0))", r->clip, r->clip);
    pre = ox_expr(c, e, &pre, 1, r->dt);
  }
  return ox_expr(c, act, &pre, 1, r->dt);
}

static kg_ref add(ox_ctx *c, kg_ref a, kg_ref b) { return kb_binary(&c->g, KC_OP_ADD, a, b); }
static kg_ref mul(ox_ctx *c, kg_ref a, kg_ref b) { return kb_binary(&c->g, KC_OP_MUL, a, b); }

static kg_ref matmul_t(ox_ctx *c, kg_ref a, kg_ref b) { /* a x b^T */
  kg_attr at[2] = {kb_attr_bool("transpose_a", false), kb_attr_bool("transpose_b", true)};
  kg_ref in[2] = {a, b};
  return kb_node(&c->g, KC_OP_MATMUL, in, 2, at, 2);
}

static kg_ref reshape2(ox_ctx *c, kg_ref x, int64_t a, int64_t b) {
  kg_shape s = {2, {a, b}};
  return ox_reshape(c, x, &s);
}

/* Row d of a [nd, ...] operand, without its first dimension. */
static kg_ref dir_row(ox_ctx *c, kg_ref x, int d) {
  if (c->g.failed) return KG_NOREF;
  kg_shape s = ox_type(c, x)->shape, t = {.rank = s.rank - 1};
  for (int i = 1; i < s.rank; i++) t.dim[i - 1] = s.dim[i];
  return ox_reshape(c, nn_slice_axis(c, x, 0, d, 1), &t);
}

/* Masks the step: where t >= sequence_lens the state keeps `prev` (and
 * the output, y, is 0). */
static kg_ref keep_past_end(ox_ctx *c, const rnn_ctx *r, int64_t t, kg_ref nw, kg_ref prev) {
  if (r->lens.node < 0) return nw;
  char e[96];
  snprintf(e, sizeof e, "select(gt(x0, %lld), x1, x2)", (long long)t);
  return ox_expr(c, e, (kg_ref[]){r->lens, nw, prev}, 3, r->dt);
}

/* One direction over the whole sequence; Y as [T, 1, B, H], final states. */
static kg_ref run_direction(ox_ctx *c, ox_node *n, rnn_ctx *r, kg_ref X, int d, bool reverse, kg_ref *h_out,
                            kg_ref *c_out) {
  int64_t T = r->T, B = r->B, H = r->H, GH = r->G * H;
  kg_ref W = dir_row(c, n->in[1], d), R = dir_row(c, n->in[2], d);
  /* input projection of every step, with Wb + Rb (GRU with linear_before_reset keeps Rbh apart) */
  kg_ref xw = matmul_t(c, reshape2(c, X, T * B, r->I), W), rbh = KG_NOREF;
  if (ox_has(n, 3)) {
    kg_ref b = ox_cast(c, dir_row(c, n->in[3], d), r->dt);
    kg_ref wb = nn_slice_axis(c, b, 0, 0, GH), rb = nn_slice_axis(c, b, 0, GH, GH);
    if (r->kind == K_GRU && r->lbr) {
      rbh = nn_slice_axis(c, rb, 0, 2 * H, H);
      kg_ref zeros = kb_zeros(&c->g, &(kg_type){r->dt, {1, {H}}});
      rb = nn_concat(c, (kg_ref[]){nn_slice_axis(c, rb, 0, 0, 2 * H), zeros}, 2, 0);
    }
    xw = add(c, xw, add(c, wb, rb));
  }
  kg_ref zero_state = kb_zeros(&c->g, &(kg_type){r->dt, {2, {B, H}}});
  kg_ref h = ox_has(n, 5) ? dir_row(c, n->in[5], d) : zero_state;
  kg_ref cs = r->kind == K_LSTM && ox_has(n, 6) ? dir_row(c, n->in[6], d) : zero_state;
  kg_ref P = r->kind == K_LSTM && ox_has(n, 7) ? dir_row(c, n->in[7], d) : KG_NOREF;
  kg_ref Rzr = KG_NOREF, Rh = KG_NOREF;
  if (r->kind == K_GRU && !r->lbr) Rzr = nn_slice_axis(c, R, 0, 0, 2 * H), Rh = nn_slice_axis(c, R, 0, 2 * H, H);
  kg_ref *ys = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)T);
  for (int64_t s = 0; s < T && !c->g.failed; s++) {
    int64_t t = reverse ? T - 1 - s : s;
    kg_ref xt = nn_slice_axis(c, xw, 0, t * B, B); /* [B, G*H] */
    kg_ref hn, cn = KG_NOREF;
    if (r->kind == K_RNN) {
      hn = activate(c, r, r->act[d][0], add(c, xt, matmul_t(c, h, R)));
    } else if (r->kind == K_GRU) {
      kg_ref xz = nn_slice_axis(c, xt, 1, 0, H), xr = nn_slice_axis(c, xt, 1, H, H), xh = nn_slice_axis(c, xt, 1, 2 * H, H);
      kg_ref hr = matmul_t(c, h, r->lbr ? R : Rzr);
      kg_ref z = activate(c, r, r->act[d][0], add(c, xz, nn_slice_axis(c, hr, 1, 0, H)));
      kg_ref rr = activate(c, r, r->act[d][0], add(c, xr, nn_slice_axis(c, hr, 1, H, H)));
      kg_ref pre;
      if (r->lbr) {
        kg_ref hh = nn_slice_axis(c, hr, 1, 2 * H, H);
        if (rbh.node >= 0) hh = add(c, hh, rbh);
        pre = add(c, xh, mul(c, rr, hh));
      } else {
        pre = add(c, xh, matmul_t(c, mul(c, rr, h), Rh));
      }
      kg_ref ht = activate(c, r, r->act[d][1], pre);
      hn = ox_expr(c, "add(mul(sub(1, x0), x1), mul(x0, x2))", (kg_ref[]){z, ht, h}, 3, r->dt);
    } else {
      kg_ref g = add(c, xt, matmul_t(c, h, R)); /* gates i, o, f, c */
      kg_ref gi = nn_slice_axis(c, g, 1, 0, H), go = nn_slice_axis(c, g, 1, H, H), gf = nn_slice_axis(c, g, 1, 2 * H, H),
             gc = nn_slice_axis(c, g, 1, 3 * H, H);
      if (P.node >= 0) {
        gi = add(c, gi, mul(c, nn_slice_axis(c, P, 0, 0, H), cs));
        gf = add(c, gf, mul(c, nn_slice_axis(c, P, 0, 2 * H, H), cs));
      }
      kg_ref i = activate(c, r, r->act[d][0], gi);
      kg_ref f = r->input_forget ? ox_expr(c, "sub(1, x0)", &i, 1, r->dt) : activate(c, r, r->act[d][0], gf);
      kg_ref cc = activate(c, r, r->act[d][1], gc);
      cn = ox_expr(c, "add(mul(x0, x1), mul(x2, x3))", (kg_ref[]){f, cs, i, cc}, 4, r->dt);
      if (P.node >= 0) go = add(c, go, mul(c, nn_slice_axis(c, P, 0, H, H), cn));
      kg_ref o = activate(c, r, r->act[d][0], go);
      hn = mul(c, o, ox_expr(c, r->act[d][2], &cn, 1, r->dt));
    }
    ys[t] = keep_past_end(c, r, t, hn, zero_state);
    h = keep_past_end(c, r, t, hn, h);
    if (cn.node >= 0) cs = keep_past_end(c, r, t, cn, cs);
  }
  if (c->g.failed) return KG_NOREF;
  for (int64_t t = 0; t < T; t++) {
    kg_shape s4 = {4, {1, 1, B, H}};
    ys[t] = ox_reshape(c, ys[t], &s4);
  }
  *h_out = h;
  *c_out = cs;
  return nn_concat(c, ys, (int)T, 0);
}

static bool rnn_convert(ox_ctx *c, ox_node *n, int kind) {
  for (int i = 0; i < 3; i++)
    if (!ox_has(n, i)) return ox_fail(c, n, "inputs X, W and R are required");
  rnn_ctx r = {.kind = kind, .G = kind == K_RNN ? 1 : kind == K_GRU ? 3 : 4};
  kg_ref X = n->in[0];
  const kg_type *xt = ox_type(c, X);
  r.dt = xt->dtype;
  if (!kg_dtype_is_float(r.dt)) return ox_fail(c, n, "X must be float or double");
  if (xt->shape.rank != 3) return ox_fail(c, n, "X must have rank 3");
  bool batch_first = ox_attr_int(n, "layout", 0) != 0;
  if (batch_first) X = ox_transpose(c, X, (int64_t[]){1, 0, 2}, 3);
  kg_shape xs = ox_type(c, X)->shape, rs = ox_type(c, n->in[2])->shape;
  r.T = xs.dim[0], r.B = xs.dim[1], r.I = xs.dim[2];
  r.H = ox_attr_int(n, "hidden_size", rs.rank == 3 ? rs.dim[2] : 0);
  const char *dir = ox_attr_string(c, n, "direction", "forward");
  bool bidi = !strcmp(dir, "bidirectional"), rev = !strcmp(dir, "reverse");
  if (!bidi && !rev && strcmp(dir, "forward")) return ox_fail(c, n, "unknown direction '%s'", dir);
  r.nd = bidi ? 2 : 1;
  if (rs.rank != 3 || rs.dim[0] != r.nd || rs.dim[1] != r.G * r.H || rs.dim[2] != r.H)
    return ox_fail(c, n, "R must be [%d, %lld, %lld]", r.nd, (long long)(r.G * r.H), (long long)r.H);
  r.clip = ox_attr_float(n, "clip", 0);
  r.lbr = ox_attr_int(n, "linear_before_reset", 0) != 0;
  r.input_forget = ox_attr_int(n, "input_forget", 0) != 0;
  if (!read_activations(c, n, &r)) return false;
  r.lens = KG_NOREF;
  if (ox_has(n, 4)) { /* sequence_lens: ignored when it is the full length everywhere */
    const kg_tensor *t = ox_const(c, n->in[4]);
    bool full = t != NULL;
    for (int64_t b = 0; t && b < kg_shape_numel(&t->type.shape); b++) full &= kg_tensor_get_i(t, b) == r.T;
    if (!full) r.lens = reshape2(c, n->in[4], r.B, 1);
  }
  /* batch-first initial states: [B, nd, H] -> [nd, B, H] */
  for (int k = 5; k <= 6 && batch_first; k++)
    if (ox_has(n, k)) n->in[k] = ox_transpose(c, n->in[k], (int64_t[]){1, 0, 2}, 3);
  kg_ref ys[2], hs[2], cs[2];
  for (int d = 0; d < r.nd; d++) ys[d] = run_direction(c, n, &r, X, d, rev || d == 1, &hs[d], &cs[d]);
  if (c->g.failed) return false;
  kg_ref Y = nn_concat(c, ys, r.nd, 1); /* [T, nd, B, H] */
  kg_shape s3 = {3, {1, r.B, r.H}};
  for (int d = 0; d < r.nd; d++) hs[d] = ox_reshape(c, hs[d], &s3), cs[d] = ox_reshape(c, cs[d], &s3);
  kg_ref Yh = nn_concat(c, hs, r.nd, 0), Yc = nn_concat(c, cs, r.nd, 0);
  if (batch_first) {
    Y = ox_transpose(c, Y, (int64_t[]){2, 0, 1, 3}, 4);
    Yh = ox_transpose(c, Yh, (int64_t[]){1, 0, 2}, 3);
    Yc = ox_transpose(c, Yc, (int64_t[]){1, 0, 2}, 3);
  }
  if (n->n_out > 0) n->out[0] = Y;
  if (n->n_out > 1) n->out[1] = Yh;
  if (n->n_out > 2 && kind == K_LSTM) n->out[2] = Yc;
  return !c->g.failed;
}

bool ox_cv_rnn(ox_ctx *c, ox_node *n) { return rnn_convert(c, n, K_RNN); }
bool ox_cv_gru(ox_ctx *c, ox_node *n) { return rnn_convert(c, n, K_GRU); }
bool ox_cv_lstm(ox_ctx *c, ox_node *n) { return rnn_convert(c, n, K_LSTM); }
