/* ops_shape.c — ONNX data-movement and shape ops on kiln's shape ops.
 *
 * kiln's shapes are static, so every operand that decides a shape (Reshape's
 * shape, Slice's starts/ends, Tile's repeats, ...) must be a compile-time
 * constant; the converters compute the resulting static shapes themselves
 * (ONNX's 0-copies-a-dimension, -1, negative and clamped indices) and hand
 * kiln plain attributes.  Shape and Size become constants.
 *
 * Index-driven ops (Gather with negative indices, GatherElements, GatherND,
 * ScatterElements, ScatterND, ReverseSequence) are rewritten onto kiln's
 * gather / scatter_add over the flattened data: a flat index is computed
 * elementwise (constant parts folded at import), so no new kiln op is
 * needed.  Padding modes reflect/edge/wrap, Compress, Resize/Upsample
 * (nearest: one gather; linear/cubic: a gather per tap times constant
 * weights) and Slice with steps over constants are gathers with constant
 * indices, which fold when the data is constant too.  CumSum is a
 * logarithmic scan of shifted adds. */
#include "frontends/onnx/ox.h"
#include "ops/ops_util.h"
#include "passes/fold.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ---- */

static bool set(ox_ctx *c, ox_node *n, kg_ref r) {
  n->out[0] = r;
  return !c->g.failed;
}

static bool need(ox_ctx *c, ox_node *n, int k) {
  for (int i = 0; i < k; i++)
    if (!ox_has(n, i)) return ox_fail(c, n, "input %d is required", i);
  return true;
}

/* Fails naming operand i that kiln needs as a constant. */
static bool not_const(ox_ctx *c, ox_node *n, int i) {
  return ox_fail(c, n, "input %d ('%s') must be known at compile time (kiln compiles static shapes; it is computed from a graph input)",
                 i, i < n->n_in ? n->p->input[i] : "");
}

static kg_shape shape_of(ox_ctx *c, kg_ref r) { return ox_type(c, r)->shape; }

static int64_t prod(const int64_t *v, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; i++) p *= v[i];
  return p;
}

static void row_strides(const kg_shape *s, int64_t *st) {
  int64_t k = 1;
  for (int d = s->rank - 1; d >= 0; d--) {
    st[d] = k;
    k *= s->dim[d];
  }
}

static int64_t *new_ints(ox_ctx *c, int64_t n) {
  return kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
}

/* An integer (or bool) constant of dtype dt and shape s from int64 values:
 * exact, unlike ox_const_from's doubles. */
static kg_ref const_ints(ox_ctx *c, kiln_dtype dt, const kg_shape *s, const int64_t *v) {
  kg_tensor t = {.type = {dt, *s}};
  int64_t n = kg_shape_numel(s);
  t.data = kc_alloc(c->m->arena, (size_t)kg_type_bytes(&t.type) + 1);
  for (int64_t i = 0; i < n; i++) kg_tensor_set(&t, i, (double)v[i], v[i]);
  return ox_tensor_const(c, &t);
}

static kg_ref vec_i64(ox_ctx *c, const int64_t *v, int n) {
  kg_shape s = {1, {n}};
  return const_ints(c, KILN_I64, &s, v);
}

/* An integer list from input i when given, else from attribute `attr`
 * (ops moved their lists from attributes to inputs across opsets). */
static bool ints_arg(ox_ctx *c, ox_node *n, int i, const char *attr, int64_t **v, int *cnt, bool *given) {
  *given = false;
  *cnt = 0;
  if (ox_has(n, i)) {
    if (!ox_const_ints(c, n, i, v, cnt)) return false;
    *given = true;
    return true;
  }
  const int64_t *a = attr ? ox_attr_ints(n, attr, cnt) : NULL;
  if (attr && ox_attr(n, attr)) {
    *v = new_ints(c, *cnt);
    if (*cnt) memcpy(*v, a, sizeof(int64_t) * (size_t)*cnt);
    *given = true;
  }
  return true;
}

/* One integer scalar from constant input i (rank 0 or one element). */
static bool const_scalar_i(ox_ctx *c, ox_node *n, int i, int64_t *out) {
  int64_t *v;
  int cnt;
  if (!ox_const_ints(c, n, i, &v, &cnt)) return false;
  if (cnt != 1) return ox_fail(c, n, "input %d must hold one value, not %d", i, cnt);
  *out = v[0];
  return true;
}

static kg_ref slice_node(ox_ctx *c, kg_ref x, const int64_t *begin, const int64_t *size, int rank) {
  kg_attr a[2] = {kb_attr_ints(&c->g, "begin", begin, rank), kb_attr_ints(&c->g, "size", size, rank)};
  return kb_node(&c->g, KC_OP_SLICE, &x, 1, a, 2);
}

static kg_ref gather_node(ox_ctx *c, kg_ref x, kg_ref idx, int axis) {
  kg_ref in[2] = {x, idx};
  kg_attr a = kb_attr_int("axis", axis);
  return kb_node(&c->g, KC_OP_GATHER, in, 2, &a, 1);
}

/* x indexed along axis by a constant list of in-range indices. */
static kg_ref take(ox_ctx *c, kg_ref x, int axis, const int64_t *idx, int64_t cnt) {
  kg_shape s = {1, {cnt}};
  return gather_node(c, x, const_ints(c, KILN_I64, &s, idx), axis);
}

/* Integer indices with ONNX's negative values counted from the end (dim
 * added): exact at run time, one fused elementwise node. */
static kg_ref wrap_negative(ox_ctx *c, kg_ref idx, int64_t dim) {
  char e[120];
  snprintf(e, sizeof e, "select(lt(x0, 0), add(x0, %lld), x0)", (long long)dim);
  return ox_expr(c, e, &idx, 1, ox_type(c, idx)->dtype);
}

/* ---- Reshape, Shape, Size, Flatten, Squeeze, Unsqueeze ---- */

static bool cv_reshape(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  int64_t *v;
  int cnt;
  bool given;
  if (!ints_arg(c, n, 1, "shape", &v, &cnt, &given)) return false;
  if (!given) return ox_fail(c, n, "needs a shape");
  if (cnt > KILN_MAX_RANK) return ox_fail(c, n, "shape has %d dimensions; kiln supports at most %d", cnt, KILN_MAX_RANK);
  kg_shape in = shape_of(c, n->in[0]), s = {.rank = cnt};
  bool allowzero = ox_attr_int(n, "allowzero", 0) != 0;
  int unknown = -1;
  int64_t known = 1;
  for (int i = 0; i < cnt; i++) {
    int64_t d = v[i];
    if (d == 0 && !allowzero) {
      if (i >= in.rank) return ox_fail(c, n, "shape entry %d is 0 (copy), but the input has rank %d", i, in.rank);
      d = in.dim[i];
    }
    if (d == -1) {
      if (unknown >= 0) return ox_fail(c, n, "shape has more than one -1");
      unknown = i;
      continue;
    }
    if (d < 0) return ox_fail(c, n, "shape entry %d is %lld", i, (long long)d);
    s.dim[i] = d;
    known *= d;
  }
  int64_t total = kg_shape_numel(&in);
  if (unknown >= 0) {
    if (known == 0 || total % known) return ox_fail(c, n, "cannot infer the -1 of the shape (%lld elements)", (long long)total);
    s.dim[unknown] = total / known;
  } else if (known != total) {
    return ox_fail(c, n, "cannot reshape %lld elements into %lld", (long long)total, (long long)known);
  }
  return set(c, n, ox_reshape(c, n->in[0], &s));
}

static int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }

static bool cv_shape(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  int64_t r = s.rank, start = ox_attr_int(n, "start", 0), end = ox_attr_int(n, "end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = clamp64(start, 0, r);
  end = clamp64(end, 0, r);
  int len = end > start ? (int)(end - start) : 0;
  return set(c, n, vec_i64(c, s.dim + start, len));
}

static bool cv_size(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  kg_shape s = shape_of(c, n->in[0]), scalar = {0};
  int64_t cnt = kg_shape_numel(&s);
  return set(c, n, const_ints(c, KILN_I64, &scalar, &cnt));
}

static bool cv_flatten(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  int64_t axis = ox_attr_int(n, "axis", 1);
  if (axis < 0) axis += s.rank;
  if (axis < 0 || axis > s.rank) return ox_fail(c, n, "axis %lld is out of range for rank %d", (long long)ox_attr_int(n, "axis", 1), s.rank);
  kg_shape o = {2, {prod(s.dim, 0, (int)axis), prod(s.dim, (int)axis, s.rank)}};
  return set(c, n, ox_reshape(c, n->in[0], &o));
}

static bool cv_unsqueeze(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  int64_t *v;
  int cnt;
  bool given;
  if (!ints_arg(c, n, 1, "axes", &v, &cnt, &given)) return false;
  if (!given) return ox_fail(c, n, "needs axes");
  kg_shape s = shape_of(c, n->in[0]), o = {.rank = s.rank + cnt};
  if (o.rank > KILN_MAX_RANK) return ox_fail(c, n, "the result would have rank %d; kiln supports at most %d", o.rank, KILN_MAX_RANK);
  bool mark[KILN_MAX_RANK] = {0};
  for (int i = 0; i < cnt; i++) {
    int ax;
    if (!ox_axis(c, n, v[i], o.rank, &ax)) return false;
    if (mark[ax]) return ox_fail(c, n, "axis %lld is given twice", (long long)v[i]);
    mark[ax] = true;
  }
  for (int d = 0, j = 0; d < o.rank; d++) o.dim[d] = mark[d] ? 1 : s.dim[j++];
  return set(c, n, ox_reshape(c, n->in[0], &o));
}

static bool cv_squeeze(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  int64_t *v;
  int cnt;
  bool given;
  if (!ints_arg(c, n, 1, "axes", &v, &cnt, &given)) return false;
  kg_shape s = shape_of(c, n->in[0]), o = {0};
  bool drop[KILN_MAX_RANK] = {0};
  for (int i = 0; i < cnt; i++) {
    int ax;
    if (!ox_axis(c, n, v[i], s.rank, &ax)) return false;
    if (s.dim[ax] != 1) return ox_fail(c, n, "cannot squeeze axis %lld: its size is %lld", (long long)v[i], (long long)s.dim[ax]);
    drop[ax] = true;
  }
  for (int d = 0; d < s.rank; d++)
    if (!(given ? drop[d] : s.dim[d] == 1)) o.dim[o.rank++] = s.dim[d];
  return set(c, n, ox_reshape(c, n->in[0], &o));
}

/* ---- Transpose, Concat, Split ---- */

static bool cv_transpose(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  int r = shape_of(c, n->in[0]).rank, cnt;
  const int64_t *p = ox_attr_ints(n, "perm", &cnt);
  int64_t perm[KILN_MAX_RANK];
  if (p && cnt != r) return ox_fail(c, n, "perm has %d entries for rank %d", cnt, r);
  bool seen[KILN_MAX_RANK] = {0};
  for (int d = 0; d < r; d++) {
    int ax = r - 1 - d;
    if (p && !ox_axis(c, n, p[d], r, &ax)) return false;
    if (seen[ax]) return ox_fail(c, n, "perm is not a permutation");
    seen[ax] = true;
    perm[d] = ax;
  }
  return set(c, n, ox_transpose(c, n->in[0], perm, r));
}

static bool cv_concat(ox_ctx *c, ox_node *n) {
  if (!need(c, n, n->n_in) || n->n_in < 1) return ox_fail(c, n, "needs inputs");
  if (!ox_attr(n, "axis")) return ox_fail(c, n, "attribute 'axis' is required");
  int ax;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), shape_of(c, n->in[0]).rank, &ax)) return false;
  if (n->n_in == 1) return set(c, n, kb_unary(&c->g, KC_OP_IDENTITY, n->in[0]));
  kg_attr a = kb_attr_int("axis", ax);
  return set(c, n, kb_node(&c->g, KC_OP_CONCAT, n->in, n->n_in, &a, 1));
}

static bool cv_split(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  int ax;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), s.rank, &ax)) return false;
  int64_t *sizes;
  int cnt;
  bool given;
  if (!ints_arg(c, n, 1, "split", &sizes, &cnt, &given)) return false;
  int64_t dim = s.dim[ax];
  if (!given) { /* equal parts; the last one smaller when they do not divide (opset 18) */
    cnt = (int)ox_attr_int(n, "num_outputs", n->n_out);
    if (cnt < 1) return ox_fail(c, n, "needs at least one output");
    int64_t chunk = (dim + cnt - 1) / cnt;
    sizes = new_ints(c, cnt);
    for (int i = 0; i < cnt; i++) sizes[i] = i < cnt - 1 ? chunk : dim - chunk * (cnt - 1);
  }
  if (cnt != n->n_out) return ox_fail(c, n, "split has %d parts for %d outputs", cnt, n->n_out);
  int64_t begin[KILN_MAX_RANK] = {0}, size[KILN_MAX_RANK], off = 0;
  for (int i = 0; i < cnt; i++) {
    if (sizes[i] < 0 || off + sizes[i] > dim) return ox_fail(c, n, "split sizes do not fit dimension %lld", (long long)dim);
    memcpy(size, s.dim, sizeof size);
    begin[ax] = off;
    size[ax] = sizes[i];
    n->out[i] = slice_node(c, n->in[0], begin, size, s.rank);
    off += sizes[i];
  }
  if (off != dim) return ox_fail(c, n, "split sizes sum to %lld, not %lld", (long long)off, (long long)dim);
  return !c->g.failed;
}

/* ---- Slice ---- */

/* ONNX's per-axis slice after normalization: first index, step, count. */
typedef struct slice_axis {
  int64_t start, step, count;
} slice_axis;

static slice_axis onnx_slice(int64_t s, int64_t e, int64_t step, int64_t dim) {
  slice_axis a = {0, step, 0};
  if (s < 0) s += dim;
  if (e < 0) e += dim;
  if (step > 0) {
    s = clamp64(s, 0, dim);
    e = clamp64(e, 0, dim);
    a.count = e > s ? (e - s + step - 1) / step : 0;
  } else {
    s = clamp64(s, 0, dim - 1);
    e = clamp64(e, -1, dim - 1);
    a.count = s > e ? (s - e - step - 1) / -step : 0;
  }
  a.start = s;
  return a;
}

/* Slicing with the planned axes: slice for unit steps, gathers with constant
 * indices over constant data (so shape computations fold), strided_slice
 * otherwise. */
static kg_ref apply_slices(ox_ctx *c, kg_ref x, const slice_axis *p, int r) {
  kg_shape s = shape_of(c, x);
  int64_t begin[KILN_MAX_RANK], size[KILN_MAX_RANK], end[KILN_MAX_RANK], strides[KILN_MAX_RANK];
  bool unit = true, empty = false;
  int64_t end_mask = 0;
  for (int d = 0; d < r; d++) {
    unit &= p[d].step == 1;
    empty |= p[d].count == 0;
    begin[d] = p[d].start;
    size[d] = p[d].count;
    strides[d] = p[d].step;
    end[d] = p[d].start + (p[d].count - 1) * p[d].step + (p[d].step > 0 ? 1 : -1);
    if (end[d] < 0) end_mask |= 1ll << d, end[d] = 0;
  }
  if (unit || empty) {
    if (empty) memset(begin, 0, sizeof begin);
    bool whole = true;
    for (int d = 0; d < r; d++) whole &= begin[d] == 0 && size[d] == s.dim[d];
    return whole ? x : slice_node(c, x, begin, size, r);
  }
  if (ox_const(c, x)) {
    for (int d = 0; d < r; d++) {
      if (p[d].step == 1 && p[d].start == 0 && p[d].count == s.dim[d]) continue;
      int64_t *idx = new_ints(c, p[d].count);
      for (int64_t k = 0; k < p[d].count; k++) idx[k] = p[d].start + k * p[d].step;
      x = take(c, x, d, idx, p[d].count);
    }
    return x;
  }
  kg_attr a[4] = {kb_attr_ints(&c->g, "begin", begin, r), kb_attr_ints(&c->g, "end", end, r),
                  kb_attr_ints(&c->g, "strides", strides, r), kb_attr_int("end_mask", end_mask)};
  return kb_node(&c->g, KC_OP_STRIDED_SLICE, &x, 1, a, 4);
}

