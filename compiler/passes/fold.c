/* fold.c — constant folding (see fold.h).
 *
 * Elementwise nodes (ops with a scalar expression, and fused nodes) are
 * evaluated by an interpreter of ir/expr.h that follows the loop emitter's
 * dtype rules: a subexpression computes in the dtype of its first operand,
 * numbers take their context's dtype, integer division floors, x/0 = 0.
 * Data movement (reshape, transpose, concat, slice, gather, broadcast) and
 * the plain reductions are folded by index arithmetic.  Anything else — and
 * anything stateful or random — is left alone. */
#include "passes/fold.h"
#include "ir/expr.h"
#include "ir/ops.h"
#include "ops/ops_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void kg_tensor_set(kg_tensor *t, int64_t i, double f, int64_t v) {
  void *p = t->data;
  switch (t->type.dtype) {
  case KILN_BOOL: ((_Bool *)p)[i] = v != 0; break;
  case KILN_I8: ((int8_t *)p)[i] = (int8_t)v; break;
  case KILN_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  case KILN_I32: ((int32_t *)p)[i] = (int32_t)v; break;
  case KILN_I64: ((int64_t *)p)[i] = v; break;
  case KILN_F32: ((float *)p)[i] = (float)f; break;
  case KILN_F64: ((double *)p)[i] = f; break;
  default: break;
  }
}

/* ---- the scalar interpreter ---- */

typedef struct sval {
  kiln_dtype dt;
  double f;  /* float dtypes */
  int64_t i; /* integers and bool */
} sval;

typedef struct eval_ctx {
  int n;
  const kg_tensor **in;
  int64_t *idx; /* per operand: the element read for the current output */
  kiln_dtype out_dt;
  kc_expr_typing typing; /* the operands' dtypes, for ir/expr.h's rules */
} eval_ctx;

static bool is_f(kiln_dtype d) { return kg_dtype_is_float(d); }

/* Wraps an integer to its dtype's width (as the machine would). */
static int64_t wrap(kiln_dtype dt, int64_t v) {
  switch (dt) {
  case KILN_BOOL: return v != 0;
  case KILN_I8: return (int8_t)v;
  case KILN_U8: return (uint8_t)v;
  case KILN_I32: return (int32_t)v;
  default: return v;
  }
}

static sval mk(kiln_dtype dt, double f, int64_t i) {
  sval s = {dt, 0, 0};
  if (is_f(dt)) s.f = dt == KILN_F32 ? (double)(float)f : f;
  else s.i = wrap(dt, i);
  return s;
}

static double as_f(sval v) { return is_f(v.dt) ? v.f : (double)v.i; }

static sval convert(sval v, kiln_dtype to) {
  if (is_f(to)) return mk(to, as_f(v), 0);
  if (to == KILN_BOOL) return mk(to, 0, is_f(v.dt) ? v.f != 0 : v.i != 0);
  if (is_f(v.dt)) {
    /* out of range is poison in LLVM; 0 here, never UB in the compiler */
    if (!(v.f > -9.2e18 && v.f < 9.2e18)) return mk(to, 0, 0);
    return mk(to, 0, (int64_t)v.f);
  }
  return mk(to, 0, v.i);
}

static int64_t floordiv(int64_t a, int64_t b, bool want_mod) {
  if (b == 0) return 0;
  if (b == -1) return want_mod ? 0 : (int64_t)(0 - (uint64_t)a);
  int64_t q = a / b, r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) {
    q -= 1;
    r += b;
  }
  return want_mod ? r : q;
}

/* NumPy's shifts, as kl_prim lowers them: a count outside [0, bits) gives
 * 0, or -1 for a right shift of a negative signed value. */
static int64_t shift(kiln_dtype dt, bool left, int64_t u, int64_t v) {
  uint64_t bits = kg_dtype_size(dt) * 8;
  bool sgn = kg_dtype_is_signed(dt);
  if ((uint64_t)v >= bits) return !left && sgn && u < 0 ? -1 : 0;
  if (left) return (int64_t)((uint64_t)u << v);
  return sgn ? u >> v : (int64_t)((uint64_t)u >> v);
}

