/* ops_array.c — TensorFlow's array ops and graph plumbing: Const (its
 * tensor, or the TF.js weight of its name), Placeholder (only reached when
 * not fed), PlaceholderWithDefault, Identity, StopGradient, NoOp, and the
 * shape and data-movement ops over compile-time shape operands: Shape,
 * Size, Rank, Reshape, Squeeze, ExpandDims, ConcatV2, Pack, Unpack, Split,
 * SplitV, Pad, PadV2, StridedSlice, Slice, Transpose, Tile, Fill, ZerosLike,
 * OnesLike, GatherV2, Range.  The identities pass TensorLists through.
 * Where, Unique and NonMaxSuppression* (their output sizes depend on the
 * data) are refused with the reason. */
#include "frontends/graphdef/gd.h"
#include "passes/fold.h"
#include <math.h>
#include <string.h>

static kg_shape shape_of(gd_ctx *c, kg_ref r) { return gd_type(c, r)->shape; }

static kg_ref ident(gd_ctx *c, kg_ref x) { return kb_unary(&c->g, KC_OP_IDENTITY, x); }

static bool cv_const(gd_ctx *c, gd_node *n) {
  gd_outputs(c, n, 1);
  for (int i = 0; i < c->n_weights; i++)
    if (!strcmp(c->weights[i].name, n->p->name)) {
      kiln_dtype want;
      if (!gd_attr_dtype(c, n, "dtype", c->weights[i].t.type.dtype, &want)) return false;
      if (want != c->weights[i].t.type.dtype)
        return gd_fail(c, n, "the node is %s, but its weight in weightsManifest is %s", kg_dtype_name(want),
                       kg_dtype_name(c->weights[i].t.type.dtype));
      n->out[0] = gd_tensor_const(c, &c->weights[i].t);
      return !c->g.failed;
    }
  const Tensorflow__AttrValue *v = gd_attr(n, "value");
  if (!v || v->value_case != TENSORFLOW__ATTR_VALUE__VALUE_TENSOR || !v->tensor)
    return gd_fail(c, n, c->n_weights ? "no value: neither a 'value' tensor nor a weight of this name in weightsManifest"
                                      : "no 'value' tensor");
  kg_tensor t;
  if (!gd_tensor(c, v->tensor, n->label, &t)) return false;
  n->out[0] = gd_tensor_const(c, &t);
  return !c->g.failed;
}

static bool cv_placeholder(gd_ctx *c, gd_node *n) {
  return gd_fail(c, n, "is not fed: --feed names the feeds, and every Placeholder the fetches depend on must be one");
}

bool gd_cv_identity(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, !strcmp(n->p->op, "IdentityN") || !strcmp(n->p->op, "PlaceholderWithDefault"))) return false;
  gd_outputs(c, n, !strcmp(n->p->op, "IdentityN") ? n->n_in : 1);
  for (int i = 0; i < n->n_out; i++) n->out[i] = gd_is_list(n->in[i]) ? n->in[i] : ident(c, n->in[i]);
  return !c->g.failed;
}

static bool cv_no_op(gd_ctx *c, gd_node *n) {
  gd_outputs(c, n, 0);
  return true;
}

/* ---- shapes ---- */

static kg_ref ints_const(gd_ctx *c, kiln_dtype dt, const int64_t *v, int n, bool scalar) {
  double *d = kc_alloc(c->m->arena, sizeof(double) * (size_t)(n + 1));
  for (int i = 0; i < n; i++) d[i] = (double)v[i];
  kg_shape s = {.rank = scalar ? 0 : 1, .dim = {n}};
  return gd_const_from(c, dt, &s, d);
}