static bool cv_slice(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  int64_t *st, *en, *axes = NULL, *steps = NULL;
  int ns, ne, na = 0, nst = 0;
  bool g1, g2, g3, g4;
  if (!ints_arg(c, n, 1, "starts", &st, &ns, &g1) || !ints_arg(c, n, 2, "ends", &en, &ne, &g2) ||
      !ints_arg(c, n, 3, "axes", &axes, &na, &g3) || !ints_arg(c, n, 4, NULL, &steps, &nst, &g4))
    return false;
  if (!g1 || !g2) return ox_fail(c, n, "needs starts and ends");
  if (ns != ne || (g3 && na != ns) || (g4 && nst != ns))
    return ox_fail(c, n, "starts, ends, axes and steps must have the same length");
  kg_shape s = shape_of(c, n->in[0]);
  slice_axis p[KILN_MAX_RANK];
  bool seen[KILN_MAX_RANK] = {0};
  for (int d = 0; d < s.rank; d++) p[d] = (slice_axis){0, 1, s.dim[d]};
  for (int k = 0; k < ns; k++) {
    int ax = k;
    if (g3 && !ox_axis(c, n, axes[k], s.rank, &ax)) return false;
    if (!g3 && k >= s.rank) return ox_fail(c, n, "more starts than dimensions");
    if (seen[ax]) return ox_fail(c, n, "axis %d is sliced twice", ax);
    seen[ax] = true;
    int64_t step = g4 ? steps[k] : 1;
    if (step == 0) return ox_fail(c, n, "step 0 for axis %d", ax);
    p[ax] = onnx_slice(st[k], en[k], step, s.dim[ax]);
  }
  return set(c, n, apply_slices(c, n->in[0], p, s.rank));
}

/* ---- Gather, Compress ---- */

static bool cv_gather(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  int ax;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), s.rank, &ax)) return false;
  int64_t dim = s.dim[ax];
  kg_ref idx = n->in[1];
  const kg_tensor *t = ox_const(c, idx);
  if (t) { /* constant indices: normalized and checked now */
    int64_t cnt = kg_shape_numel(&t->type.shape), *v = new_ints(c, cnt);
    for (int64_t i = 0; i < cnt; i++) {
      v[i] = kg_tensor_get_i(t, i);
      if (v[i] < -dim || v[i] >= dim) return ox_fail(c, n, "index %lld is out of range for size %lld", (long long)v[i], (long long)dim);
      if (v[i] < 0) v[i] += dim;
    }
    idx = const_ints(c, KILN_I64, &t->type.shape, v);
  } else {
    kiln_dtype dt = ox_type(c, idx)->dtype;
    if (dt != KILN_I32 && dt != KILN_I64) return ox_fail(c, n, "indices must be int32 or int64, not %s", kg_dtype_name(dt));
    idx = wrap_negative(c, idx, dim);
  }
  return set(c, n, gather_node(c, n->in[0], idx, ax));
}

static bool cv_compress(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  const kg_tensor *cond = ox_const(c, n->in[1]);
  if (!cond) return not_const(c, n, 1);
  kg_ref x = n->in[0];
  kg_shape s = shape_of(c, x);
  int ax = 0;
  if (ox_attr(n, "axis")) {
    if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), s.rank, &ax)) return false;
  } else {
    kg_shape flat = {1, {kg_shape_numel(&s)}};
    x = ox_reshape(c, x, &flat);
    s = flat;
  }
  int64_t cnt = kg_shape_numel(&cond->type.shape), k = 0, *idx = new_ints(c, cnt);
  if (cnt > s.dim[ax]) return ox_fail(c, n, "the condition is longer than the axis");
  for (int64_t i = 0; i < cnt; i++)
    if (kg_tensor_get_i(cond, i)) idx[k++] = i;
  return set(c, n, take(c, x, ax, idx, k));
}

/* ---- ConstantOfShape, Expand, Tile, Range, EyeLike, Trilu ---- */

static bool cv_constant_of_shape(ox_ctx *c, ox_node *n) {
  int64_t *v;
  int cnt;
  if (!ox_const_ints(c, n, 0, &v, &cnt)) return false;
  if (cnt > KILN_MAX_RANK) return ox_fail(c, n, "the shape has %d dimensions; kiln supports at most %d", cnt, KILN_MAX_RANK);
  kg_shape s = {.rank = cnt};
  for (int d = 0; d < cnt; d++) {
    if (v[d] < 0) return ox_fail(c, n, "the shape has a negative dimension");
    s.dim[d] = v[d];
  }
  kg_tensor t = {.type = {KILN_F32, {0}}};
  float zero = 0;
  t.data = &zero;
  const Onnx__AttributeProto *a = ox_attr(n, "value");
  if (a) {
    kg_tensor given;
    if (!a->t || !ox_tensor(c, a->t, n->label, &given)) return ox_fail(c, n, "attribute 'value' holds no tensor");
    if (kg_shape_numel(&given.type.shape) != 1) return ox_fail(c, n, "attribute 'value' must hold one element");
    t.type.dtype = given.type.dtype;
    t.data = given.data;
  }
  return set(c, n, kb_broadcast(&c->g, ox_tensor_const(c, &t), &s));
}

/* NumPy's two-way broadcast of two shapes. */
static bool broadcast_shapes(ox_ctx *c, ox_node *n, const kg_shape *a, const kg_shape *b, kg_shape *out) {
  out->rank = a->rank > b->rank ? a->rank : b->rank;
  for (int d = 0; d < out->rank; d++) {
    int da = d - (out->rank - a->rank), db = d - (out->rank - b->rank);
    int64_t x = da >= 0 ? a->dim[da] : 1, y = db >= 0 ? b->dim[db] : 1;
    if (x != y && x != 1 && y != 1) return ox_fail(c, n, "shapes do not broadcast (%lld against %lld)", (long long)x, (long long)y);
    out->dim[d] = x == 1 ? y : x;
  }
  return true;
}

static bool cv_expand(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  int64_t *v;
  int cnt;
  if (!ox_const_ints(c, n, 1, &v, &cnt)) return false;
  if (cnt > KILN_MAX_RANK) return ox_fail(c, n, "the shape has %d dimensions; kiln supports at most %d", cnt, KILN_MAX_RANK);
  kg_shape want = {.rank = cnt}, x = shape_of(c, n->in[0]), out;
  for (int d = 0; d < cnt; d++) want.dim[d] = v[d];
  if (!broadcast_shapes(c, n, &x, &want, &out)) return false;
  return set(c, n, kb_broadcast(&c->g, n->in[0], &out));
}

/* Tile: a size-1 axis inserted before each repeated one, broadcast to the
 * repeat count and merged back (no copy loop of its own). */
static bool cv_tile(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  int64_t *rep;
  int cnt;
  if (!ox_const_ints(c, n, 1, &rep, &cnt)) return false;
  kg_shape s = shape_of(c, n->in[0]), a = {0}, b = {0}, o = {.rank = s.rank};
  if (cnt != s.rank) return ox_fail(c, n, "repeats has %d entries for rank %d", cnt, s.rank);
  for (int d = 0; d < s.rank; d++) {
    if (rep[d] < 0) return ox_fail(c, n, "repeats must be non-negative");
    if (rep[d] != 1) {
      if (a.rank == KILN_MAX_RANK) return ox_fail(c, n, "too many repeated axes for kiln's rank limit %d", KILN_MAX_RANK);
      a.dim[a.rank++] = 1;
      b.dim[b.rank++] = rep[d];
    }
    if (a.rank == KILN_MAX_RANK) return ox_fail(c, n, "too many repeated axes for kiln's rank limit %d", KILN_MAX_RANK);
    a.dim[a.rank++] = s.dim[d];
    b.dim[b.rank++] = s.dim[d];
    o.dim[d] = s.dim[d] * rep[d];
  }
  kg_ref x = ox_reshape(c, n->in[0], &a);
  x = kb_broadcast(&c->g, x, &b);
  return set(c, n, ox_reshape(c, x, &o));
}