static bool prim(const char *p, kiln_dtype dt, kiln_dtype out, const sval *a, sval *r) {
  bool f = is_f(dt);
  double x = f ? a[0].f : 0, y = f && a[1].dt == dt ? a[1].f : 0;
  int64_t u = a[0].i, v = a[1].i;
  bool uns = !kg_dtype_is_signed(dt);
#define BIN(name, fe, ie) if (!strcmp(p, name)) { *r = mk(dt, f ? (fe) : 0, f ? 0 : (ie)); return true; }
  BIN("add", x + y, (int64_t)((uint64_t)u + (uint64_t)v))
  BIN("sub", x - y, (int64_t)((uint64_t)u - (uint64_t)v))
  BIN("mul", x * y, (int64_t)((uint64_t)u * (uint64_t)v))
  BIN("div", x / y, uns && v ? (int64_t)((uint64_t)u / (uint64_t)v) : floordiv(u, v, false))
  BIN("mod", (fmod(x, y) != 0 && ((fmod(x, y) < 0) != (y < 0))) ? fmod(x, y) + y : fmod(x, y),
      uns && v ? (int64_t)((uint64_t)u % (uint64_t)v) : floordiv(u, v, true))
  BIN("pow", pow(x, y), (int64_t)llround(pow((double)u, (double)v)))
  BIN("max", isnan(x) || isnan(y) ? NAN : fmax(x, y), u > v ? u : v)
  BIN("min", isnan(x) || isnan(y) ? NAN : fmin(x, y), u < v ? u : v)
  BIN("neg", -x, (int64_t)(0 - (uint64_t)u))
  BIN("abs", fabs(x), uns ? u : (u < 0 ? (int64_t)(0 - (uint64_t)u) : u))
  BIN("sqrt", sqrt(x), 0)
  BIN("floor", floor(x), u)
  BIN("ceil", ceil(x), u)
  BIN("exp", exp(x), 0)
  BIN("log", log(x), 0)
  BIN("tanh", tanh(x), 0)
  BIN("sin", sin(x), 0)
  BIN("cos", cos(x), 0)
  BIN("erf", erf(x), 0)
  BIN("round", nearbyint(x), u) /* the default rounding mode: half to even */
  BIN("trunc", trunc(x), u)
  BIN("tan", tan(x), 0)
  BIN("asin", asin(x), 0)
  BIN("acos", acos(x), 0)
  BIN("atan", atan(x), 0)
  BIN("sinh", sinh(x), 0)
  BIN("cosh", cosh(x), 0)
  BIN("asinh", asinh(x), 0)
  BIN("acosh", acosh(x), 0)
  BIN("atanh", atanh(x), 0)
  if (!strcmp(p, "shl") || !strcmp(p, "shr")) {
    *r = mk(dt, 0, shift(dt, p[2] == 'l', u, v));
    return true;
  }
  BIN("not", 0, dt == KILN_BOOL ? !u : ~u)
  BIN("and", 0, u & v)
  BIN("or", 0, u | v)
  BIN("xor", 0, u ^ v)
#undef BIN
  if (!strcmp(p, "select")) {
    *r = a[0].i ? a[1] : a[2];
    return true;
  }
  if (!strcmp(p, "cast")) {
    *r = convert(a[0], out);
    return true;
  }
  static const char *cmps[] = {"lt", "le", "gt", "ge", "eq", "ne"};
  for (int k = 0; k < 6; k++)
    if (!strcmp(p, cmps[k])) {
      int c;
      if (f) c = k == 0 ? x < y : k == 1 ? x <= y : k == 2 ? x > y : k == 3 ? x >= y : k == 4 ? x == y : x != y;
      else if (uns) {
        uint64_t s = (uint64_t)u, t = (uint64_t)v;
        c = k == 0 ? s < t : k == 1 ? s <= t : k == 2 ? s > t : k == 3 ? s >= t : k == 4 ? s == t : s != t;
      } else c = k == 0 ? u < v : k == 1 ? u <= v : k == 2 ? u > v : k == 3 ? u >= v : k == 4 ? u == v : u != v;
      *r = mk(KILN_BOOL, 0, c);
      return true;
    }
  return false; /* a primitive the folder does not know: leave the node */
}