static bool cv_shape(gd_ctx *c, gd_node *n) {
  kiln_dtype dt;
  if (!gd_inputs(c, n, 1, false) || !gd_attr_dtype(c, n, "out_type", KILN_I32, &dt)) return false;
  gd_outputs(c, n, 1);
  kg_shape s = shape_of(c, n->in[0]);
  int64_t size = kg_shape_numel(&s), rank = s.rank;
  if (!strcmp(n->p->op, "Shape")) n->out[0] = ints_const(c, dt, s.dim, s.rank, false);
  else n->out[0] = ints_const(c, dt, !strcmp(n->p->op, "Size") ? &size : &rank, 1, true);
  return !c->g.failed;
}

static bool cv_reshape(gd_ctx *c, gd_node *n) {
  int64_t *v;
  int cnt;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 1, &v, &cnt)) return false;
  if (cnt > KILN_MAX_RANK) return gd_fail(c, n, "rank %d is above kiln's %d", cnt, KILN_MAX_RANK);
  gd_outputs(c, n, 1);
  kg_attr a = kb_attr_ints(&c->g, "shape", v, cnt);
  n->out[0] = kb_node(&c->g, KC_OP_RESHAPE, &n->in[0], 1, &a, 1);
  return !c->g.failed;
}

static bool cv_squeeze(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, false)) return false;
  gd_outputs(c, n, 1);
  int cnt, rank = shape_of(c, n->in[0]).rank, ax;
  const int64_t *dims = gd_attr_ints(n, "squeeze_dims", &cnt);
  if (!cnt) dims = gd_attr_ints(n, "axis", &cnt);
  int64_t axes[KILN_MAX_RANK];
  for (int i = 0; i < cnt && i < KILN_MAX_RANK; i++) {
    if (!gd_axis(c, n, dims[i], rank, &ax)) return false;
    if (shape_of(c, n->in[0]).dim[ax] != 1) return gd_fail(c, n, "dimension %d is not 1", ax);
    axes[i] = ax;
  }
  kg_attr a = kb_attr_ints(&c->g, "axes", axes, cnt);
  n->out[0] = kb_node(&c->g, KC_OP_SQUEEZE, &n->in[0], 1, &a, cnt ? 1 : 0);
  return !c->g.failed;
}

kg_ref gd_expand(gd_ctx *c, kg_ref x, int axis) {
  kg_shape s = shape_of(c, x), r = {.rank = s.rank + 1};
  for (int d = 0, k = 0; d < r.rank; d++) r.dim[d] = d == axis ? 1 : s.dim[k++];
  return gd_reshape(c, x, &r);
}

static bool cv_expand_dims(gd_ctx *c, gd_node *n) {
  int64_t *v;
  int cnt, ax;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 1, &v, &cnt)) return false;
  if (cnt != 1) return gd_fail(c, n, "the axis must be one integer");
  if (!gd_axis(c, n, v[0], shape_of(c, n->in[0]).rank + 1, &ax)) return false;
  gd_outputs(c, n, 1);
  n->out[0] = gd_expand(c, n->in[0], ax);
  if (n->out[0].node == n->in[0].node) n->out[0] = ident(c, n->in[0]);
  return !c->g.failed;
}

kg_ref gd_concat(gd_ctx *c, const kg_ref *v, int count, int axis) {
  if (count == 1) return ident(c, v[0]);
  kg_attr a = kb_attr_int("axis", axis);
  return kb_node(&c->g, KC_OP_CONCAT, v, count, &a, 1);
}

/* ConcatV2(values..., axis); Concat(axis, values...). */
static bool cv_concat(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 2, true)) return false;
  bool v2 = !strcmp(n->p->op, "ConcatV2");
  int ai = v2 ? n->n_in - 1 : 0, ax;
  int64_t *axis;
  int cnt;
  if (!gd_const_ints(c, n, ai, &axis, &cnt)) return false;
  if (cnt != 1) return gd_fail(c, n, "the axis must be one integer");
  if (!gd_axis(c, n, axis[0], shape_of(c, n->in[v2 ? 0 : 1]).rank, &ax)) return false;
  gd_outputs(c, n, 1);
  n->out[0] = gd_concat(c, n->in + (v2 ? 0 : 1), n->n_in - 1, ax);
  return !c->g.failed;
}

