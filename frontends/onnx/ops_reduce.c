/* ops_reduce.c — ONNX reductions and losses: ReduceSum/Mean/Max/Min/Prod,
 * the derived reductions (L1, L2, LogSum, LogSumExp, SumSquare) as kiln
 * reductions around elementwise expressions, ArgMax/ArgMin (kiln's argmax
 * after an order-reversing map and/or a reversal along the axis),
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (one_hot, masks and
 * sums), Einsum (diagonals, sums, then pairwise contractions on matmul) and
 * TopK (kiln's top_k op). */
#include "frontends/onnx/ox.h"
#include "passes/fold.h"
#include <stdio.h>
#include <string.h>

static bool need_input(ox_ctx *c, ox_node *n, int i) {
  if (!ox_has(n, i)) return ox_fail(c, n, "input %d is required", i);
  return true;
}

static bool set(ox_ctx *c, ox_node *n, kg_ref r) {
  n->out[0] = r;
  return !c->g.failed;
}

/* kiln reduction op over the axes (absent: all) with keepdims. */
static kg_ref kreduce(ox_ctx *c, int op, kg_ref x, const int64_t *axes, int n_axes, bool keep) {
  kg_attr at[2];
  int na = 0;
  if (axes) at[na++] = kb_attr_ints(&c->g, "axes", axes, n_axes);
  at[na++] = kb_attr_bool("keepdims", keep);
  return kb_node(&c->g, op, &x, 1, at, na);
}

/* ======================================================================
 * Reduce*
 * ====================================================================== */

/* The axes of a Reduce* node: from input 1 when present (ReduceSum from
 * opset 13, the others from 18), else from the `axes` attribute.  *axes is
 * NULL for "all axes"; *noop is set when the node is the identity
 * (noop_with_empty_axes with no axes). */
static bool reduce_axes(ox_ctx *c, ox_node *n, int64_t **axes, int *cnt, bool *noop) {
  *axes = NULL;
  *cnt = 0;
  *noop = false;
  int64_t *v = NULL;
  int k = 0;
  if (ox_has(n, 1)) {
    if (!ox_const_ints(c, n, 1, &v, &k)) return false;
  } else {
    const int64_t *a = ox_attr_ints(n, "axes", &k);
    if (k) {
      v = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)k);
      memcpy(v, a, sizeof(int64_t) * (size_t)k);
    }
  }
  if (k == 0) {
    *noop = ox_attr_int(n, "noop_with_empty_axes", 0) != 0;
    return true;
  }
  int rank = ox_type(c, n->in[0])->shape.rank;
  for (int i = 0; i < k; i++) {
    int a;
    if (!ox_axis(c, n, v[i], rank, &a)) return false;
    v[i] = a;
  }
  *axes = v;
  *cnt = k;
  return true;
}

/* The shape of s reduced over axes (NULL: all) without keepdims. */
static kg_shape dropped_shape(const kg_shape *s, const int64_t *axes, int cnt) {
  kg_shape r = {0};
  for (int d = 0; d < s->rank && axes; d++) {
    bool red = false;
    for (int i = 0; i < cnt; i++) red |= axes[i] == d;
    if (!red) r.dim[r.rank++] = s->dim[d];
  }
  return r;
}

typedef enum { RK_SUM, RK_MEAN, RK_MAX, RK_MIN, RK_PROD, RK_L1, RK_L2, RK_LOGSUM, RK_LOGSUMEXP, RK_SUMSQ } rkind;

/* The derived reductions: `pre` maps each element, kiln's sum reduces,
 * `post` maps the result.  Integer inputs go through f64 where the math
 * needs it (sqrt, log) and are truncated back, as ONNX's reference does. */