static bool eval(const eval_ctx *c, const kc_expr *e, kiln_dtype hint, sval *out) {
  if (e->hint >= 0) hint = (kiln_dtype)e->hint;
  if (e->kind == KC_EXPR_VAR) {
    const kg_tensor *t = c->in[e->var];
    int64_t i = c->idx[e->var];
    kiln_dtype dt = t->type.dtype;
    *out = is_f(dt) ? mk(dt, kg_tensor_get_f(t, i), 0) : mk(dt, 0, kg_tensor_get_i(t, i));
    return true;
  }
  if (e->kind == KC_EXPR_NUM) {
    *out = is_f(hint) ? mk(hint, e->num, 0) : mk(hint, 0, (int64_t)e->num);
    return true;
  }
  bool sel = !strcmp(e->prim, "select");
  kiln_dtype arg_hint = kc_expr_arg_hint(&c->typing, e, hint);
  sval a[3] = {{0}};
  kiln_dtype dts[3] = {hint, hint, hint}, res;
  for (int i = 0; i < e->n_args; i++) {
    if (!eval(c, e->args[i], sel && i == 0 ? KILN_BOOL : arg_hint, &a[i])) return false;
    dts[i] = a[i].dt;
  }
  kiln_dtype dt = kc_expr_call_dtype(&c->typing, e, dts, &res);
  return prim(e->prim, dt, res, a, out);
}

/* ---- index helpers ---- */

static void unravel(const kg_shape *s, int64_t lin, int64_t *coord) {
  for (int d = s->rank - 1; d >= 0; d--) {
    coord[d] = s->dim[d] ? lin % s->dim[d] : 0;
    if (s->dim[d]) lin /= s->dim[d];
  }
}

static int64_t ravel(const kg_shape *s, const int64_t *coord) {
  int64_t lin = 0;
  for (int d = 0; d < s->rank; d++) lin = lin * s->dim[d] + coord[d];
  return lin;
}

/* Index into operand shape `in` for output coordinate `oc` of shape `out`,
 * NumPy-broadcast (right-aligned, size-1 dims repeat). */
static int64_t bcast_index(const kg_shape *in, const kg_shape *out, const int64_t *oc) {
  int64_t lin = 0;
  int off = out->rank - in->rank;
  for (int d = 0; d < in->rank; d++) lin = lin * in->dim[d] + (in->dim[d] == 1 ? 0 : oc[d + off]);
  return lin;
}

static void copy_elem(kg_tensor *dst, int64_t i, const kg_tensor *src, int64_t j) {
  size_t es = kg_dtype_size(dst->type.dtype);
  memcpy((char *)dst->data + (size_t)i * es, (const char *)src->data + (size_t)j * es, es);
}

/* ---- per-op folding: fills r from the operand literals; false = leave ---- */

static bool fold_elementwise(kg_module *m, const kg_node *n, const kg_tensor **in, kg_tensor *r) {
  char err[128];
  const kc_expr *e = kc_node_expr(m->arena, n, err, sizeof err);
  if (!e) return false;
  int64_t idx[16], coord[KILN_MAX_RANK];
  if (n->n_in > 16) return false;
  kiln_dtype var_dt[16];
  for (int k = 0; k < n->n_in; k++) var_dt[k] = in[k]->type.dtype;
  eval_ctx c = {n->n_in, in, idx, r->type.dtype, {var_dt, r->type.dtype}};
  int64_t total = kg_shape_numel(&r->type.shape);
  for (int64_t i = 0; i < total; i++) {
    unravel(&r->type.shape, i, coord);
    for (int k = 0; k < n->n_in; k++) idx[k] = bcast_index(&in[k]->type.shape, &r->type.shape, coord);
    sval v;
    if (!eval(&c, e, r->type.dtype, &v)) return false;
    v = convert(v, r->type.dtype);
    kg_tensor_set(r, i, v.f, v.i);
  }
  return true;
}

static bool fold_transpose(const kg_node *n, const kg_tensor *x, kg_tensor *r) {
  int rank = x->type.shape.rank, cnt;
  const int64_t *perm;
  int64_t p[KILN_MAX_RANK], oc[KILN_MAX_RANK], ic[KILN_MAX_RANK];
  if (kc_attr_ints(n, "perm", &cnt, &perm) && cnt == rank)
    for (int d = 0; d < rank; d++) p[d] = perm[d];
  else
    for (int d = 0; d < rank; d++) p[d] = rank - 1 - d;
  int64_t total = kg_shape_numel(&r->type.shape);
  for (int64_t i = 0; i < total; i++) {
    unravel(&r->type.shape, i, oc);
    for (int d = 0; d < rank; d++) ic[p[d]] = oc[d];
    copy_elem(r, i, x, ravel(&x->type.shape, ic));
  }
  return true;
}