static bool cv_range(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 3)) return false;
  const kg_tensor *t[3];
  for (int i = 0; i < 3; i++)
    if (!(t[i] = ox_const(c, n->in[i]))) return not_const(c, n, i);
  kiln_dtype dt = t[0]->type.dtype;
  kg_tensor r = {.type = {dt, {1, {0}}}};
  if (kg_dtype_is_float(dt)) {
    double s = kg_tensor_get_f(t[0], 0), l = kg_tensor_get_f(t[1], 0), d = kg_tensor_get_f(t[2], 0);
    double cnt = ceil((l - s) / d);
    r.type.shape.dim[0] = cnt > 0 ? (int64_t)cnt : 0;
    r.data = kc_alloc(c->m->arena, (size_t)kg_type_bytes(&r.type) + 1);
    for (int64_t i = 0; i < r.type.shape.dim[0]; i++) {
      double v = dt == KILN_F32 ? (double)((float)s + (float)i * (float)d) : s + (double)i * d;
      kg_tensor_set(&r, i, v, 0);
    }
  } else {
    int64_t s = kg_tensor_get_i(t[0], 0), l = kg_tensor_get_i(t[1], 0), d = kg_tensor_get_i(t[2], 0);
    if (d == 0) return ox_fail(c, n, "delta is 0");
    int64_t cnt = d > 0 ? (l - s + d - 1) / d : (s - l - d - 1) / -d;
    r.type.shape.dim[0] = cnt > 0 ? cnt : 0;
    r.data = kc_alloc(c->m->arena, (size_t)kg_type_bytes(&r.type) + 1);
    for (int64_t i = 0; i < r.type.shape.dim[0]; i++) kg_tensor_set(&r, i, 0, s + i * d);
  }
  return set(c, n, ox_tensor_const(c, &r));
}

static bool cv_eye_like(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  if (s.rank != 2) return ox_fail(c, n, "the input must be a matrix");
  kiln_dtype dt = ox_type(c, n->in[0])->dtype;
  if (ox_attr(n, "dtype") && !ox_dtype((int32_t)ox_attr_int(n, "dtype", 0), &dt))
    return ox_fail(c, n, "unsupported data type %s", ox_dtype_name((int32_t)ox_attr_int(n, "dtype", 0)));
  int64_t k = ox_attr_int(n, "k", 0), *v = new_ints(c, kg_shape_numel(&s));
  for (int64_t i = 0; i < s.dim[0]; i++)
    for (int64_t j = 0; j < s.dim[1]; j++) v[i * s.dim[1] + j] = j - i == k;
  return set(c, n, const_ints(c, dt, &s, v));
}

/* Trilu: x where a mask of the last two dimensions is true, else 0: a
 * constant mask when k is known, else j - i compared with k at run time
 * (a constant of column-minus-row offsets against the scalar k). */
static bool cv_trilu(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  if (s.rank < 2) return ox_fail(c, n, "the input must have rank 2 or more");
  int64_t k = 0;
  bool upper = ox_attr_int(n, "upper", 1) != 0, runtime = ox_has(n, 1) && !ox_const(c, n->in[1]);
  if (ox_has(n, 1) && !runtime && !const_scalar_i(c, n, 1, &k)) return false;
  kg_shape ms = {2, {s.dim[s.rank - 2], s.dim[s.rank - 1]}}, scalar = {0};
  int64_t *m = new_ints(c, kg_shape_numel(&ms));
  for (int64_t i = 0; i < ms.dim[0]; i++)
    for (int64_t j = 0; j < ms.dim[1]; j++)
      m[i * ms.dim[1] + j] = runtime ? j - i : upper ? j - i >= k : j - i <= k;
  kiln_dtype dt = ox_type(c, n->in[0])->dtype;
  if (runtime) {
    kg_ref in[3] = {const_ints(c, KILN_I64, &ms, m), ox_reshape(c, ox_cast(c, n->in[1], KILN_I64), &scalar), n->in[0]};
    return set(c, n, ox_expr(c, upper ? "select(ge(x0, x1), x2, 0)" : "select(le(x0, x1), x2, 0)", in, 3, dt));
  }
  kg_ref in[2] = {const_ints(c, KILN_BOOL, &ms, m), n->in[0]};
  return set(c, n, ox_expr(c, "select(x0, x1, 0)", in, 2, dt));
}

/* ---- Pad, DepthToSpace, SpaceToDepth ---- */

/* Source index of output position i along an axis of size dim padded by b
 * before, for the modes that copy existing elements. */
static int64_t pad_source(const char *mode, int64_t i, int64_t b, int64_t dim) {
  int64_t j = i - b;
  if (!strcmp(mode, "edge")) return clamp64(j, 0, dim - 1);
  if (!strcmp(mode, "wrap")) return ((j % dim) + dim) % dim;
  if (dim == 1) return 0; /* reflect */
  while (j < 0 || j >= dim) j = j < 0 ? -j : 2 * (dim - 1) - j;
  return j;
}

/* Constant padding with a value only known at run time: pad with 0, then
 * select the value outside a constant mask of the interior. */
static kg_ref pad_runtime_value(ox_ctx *c, kg_ref padded, kg_ref value, const int64_t *pd, const kg_shape *in) {
  kg_shape o = shape_of(c, padded);
  int64_t total = kg_shape_numel(&o), *m = new_ints(c, total), coord[KILN_MAX_RANK] = {0};
  for (int64_t i = 0; i < total; i++) {
    bool inside = true;
    for (int d = 0; d < o.rank; d++) inside &= coord[d] >= pd[2 * d] && coord[d] < pd[2 * d] + in->dim[d];
    m[i] = inside;
    for (int d = o.rank - 1; d >= 0 && ++coord[d] == o.dim[d]; d--) coord[d] = 0;
  }
  kg_shape scalar = {0};
  kg_ref in3[3] = {const_ints(c, KILN_BOOL, &o, m), padded, ox_reshape(c, value, &scalar)};
  return ox_expr(c, "select(x0, x1, x2)", in3, 3, ox_type(c, padded)->dtype);
}

static bool cv_pad(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  kg_ref x = n->in[0];
  kg_shape s = shape_of(c, x);
  int r = s.rank, np, na = 0;
  const char *mode = ox_attr_string(c, n, "mode", "constant");
  if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") && strcmp(mode, "wrap"))
    return ox_fail(c, n, "unsupported mode '%s'", mode);
  int64_t *pads, *axes = NULL;
  bool given, has_axes;
  if (!ints_arg(c, n, 1, ox_attr(n, "paddings") ? "paddings" : "pads", &pads, &np, &given)) return false;
  if (!given) return ox_fail(c, n, "needs pads");
  if (!ints_arg(c, n, 3, NULL, &axes, &na, &has_axes)) return false;
  int cnt = has_axes ? na : r;
  if (np != 2 * cnt) return ox_fail(c, n, "pads has %d entries; %d are needed", np, 2 * cnt);
  int64_t before[KILN_MAX_RANK] = {0}, after[KILN_MAX_RANK] = {0};
  for (int k = 0; k < cnt; k++) {
    int ax = k;
    if (has_axes && !ox_axis(c, n, axes[k], r, &ax)) return false;
    before[ax] = pads[k];
    after[ax] = pads[k + cnt];
  }
  /* negative pads remove elements: a slice first */
  slice_axis p[KILN_MAX_RANK];
  for (int d = 0; d < r; d++) {
    int64_t cut_b = before[d] < 0 ? -before[d] : 0, cut_e = after[d] < 0 ? -after[d] : 0;
    if (cut_b + cut_e > s.dim[d]) return ox_fail(c, n, "negative pads remove more than dimension %d holds", d);
    p[d] = (slice_axis){cut_b, 1, s.dim[d] - cut_b - cut_e};
    before[d] = before[d] > 0 ? before[d] : 0;
    after[d] = after[d] > 0 ? after[d] : 0;
  }
  x = apply_slices(c, x, p, r);
  s = shape_of(c, x);
  if (!strcmp(mode, "constant")) {
    int64_t pd[2 * KILN_MAX_RANK];
    bool any = false;
    for (int d = 0; d < r; d++) pd[2 * d] = before[d], pd[2 * d + 1] = after[d], any |= before[d] || after[d];
    if (!any) return set(c, n, x);
    double cv = ox_attr_float(n, "value", 0);
    bool runtime = false;
    if (ox_has(n, 2)) {
      const kg_tensor *t = ox_const(c, n->in[2]);
      if (t && kg_shape_numel(&t->type.shape) != 1) return ox_fail(c, n, "constant_value must be one value");
      if (t) cv = kg_tensor_get_f(t, 0);
      runtime = !t;
    }
    kg_attr a[2] = {kb_attr_ints(&c->g, "paddings", pd, 2 * r), kb_attr_float("constant_value", runtime ? 0 : cv)};
    kg_ref y = kb_node(&c->g, KC_OP_PAD, &x, 1, a, 2);
    return set(c, n, runtime ? pad_runtime_value(c, y, n->in[2], pd, &s) : y);
  }
  for (int d = 0; d < r; d++) {
    if (!before[d] && !after[d]) continue;
    if (s.dim[d] == 0) return ox_fail(c, n, "cannot pad an empty dimension in mode '%s'", mode);
    int64_t len = s.dim[d] + before[d] + after[d], *idx = new_ints(c, len);
    for (int64_t i = 0; i < len; i++) idx[i] = pad_source(mode, i, before[d], s.dim[d]);
    x = take(c, x, d, idx, len);
  }
  return set(c, n, x);
}