static bool reduce(ox_ctx *c, ox_node *n, rkind k) {
  static const int direct[] = {KC_OP_SUM, KC_OP_MEAN, KC_OP_MAX, KC_OP_MIN, KC_OP_PROD};
  if (!need_input(c, n, 0)) return false;
  int64_t *axes;
  int cnt;
  bool noop, keep = ox_attr_int(n, "keepdims", 1) != 0;
  if (!reduce_axes(c, n, &axes, &cnt, &noop)) return false;
  kg_ref x = n->in[0];
  kiln_dtype dt = ox_type(c, x)->dtype;
  if (noop) return set(c, n, kb_unary(&c->g, KC_OP_IDENTITY, x));
  if (k <= RK_PROD) return set(c, n, kreduce(c, direct[k], x, axes, cnt, keep));
  if (k == RK_L1 || k == RK_SUMSQ) {
    kg_ref m = ox_expr(c, k == RK_L1 ? "abs(x0)" : "mul(x0, x0)", &x, 1, dt);
    return set(c, n, kreduce(c, KC_OP_SUM, m, axes, cnt, keep));
  }
  kiln_dtype wt = kg_dtype_is_float(dt) ? dt : KILN_F64;
  x = ox_cast(c, x, wt);
  kg_ref r;
  if (k == RK_L2) {
    r = kreduce(c, KC_OP_SUM, ox_expr(c, "mul(x0, x0)", &x, 1, wt), axes, cnt, keep);
    r = kb_unary(&c->g, KC_OP_SQRT, r);
  } else if (k == RK_LOGSUM) {
    r = kb_unary(&c->g, KC_OP_LOG, kreduce(c, KC_OP_SUM, x, axes, cnt, keep));
  } else {
    /* log(sum(exp(x - m))) + m with m the maximum, replaced by 0 where it
     * is not finite (all -inf, or +inf) so that x - m is never inf - inf */
    kg_ref m = kreduce(c, KC_OP_MAX, x, axes, cnt, true);
    m = ox_expr(c, "select(eq(sub(x0, x0), 0), x0, 0)", &m, 1, wt);
    kg_ref xm[2] = {x, m};
    kg_ref s = kreduce(c, KC_OP_SUM, ox_expr(c, "exp(sub(x0, x1))", xm, 2, wt), axes, cnt, true);
    kg_ref sm[2] = {s, m};
    r = ox_expr(c, "add(log(x0), x1)", sm, 2, wt);
    if (!keep && !c->g.failed) {
      kg_shape ds = dropped_shape(&ox_type(c, n->in[0])->shape, axes, cnt);
      r = ox_reshape(c, r, &ds);
    }
  }
  return set(c, n, ox_cast(c, r, dt));
}

#define REDUCE(fn, k) \
  static bool fn(ox_ctx *c, ox_node *n) { return reduce(c, n, k); }
REDUCE(cv_reduce_sum, RK_SUM)
REDUCE(cv_reduce_mean, RK_MEAN)
REDUCE(cv_reduce_max, RK_MAX)
REDUCE(cv_reduce_min, RK_MIN)
REDUCE(cv_reduce_prod, RK_PROD)
REDUCE(cv_reduce_l1, RK_L1)
REDUCE(cv_reduce_l2, RK_L2)
REDUCE(cv_reduce_log_sum, RK_LOGSUM)
REDUCE(cv_reduce_log_sum_exp, RK_LOGSUMEXP)
REDUCE(cv_reduce_sum_square, RK_SUMSQ)

/* ======================================================================
 * ArgMax, ArgMin
 * ====================================================================== */

/* x reversed along axis (a gather with constant indices d-1, ..., 0). */
static kg_ref reverse_axis(ox_ctx *c, kg_ref x, int axis) {
  int64_t d = ox_type(c, x)->shape.dim[axis];
  kg_tensor t = {.type = {KILN_I64, {1, {d}}}};
  t.data = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)(d ? d : 1));
  for (int64_t i = 0; i < d; i++) ((int64_t *)t.data)[i] = d - 1 - i;
  kg_ref in[2] = {x, ox_tensor_const(c, &t)};
  kg_attr a = kb_attr_int("axis", axis);
  return kb_node(&c->g, KC_OP_GATHER, in, 2, &a, 1);
}