static bool cv_pack(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, true)) return false;
  int ax;
  if (!gd_axis(c, n, gd_attr_int(n, "axis", 0), shape_of(c, n->in[0]).rank + 1, &ax)) return false;
  gd_outputs(c, n, 1);
  kg_ref *parts = kc_alloc(c->m->arena, sizeof(kg_ref) * (size_t)n->n_in);
  for (int i = 0; i < n->n_in; i++) parts[i] = gd_expand(c, n->in[i], ax);
  n->out[0] = gd_concat(c, parts, n->n_in, ax);
  return !c->g.failed;
}

kg_ref gd_slice_axis(gd_ctx *c, kg_ref x, int axis, int64_t begin, int64_t size) {
  kg_shape s = shape_of(c, x);
  int64_t b[KILN_MAX_RANK], z[KILN_MAX_RANK];
  for (int d = 0; d < s.rank; d++) b[d] = 0, z[d] = -1;
  b[axis] = begin;
  z[axis] = size;
  kg_attr a[2] = {kb_attr_ints(&c->g, "begin", b, s.rank), kb_attr_ints(&c->g, "size", z, s.rank)};
  return kb_node(&c->g, KC_OP_SLICE, &x, 1, a, 2);
}

static bool cv_unpack(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, false)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  int ax;
  if (!gd_axis(c, n, gd_attr_int(n, "axis", 0), s.rank, &ax)) return false;
  if (s.dim[ax] > 1 << 12) return gd_fail(c, n, "unpacks into %lld tensors (kiln's limit: 4096)", (long long)s.dim[ax]);
  gd_outputs(c, n, (int)s.dim[ax]);
  kg_shape r = {.rank = s.rank - 1};
  for (int d = 0, k = 0; d < s.rank; d++)
    if (d != ax) r.dim[k++] = s.dim[d];
  for (int i = 0; i < n->n_out; i++) n->out[i] = gd_reshape(c, gd_slice_axis(c, n->in[0], ax, i, 1), &r);
  return !c->g.failed;
}

/* Split(axis, value) with num_split; SplitV(value, size_splits, axis). */
static bool cv_split(gd_ctx *c, gd_node *n) {
  bool v = !strcmp(n->p->op, "SplitV");
  if (!gd_inputs(c, n, v ? 3 : 2, false)) return false;
  kg_ref x = n->in[v ? 0 : 1];
  int64_t *axis, *sizes = NULL;
  int cnt, ns = 0, ax;
  if (!gd_const_ints(c, n, v ? 2 : 0, &axis, &cnt)) return false;
  if (cnt != 1 || !gd_axis(c, n, axis[0], shape_of(c, x).rank, &ax)) return gd_fail(c, n, "bad axis");
  int64_t dim = shape_of(c, x).dim[ax];
  if (v) {
    if (!gd_const_ints(c, n, 1, &sizes, &ns)) return false;
    int64_t known = 0;
    int unknown = -1;
    for (int i = 0; i < ns; i++) {
      if (sizes[i] < 0) {
        if (unknown >= 0) return gd_fail(c, n, "size_splits has more than one -1");
        unknown = i;
      } else
        known += sizes[i];
    }
    if (unknown >= 0) sizes[unknown] = dim - known, known = dim;
    if (known != dim) return gd_fail(c, n, "size_splits add up to %lld, not %lld", (long long)known, (long long)dim);
  } else {
    int64_t ask = gd_attr_int(n, "num_split", 1);
    ns = ask > 0 && ask <= 1 << 12 ? (int)ask : 0;
    if (ns <= 0 || dim % ns) return gd_fail(c, n, "dimension %lld does not split into %d", (long long)dim, ns);
    sizes = kc_alloc(c->m->arena, sizeof(int64_t) * (size_t)ns);
    for (int i = 0; i < ns; i++) sizes[i] = dim / ns;
  }
  gd_outputs(c, n, ns);
  for (int i = 0, at = 0; i < ns; at += (int)sizes[i++]) n->out[i] = gd_slice_axis(c, x, ax, at, sizes[i]);
  return !c->g.failed;
}