/* reshape -> transpose -> reshape, the whole of both ops. */
static kg_ref shuffle(ox_ctx *c, kg_ref x, const kg_shape *mid, const int64_t *perm, const kg_shape *out) {
  x = ox_reshape(c, x, mid);
  x = ox_transpose(c, x, perm, mid->rank);
  return ox_reshape(c, x, out);
}

static bool block_args(ox_ctx *c, ox_node *n, kg_shape *s, int64_t *b) {
  if (!need(c, n, 1)) return false;
  *s = shape_of(c, n->in[0]);
  *b = ox_attr_int(n, "blocksize", 0);
  if (s->rank != 4) return ox_fail(c, n, "the input must have rank 4 (NCHW)");
  if (*b <= 0) return ox_fail(c, n, "blocksize must be positive");
  return true;
}

static bool cv_depth_to_space(ox_ctx *c, ox_node *n) {
  kg_shape s;
  int64_t b;
  if (!block_args(c, n, &s, &b)) return false;
  int64_t N = s.dim[0], C = s.dim[1], H = s.dim[2], W = s.dim[3];
  if (C % (b * b)) return ox_fail(c, n, "channels %lld are not a multiple of blocksize^2", (long long)C);
  bool crd = !strcmp(ox_attr_string(c, n, "mode", "DCR"), "CRD");
  kg_shape mid = crd ? (kg_shape){6, {N, C / (b * b), b, b, H, W}} : (kg_shape){6, {N, b, b, C / (b * b), H, W}};
  static const int64_t dcr[6] = {0, 3, 4, 1, 5, 2}, crdp[6] = {0, 1, 4, 2, 5, 3};
  kg_shape out = {4, {N, C / (b * b), H * b, W * b}};
  return set(c, n, shuffle(c, n->in[0], &mid, crd ? crdp : dcr, &out));
}

static bool cv_space_to_depth(ox_ctx *c, ox_node *n) {
  kg_shape s;
  int64_t b;
  if (!block_args(c, n, &s, &b)) return false;
  int64_t N = s.dim[0], C = s.dim[1], H = s.dim[2], W = s.dim[3];
  if (H % b || W % b) return ox_fail(c, n, "height and width must be multiples of blocksize");
  kg_shape mid = {6, {N, C, H / b, b, W / b, b}}, out = {4, {N, C * b * b, H / b, W / b}};
  static const int64_t perm[6] = {0, 3, 5, 1, 2, 4};
  return set(c, n, shuffle(c, n->in[0], &mid, perm, &out));
}

/* ---- OneHot ---- */

static kg_ref scalar_at(ox_ctx *c, kg_ref v, int64_t i) {
  int64_t b = i, one = 1;
  kg_shape scalar = {0};
  return ox_reshape(c, slice_node(c, v, &b, &one, 1), &scalar);
}

static bool cv_one_hot(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 3)) return false;
  const kg_tensor *dt_ = ox_const(c, n->in[1]);
  if (!dt_) return not_const(c, n, 1);
  if (kg_shape_numel(&dt_->type.shape) != 1) return ox_fail(c, n, "depth must be one value");
  int64_t depth = (int64_t)kg_tensor_get_f(dt_, 0);
  kg_ref idx = n->in[0];
  int r = shape_of(c, idx).rank;
  if (kg_dtype_is_float(ox_type(c, idx)->dtype)) idx = ox_cast(c, idx, KILN_I64);
  idx = wrap_negative(c, idx, depth);
  int64_t axis = ox_attr_int(n, "axis", -1);
  if (axis < -(r + 1) || axis > r) return ox_fail(c, n, "axis %lld is out of range", (long long)axis);
  if (axis < 0) axis += r + 1;
  kg_ref vals = n->in[2];
  if (kg_shape_numel(&ox_type(c, vals)->shape) != 2) return ox_fail(c, n, "values must hold [off_value, on_value]");
  kiln_dtype vt = ox_type(c, vals)->dtype;
  const kg_tensor *vc = ox_const(c, vals);
  kg_attr a[5] = {kb_attr_int("depth", depth), kb_attr_float("on_value", vc ? kg_tensor_get_f(vc, 1) : 1),
                  kb_attr_float("off_value", vc ? kg_tensor_get_f(vc, 0) : 0), kb_attr_int("axis", axis),
                  kb_attr_dtype("dtype", vc ? vt : KILN_BOOL)};
  kg_ref y = kb_node(&c->g, KC_OP_ONE_HOT, &idx, 1, a, 5);
  if (!vc) { /* values at run time: a boolean one-hot selects between them */
    kg_shape flat = {1, {2}};
    kg_ref v = ox_reshape(c, vals, &flat);
    kg_ref in3[3] = {y, scalar_at(c, v, 1), scalar_at(c, v, 0)};
    y = ox_expr(c, "select(x0, x1, x2)", in3, 3, vt);
  }
  return set(c, n, y);
}

/* ---- GatherElements, ScatterElements, GatherND, ScatterND ---- */

/* The flat offset into data (shape ds) of every position of an index
 * tensor of shape is, with the coordinate along `axis` taken as 0. */
static kg_ref base_offsets(ox_ctx *c, const kg_shape *ds, const kg_shape *is, int axis) {
  int64_t st[KILN_MAX_RANK], coord[KILN_MAX_RANK] = {0}, total = kg_shape_numel(is), *v = new_ints(c, total);
  row_strides(ds, st);
  for (int64_t i = 0; i < total; i++) {
    int64_t off = 0;
    for (int d = 0; d < is->rank; d++)
      if (d != axis) off += coord[d] * st[d];
    v[i] = off;
    for (int d = is->rank - 1; d >= 0 && ++coord[d] == is->dim[d]; d--) coord[d] = 0;
  }
  return const_ints(c, KILN_I64, is, v);
}

/* Flat offsets into data (shape ds) for index tensor idx along axis, as in
 * GatherElements/ScatterElements: base + wrapped(idx) * stride(axis). */
static bool element_offsets(ox_ctx *c, ox_node *n, kg_ref idx, const kg_shape *ds, int axis, kg_ref *out) {
  kg_shape is = shape_of(c, idx);
  if (is.rank != ds->rank) return ox_fail(c, n, "indices must have the data's rank");
  for (int d = 0; d < is.rank; d++)
    if (d != axis && is.dim[d] > ds->dim[d]) return ox_fail(c, n, "indices are larger than the data in dimension %d", d);
  kiln_dtype dt = ox_type(c, idx)->dtype;
  if (dt != KILN_I32 && dt != KILN_I64) return ox_fail(c, n, "indices must be int32 or int64");
  int64_t st[KILN_MAX_RANK];
  row_strides(ds, st);
  kg_ref in[2] = {ox_cast(c, idx, KILN_I64), base_offsets(c, ds, &is, axis)};
  /* an index outside [-dim, dim) gives offset -1, which the gather or
   * scatter refuses at run time (the flat offset alone could land on
   * another element) */
  char e[300];
  long long dim = (long long)ds->dim[axis];
  snprintf(e, sizeof e,
           "select(or(lt(add(x0, %lld), 0), ge(x0, %lld)), sub(0, 1), add(x1, mul(select(lt(x0, 0), add(x0, %lld), x0), %lld)))",
           dim, dim, dim, (long long)st[axis]);
  *out = ox_expr(c, e, in, 2, KILN_I64);
  return !c->g.failed;
}

static kg_ref flatten_all(ox_ctx *c, kg_ref x) {
  kg_shape s = shape_of(c, x), f = {1, {kg_shape_numel(&s)}};
  return ox_reshape(c, x, &f);
}

static bool cv_gather_elements(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  kg_shape ds = shape_of(c, n->in[0]);
  int ax;
  kg_ref off;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), ds.rank, &ax) || !element_offsets(c, n, n->in[1], &ds, ax, &off))
    return false;
  return set(c, n, gather_node(c, flatten_all(c, n->in[0]), off, 0));
}

/* data with updates scattered to the flat offsets (shape [N] of a data
 * tensor viewed as [M, rest...]): replaced ("none") or added ("add").
 * Replacement selects the scattered sum where at least one update landed,
 * which is exact when the indices do not repeat (ONNX leaves repeats
 * undefined for "none"). */