/* ArgMin is ArgMax of an order-reversing map: -x for floats, -1 - x for
 * signed integers (no overflow, unlike -x), 255 - x for u8;
 * select_last_index reverses the axis first and maps i -> d-1-i after. */
static bool arg_extreme(ox_ctx *c, ox_node *n, bool is_min) {
  if (!need_input(c, n, 0)) return false;
  kg_ref x = n->in[0];
  const kg_type *t = ox_type(c, x);
  kiln_dtype dt = t->dtype;
  kg_shape s = t->shape;
  int axis;
  if (s.rank == 0) return ox_fail(c, n, "needs an input of rank >= 1");
  if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), s.rank, &axis)) return false;
  if (dt == KILN_BOOL) x = ox_cast(c, x, KILN_U8), dt = KILN_U8;
  bool last = ox_attr_int(n, "select_last_index", 0) != 0;
  if (is_min) {
    const char *e = kg_dtype_is_float(dt) ? "neg(x0)" : dt == KILN_U8 ? "sub(255, x0)" : "sub(-1, x0)";
    x = ox_expr(c, e, &x, 1, dt);
  }
  if (last) x = reverse_axis(c, x, axis);
  kg_attr a = kb_attr_int("axis", axis);
  kg_ref r = kb_node(&c->g, KC_OP_ARGMAX, &x, 1, &a, 1);
  if (last) {
    char e[64];
    snprintf(e, sizeof e, "sub(%lld, x0)", (long long)(s.dim[axis] - 1));
    r = ox_expr(c, e, &r, 1, KILN_I64);
  }
  if (ox_attr_int(n, "keepdims", 1)) {
    s.dim[axis] = 1;
    r = ox_reshape(c, r, &s);
  }
  return set(c, n, r);
}

static bool cv_argmax(ox_ctx *c, ox_node *n) { return arg_extreme(c, n, false); }
static bool cv_argmin(ox_ctx *c, ox_node *n) { return arg_extreme(c, n, true); }

/* ======================================================================
 * NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss
 * ====================================================================== */

/* The loss of input [N, C, d...] (log-probabilities) at targets [N, d...]:
 *   loss[n, d] = -input[n, target[n, d], d] * w[n, d],
 *   w = weight[target] (1 without weights), 0 where target == ignore_index;
 * reduced by `reduction`: none, sum, or mean = sum(loss) / sum(w).
 * The element is picked with one_hot and a select (not a multiply, so that
 * an -inf elsewhere in the row cannot make NaN). */