/* Pad / PadV2 / MirrorPad(REFLECT is not supported). */
static bool cv_pad(gd_ctx *c, gd_node *n) {
  bool v2 = !strcmp(n->p->op, "PadV2");
  int64_t *p;
  int cnt;
  if (!gd_inputs(c, n, v2 ? 3 : 2, false) || !gd_const_ints(c, n, 1, &p, &cnt)) return false;
  int rank = shape_of(c, n->in[0]).rank;
  if (cnt != 2 * rank) return gd_fail(c, n, "paddings has %d values; rank %d needs [%d, 2]", cnt, rank, rank);
  double value = 0;
  if (v2) {
    const kg_tensor *t = gd_const(c, n->in[2]);
    if (!t) return gd_fail(c, n, "constant_values must be known at compile time");
    value = kg_tensor_get_f(t, 0);
  }
  gd_outputs(c, n, 1);
  kg_attr a[2] = {kb_attr_ints(&c->g, "paddings", p, cnt), kb_attr_float("constant_value", value)};
  n->out[0] = kb_node(&c->g, KC_OP_PAD, &n->in[0], 1, a, 2);
  return !c->g.failed;
}

static bool cv_strided_slice(gd_ctx *c, gd_node *n) {
  int64_t *b, *e, *s;
  int nb, ne, ns;
  if (!gd_inputs(c, n, 4, false) || !gd_const_ints(c, n, 1, &b, &nb) || !gd_const_ints(c, n, 2, &e, &ne) ||
      !gd_const_ints(c, n, 3, &s, &ns))
    return false;
  if (nb != ne || nb != ns) return gd_fail(c, n, "begin, end and strides differ in length");
  gd_outputs(c, n, 1);
  static const char *const masks[] = {"begin_mask", "end_mask", "shrink_axis_mask", "new_axis_mask", "ellipsis_mask"};
  kg_attr a[8] = {kb_attr_ints(&c->g, "begin", b, nb), kb_attr_ints(&c->g, "end", e, ne),
                  kb_attr_ints(&c->g, "strides", s, ns)};
  for (int i = 0; i < 5; i++) a[3 + i] = kb_attr_int(masks[i], gd_attr_int(n, masks[i], 0));
  n->out[0] = kb_node(&c->g, KC_OP_STRIDED_SLICE, &n->in[0], 1, a, 8);
  return !c->g.failed;
}

static bool cv_slice(gd_ctx *c, gd_node *n) {
  int64_t *b, *z;
  int nb, nz;
  if (!gd_inputs(c, n, 3, false) || !gd_const_ints(c, n, 1, &b, &nb) || !gd_const_ints(c, n, 2, &z, &nz)) return false;
  if (nb != nz || nb != shape_of(c, n->in[0]).rank) return gd_fail(c, n, "begin and size must both have rank entries");
  gd_outputs(c, n, 1);
  kg_attr a[2] = {kb_attr_ints(&c->g, "begin", b, nb), kb_attr_ints(&c->g, "size", z, nz)};
  n->out[0] = kb_node(&c->g, KC_OP_SLICE, &n->in[0], 1, a, 2);
  return !c->g.failed;
}

static bool cv_transpose(gd_ctx *c, gd_node *n) {
  int64_t *p;
  int cnt;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 1, &p, &cnt)) return false;
  if (cnt != shape_of(c, n->in[0]).rank) return gd_fail(c, n, "perm has %d entries for rank %d", cnt, shape_of(c, n->in[0]).rank);
  gd_outputs(c, n, 1);
  kg_attr a = kb_attr_ints(&c->g, "perm", p, cnt);
  n->out[0] = kb_node(&c->g, KC_OP_TRANSPOSE, &n->in[0], 1, &a, 1);
  return !c->g.failed;
}