static bool scatter_flat(ox_ctx *c, ox_node *n, kg_ref data, kg_ref off, kg_ref upd, kg_ref *out) {
  const char *red = ox_attr_string(c, n, "reduction", "none");
  if (strcmp(red, "none") && strcmp(red, "add")) return ox_fail(c, n, "reduction '%s' is not supported", red);
  kg_shape ds = shape_of(c, data);
  kiln_dtype dt = ox_type(c, data)->dtype;
  kg_attr a[2] = {kb_attr_ints(&c->g, "shape", ds.dim, ds.rank), kb_attr_int("axis", 0)};
  kg_ref in[2] = {upd, off};
  kg_ref sum = kb_node(&c->g, KC_OP_SCATTER_ADD, in, 2, a, 2);
  if (!strcmp(red, "add")) {
    *out = kb_binary(&c->g, KC_OP_ADD, data, sum);
    return !c->g.failed;
  }
  kg_shape os = shape_of(c, off), ms = {1, {ds.dim[0]}};
  kg_type ot = {dt, os};
  kg_attr a1[2] = {kb_attr_ints(&c->g, "shape", ms.dim, 1), kb_attr_int("axis", 0)};
  kg_ref in1[2] = {kb_typed_node(&c->g, KC_OP_ONES, &ot, NULL, 0, NULL, 0), off};
  kg_ref hits = kb_node(&c->g, KC_OP_SCATTER_ADD, in1, 2, a1, 2);
  kg_shape hs = {.rank = ds.rank};
  for (int d = 0; d < ds.rank; d++) hs.dim[d] = d ? 1 : ds.dim[0];
  kg_ref in3[3] = {ox_reshape(c, hits, &hs), sum, data};
  *out = ox_expr(c, "select(gt(x0, 0), x1, x2)", in3, 3, dt);
  return !c->g.failed;
}

static bool cv_scatter_elements(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 3)) return false;
  kg_shape ds = shape_of(c, n->in[0]);
  int ax;
  kg_ref off, out;
  if (!ox_axis(c, n, ox_attr_int(n, "axis", 0), ds.rank, &ax) || !element_offsets(c, n, n->in[1], &ds, ax, &off))
    return false;
  if (!kg_shape_eq(&ox_type(c, n->in[2])->shape, &ox_type(c, n->in[1])->shape)) return ox_fail(c, n, "updates must have the indices' shape");
  if (!scatter_flat(c, n, flatten_all(c, n->in[0]), flatten_all(c, off), flatten_all(c, n->in[2]), &out)) return false;
  return set(c, n, ox_reshape(c, out, &ds));
}

/* GatherND/ScatterND: the flat offset into data's first b+k dimensions of
 * each index tuple (the last dimension of indices holds k coordinates;
 * the first b dimensions are batch dimensions shared with data). */
static bool tuple_offsets(ox_ctx *c, ox_node *n, kg_ref idx, const kg_shape *ds, int b, kg_ref *out) {
  kg_shape is = shape_of(c, idx);
  if (is.rank < 1) return ox_fail(c, n, "indices must have rank 1 or more");
  int q = is.rank, k = (int)is.dim[q - 1], lead = b + k;
  if (b < 0 || b >= q || lead > ds->rank) return ox_fail(c, n, "indices do not fit the data's rank");
  kiln_dtype dt = ox_type(c, idx)->dtype;
  if (dt != KILN_I32 && dt != KILN_I64) return ox_fail(c, n, "indices must be int32 or int64");
  kg_shape lead_s = {.rank = lead}, tup = {.rank = q - 1};
  memcpy(lead_s.dim, ds->dim, sizeof(int64_t) * (size_t)lead);
  memcpy(tup.dim, is.dim, sizeof(int64_t) * (size_t)(q - 1));
  int64_t st[KILN_MAX_RANK], dims[KILN_MAX_RANK], strd[KILN_MAX_RANK];
  row_strides(&lead_s, st);
  for (int j = 0; j < k; j++) dims[j] = ds->dim[b + j], strd[j] = st[b + j];
  /* batch part: the tuple's first b coordinates, constant */
  int64_t total = kg_shape_numel(&tup), *base = new_ints(c, total), coord[KILN_MAX_RANK] = {0};
  for (int64_t i = 0; i < total; i++) {
    base[i] = 0;
    for (int d = 0; d < b; d++) base[i] += coord[d] * st[d];
    for (int d = tup.rank - 1; d >= 0 && ++coord[d] == tup.dim[d]; d--) coord[d] = 0;
  }
  kg_ref in[3] = {ox_cast(c, idx, KILN_I64), vec_i64(c, dims, k), vec_i64(c, strd, k)};
  /* a coordinate outside [-dim, dim) contributes -2^56, so the tuple's sum
   * is negative and the gather or scatter refuses it at run time (the flat
   * offset alone could land on another element); k <= 8 such terms do not
   * overflow */
  kg_ref parts = ox_expr(c,
                         "select(or(lt(add(x0, x1), 0), ge(x0, x1)), sub(0, 72057594037927936), "
                         "mul(select(lt(x0, 0), add(x0, x1), x0), x2))",
                         in, 3, KILN_I64);
  int64_t last = q - 1;
  kg_attr a = kb_attr_ints(&c->g, "axes", &last, 1);
  kg_ref sum = kb_node(&c->g, KC_OP_SUM, &parts, 1, &a, 1);
  *out = kb_binary(&c->g, KC_OP_ADD, sum, const_ints(c, KILN_I64, &tup, base));
  return !c->g.failed;
}

/* data viewed as [prod(first lead dims), rest...]. */
static kg_ref merge_lead(ox_ctx *c, kg_ref x, int lead) {
  kg_shape s = shape_of(c, x), m = {.rank = s.rank - lead + 1};
  m.dim[0] = prod(s.dim, 0, lead);
  for (int d = lead; d < s.rank; d++) m.dim[d - lead + 1] = s.dim[d];
  return ox_reshape(c, x, &m);
}

static bool cv_gather_nd(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  kg_shape ds = shape_of(c, n->in[0]), is = shape_of(c, n->in[1]);
  int b = (int)ox_attr_int(n, "batch_dims", 0);
  kg_ref off;
  if (!tuple_offsets(c, n, n->in[1], &ds, b, &off)) return false;
  int lead = b + (int)is.dim[is.rank - 1];
  return set(c, n, gather_node(c, merge_lead(c, n->in[0], lead), off, 0));
}

static bool cv_scatter_nd(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 3)) return false;
  kg_shape ds = shape_of(c, n->in[0]), is = shape_of(c, n->in[1]);
  kg_ref off, out;
  if (!tuple_offsets(c, n, n->in[1], &ds, 0, &off)) return false;
  int lead = (int)is.dim[is.rank - 1];
  kg_shape os = shape_of(c, off), us = {.rank = 1 + ds.rank - lead};
  us.dim[0] = kg_shape_numel(&os);
  for (int d = lead; d < ds.rank; d++) us.dim[d - lead + 1] = ds.dim[d];
  if (kg_shape_numel(&ox_type(c, n->in[2])->shape) != kg_shape_numel(&us)) return ox_fail(c, n, "updates do not match the indices");
  kg_ref upd = ox_reshape(c, n->in[2], &us);
  if (!scatter_flat(c, n, merge_lead(c, n->in[0], lead), flatten_all(c, off), upd, &out)) return false;
  return set(c, n, ox_reshape(c, out, &ds));
}

/* ---- CumSum ---- */

/* x shifted by k along axis: k zeros first, the last k elements dropped. */
static kg_ref shift_along(ox_ctx *c, kg_ref x, int axis, int64_t k) {
  kg_shape s = shape_of(c, x);
  int64_t begin[KILN_MAX_RANK] = {0}, size[KILN_MAX_RANK], pd[2 * KILN_MAX_RANK] = {0};
  memcpy(size, s.dim, sizeof size);
  size[axis] -= k;
  pd[2 * axis] = k;
  kg_ref y = slice_node(c, x, begin, size, s.rank);
  kg_attr a = kb_attr_ints(&c->g, "paddings", pd, 2 * s.rank);
  return kb_node(&c->g, KC_OP_PAD, &y, 1, &a, 1);
}

static kg_ref reverse_along(ox_ctx *c, kg_ref x, int axis) {
  int64_t len = shape_of(c, x).dim[axis], *idx = new_ints(c, len);
  for (int64_t i = 0; i < len; i++) idx[i] = len - 1 - i;
  return take(c, x, axis, idx, len);
}