static bool nll(ox_ctx *c, ox_node *n, kg_ref x, kg_ref target, kg_ref weight, kg_ref *out) {
  const kg_type *xt = ox_type(c, x);
  kiln_dtype dt = xt->dtype;
  kg_shape xs = xt->shape, ts = ox_type(c, target)->shape;
  if (!kg_dtype_is_float(dt)) return ox_fail(c, n, "input must be float or double");
  if (xs.rank < 2) return ox_fail(c, n, "input must have rank >= 2 ([N, C, ...])");
  if (ts.rank != xs.rank - 1) return ox_fail(c, n, "target must have rank %d", xs.rank - 1);
  if (kg_dtype_is_float(ox_type(c, target)->dtype)) return ox_fail(c, n, "target must be an integer tensor");
  int64_t C = xs.dim[1];
  const char *red = ox_attr_string(c, n, "reduction", "mean");
  bool has_ii = ox_attr(n, "ignore_index") != NULL;
  int64_t ii = ox_attr_int(n, "ignore_index", 0);
  kg_attr oa[3] = {kb_attr_int("depth", C), kb_attr_int("axis", 1), kb_attr_dtype("dtype", dt)};
  kg_ref oh = kb_node(&c->g, KC_OP_ONE_HOT, &target, 1, oa, 3);
  int64_t ax1 = 1;
  kg_ref xo[2] = {x, oh};
  kg_ref picked = kreduce(c, KC_OP_SUM, ox_expr(c, "select(ne(x1, 0), x0, 0)", xo, 2, dt), &ax1, 1, false);
  kg_ref w = KG_NOREF;
  if (weight.node >= 0) {
    kg_shape wsh = {xs.rank, {1}};
    for (int d = 0; d < xs.rank; d++) wsh.dim[d] = d == 1 ? C : 1;
    kg_ref wo[2] = {oh, ox_reshape(c, weight, &wsh)};
    w = kreduce(c, KC_OP_SUM, ox_expr(c, "mul(x0, x1)", wo, 2, dt), &ax1, 1, false);
  }
  if (has_ii) {
    char e[80];
    snprintf(e, sizeof e, "cast(ne(x0, %lld))", (long long)ii);
    kg_ref mask = ox_expr(c, e, &target, 1, dt);
    w = w.node >= 0 ? kb_binary(&c->g, KC_OP_MUL, w, mask) : mask;
  }
  kg_ref pw[2] = {picked, w};
  kg_ref loss = w.node >= 0 ? ox_expr(c, "neg(mul(x0, x1))", pw, 2, dt) : kb_unary(&c->g, KC_OP_NEG, picked);
  if (!strcmp(red, "none")) {
    *out = loss;
  } else if (!strcmp(red, "sum")) {
    *out = kreduce(c, KC_OP_SUM, loss, NULL, 0, false);
  } else if (!strcmp(red, "mean")) {
    if (w.node < 0) {
      *out = kreduce(c, KC_OP_MEAN, loss, NULL, 0, false);
    } else {
      kg_ref sw[2] = {kreduce(c, KC_OP_SUM, loss, NULL, 0, false), kreduce(c, KC_OP_SUM, w, NULL, 0, false)};
      *out = ox_expr(c, "div(x0, x1)", sw, 2, dt);
    }
  } else {
    return ox_fail(c, n, "unknown reduction '%s' (none, sum or mean)", red);
  }
  return !c->g.failed;
}

static bool cv_nll_loss(ox_ctx *c, ox_node *n) {
  if (!need_input(c, n, 0) || !need_input(c, n, 1)) return false;
  return nll(c, n, n->in[0], n->in[1], ox_has(n, 2) ? n->in[2] : KG_NOREF, &n->out[0]);
}

/* NLL of log_softmax(scores) along the class axis 1; output 1 (optional)
 * is that log_softmax. */
static bool cv_sce_loss(ox_ctx *c, ox_node *n) {
  if (!need_input(c, n, 0) || !need_input(c, n, 1)) return false;
  if (ox_type(c, n->in[0])->shape.rank < 2) return ox_fail(c, n, "scores must have rank >= 2 ([N, C, ...])");
  kg_attr a = kb_attr_int("axis", 1);
  kg_ref lp = kb_node(&c->g, KC_OP_LOG_SOFTMAX, &n->in[0], 1, &a, 1);
  if (c->g.failed) return false;
  if (n->n_out > 1) n->out[1] = lp;
  return nll(c, n, lp, n->in[1], ox_has(n, 2) ? n->in[2] : KG_NOREF, &n->out[0]);
}

/* ======================================================================
 * TopK
 * ====================================================================== */