/* Tile: x [d0, ...] as [1, d0, 1, d1, ...], broadcast to [m0, d0, m1, d1, ...]. */
static bool cv_tile(gd_ctx *c, gd_node *n) {
  int64_t *m;
  int cnt;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 1, &m, &cnt)) return false;
  kg_shape s = shape_of(c, n->in[0]);
  if (cnt != s.rank) return gd_fail(c, n, "multiples has %d entries for rank %d", cnt, s.rank);
  if (2 * s.rank > KILN_MAX_RANK) return gd_fail(c, n, "rank %d is too high to tile", s.rank);
  gd_outputs(c, n, 1);
  kg_shape a = {.rank = 2 * s.rank}, b = a, r = s;
  for (int d = 0; d < s.rank; d++) {
    if (m[d] < 0 || m[d] > 1 << 20) return gd_fail(c, n, "multiples must be between 0 and 2^20");
    a.dim[2 * d] = 1, a.dim[2 * d + 1] = s.dim[d];
    b.dim[2 * d] = m[d], b.dim[2 * d + 1] = s.dim[d];
    r.dim[d] = m[d] * s.dim[d];
  }
  n->out[0] = gd_reshape(c, kb_broadcast(&c->g, gd_reshape(c, n->in[0], &a), &b), &r);
  return !c->g.failed;
}

static bool cv_fill(gd_ctx *c, gd_node *n) {
  int64_t *dims;
  int cnt;
  if (!gd_inputs(c, n, 2, false) || !gd_const_ints(c, n, 0, &dims, &cnt)) return false;
  if (cnt > KILN_MAX_RANK) return gd_fail(c, n, "rank %d is above kiln's %d", cnt, KILN_MAX_RANK);
  gd_outputs(c, n, 1);
  kg_type t = {gd_type(c, n->in[1])->dtype, {.rank = cnt}};
  int64_t numel = 1;
  for (int d = 0; d < cnt; d++) {
    if (dims[d] < 0 || dims[d] > 1 << 28 || (numel *= dims[d]) > 1 << 28) return gd_fail(c, n, "dims must be sizes");
    t.shape.dim[d] = dims[d];
  }
  kg_ref v = gd_type(c, n->in[1])->shape.rank ? gd_reshape(c, n->in[1], &(kg_shape){0}) : n->in[1];
  n->out[0] = kb_typed_node(&c->g, KC_OP_FILL, &t, &v, 1, NULL, 0);
  return !c->g.failed;
}

static bool cv_like(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 1, false)) return false;
  gd_outputs(c, n, 1);
  n->out[0] = kb_typed_node(&c->g, !strcmp(n->p->op, "ZerosLike") ? KC_OP_ZEROS : KC_OP_ONES, gd_type(c, n->in[0]),
                            NULL, 0, NULL, 0);
  return !c->g.failed;
}

/* GatherV2(params, indices, axis); Gather(params, indices). */
static bool cv_gather(gd_ctx *c, gd_node *n) {
  bool v2 = !strcmp(n->p->op, "GatherV2");
  if (!gd_inputs(c, n, v2 ? 3 : 2, false)) return false;
  int ax = 0;
  if (v2) {
    int64_t *axis;
    int cnt;
    if (!gd_const_ints(c, n, 2, &axis, &cnt)) return false;
    if (cnt != 1 || !gd_axis(c, n, axis[0], shape_of(c, n->in[0]).rank, &ax)) return gd_fail(c, n, "bad axis");
  }
  if (gd_attr_int(n, "batch_dims", 0)) return gd_fail(c, n, "batch_dims other than 0 is not supported");
  gd_outputs(c, n, 1);
  kg_attr a = kb_attr_int("axis", ax);
  n->out[0] = kb_node(&c->g, KC_OP_GATHER, n->in, 2, &a, 1);
  return !c->g.failed;
}