/* An inclusive scan in ceil(log2 n) steps of y += shift(y, 2^k) (Hillis and
 * Steele): exact for integers, float sums in another order than a
 * sequential loop (within rounding).  Exclusive: the input shifted by one;
 * reverse: reversed before and after. */
static bool cv_cumsum(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  int64_t axis;
  int ax;
  kg_shape s = shape_of(c, n->in[0]);
  if (!const_scalar_i(c, n, 1, &axis) || !ox_axis(c, n, axis, s.rank, &ax)) return false;
  if (!kg_dtype_is_float(ox_type(c, n->in[0])->dtype) && ox_type(c, n->in[0])->dtype != KILN_I32 &&
      ox_type(c, n->in[0])->dtype != KILN_I64)
    return ox_fail(c, n, "unsupported data type %s", kg_dtype_name(ox_type(c, n->in[0])->dtype));
  bool excl = ox_attr_int(n, "exclusive", 0), rev = ox_attr_int(n, "reverse", 0);
  int64_t len = s.dim[ax];
  kg_ref y = n->in[0];
  if (len == 0) return set(c, n, kb_unary(&c->g, KC_OP_IDENTITY, y));
  if (rev) y = reverse_along(c, y, ax);
  if (excl) y = shift_along(c, y, ax, 1);
  for (int64_t k = 1; k < len; k *= 2) y = kb_binary(&c->g, KC_OP_ADD, y, shift_along(c, y, ax, k));
  if (rev) y = reverse_along(c, y, ax);
  return set(c, n, y);
}

/* ---- Resize, Upsample ---- */

typedef struct resize_opts {
  const char *mode, *ctm, *nearest;
  double cubic_a, extrapolation;
  bool exclude_outside;
  const double *roi; /* [starts..., ends...] or NULL */
} resize_opts;

/* ONNX's coordinate transformation: output coordinate -> input coordinate. */
static double resize_coord(const resize_opts *o, double x, double scale, int64_t in, double out_len, int axis, int rank,
                           bool *outside) {
  const char *m = o->ctm;
  *outside = false;
  if (!strcmp(m, "align_corners")) return out_len == 1 ? 0 : x * (double)(in - 1) / (out_len - 1);
  if (!strcmp(m, "asymmetric")) return x / scale;
  if (!strcmp(m, "tf_half_pixel_for_nn")) return (x + 0.5) / scale;
  if (!strcmp(m, "pytorch_half_pixel")) return out_len == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
  if (!strcmp(m, "tf_crop_and_resize")) {
    double s0 = o->roi[axis], e0 = o->roi[axis + rank], r;
    r = out_len == 1 ? (e0 - s0) * (double)(in - 1) / 2 : x * (e0 - s0) * (double)(in - 1) / (out_len - 1);
    r += s0 * (double)(in - 1);
    *outside = r < 0 || r > (double)(in - 1);
    return r;
  }
  return (x + 0.5) / scale - 0.5; /* half_pixel */
}

/* Interpolation coefficients of the taps f-1 .. f+2 (cubic) or f, f+1, for
 * the ratio in (0, 1] (ONNX's reference semantics). */