/* k from input 1 (opset 10+) or the attribute (opset 1). */
static bool cv_top_k(ox_ctx *c, ox_node *n) {
  if (!need_input(c, n, 0)) return false;
  int64_t k;
  if (ox_has(n, 1)) {
    int64_t *v;
    int cnt;
    if (!ox_const_ints(c, n, 1, &v, &cnt)) return false;
    if (cnt != 1) return ox_fail(c, n, "K must hold one value");
    k = v[0];
  } else {
    if (!ox_attr(n, "k")) return ox_fail(c, n, "needs K (input 1 or attribute k)");
    k = ox_attr_int(n, "k", 0);
  }
  kg_attr at[4] = {kb_attr_int("k", k), kb_attr_int("axis", ox_attr_int(n, "axis", -1)),
                   kb_attr_bool("largest", ox_attr_int(n, "largest", 1) != 0),
                   kb_attr_bool("sorted", ox_attr_int(n, "sorted", 1) != 0)};
  kg_ref r = kb_node(&c->g, KC_OP_TOP_K, &n->in[0], 1, at, 4);
  if (c->g.failed) return false;
  n->out[0] = r;
  if (n->n_out > 1) n->out[1] = (kg_ref){r.node, 1};
  return true;
}

/* ======================================================================
 * Einsum
 * ====================================================================== */

/* One operand during an Einsum: its value and one letter per dimension. */
typedef struct eterm {
  kg_ref v;
  int rank;
  char l[KILN_MAX_RANK + 1];
} eterm;

/* Letters of one term ("ij", "...ij", "b..."), ignoring spaces and dots. */
static int count_letters(const char *s, size_t len) {
  int k = 0;
  for (size_t i = 0; i < len; i++) k += s[i] != ' ' && s[i] != '.';
  return k;
}

/* Parses one term into out, one letter per dimension.  An ellipsis stands
 * for the E broadcast dimensions, trailing-aligned: a term covering e of
 * them gets the digits '0'+E-e .. '0'+E-1 (digits never clash with the
 * equation's letters).  rank < 0 (the output): e = E. */
static bool parse_term(ox_ctx *c, ox_node *n, const char *s, size_t len, int rank, int E, char *out) {
  int nl = 0, pos_ell = -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == ' ') continue;
    if (s[i] == '.') {
      if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.' || pos_ell >= 0)
        return ox_fail(c, n, "malformed ellipsis in the equation");
      pos_ell = nl;
      i += 2;
      continue;
    }
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
      return ox_fail(c, n, "bad character '%c' in the equation", s[i]);
    if (nl >= KILN_MAX_RANK) return ox_fail(c, n, "too many indices in a term");
    out[nl++] = s[i];
  }
  if (pos_ell >= 0) {
    int e = rank < 0 ? E : rank - nl;
    if (e < 0 || nl + e > KILN_MAX_RANK) return ox_fail(c, n, "the equation does not match an operand's rank");
    memmove(out + pos_ell + e, out + pos_ell, (size_t)(nl - pos_ell));
    for (int i = 0; i < e; i++) out[pos_ell + i] = (char)('0' + E - e + i);
    nl += e;
  }
  if (rank >= 0 && nl != rank) return ox_fail(c, n, "an equation term has %d indices for a rank-%d operand", nl, rank);
  out[nl] = 0;
  return true;
}

/* Takes the diagonal over repeated letters: x * eye along (i, j), summed
 * over j. */
static void take_diagonals(ox_ctx *c, eterm *t) {
  for (int i = 0; i < t->rank && !c->g.failed; i++)
    for (int j = i + 1; j < t->rank; j++) {
      if (t->l[i] != t->l[j]) continue;
      kg_shape s = ox_type(c, t->v)->shape;
      int64_t d = s.dim[i];
      kg_shape es = {.rank = s.rank};
      for (int k = 0; k < s.rank; k++) es.dim[k] = k == i || k == j ? d : 1;
      kg_tensor e = {.type = {ox_type(c, t->v)->dtype, es}};
      e.data = kc_alloc(c->m->arena, (size_t)kg_type_bytes(&e.type) + 1);
      for (int64_t a = 0; a < d; a++)
        for (int64_t b = 0; b < d; b++) kg_tensor_set(&e, a * d + b, a == b, a == b);
      kg_ref xe[2] = {t->v, ox_tensor_const(c, &e)};
      kg_ref p = ox_expr(c, "select(ne(x1, 0), x0, 0)", xe, 2, ox_type(c, t->v)->dtype);
      int64_t ax = j;
      t->v = kreduce(c, KC_OP_SUM, p, &ax, 1, false);
      memmove(t->l + j, t->l + j + 1, (size_t)(t->rank - j));
      t->rank--;
      j--;
    }
}