static bool cv_range(gd_ctx *c, gd_node *n) {
  if (!gd_inputs(c, n, 3, false)) return false;
  const kg_tensor *t[3];
  for (int i = 0; i < 3; i++)
    if (!(t[i] = gd_const(c, n->in[i]))) return gd_fail(c, n, "start, limit and delta must be known at compile time");
  double start = kg_tensor_get_f(t[0], 0), limit = kg_tensor_get_f(t[1], 0), delta = kg_tensor_get_f(t[2], 0);
  if (delta == 0) return gd_fail(c, n, "delta is 0");
  double count = ceil((limit - start) / delta);
  if (count < 0) count = 0;
  if (count > 1 << 24) return gd_fail(c, n, "the range is too long");
  gd_outputs(c, n, 1);
  int64_t k = (int64_t)count;
  double *v = kc_alloc(c->m->arena, sizeof(double) * (size_t)(k + 1));
  for (int64_t i = 0; i < k; i++) v[i] = start + (double)i * delta;
  n->out[0] = gd_const_from(c, gd_type(c, n->in[0])->dtype, &(kg_shape){1, {k}}, v);
  return !c->g.failed;
}

/* Ops whose output size depends on the values: refused with the reason. */
static bool cv_dynamic_size(gd_ctx *c, gd_node *n) {
  const char *op = n->p->op;
  if (!strcmp(op, "Where"))
    return gd_fail(c, n, "Where's output size is the number of true elements, known only at run time; kiln compiles "
                         "static shapes");
  if (!strcmp(op, "Unique"))
    return gd_fail(c, n, "Unique's output size is the number of distinct values, known only at run time; kiln compiles "
                         "static shapes");
  if (gd_attr_bool(n, "pad_to_max_output_size", false))
    return gd_fail(c, n, "%s is not supported yet (padded to max_output_size, its output size would be static)", op);
  return gd_fail(c, n, "%s's output size is the number of boxes it keeps, known only at run time "
                       "(pad_to_max_output_size is false); kiln compiles static shapes", op);
}

const gd_op gd_ops_array[] = {
    {"Const", cv_const},
    {"Placeholder", cv_placeholder},
    {"PlaceholderWithDefault", gd_cv_identity},
    {"Identity", gd_cv_identity},
    {"IdentityN", gd_cv_identity},
    {"Snapshot", gd_cv_identity},
    {"StopGradient", gd_cv_identity},
    {"PreventGradient", gd_cv_identity},
    {"NoOp", cv_no_op},
    {"Shape", cv_shape},
    {"Size", cv_shape},
    {"Rank", cv_shape},
    {"Reshape", cv_reshape},
    {"Squeeze", cv_squeeze},
    {"ExpandDims", cv_expand_dims},
    {"ConcatV2", cv_concat},
    {"Concat", cv_concat},
    {"Pack", cv_pack},
    {"Unpack", cv_unpack},
    {"Split", cv_split},
    {"SplitV", cv_split},
    {"Pad", cv_pad},
    {"PadV2", cv_pad},
    {"StridedSlice", cv_strided_slice},
    {"Slice", cv_slice},
    {"Transpose", cv_transpose},
    {"Tile", cv_tile},
    {"Fill", cv_fill},
    {"ZerosLike", cv_like},
    {"OnesLike", cv_like},
    {"GatherV2", cv_gather},
    {"Gather", cv_gather},
    {"Range", cv_range},
    {"Where", cv_dynamic_size},
    {"Unique", cv_dynamic_size},
    {"NonMaxSuppression", cv_dynamic_size},
    {"NonMaxSuppressionV2", cv_dynamic_size},
    {"NonMaxSuppressionV3", cv_dynamic_size},
    {"NonMaxSuppressionV4", cv_dynamic_size},
    {"NonMaxSuppressionV5", cv_dynamic_size},
    {NULL, NULL},
};