static int resize_coeffs(const resize_opts *o, double r, double *cf) {
  if (!strcmp(o->mode, "cubic")) {
    double A = o->cubic_a, p = r + 1, q = 1 - r, t = 2 - r;
    cf[0] = ((A * p - 5 * A) * p + 8 * A) * p - 4 * A;
    cf[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    cf[2] = ((A + 2) * q - (A + 3)) * q * q + 1;
    cf[3] = ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
    return 4;
  }
  if (!strcmp(o->mode, "linear")) {
    cf[0] = 1 - r, cf[1] = r;
    return 2;
  }
  bool up; /* nearest: the right tap or the left one */
  if (r == 1) up = true;
  else if (!strcmp(o->nearest, "round_prefer_ceil")) up = r >= 0.5;
  else if (!strcmp(o->nearest, "floor")) up = false;
  else if (!strcmp(o->nearest, "ceil")) up = true;
  else up = r > 0.5;
  cf[0] = !up, cf[1] = up;
  return 2;
}

/* Resizes one axis from in to out elements: a gather with constant indices
 * (nearest), or for linear/cubic the sum over the 2 or 4 taps of a gather
 * times constant weights, one fused expression (plus the extrapolation
 * value where tf_crop_and_resize leaves the input). */
static kg_ref resize_axis(ox_ctx *c, kg_ref x, int axis, int64_t out, double scale, const resize_opts *o) {
  kg_shape s = shape_of(c, x), ws = {.rank = s.rank};
  for (int d = 0; d < s.rank; d++) ws.dim[d] = d == axis ? out : 1;
  int64_t in = s.dim[axis];
  double out_len = scale * (double)in;
  bool nearest = !strcmp(o->mode, "nearest");
  int nt = nearest ? 1 : !strcmp(o->mode, "cubic") ? 4 : 2;
  int64_t *idx[4];
  double *w[4], *bias = kc_alloc(c->m->arena, sizeof(double) * (size_t)(out + 1));
  for (int t = 0; t < nt; t++) {
    idx[t] = new_ints(c, out);
    w[t] = kc_alloc(c->m->arena, sizeof(double) * (size_t)(out + 1));
  }
  bool any_outside = false;
  for (int64_t j = 0; j < out; j++) {
    bool outside;
    double xo = resize_coord(o, (double)j, scale, in, out_len, axis, s.rank, &outside), cf[4];
    double f = ceil(xo) - 1, ratio = xo - f; /* ratio in (0, 1]: the left tap is preferred */
    int taps = resize_coeffs(o, ratio, cf), first = taps == 4 ? -1 : 0;
    bias[j] = outside ? o->extrapolation : 0;
    any_outside |= outside;
    if (o->exclude_outside) {
      double sum = 0;
      for (int t = 0; t < taps; t++) {
        int64_t k = (int64_t)f + first + t;
        if (k < 0 || k >= in) cf[t] = 0;
        sum += cf[t];
      }
      for (int t = 0; t < taps; t++) cf[t] = sum ? cf[t] / sum : 0;
    }
    for (int t = 0; t < taps; t++) {
      int64_t k = clamp64((int64_t)f + first + t, 0, in - 1);
      if (nearest) {
        if (cf[t]) idx[0][j] = k;
      } else {
        idx[t][j] = k;
        w[t][j] = outside ? 0 : cf[t];
      }
    }
  }
  if (nearest) return take(c, x, axis, idx[0], out);
  kiln_dtype dt = ox_type(c, x)->dtype;
  kg_ref in_[9];
  int k = 0;
  for (int t = 0; t < nt; t++) {
    in_[k++] = take(c, x, axis, idx[t], out);
    in_[k++] = ox_const_from(c, dt, &ws, w[t]);
  }
  if (any_outside) in_[k++] = ox_const_from(c, dt, &ws, bias);
  static const char *const sums[2][2] = {
      {"add(mul(x0, x1), mul(x2, x3))", "add(add(mul(x0, x1), mul(x2, x3)), x4)"},
      {"add(add(mul(x0, x1), mul(x2, x3)), add(mul(x4, x5), mul(x6, x7)))",
       "add(add(add(mul(x0, x1), mul(x2, x3)), add(mul(x4, x5), mul(x6, x7))), x8)"}};
  const char *e = sums[nt == 4][any_outside];
  return ox_expr(c, e, in_, k, dt);
}

/* Scales or sizes -> per-axis output sizes and scales, then one axis at a
 * time (the interpolation is separable). */
static bool resize(ox_ctx *c, ox_node *n, const double *scales, const int64_t *sizes, const resize_opts *o) {
  kg_ref x = n->in[0];
  kg_shape s = shape_of(c, x);
  if (strcmp(o->mode, "nearest") && !kg_dtype_is_float(ox_type(c, x)->dtype))
    return ox_fail(c, n, "mode '%s' needs float data", o->mode);
  for (int d = 0; d < s.rank; d++) {
    double sc = sizes ? (double)sizes[d] / (double)s.dim[d] : scales[d];
    int64_t out = sizes ? sizes[d] : (int64_t)floor((double)s.dim[d] * sc);
    if (sc <= 0 || out < 0) return ox_fail(c, n, "scales and sizes must be positive");
    if (out == s.dim[d] && sc == 1 && strcmp(o->ctm, "tf_crop_and_resize")) continue;
    x = resize_axis(c, x, d, out, sc, o);
  }
  return set(c, n, x);
}

static bool const_doubles(ox_ctx *c, ox_node *n, int i, double **v, int *cnt) {
  const kg_tensor *t = ox_const(c, n->in[i]);
  if (!t) return not_const(c, n, i);
  *cnt = (int)kg_shape_numel(&t->type.shape);
  *v = kc_alloc(c->m->arena, sizeof(double) * (size_t)(*cnt + 1));
  for (int k = 0; k < *cnt; k++) (*v)[k] = kg_tensor_get_f(t, k);
  return true;
}

static bool cv_resize(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  int r = shape_of(c, n->in[0]).rank, cnt;
  bool old = c->opset < 11; /* Resize-10: (X, scales), asymmetric coordinates */
  resize_opts o = {ox_attr_string(c, n, "mode", "nearest"),
                   ox_attr_string(c, n, "coordinate_transformation_mode", old ? "asymmetric" : "half_pixel"),
                   ox_attr_string(c, n, "nearest_mode", old ? "floor" : "round_prefer_floor"),
                   ox_attr_float(n, "cubic_coeff_a", -0.75), ox_attr_float(n, "extrapolation_value", 0),
                   ox_attr_int(n, "exclude_outside", 0) != 0, NULL};
  if (strcmp(o.mode, "nearest") && strcmp(o.mode, "linear") && strcmp(o.mode, "cubic"))
    return ox_fail(c, n, "unsupported mode '%s'", o.mode);
  if (ox_attr(n, "axes")) return ox_fail(c, n, "the axes attribute is not supported");
  if (ox_attr_int(n, "antialias", 0)) return ox_fail(c, n, "antialias=1 is not supported");
  if (strcmp(ox_attr_string(c, n, "keep_aspect_ratio_policy", "stretch"), "stretch"))
    return ox_fail(c, n, "keep_aspect_ratio_policy other than 'stretch' is not supported");
  int si = old ? 1 : 2, zi = old ? -1 : 3;
  double *scales = NULL, *roi = NULL;
  int64_t *sizes = NULL;
  if (!strcmp(o.ctm, "tf_crop_and_resize")) {
    if (!ox_has(n, 1)) return ox_fail(c, n, "tf_crop_and_resize needs a roi");
    if (!const_doubles(c, n, 1, &roi, &cnt)) return false;
    if (cnt != 2 * r) return ox_fail(c, n, "roi must have 2 * rank values");
    o.roi = roi;
  }
  if (zi > 0 && ox_has(n, zi)) {
    if (!ox_const_ints(c, n, zi, &sizes, &cnt)) return false;
    if (cnt == 0) sizes = NULL;
  }
  if (!sizes) {
    if (!ox_has(n, si)) return ox_fail(c, n, "needs scales or sizes");
    if (!const_doubles(c, n, si, &scales, &cnt)) return false;
  }
  if (cnt != r) return ox_fail(c, n, "scales/sizes have %d values for rank %d", cnt, r);
  return resize(c, n, scales, sizes, &o);
}

/* Upsample (opsets 7-9): Resize with asymmetric coordinates; nearest takes
 * the floor. */
static bool cv_upsample(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  int r = shape_of(c, n->in[0]).rank, cnt;
  resize_opts o = {ox_attr_string(c, n, "mode", "nearest"), "asymmetric", "floor", -0.75, 0, false, NULL};
  if (!strcmp(o.mode, "bilinear")) o.mode = "linear";
  if (strcmp(o.mode, "nearest") && strcmp(o.mode, "linear")) return ox_fail(c, n, "unsupported mode '%s'", o.mode);
  double *scales;
  if (ox_has(n, 1)) {
    if (!const_doubles(c, n, 1, &scales, &cnt)) return false;
  } else {
    const float *f = ox_attr_floats(n, "scales", &cnt);
    scales = kc_alloc(c->m->arena, sizeof(double) * (size_t)(cnt + 1));
    for (int k = 0; k < cnt; k++) scales[k] = f[k];
  }
  if (cnt != r) return ox_fail(c, n, "scales have %d values for rank %d", cnt, r);
  return resize(c, n, scales, NULL, &o);
}

/* ---- ReverseSequence, NonZero ---- */

static bool cv_reverse_sequence(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 2)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  int ta, ba;
  if (!ox_axis(c, n, ox_attr_int(n, "time_axis", 0), s.rank, &ta) ||
      !ox_axis(c, n, ox_attr_int(n, "batch_axis", 1), s.rank, &ba))
    return false;
  if (ta == ba) return ox_fail(c, n, "time_axis and batch_axis must differ");
  kg_ref lens = n->in[1];
  if (kg_shape_numel(&ox_type(c, lens)->shape) != s.dim[ba]) return ox_fail(c, n, "sequence_lens must have one entry per batch");
  kg_shape ls = {.rank = s.rank}, ts = {.rank = s.rank};
  for (int d = 0; d < s.rank; d++) ls.dim[d] = d == ba ? s.dim[ba] : 1, ts.dim[d] = d == ta ? s.dim[ta] : 1;
  int64_t st[KILN_MAX_RANK], *t = new_ints(c, s.dim[ta]);
  row_strides(&s, st);
  for (int64_t i = 0; i < s.dim[ta]; i++) t[i] = i;
  kg_ref in[3] = {ox_reshape(c, ox_cast(c, lens, KILN_I64), &ls), const_ints(c, KILN_I64, &ts, t),
                  base_offsets(c, &s, &s, ta)};
  char e[160];
  snprintf(e, sizeof e, "add(x2, mul(select(lt(x1, x0), sub(sub(x0, 1), x1), x1), %lld))", (long long)st[ta]);
  kg_ref off = ox_expr(c, e, in, 3, KILN_I64);
  return set(c, n, gather_node(c, flatten_all(c, n->in[0]), off, 0));
}

static bool cv_non_zero(ox_ctx *c, ox_node *n) {
  if (!need(c, n, 1)) return false;
  const kg_tensor *t = ox_const(c, n->in[0]);
  if (!t) return not_const(c, n, 0);
  kg_shape s = t->type.shape;
  int64_t total = kg_shape_numel(&s), nz = 0, coord[KILN_MAX_RANK] = {0};
  int r = s.rank ? s.rank : 1;
  for (int64_t i = 0; i < total; i++) nz += kg_tensor_get_f(t, i) != 0;
  int64_t *v = new_ints(c, r * nz), k = 0;
  for (int64_t i = 0; i < total; i++) {
    if (kg_tensor_get_f(t, i) != 0) {
      for (int d = 0; d < r; d++) v[d * nz + k] = s.rank ? coord[d] : 0;
      k++;
    }
    for (int d = s.rank - 1; d >= 0 && ++coord[d] == s.dim[d]; d--) coord[d] = 0;
  }
  kg_shape os = {2, {r, nz}};
  return set(c, n, const_ints(c, KILN_I64, &os, v));
}

const ox_op ox_ops_shape[] = {
    {"Reshape", cv_reshape},
    {"Shape", cv_shape},
    {"Size", cv_size},
    {"Flatten", cv_flatten},
    {"Unsqueeze", cv_unsqueeze},
    {"Squeeze", cv_squeeze},
    {"Transpose", cv_transpose},
    {"Concat", cv_concat},
    {"Split", cv_split},
    {"Slice", cv_slice},
    {"Gather", cv_gather},
    {"Compress", cv_compress},
    {"ConstantOfShape", cv_constant_of_shape},
    {"Expand", cv_expand},
    {"Tile", cv_tile},
    {"Range", cv_range},
    {"EyeLike", cv_eye_like},
    {"Trilu", cv_trilu},
    {"Pad", cv_pad},
    {"DepthToSpace", cv_depth_to_space},
    {"SpaceToDepth", cv_space_to_depth},
    {"OneHot", cv_one_hot},
    {"GatherElements", cv_gather_elements},
    {"ScatterElements", cv_scatter_elements},
    {"Scatter", cv_scatter_elements},
    {"GatherND", cv_gather_nd},
    {"ScatterND", cv_scatter_nd},
    {"CumSum", cv_cumsum},
    {"Resize", cv_resize},
    {"Upsample", cv_upsample},
    {"ReverseSequence", cv_reverse_sequence},
    {"NonZero", cv_non_zero},
    {NULL, NULL},
};