static bool fold_concat(const kg_node *n, const kg_tensor **in, kg_tensor *r) {
  int rank = r->type.shape.rank;
  int64_t axis = kg_attr_int(n, "axis", 0);
  if (axis < 0) axis += rank;
  int64_t oc[KILN_MAX_RANK], total = kg_shape_numel(&r->type.shape);
  for (int64_t i = 0; i < total; i++) {
    unravel(&r->type.shape, i, oc);
    int k = 0;
    while (k < n->n_in - 1 && oc[axis] >= in[k]->type.shape.dim[axis]) oc[axis] -= in[k++]->type.shape.dim[axis];
    copy_elem(r, i, in[k], ravel(&in[k]->type.shape, oc));
  }
  return true;
}

static bool fold_slice(const kg_node *n, const kg_tensor *x, kg_tensor *r) {
  int cnt;
  const int64_t *begin;
  if (!kc_attr_ints(n, "begin", &cnt, &begin) || cnt != x->type.shape.rank) return false;
  int64_t oc[KILN_MAX_RANK], total = kg_shape_numel(&r->type.shape);
  for (int64_t i = 0; i < total; i++) {
    unravel(&r->type.shape, i, oc);
    for (int d = 0; d < cnt; d++) oc[d] += begin[d];
    copy_elem(r, i, x, ravel(&x->type.shape, oc));
  }
  return true;
}

static bool fold_gather(const kg_node *n, const kg_tensor *x, const kg_tensor *ind, kg_tensor *r) {
  const kg_shape *ps = &x->type.shape, *is = &ind->type.shape;
  int64_t axis = kg_attr_int(n, "axis", 0);
  if (axis < 0) axis += ps->rank;
  int64_t oc[KILN_MAX_RANK], ic[KILN_MAX_RANK], jc[KILN_MAX_RANK], total = kg_shape_numel(&r->type.shape);
  for (int64_t i = 0; i < total; i++) {
    unravel(&r->type.shape, i, oc);
    for (int d = 0; d < is->rank; d++) jc[d] = oc[axis + d];
    int64_t at = kg_tensor_get_i(ind, ravel(is, jc));
    if (at < 0 || at >= ps->dim[axis]) return false; /* the run-time check reports it */
    for (int d = 0; d < axis; d++) ic[d] = oc[d];
    ic[axis] = at;
    for (int d = axis + 1; d < ps->rank; d++) ic[d] = oc[d - 1 + is->rank];
    copy_elem(r, i, x, ravel(ps, ic));
  }
  return true;
}

static bool fold_broadcast(const kg_tensor *x, kg_tensor *r) {
  int64_t oc[KILN_MAX_RANK], total = kg_shape_numel(&r->type.shape);
  for (int64_t i = 0; i < total; i++) {
    unravel(&r->type.shape, i, oc);
    copy_elem(r, i, x, bcast_index(&x->type.shape, &r->type.shape, oc));
  }
  return true;
}

static bool fold_reduce(const kg_node *n, const kg_tensor *x, kg_tensor *r) {
  const kg_shape *xs = &x->type.shape;
  bool red[KILN_MAX_RANK];
  int cnt;
  const int64_t *axes;
  bool all = !kc_attr_ints(n, "axes", &cnt, &axes);
  for (int d = 0; d < xs->rank; d++) red[d] = all;
  for (int k = 0; !all && k < cnt; k++) red[axes[k] < 0 ? axes[k] + xs->rank : axes[k]] = true;
  /* the result with every reduced dim kept as 1, whatever keepdims says */
  kg_shape ks = *xs;
  for (int d = 0; d < xs->rank; d++)
    if (red[d]) ks.dim[d] = 1;
  int64_t total = kg_shape_numel(&ks);
  double *acc = calloc((size_t)(total ? total : 1), sizeof *acc);
  if (!acc) return false;
  int op = n->op;
  for (int64_t i = 0; i < total; i++)
    acc[i] = op == KC_OP_PROD ? 1 : op == KC_OP_MAX ? -INFINITY : op == KC_OP_MIN ? INFINITY : 0;
  int64_t xc[KILN_MAX_RANK], xtotal = kg_shape_numel(xs);
  for (int64_t i = 0; i < xtotal; i++) {
    unravel(xs, i, xc);
    for (int d = 0; d < xs->rank; d++)
      if (red[d]) xc[d] = 0;
    int64_t j = ravel(&ks, xc);
    double v = kg_tensor_get_f(x, i);
    if (op == KC_OP_SUM) acc[j] += v;
    else if (op == KC_OP_PROD) acc[j] *= v;
    else if (op == KC_OP_MAX) acc[j] = isnan(v) || v > acc[j] ? v : acc[j];
    else acc[j] = isnan(v) || v < acc[j] ? v : acc[j];
  }
  for (int64_t i = 0; i < total; i++) kg_tensor_set(r, i, acc[i], (int64_t)acc[i]);
  free(acc);
  return true;
}