/* Sums away the letters of t that appear in no other term nor the output. */
static void sum_private(ox_ctx *c, eterm *t, const eterm *all, int n_all, int self, const char *outl) {
  int64_t axes[KILN_MAX_RANK];
  int na = 0;
  char keep[KILN_MAX_RANK + 1];
  int nk = 0;
  for (int i = 0; i < t->rank; i++) {
    bool used = strchr(outl, t->l[i]) != NULL;
    for (int k = 0; k < n_all && !used; k++)
      if (k != self && strchr(all[k].l, t->l[i])) used = true;
    if (used) keep[nk++] = t->l[i];
    else axes[na++] = i;
  }
  if (!na) return;
  t->v = kreduce(c, KC_OP_SUM, t->v, axes, na, false);
  keep[nk] = 0;
  memcpy(t->l, keep, (size_t)nk + 1);
  t->rank = nk;
}

/* Permutes t to the given letter order. */
static void permute_to(ox_ctx *c, eterm *t, const char *order) {
  int64_t perm[KILN_MAX_RANK];
  for (int i = 0; i < t->rank; i++) perm[i] = strchr(t->l, order[i]) - t->l;
  t->v = ox_transpose(c, t->v, perm, t->rank);
  memcpy(t->l, order, (size_t)t->rank + 1);
}

static int64_t dim_of(ox_ctx *c, const eterm *t, char l) {
  const char *p = strchr(t->l, l);
  return p ? ox_type(c, t->v)->shape.dim[p - t->l] : 1;
}

/* a * b contracted over their shared letters not in `need`, as one batched
 * matmul: a -> [batch, m, k], b -> [batch, k, n]. */
static eterm contract(ox_ctx *c, eterm a, eterm b, const char *need) {
  char bat[KILN_MAX_RANK + 1] = {0}, mm[KILN_MAX_RANK + 1] = {0}, kk[KILN_MAX_RANK + 1] = {0},
       nn[KILN_MAX_RANK + 1] = {0};
  int nb = 0, nm = 0, nk = 0, nn_ = 0;
  for (int i = 0; i < a.rank; i++) {
    char l = a.l[i];
    if (strchr(b.l, l)) {
      if (strchr(need, l)) bat[nb++] = l;
      else kk[nk++] = l;
    } else {
      mm[nm++] = l;
    }
  }
  for (int i = 0; i < b.rank; i++)
    if (!strchr(a.l, b.l[i])) nn[nn_++] = b.l[i];
  char ao[2 * KILN_MAX_RANK + 1], bo[2 * KILN_MAX_RANK + 1];
  snprintf(ao, sizeof ao, "%s%s%s", bat, mm, kk);
  snprintf(bo, sizeof bo, "%s%s%s", bat, kk, nn);
  /* broadcast size-1 batch dimensions to the other side's size */
  kg_shape bs = {.rank = nb};
  int64_t B = 1, M = 1, K = 1, N = 1;
  for (int i = 0; i < nb; i++) {
    int64_t da = dim_of(c, &a, bat[i]), db = dim_of(c, &b, bat[i]);
    bs.dim[i] = da > db ? da : db;
    B *= bs.dim[i];
  }
  for (int i = 0; i < nm; i++) M *= dim_of(c, &a, mm[i]);
  for (int i = 0; i < nk; i++) K *= dim_of(c, &a, kk[i]);
  for (int i = 0; i < nn_; i++) N *= dim_of(c, &b, nn[i]);
  permute_to(c, &a, ao);
  permute_to(c, &b, bo);
  kg_ref av = a.v, bv = b.v;
  kg_shape full_a = ox_type(c, av)->shape, full_b = ox_type(c, bv)->shape;
  for (int i = 0; i < nb; i++) full_a.dim[i] = full_b.dim[i] = bs.dim[i];
  if (!c->g.failed) {
    av = kb_broadcast(&c->g, av, &full_a);
    bv = kb_broadcast(&c->g, bv, &full_b);
  }
  av = ox_reshape(c, av, &(kg_shape){3, {B, M, K}});
  bv = ox_reshape(c, bv, &(kg_shape){3, {B, K, N}});
  kg_ref in[2] = {av, bv};
  kg_ref r = kb_node(&c->g, KC_OP_MATMUL, in, 2, NULL, 0);
  eterm o = {.rank = nb + nm + nn_};
  snprintf(o.l, sizeof o.l, "%s%s%s", bat, mm, nn);
  kg_shape os = {.rank = o.rank};
  for (int i = 0; i < o.rank; i++) {
    char l = o.l[i];
    os.dim[i] = i < nb ? bs.dim[i] : i < nb + nm ? dim_of(c, &a, l) : dim_of(c, &b, l);
  }
  o.v = ox_reshape(c, r, &os);
  return o;
}

static bool cv_einsum(ox_ctx *c, ox_node *n) {
  const char *eq = ox_attr_string(c, n, "equation", NULL);
  if (!eq) return ox_fail(c, n, "needs the attribute 'equation'");
  if (n->n_in < 1 || n->n_in > 8) return ox_fail(c, n, "supports 1 to 8 inputs");
  const char *arrow = strstr(eq, "->");
  size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
  /* split the left-hand side into terms; E = the widest ellipsis */
  const char *tb[8];
  size_t tl[8];
  int nt = 0, E = 0;
  for (const char *p = eq;;) {
    const char *comma = memchr(p, ',', lhs_len - (size_t)(p - eq));
    if (nt == 8) return ox_fail(c, n, "the equation has more terms than inputs");
    tb[nt] = p;
    tl[nt] = comma ? (size_t)(comma - p) : lhs_len - (size_t)(p - eq);
    nt++;
    if (!comma) break;
    p = comma + 1;
  }
  if (nt != n->n_in) return ox_fail(c, n, "the equation names %d operands, the node has %d", nt, n->n_in);
  eterm t[8];
  for (int k = 0; k < nt; k++) {
    if (!need_input(c, n, k)) return false;
    t[k].v = n->in[k];
    t[k].rank = ox_type(c, n->in[k])->shape.rank;
    if (memchr(tb[k], '.', tl[k]) && t[k].rank - count_letters(tb[k], tl[k]) > E)
      E = t[k].rank - count_letters(tb[k], tl[k]);
  }
  for (int k = 0; k < nt; k++)
    if (!parse_term(c, n, tb[k], tl[k], t[k].rank, E, t[k].l)) return false;
  char outl[KILN_MAX_RANK + 1];
  if (arrow) {
    if (!parse_term(c, n, arrow + 2, strlen(arrow + 2), -1, E, outl)) return false;
  } else {
    /* implicit output: the ellipsis, then the letters seen once, sorted */
    int no = 0;
    for (int i = 0; i < E; i++) outl[no++] = (char)('0' + i);
    for (char l = 'A'; l <= 'z'; l++) {
      int seen = 0;
      for (int k = 0; k < nt; k++)
        for (int i = 0; i < t[k].rank; i++) seen += t[k].l[i] == l;
      if (seen == 1 && no < KILN_MAX_RANK) outl[no++] = l;
    }
    outl[no] = 0;
  }
  for (int k = 0; k < nt; k++) take_diagonals(c, &t[k]);
  for (int k = 0; k < nt; k++) sum_private(c, &t[k], t, nt, k, outl);
  eterm acc = t[0];
  for (int k = 1; k < nt && !c->g.failed; k++) {
    /* letters still needed: the output's and the later terms' */
    char need[64];
    snprintf(need, sizeof need, "%s", outl);
    for (int j = k + 1; j < nt; j++) strncat(need, t[j].l, sizeof need - strlen(need) - 1);
    acc = contract(c, acc, t[k], need);
    sum_private(c, &acc, t + k + 1, nt - k - 1, -1, outl);
  }
  if (c->g.failed) return false;
  if ((int)strlen(outl) != acc.rank) return ox_fail(c, n, "output indices do not match the inputs");
  for (int i = 0; i < acc.rank; i++)
    if (!strchr(acc.l, outl[i])) return ox_fail(c, n, "output index '%c' is not in any input", outl[i]);
  permute_to(c, &acc, outl);
  if (acc.v.node == n->in[0].node && acc.v.index == n->in[0].index) acc.v = kb_unary(&c->g, KC_OP_IDENTITY, acc.v);
  return set(c, n, acc.v);
}