static bool foldable_op(int op) {
  if (kc_ops[op].flags & (KC_OP_STATEFUL | KC_OP_RANDOM | KC_OP_NO_OUTPUT)) return false;
  if (kc_ops[op].flags & KC_OP_ELEMENTWISE) return true;
  switch (op) {
  case KC_OP_RESHAPE: case KC_OP_EXPAND_DIMS: case KC_OP_SQUEEZE: case KC_OP_IDENTITY:
  case KC_OP_STOP_GRADIENT: case KC_OP_TRANSPOSE: case KC_OP_CONCAT: case KC_OP_SLICE:
  case KC_OP_GATHER: case KC_OP_BROADCAST_TO: case KC_OP_FILL: case KC_OP_ZEROS: case KC_OP_ONES:
  case KC_OP_SUM: case KC_OP_PROD: case KC_OP_MAX: case KC_OP_MIN:
    return true;
  default:
    return false;
  }
}

bool kc_fold_node(kg_module *m, int idx) {
  kg_node *n = &m->nodes[idx];
  if (n->dead || n->n_out != 1 || n->op == KC_OP_CONST || !foldable_op(n->op)) return false;
  const kg_tensor *in[64];
  if (n->n_in > 64) return false;
  for (int k = 0; k < n->n_in; k++) {
    const kg_node *src = &m->nodes[n->in[k].node];
    if (src->op != KC_OP_CONST) return false;
    in[k] = &kg_node_attr(src, "value")->tensor;
  }
  kg_tensor r = {.type = n->out[0]};
  int64_t numel = kg_shape_numel(&r.type.shape);
  if (numel > KC_FOLD_MAX_ELEMS) return false;
  r.data = kc_alloc(m->arena, (size_t)kg_type_bytes(&r.type) + 1);
  bool ok;
  switch (n->op) {
  case KC_OP_RESHAPE: case KC_OP_EXPAND_DIMS: case KC_OP_SQUEEZE: case KC_OP_IDENTITY: case KC_OP_STOP_GRADIENT:
    memcpy(r.data, in[0]->data, (size_t)kg_type_bytes(&r.type));
    ok = true;
    break;
  case KC_OP_TRANSPOSE: ok = fold_transpose(n, in[0], &r); break;
  case KC_OP_CONCAT: ok = fold_concat(n, in, &r); break;
  case KC_OP_SLICE: ok = fold_slice(n, in[0], &r); break;
  case KC_OP_GATHER: ok = fold_gather(n, in[0], in[1], &r); break;
  case KC_OP_BROADCAST_TO: case KC_OP_FILL: ok = fold_broadcast(in[0], &r); break;
  case KC_OP_ZEROS: case KC_OP_ONES:
    for (int64_t i = 0; i < numel; i++) kg_tensor_set(&r, i, n->op == KC_OP_ONES, n->op == KC_OP_ONES);
    ok = true;
    break;
  case KC_OP_SUM: case KC_OP_PROD: case KC_OP_MAX: case KC_OP_MIN: ok = fold_reduce(n, in[0], &r); break;
  default: ok = fold_elementwise(m, n, in, &r); break;
  }
  if (!ok) return false;
  kg_attr *a = kc_alloc(m->arena, sizeof *a);
  a->name = "value";
  a->kind = KG_ATTR_TENSOR;
  a->loc = n->loc;
  a->tensor = r;
  n->op = KC_OP_CONST;
  n->n_in = 0;
  n->n_attrs = 1;
  n->attrs = a;
  n->out_declared = true;
  return true;
}