/* ======================================================================
 * Det
 * ====================================================================== */

/* Det of [..., n, n] for n <= 3 by its closed form (the Leibniz sum) over
 * the n*n elements, each gathered from the flattened matrices; larger n
 * would need a factorization kiln does not have. */
static bool cv_det(ox_ctx *c, ox_node *n) {
  if (!need_input(c, n, 0)) return false;
  const kg_type *t = ox_type(c, n->in[0]);
  kg_shape s = t->shape;
  kiln_dtype dt = t->dtype;
  if (!kg_dtype_is_float(dt)) return ox_fail(c, n, "input must be float or double");
  if (s.rank < 2 || s.dim[s.rank - 1] != s.dim[s.rank - 2]) return ox_fail(c, n, "input must be [..., n, n]");
  int64_t m = s.dim[s.rank - 1];
  if (m < 1 || m > 3) return ox_fail(c, n, "only matrices up to 3x3 are supported (got %lldx%lld)", (long long)m, (long long)m);
  kg_shape flat = s, scalar = {0};
  flat.rank--;
  flat.dim[flat.rank - 1] = m * m;
  kg_ref x = ox_reshape(c, n->in[0], &flat), e[9];
  kg_attr a = kb_attr_int("axis", flat.rank - 1);
  for (int k = 0; k < m * m; k++) {
    kg_ref in[2] = {x, ox_const_from(c, KILN_I64, &scalar, (double[]){k})};
    e[k] = kb_node(&c->g, KC_OP_GATHER, in, 2, &a, 1);
  }
  static const char *forms[] = {
      "x0",
      "sub(mul(x0, x3), mul(x1, x2))",
      "sub(add(add(mul(mul(x0, x4), x8), mul(mul(x1, x5), x6)), mul(mul(x2, x3), x7)), "
      "add(add(mul(mul(x2, x4), x6), mul(mul(x0, x5), x7)), mul(mul(x1, x3), x8)))",
  };
  kg_ref r = ox_expr(c, forms[m - 1], e, (int)(m * m), dt);
  return set(c, n, r);
}

const ox_op ox_ops_reduce[] = {
    {"Det", cv_det},
    {"ReduceSum", cv_reduce_sum},
    {"ReduceMean", cv_reduce_mean},
    {"ReduceMax", cv_reduce_max},
    {"ReduceMin", cv_reduce_min},
    {"ReduceProd", cv_reduce_prod},
    {"ReduceL1", cv_reduce_l1},
    {"ReduceL2", cv_reduce_l2},
    {"ReduceLogSum", cv_reduce_log_sum},
    {"ReduceLogSumExp", cv_reduce_log_sum_exp},
    {"ReduceSumSquare", cv_reduce_sum_square},
    {"ArgMax", cv_argmax},
    {"ArgMin", cv_argmin},
    {"NegativeLogLikelihoodLoss", cv_nll_loss},
    {"SoftmaxCrossEntropyLoss", cv_sce_loss},
    {"TopK", cv_top_k},
    {"Einsum", cv_einsum},
    {NULL, NULL},
};
