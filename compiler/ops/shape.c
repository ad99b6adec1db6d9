/* shape.c — the shape and data-movement ops: reshape, transpose, concat,
 * slice, strided_slice, gather, pad, broadcast_to, one_hot, expand_dims,
 * squeeze.  For each, the shape rule (kc_infer_*) and, unless the op only
 * aliases its operand (reshape, expand_dims, squeeze: the planner shares the
 * buffer and lower.c's kl_lower_alias emits nothing), the LLVM lowering.
 *
 * Shapes are static, so every index computation that depends only on shapes
 * and attributes (strides, slice starts, clamped strided_slice ranges) is done
 * here in C; the emitted code is plain counted loops.  Most of these ops are
 * "copy a strided view": transpose, slice, strided_slice, broadcast_to, and
 * the per-operand parts of concat and pad all reduce to one copy_plan that
 * emit_copy turns into a loop nest (see there).
 *
 * Every bad shape or attribute is a user error reported through
 * kc_node_error (which names the node and op), never an assert: the .kg text
 * is user input.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lower/lower.h"
#include "ops/ops_util.h"

/* User-given sizes (reshape, broadcast_to, pad, one_hot) can be absurd; the
 * planner multiplies them into byte counts, so refuse anything whose byte
 * size does not fit in an int64. */
static bool check_size(kc_infer_ctx *c, const kg_node *n, const kg_shape *s) {
  int64_t k = 8;
  for (int i = 0; i < s->rank; i++)
    if (s->dim[i] && __builtin_mul_overflow(k, s->dim[i], &k)) {
      char b[160];
      return kc_node_error(c, n, "result shape %s is too large", kc_shape_str(s, b, sizeof b));
    }
  return true;
}

/* The `dtype` attribute (one_hot); the verifier does not materialize
 * defaults, so the table's default (f32) is repeated here. */
static kiln_dtype attr_dtype(const kg_node *n, const char *name, kiln_dtype dflt) {
  const kg_attr *a = kg_node_attr(n, name);
  return a && a->kind == KG_ATTR_DTYPE ? a->dtype : dflt;
}

/* A position at which to insert a new dimension into a rank-`rank` shape:
 * [-rank-1, rank], negative counting from the end of the result.  (Checked
 * here rather than by kc_axis so the message speaks of the operand's rank.) */
static bool insert_axis(kc_infer_ctx *c, const kg_node *n, int64_t axis, int rank, int *out) {
  if (axis < -rank - 1 || axis > rank)
    return kc_node_error(
        c, n, "axis %lld is out of range [%d, %d] for a new dimension of a rank-%d operand",
        (long long)axis, -rank - 1, rank, rank);
  *out = (int)(axis < 0 ? axis + rank + 1 : axis);
  return true;
}

/* ---- emission helpers ---- */

/* Data movement copies bits, so booleans travel as plain bytes: a bool
 * load/store pair would truncate to i1 and widen again for nothing. */
static kiln_dtype move_dt(kiln_dtype dt) { return dt == KILN_BOOL ? KILN_U8 : dt; }

static bool is_zero(LLVMValueRef v) {
  return LLVMIsAConstantInt(v) && LLVMConstIntGetSExtValue(v) == 0;
}

/* a*k + b on i64 indices (k a compile-time constant; b may be NULL for 0).
 * nsw: indices are in-bounds element offsets, which lets LLVM vectorize.
 * Trivial terms are left out so the unoptimized IR stays readable. */
static LLVMValueRef madd(kl_ctx *L, LLVMValueRef a, int64_t k, LLVMValueRef b) {
  LLVMValueRef v = NULL; /* a*k; NULL when it is 0 */
  if (k != 0 && !is_zero(a)) v = k == 1 ? a : LLVMBuildNSWMul(L->B, a, kl_i64(L, k), "");
  if (b && !is_zero(b)) v = v ? LLVMBuildNSWAdd(L->B, v, b, "") : b;
  return v ? v : kl_i64(L, 0);
}

/* A counted loop over [0, n), except that a single trip is no loop at all
 * (index constant 0): views here often have such dimensions (gather on
 * axis 0, one_hot on the last axis), and LLVM would only fold them away. */
typedef struct span {
  kl_loop lp;
  bool loop;
  LLVMValueRef i;
} span;

static span span_begin(kl_ctx *L, int64_t n, const char *name) {
  span s = {.loop = n != 1};
  if (s.loop) {
    s.lp = kl_for(L, kl_i64(L, n), name);
    s.i = s.lp.index;
  } else {
    s.i = kl_i64(L, 0);
  }
  return s;
}

static void span_end(kl_ctx *L, span *s) {
  if (s->loop) kl_for_end(L, &s->lp);
}

/* Loads an integer index element and widens it to i64 (signedness of its
 * dtype respected). */
static LLVMValueRef load_index(kl_ctx *L, kiln_dtype dt, LLVMValueRef base, LLVMValueRef i) {
  return kl_convert(L, kl_load(L, dt, base, i), dt, KILN_I64);
}

/* A scalar attribute value as a constant of dtype dt, with cast semantics
 * (floats truncate toward zero for integers; bool is v != 0). */
static LLVMValueRef const_of(kl_ctx *L, kiln_dtype dt, double v) {
  if (kg_dtype_is_float(dt)) return kl_const_f(L, dt, v);
  if (dt == KILN_BOOL) return kl_const_i(L, dt, v != 0);
  if (!(fabs(v) < 9.2e18)) v = 0; /* NaN or out of int64 range: C's cast would be UB */
  return kl_const_i(L, dt, (int64_t)v);
}

/* Copies `count` consecutive elements: one load/store, or a memcpy of the run. */
static void copy_run(kl_ctx *L, kiln_dtype dt, LLVMValueRef dst, LLVMValueRef di, LLVMValueRef src,
                     LLVMValueRef si, int64_t count) {
  dt = move_dt(dt);
  if (count == 1)
    kl_store(L, dt, dst, di, kl_load(L, dt, src, si));
  else
    kl_memcpy(L, kl_gep(L, dt, dst, di), kl_gep(L, dt, src, si),
              count * (int64_t)kg_dtype_size(dt));
}

/* A copy between two strided views of the same logical shape `dim`:
 * element (i0..i{r-1}) moves from src[src_off + sum ik*src_stride[k]] to
 * dst[dst_off + sum ik*dst_stride[k]].  Strides are in elements and may be
 * 0 (broadcast) or negative (reversed strided_slice). */
typedef kc_copy_plan copy_plan; /* ops_util.h */

static void copy_level(kl_ctx *L, kiln_dtype dt, LLVMValueRef dst, LLVMValueRef src,
                       const copy_plan *p, int d, LLVMValueRef di, LLVMValueRef si, int64_t run) {
  if (d == p->rank) {
    copy_run(L, dt, dst, di, src, si, run);
    return;
  }
  span sp = span_begin(L, p->dim[d], "copy");
  copy_level(L, dt, dst, src, p, d + 1, madd(L, sp.i, p->dst_stride[d], di),
             madd(L, sp.i, p->src_stride[d], si), run);
  span_end(L, &sp);
}

/* Emits a copy_plan as a loop nest.  Nested loops rather than one flat loop
 * with div/mod: after simplification most views are one or two loops, and
 * the innermost has constant strides, which LLVM vectorizes.  The plan is
 * simplified first: size-1 dimensions move nothing, adjacent dimensions that
 * are contiguous in both views merge into one, and an innermost dimension
 * with unit strides on both sides becomes a memcpy per outer iteration (so
 * concat along axis 0 or a slice of whole rows is a single memcpy). */
static void emit_copy(kl_ctx *L, kiln_dtype dt, LLVMValueRef dst, LLVMValueRef src,
                      const copy_plan *p) {
  copy_plan q = {.src_off = p->src_off, .dst_off = p->dst_off};
  for (int d = 0; d < p->rank; d++) {
    if (p->dim[d] == 0) return; /* nothing to move (and offsets may point past the end) */
    if (p->dim[d] == 1) continue;
    int o = q.rank - 1;
    if (o >= 0 && q.src_stride[o] == p->src_stride[d] * p->dim[d] &&
        q.dst_stride[o] == p->dst_stride[d] * p->dim[d]) {
      q.dim[o] *= p->dim[d];
      q.src_stride[o] = p->src_stride[d];
      q.dst_stride[o] = p->dst_stride[d];
    } else {
      q.dim[q.rank] = p->dim[d];
      q.src_stride[q.rank] = p->src_stride[d];
      q.dst_stride[q.rank] = p->dst_stride[d];
      q.rank++;
    }
  }
  int64_t run = 1;
  if (q.rank > 0 && q.src_stride[q.rank - 1] == 1 && q.dst_stride[q.rank - 1] == 1)
    run = q.dim[--q.rank];
  copy_level(L, dt, dst, src, &q, 0, kl_i64(L, q.dst_off), kl_i64(L, q.src_off), run);
}

/* ---- reshape, expand_dims, squeeze (aliases: shape rules only) ---- */

bool kc_infer_reshape(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  int cnt;
  const int64_t *v;
  char b1[160], b2[160];
  if (!kc_attr_ints(n, "shape", &cnt, &v))
    return kc_node_error(c, n, "attribute 'shape' is required");
  kc_ints_str(v, cnt, b2, sizeof b2);
  if (cnt > KILN_MAX_RANK)
    return kc_node_error(c, n, "shape %s has %d dimensions; at most %d are supported", b2, cnt,
                         KILN_MAX_RANK);
  kg_shape s = {.rank = cnt};
  int unknown = -1;
  int64_t known = 1;
  for (int i = 0; i < cnt; i++) {
    if (v[i] == -1) {
      if (unknown >= 0) return kc_node_error(c, n, "shape %s has more than one -1", b2);
      unknown = i;
    } else if (v[i] < 0) {
      return kc_node_error(c, n, "shape %s has a negative dimension %lld", b2, (long long)v[i]);
    } else {
      s.dim[i] = v[i];
      if (__builtin_mul_overflow(known, v[i], &known))
        return kc_node_error(c, n, "shape %s is too large", b2);
    }
  }
  int64_t total = kg_shape_numel(&x->shape);
  kc_shape_str(&x->shape, b1, sizeof b1);
  if (unknown >= 0) {
    if (known == 0)
      return kc_node_error(
          c, n, "cannot infer the -1 in shape %s: the other dimensions multiply to 0", b2);
    if (total % known)
      return kc_node_error(
          c, n, "cannot reshape %s (%lld elements) to %s: %lld is not a multiple of %lld", b1,
          (long long)total, b2, (long long)total, (long long)known);
    s.dim[unknown] = total / known;
  } else if (known != total) {
    return kc_node_error(c, n, "cannot reshape %s (%lld elements) to %s (%lld elements)", b1,
                         (long long)total, b2, (long long)known);
  }
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

bool kc_infer_expand_dims(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  if (x->shape.rank >= KILN_MAX_RANK)
    return kc_node_error(c, n, "the result would have rank %d; at most %d is supported",
                         x->shape.rank + 1, KILN_MAX_RANK);
  int ax = 0;
  if (!insert_axis(c, n, kg_attr_int(n, "axis", 0), x->shape.rank, &ax)) return false;
  kg_shape s = {.rank = x->shape.rank + 1};
  for (int i = 0, j = 0; i < s.rank; i++) s.dim[i] = i == ax ? 1 : x->shape.dim[j++];
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

bool kc_infer_squeeze(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  bool drop[KILN_MAX_RANK] = {0};
  int cnt;
  const int64_t *v;
  if (kc_attr_ints(n, "axes", &cnt, &v)) {
    for (int i = 0; i < cnt; i++) {
      int ax = 0;
      if (!kc_axis(c, n, v[i], x->shape.rank, &ax)) return false;
      if (x->shape.dim[ax] != 1) {
        char b[160];
        return kc_node_error(c, n, "cannot squeeze axis %lld of %s: its size is %lld, not 1",
                             (long long)v[i], kc_shape_str(&x->shape, b, sizeof b),
                             (long long)x->shape.dim[ax]);
      }
      drop[ax] = true;
    }
  } else {
    for (int d = 0; d < x->shape.rank; d++) drop[d] = x->shape.dim[d] == 1;
  }
  kg_shape s = {0};
  for (int d = 0; d < x->shape.rank; d++)
    if (!drop[d]) s.dim[s.rank++] = x->shape.dim[d];
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

/* ---- transpose ---- */

/* perm of a node whose shape rule passed: the attribute normalized, or the
 * reversed order when absent. */
static void transpose_perm(const kg_node *n, int rank, int *perm) {
  int cnt;
  const int64_t *v;
  bool given = kc_attr_ints(n, "perm", &cnt, &v);
  for (int d = 0; d < rank; d++)
    perm[d] = given ? (int)(v[d] < 0 ? v[d] + rank : v[d]) : rank - 1 - d;
}

bool kc_infer_transpose(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  int r = x->shape.rank, cnt;
  const int64_t *v;
  char b1[160], b2[160];
  if (kc_attr_ints(n, "perm", &cnt, &v)) {
    kc_ints_str(v, cnt, b2, sizeof b2);
    kc_shape_str(&x->shape, b1, sizeof b1);
    if (cnt != r)
      return kc_node_error(c, n, "perm %s has %d entries but the operand %s has rank %d", b2, cnt,
                           b1, r);
    bool seen[KILN_MAX_RANK] = {0};
    for (int d = 0; d < r; d++) {
      if (v[d] < -r || v[d] >= r || seen[v[d] < 0 ? v[d] + r : v[d]])
        return kc_node_error(c, n, "perm %s is not a permutation of 0..%d", b2, r - 1);
      seen[v[d] < 0 ? v[d] + r : v[d]] = true;
    }
  }
  int perm[KILN_MAX_RANK];
  transpose_perm(n, r, perm);
  kg_shape s = {.rank = r};
  for (int d = 0; d < r; d++) s.dim[d] = x->shape.dim[perm[d]];
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

bool kl_lower_transpose(kl_ctx *L, int node) {
  const kg_type *x = kl_in_type(L, node, 0), *y = kl_out_type(L, node, 0);
  int perm[KILN_MAX_RANK];
  int64_t ist[KILN_MAX_RANK];
  transpose_perm(&L->m->nodes[node], x->shape.rank, perm);
  kc_row_strides(&x->shape, ist);
  copy_plan p = kc_copy_plan_into(&y->shape);
  for (int d = 0; d < p.rank; d++) p.src_stride[d] = ist[perm[d]];
  emit_copy(L, x->dtype, kl_out(L, node, 0), kl_in(L, node, 0), &p);
  return true;
}

/* ---- concat ---- */

bool kc_infer_concat(kc_infer_ctx *c, kg_node *n) {
  if (n->n_in < 1) return kc_node_error(c, n, "needs at least one operand");
  const kg_type *t0 = kc_in_type(c, n, 0);
  int ax = 0;
  if (!kc_axis(c, n, kg_attr_int(n, "axis", 0), t0->shape.rank, &ax)) return false;
  kg_shape s = t0->shape;
  for (int k = 1; k < n->n_in; k++) {
    const kg_type *t = kc_in_type(c, n, k);
    char b0[160], b1[160];
    kg_type_str(t0, b0, sizeof b0);
    kg_type_str(t, b1, sizeof b1);
    if (t->dtype != t0->dtype)
      return kc_node_error(c, n, "operand %d is %s but operand 0 is %s: dtypes must match", k, b1,
                           b0);
    if (t->shape.rank != s.rank)
      return kc_node_error(c, n, "operand %d is %s but operand 0 is %s: ranks must match", k, b1,
                           b0);
    for (int d = 0; d < s.rank; d++)
      if (d != ax && t->shape.dim[d] != s.dim[d])
        return kc_node_error(c, n,
                             "operand %d is %s but operand 0 is %s: dimension %d differs "
                             "(only axis %d may)",
                             k, b1, b0, d, ax);
    s.dim[ax] += t->shape.dim[ax];
  }
  kc_set_out(c, n, t0->dtype, &s);
  return true;
}

/* Each operand is copied into its band of the output: the operand is read
 * contiguously and written with the output's strides, offset along axis. */
bool kl_lower_concat(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *y = kl_out_type(L, node, 0);
  int64_t axis = kg_attr_int(n, "axis", 0);
  int ax = (int)(axis < 0 ? axis + y->shape.rank : axis);
  int64_t ost[KILN_MAX_RANK], at = 0;
  kc_row_strides(&y->shape, ost);
  LLVMValueRef out = kl_out(L, node, 0);
  for (int k = 0; k < n->n_in; k++) {
    const kg_type *t = kl_in_type(L, node, k);
    copy_plan p = kc_copy_plan_from(&t->shape);
    memcpy(p.dst_stride, ost, sizeof ost);
    p.dst_off = at * ost[ax];
    emit_copy(L, y->dtype, out, kl_in(L, node, k), &p);
    at += t->shape.dim[ax];
  }
  return true;
}

/* ---- slice ---- */

bool kc_infer_slice(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  int r = x->shape.rank, nb, ns;
  const int64_t *b, *sz;
  char bs[160];
  kc_shape_str(&x->shape, bs, sizeof bs);
  if (!kc_attr_ints(n, "begin", &nb, &b) || !kc_attr_ints(n, "size", &ns, &sz))
    return kc_node_error(c, n, "attributes 'begin' and 'size' are required");
  if (nb != r || ns != r)
    return kc_node_error(c, n, "begin has %d entries and size %d, but the operand %s has rank %d",
                         nb, ns, bs, r);
  kg_shape s = {.rank = r};
  for (int d = 0; d < r; d++) {
    int64_t dim = x->shape.dim[d];
    if (b[d] < 0 || b[d] > dim)
      return kc_node_error(c, n, "begin[%d] = %lld is out of range for dimension %d of %s", d,
                           (long long)b[d], d, bs);
    if (sz[d] < -1)
      return kc_node_error(c, n, "size[%d] = %lld is negative (only -1, 'to the end', is allowed)",
                           d, (long long)sz[d]);
    s.dim[d] = sz[d] == -1 ? dim - b[d] : sz[d];
    if (s.dim[d] > dim - b[d])
      return kc_node_error(c, n,
                           "begin[%d] = %lld with size[%d] = %lld runs past dimension %d of %s", d,
                           (long long)b[d], d, (long long)s.dim[d], d, bs);
  }
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

bool kl_lower_slice(kl_ctx *L, int node) {
  const kg_type *x = kl_in_type(L, node, 0), *y = kl_out_type(L, node, 0);
  int nb;
  const int64_t *b;
  kc_attr_ints(&L->m->nodes[node], "begin", &nb, &b);
  copy_plan p = kc_copy_plan_into(&y->shape);
  kc_row_strides(&x->shape, p.src_stride);
  for (int d = 0; d < p.rank; d++) p.src_off += b[d] * p.src_stride[d];
  emit_copy(L, x->dtype, kl_out(L, node, 0), kl_in(L, node, 0), &p);
  return true;
}

/* ---- strided_slice ---- */

/* The compile-time form of a strided slice: per input dimension the first
 * index, step and count; per output dimension the input dimension it walks
 * (-1 for a new axis of size 1).  Shrunk dimensions keep count 1 and appear
 * in no output dimension. */
typedef kc_ss_plan ss_plan; /* ops_util.h */

enum { SS_NEW_AXIS = -1, SS_SHRINK = -2, SS_MAX_SPEC = 32 };

/* An unmasked begin/end: a negative index counts from the end once, then
 * the result clamps into [lo, hi] (out-of-range slices are empty or
 * truncated, never errors, as in NumPy). */
static int64_t ss_clamp(int64_t x, int64_t dim, int64_t lo, int64_t hi) {
  if (x < 0) x = x < -dim ? lo : x + dim; /* (no overflow for huge negatives) */
  return x < lo ? lo : x > hi ? hi : x;
}

/* TF's ValidateStridedSliceOp, for static shapes: expands the sparse spec
 * (with its ellipsis and new axes) into one entry per input dimension,
 * canonicalizes begin/end with the masks and clamping, and derives the
 * output shape.  On a user error writes the message to err. */
static bool ss_compute(const kg_node *n, const kg_shape *in, ss_plan *p, char *err, size_t errlen) {
  int nb, ne, ns = 0, r = in->rank;
  const int64_t *b = NULL, *e = NULL, *st = NULL;
  memset(p, 0, sizeof *p);
  if (!kc_attr_ints(n, "begin", &nb, &b) || !kc_attr_ints(n, "end", &ne, &e)) {
    snprintf(err, errlen, "attributes 'begin' and 'end' are required");
    return false;
  }
  bool have_strides = kc_attr_ints(n, "strides", &ns, &st);
  if (ne != nb || (have_strides && ns != nb)) {
    snprintf(err, errlen, "begin, end and strides must have the same length (got %d, %d, %d)", nb,
             ne, have_strides ? ns : nb);
    return false;
  }
  if (nb > SS_MAX_SPEC) {
    snprintf(err, errlen, "begin has %d entries; at most %d are supported", nb, SS_MAX_SPEC);
    return false;
  }
  /* Mask bits beyond the spec's length mean nothing (as in TF). */
  uint64_t low = (1ull << nb) - 1;
  uint64_t bmask = (uint64_t)kg_attr_int(n, "begin_mask", 0) & low;
  uint64_t emask = (uint64_t)kg_attr_int(n, "end_mask", 0) & low;
  uint64_t smask = (uint64_t)kg_attr_int(n, "shrink_axis_mask", 0) & low;
  uint64_t nmask = (uint64_t)kg_attr_int(n, "new_axis_mask", 0) & low;
  uint64_t elmask = (uint64_t)kg_attr_int(n, "ellipsis_mask", 0) & low;
  if (elmask & (elmask - 1)) {
    snprintf(err, errlen, "ellipsis_mask has more than one bit set: only one ellipsis is allowed");
    return false;
  }

  /* New axes after the ellipsis are not input dimensions, so the ellipsis
   * covers that many more; without an ellipsis there is one at the end. */
  int sparse = nb, new_after = 0;
  bool seen = false;
  for (int i = 0; i < nb; i++) {
    if (seen && (nmask >> i & 1)) new_after++;
    if (elmask >> i & 1) seen = true;
  }
  if (!seen) elmask |= 1ull << sparse++;

  /* Dense spec: one entry per input dimension. */
  int64_t db[KILN_MAX_RANK] = {0}, de[KILN_MAX_RANK] = {0}, ds[KILN_MAX_RANK];
  for (int i = 0; i < KILN_MAX_RANK; i++) ds[i] = 1;
  bool dbm[KILN_MAX_RANK] = {0}, dem[KILN_MAX_RANK] = {0}, dshrink[KILN_MAX_RANK] = {0};
  int final[SS_MAX_SPEC + KILN_MAX_RANK + 1], n_final = 0, full = 0;
  for (int i = 0; i < sparse; i++) {
    if (elmask >> i & 1) {
      int next = r - (sparse - i) + 1 + new_after;
      if (next > r) next = r;
      for (; full < next; full++) {
        dbm[full] = dem[full] = true;
        final[n_final++] = full;
      }
    } else if (nmask >> i & 1) {
      final[n_final++] = SS_NEW_AXIS;
    } else {
      if (full == r) {
        snprintf(err, errlen, "slice entry %d indexes dimension %d, but the operand has rank %d", i,
                 full, r);
        return false;
      }
      db[full] = b[i];
      de[full] = e[i];
      ds[full] = have_strides ? st[i] : 1;
      dbm[full] = bmask >> i & 1;
      dem[full] = emask >> i & 1;
      dshrink[full] = smask >> i & 1;
      final[n_final++] = dshrink[full] ? SS_SHRINK : full;
      full++;
    }
  }

  /* Canonical ranges: masks pick the whole extent in the stride's
   * direction; other indices wrap once if negative, then clamp to
   * [0, dim] going forward or [-1, dim-1] going backward. */
  for (int i = 0; i < r; i++) {
    int64_t dim = in->dim[i], s = ds[i];
    if (s == 0) {
      snprintf(err, errlen, "the stride for dimension %d is 0", i);
      return false;
    }
    if (dshrink[i]) {
      if (s < 0) {
        snprintf(err, errlen, "dimension %d is indexed (shrink_axis_mask) with a negative stride",
                 i);
        return false;
      }
      if (db[i] < -dim || db[i] >= dim) {
        snprintf(err, errlen, "index %lld is out of range for dimension %d of size %lld",
                 (long long)db[i], i, (long long)dim);
        return false;
      }
      p->start[i] = db[i] < 0 ? db[i] + dim : db[i], p->step[i] = 1, p->count[i] = 1;
      continue;
    }
    int64_t lo = s > 0 ? 0 : -1, hi = s > 0 ? dim : dim - 1;
    int64_t bi = dbm[i] ? (s > 0 ? lo : hi) : ss_clamp(db[i], dim, lo, hi);
    int64_t ei = dem[i] ? (s > 0 ? hi : lo) : ss_clamp(de[i], dim, lo, hi);
    int64_t len = ei - bi;
    p->start[i] = bi;
    p->step[i] = s;
    p->count[i] = len == 0 || (len < 0) != (s < 0) ? 0 : len / s + (len % s != 0);
  }

  for (int k = 0; k < n_final; k++) {
    if (final[k] == SS_SHRINK) continue;
    if (p->out_rank == KILN_MAX_RANK) {
      snprintf(err, errlen, "the result would have more than %d dimensions", KILN_MAX_RANK);
      return false;
    }
    p->from[p->out_rank++] = final[k];
  }
  return true;
}

bool kc_infer_strided_slice(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  ss_plan p;
  char err[256];
  if (!ss_compute(n, &x->shape, &p, err, sizeof err)) return kc_node_error(c, n, "%s", err);
  kg_shape s = {.rank = p.out_rank};
  for (int d = 0; d < p.out_rank; d++) s.dim[d] = p.from[d] < 0 ? 1 : p.count[p.from[d]];
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

/* Copies between the strided view of `full` that node's attributes select
 * and a contiguous tensor of the view's shape: gathering the view out
 * (strided_slice) or scattering into it (strided_slice_grad). */
static bool ss_copy(kl_ctx *L, int node, const kg_shape *full, const kg_shape *view, bool scatter) {
  ss_plan sp;
  char err[256];
  if (!ss_compute(&L->m->nodes[node], full, &sp, err, sizeof err)) return false; /* inferred already */
  int64_t st[KILN_MAX_RANK], off = 0, strided[KILN_MAX_RANK];
  kc_row_strides(full, st);
  for (int i = 0; i < full->rank; i++) off += sp.start[i] * st[i];
  for (int d = 0; d < view->rank; d++) {
    int f = sp.from[d];
    /* a step only matters when it is taken (a huge one would overflow) */
    strided[d] = f < 0 || sp.count[f] < 2 ? 0 : sp.step[f] * st[f];
  }
  copy_plan p = scatter ? kc_copy_plan_from(view) : kc_copy_plan_into(view);
  memcpy(scatter ? p.dst_stride : p.src_stride, strided, sizeof strided);
  if (scatter) p.dst_off = off;
  else p.src_off = off;
  emit_copy(L, kl_out_type(L, node, 0)->dtype, kl_out(L, node, 0), kl_in(L, node, 0), &p);
  return true;
}

bool kl_lower_strided_slice(kl_ctx *L, int node) {
  return ss_copy(L, node, &kl_in_type(L, node, 0)->shape, &kl_out_type(L, node, 0)->shape, false);
}

/* ---- gather ---- */

/* params[:axis] + indices.shape + params[axis+1:]: what gather yields and
 * what scatter_add takes. */
static kg_shape gathered_shape(const kg_shape *params, int ax, const kg_shape *indices) {
  kg_shape s = {.rank = params->rank - 1 + indices->rank};
  int k = 0;
  for (int d = 0; d < ax; d++) s.dim[k++] = params->dim[d];
  for (int d = 0; d < indices->rank; d++) s.dim[k++] = indices->dim[d];
  for (int d = ax + 1; d < params->rank; d++) s.dim[k++] = params->dim[d];
  return s;
}

/* A tensor of shape `full` indexed along `axis`, viewed as [outer, A, inner],
 * with N indices. */
typedef kc_gather_view gview; /* ops_util.h */

/* Checks every index first, so later loops have no branches and a bad index
 * ends the run before anything is touched out of bounds. */
static void check_indices(kl_ctx *L, int node, kiln_dtype dt, LLVMValueRef idx, const gview *g, const char *what) {
  kl_loop chk = kl_for(L, kl_i64(L, g->N), "index_check");
  LLVMValueRef k = load_index(L, dt, idx, chk.index);
  /* unsigned >= also catches negative indices */
  kl_fail_if(L, LLVMBuildICmp(L->B, LLVMIntUGE, k, kl_i64(L, g->A), ""), node,
             kc_sprintf(L->m->arena, "%s index out of range [0, %lld) for axis %d", what, (long long)g->A, g->ax));
  kl_for_end(L, &chk);
}

bool kc_infer_gather(kc_infer_ctx *c, kg_node *n) {
  const kg_type *pt = kc_in_type(c, n, 0), *it = kc_in_type(c, n, 1);
  char b[160];
  if (it->dtype != KILN_I32 && it->dtype != KILN_I64)
    return kc_node_error(c, n, "indices are %s; they must be i32 or i64",
                         kg_type_str(it, b, sizeof b));
  int ax = 0;
  if (!kc_axis(c, n, kg_attr_int(n, "axis", 0), pt->shape.rank, &ax)) return false;
  int r = pt->shape.rank - 1 + it->shape.rank;
  if (r > KILN_MAX_RANK)
    return kc_node_error(c, n, "the result would have rank %d; at most %d is supported", r,
                         KILN_MAX_RANK);
  kg_shape s = gathered_shape(&pt->shape, ax, &it->shape);
  kc_set_out(c, n, pt->dtype, &s);
  return true;
}

/* params viewed as [outer, A, inner] and the output as [outer, N, inner]
 * (N = number of indices): out[o, k, :] = params[o, indices[k], :].  All
 * indices are checked first, so the copy loop has no branches and a bad
 * index ends the run before anything is read out of bounds. */
bool kl_lower_gather(kl_ctx *L, int node) {
  const kg_type *pt = kl_in_type(L, node, 0), *it = kl_in_type(L, node, 1);
  gview g = kc_gather_view_of(&pt->shape, kg_attr_int(&L->m->nodes[node], "axis", 0), &it->shape);
  LLVMValueRef params = kl_in(L, node, 0), idx = kl_in(L, node, 1), out = kl_out(L, node, 0);
  if (g.N == 0) return true;
  check_indices(L, node, it->dtype, idx, &g, "gather");
  if (g.outer == 0 || g.inner == 0) return true;
  span so = span_begin(L, g.outer, "gather_outer"), sk = span_begin(L, g.N, "gather");
  LLVMValueRef k = load_index(L, it->dtype, idx, sk.i);
  LLVMValueRef si = madd(L, madd(L, so.i, g.A, k), g.inner, NULL);
  LLVMValueRef di = madd(L, madd(L, so.i, g.N, sk.i), g.inner, NULL);
  copy_run(L, pt->dtype, out, di, params, si, g.inner);
  span_end(L, &sk);
  span_end(L, &so);
  return true;
}

/* ---- pad ---- */

bool kc_infer_pad(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  int r = x->shape.rank, cnt;
  const int64_t *v;
  char b1[160], b2[200];
  if (!kc_attr_ints(n, "paddings", &cnt, &v))
    return kc_node_error(c, n, "attribute 'paddings' is required");
  kc_ints_str(v, cnt, b2, sizeof b2);
  kc_shape_str(&x->shape, b1, sizeof b1);
  if (cnt != 2 * r)
    return kc_node_error(c, n,
                         "paddings %s has %d entries; the operand %s has rank %d, so it needs %d "
                         "([before0, after0, before1, after1, ...])",
                         b2, cnt, b1, r, 2 * r);
  kg_shape s = {.rank = r};
  for (int d = 0; d < r; d++) {
    if (v[2 * d] < 0 || v[2 * d + 1] < 0)
      return kc_node_error(c, n, "paddings %s has a negative entry for dimension %d", b2, d);
    if (__builtin_add_overflow(x->shape.dim[d], v[2 * d], &s.dim[d]) ||
        __builtin_add_overflow(s.dim[d], v[2 * d + 1], &s.dim[d]))
      return kc_node_error(c, n, "paddings %s is too large", b2);
  }
  if (!check_size(c, n, &s)) return false;
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

/* Fills the whole output with the constant, then copies the operand into
 * its interior: simpler than enumerating the border regions, and the fill is
 * a memset or a trivially vectorized store loop. */
bool kl_lower_pad(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *x = kl_in_type(L, node, 0), *y = kl_out_type(L, node, 0);
  double cv = kg_attr_float(n, "constant_value", 0);
  LLVMValueRef out = kl_out(L, node, 0);
  int64_t total = kg_shape_numel(&y->shape);
  if (total == 0) return true;
  if (total != kg_shape_numel(&x->shape)) { /* else no padding at all: just the copy */
    if (kc_const_is_zero(y->dtype, cv)) {
      kl_memset0(L, out, kg_type_bytes(y));
    } else {
      LLVMValueRef v = const_of(L, y->dtype, cv);
      kl_loop lp = kl_for(L, kl_i64(L, total), "pad_fill");
      kl_store(L, y->dtype, out, lp.index, v);
      kl_for_end(L, &lp);
    }
  }
  int cnt;
  const int64_t *pads;
  kc_attr_ints(n, "paddings", &cnt, &pads);
  copy_plan p = kc_copy_plan_from(&x->shape);
  kc_row_strides(&y->shape, p.dst_stride);
  for (int d = 0; d < p.rank; d++) p.dst_off += pads[2 * d] * p.dst_stride[d];
  emit_copy(L, x->dtype, out, kl_in(L, node, 0), &p);
  return true;
}

/* ---- broadcast_to ---- */

bool kc_infer_broadcast_to(kc_infer_ctx *c, kg_node *n) {
  const kg_type *x = kc_in_type(c, n, 0);
  int cnt;
  const int64_t *v;
  char b1[160], b2[160];
  if (!kc_attr_ints(n, "shape", &cnt, &v))
    return kc_node_error(c, n, "attribute 'shape' is required");
  kc_ints_str(v, cnt, b2, sizeof b2);
  kc_shape_str(&x->shape, b1, sizeof b1);
  if (cnt > KILN_MAX_RANK)
    return kc_node_error(c, n, "shape %s has %d dimensions; at most %d are supported", b2, cnt,
                         KILN_MAX_RANK);
  if (cnt < x->shape.rank)
    return kc_node_error(c, n, "cannot broadcast %s to %s: the target has fewer dimensions", b1,
                         b2);
  kg_shape s = {.rank = cnt};
  int lead = cnt - x->shape.rank;
  for (int d = 0; d < cnt; d++) {
    if (v[d] < 0)
      return kc_node_error(c, n, "shape %s has a negative dimension %lld", b2, (long long)v[d]);
    s.dim[d] = v[d];
    if (d >= lead) {
      int64_t xd = x->shape.dim[d - lead];
      if (xd != 1 && xd != v[d])
        return kc_node_error(c, n,
                             "cannot broadcast %s to %s: dimension %d of the operand is %lld, "
                             "not 1 or %lld",
                             b1, b2, d - lead, (long long)xd, (long long)v[d]);
    }
  }
  if (!check_size(c, n, &s)) return false;
  kc_set_out(c, n, x->dtype, &s);
  return true;
}

/* Operand dimensions of size 1 (and missing leading ones) get stride 0. */
bool kl_lower_broadcast_to(kl_ctx *L, int node) {
  const kg_type *x = kl_in_type(L, node, 0), *y = kl_out_type(L, node, 0);
  int64_t ist[KILN_MAX_RANK];
  kc_row_strides(&x->shape, ist);
  copy_plan p = kc_copy_plan_into(&y->shape);
  int lead = y->shape.rank - x->shape.rank;
  for (int d = lead; d < p.rank; d++)
    p.src_stride[d] = x->shape.dim[d - lead] == 1 ? 0 : ist[d - lead];
  emit_copy(L, x->dtype, kl_out(L, node, 0), kl_in(L, node, 0), &p);
  return true;
}

/* ---- one_hot ---- */

bool kc_infer_one_hot(kc_infer_ctx *c, kg_node *n) {
  const kg_type *it = kc_in_type(c, n, 0);
  int64_t depth = kg_attr_int(n, "depth", 0);
  if (depth < 0)
    return kc_node_error(c, n, "depth is %lld; it must be non-negative", (long long)depth);
  if (it->shape.rank >= KILN_MAX_RANK)
    return kc_node_error(c, n, "the result would have rank %d; at most %d is supported",
                         it->shape.rank + 1, KILN_MAX_RANK);
  int ax = 0;
  if (!insert_axis(c, n, kg_attr_int(n, "axis", -1), it->shape.rank, &ax)) return false;
  kg_shape s = {.rank = it->shape.rank + 1};
  for (int i = 0, j = 0; i < s.rank; i++) s.dim[i] = i == ax ? depth : it->shape.dim[j++];
  if (!check_size(c, n, &s)) return false;
  kc_set_out(c, n, attr_dtype(n, "dtype", KILN_F32), &s);
  return true;
}

/* indices viewed as [B, C] split at axis, the output as [B, depth, C]:
 * out[b, d, c] = indices[b, c] == d ? on : off.  An index outside
 * [0, depth) simply never matches, giving a row of off_value as in TF. */
bool kl_lower_one_hot(kl_ctx *L, int node) {
  const kg_node *n = &L->m->nodes[node];
  const kg_type *it = kl_in_type(L, node, 0), *y = kl_out_type(L, node, 0);
  int64_t axis = kg_attr_int(n, "axis", -1);
  int ax = (int)(axis < 0 ? axis + y->shape.rank : axis);
  int64_t B = kc_prod(it->shape.dim, 0, ax), C = kc_prod(it->shape.dim, ax, it->shape.rank);
  int64_t D = y->shape.dim[ax];
  if (kg_shape_numel(&y->shape) == 0) return true;
  LLVMValueRef on = const_of(L, y->dtype, kg_attr_float(n, "on_value", 1));
  LLVMValueRef off = const_of(L, y->dtype, kg_attr_float(n, "off_value", 0));
  LLVMValueRef idx = kl_in(L, node, 0), out = kl_out(L, node, 0);
  span sb = span_begin(L, B, "onehot_outer"), sd = span_begin(L, D, "onehot_depth");
  span sc = span_begin(L, C, "onehot_inner");
  LLVMValueRef k = load_index(L, it->dtype, idx, madd(L, sb.i, C, sc.i));
  LLVMValueRef hit = LLVMBuildICmp(L->B, LLVMIntEQ, k, sd.i, "");
  LLVMValueRef oi = madd(L, madd(L, sb.i, D, sd.i), C, sc.i);
  kl_store(L, y->dtype, out, oi, LLVMBuildSelect(L->B, hit, on, off, ""));
  span_end(L, &sc);
  span_end(L, &sd);
  span_end(L, &sb);
  return true;
}

/* ---- gradients ---- */

#include "passes/autodiff.h"

bool kc_grad_reshape(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  kg_shape s = kb_type(g, g->m->nodes[node].in[0])->shape;
  dx[0] = kb_reshape(g, dy[0], &s);
  return true;
}

bool kc_grad_transpose(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  int rank = kb_type(g, n->in[0])->shape.rank, cnt = 0;
  const int64_t *perm = NULL;
  int64_t inv[KILN_MAX_RANK];
  if (kc_attr_ints(n, "perm", &cnt, &perm))
    for (int i = 0; i < rank; i++) inv[(perm[i] + rank) % rank] = i;
  else
    for (int i = 0; i < rank; i++) inv[i] = rank - 1 - i;
  kg_attr a = kb_attr_ints(g, "perm", inv, rank);
  dx[0] = kb_node(g, KC_OP_TRANSPOSE, dy, 1, &a, 1);
  return true;
}

bool kc_grad_broadcast_to(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  kg_shape s = kb_type(g, g->m->nodes[node].in[0])->shape;
  dx[0] = kb_sum_to(g, dy[0], &s);
  return true;
}

/* The gradient of a window of x: the window of dy (slice) or dy placed in
 * zeros (pad); each is the other's gradient. */
static kg_ref slice_of(kc_grad_ctx *g, kg_ref x, const int64_t *begin, const kg_shape *size) {
  kg_attr a[] = {kb_attr_ints(g, "begin", begin, size->rank), kb_attr_ints(g, "size", size->dim, size->rank)};
  return kb_node(g, KC_OP_SLICE, &x, 1, a, 2);
}

static kg_ref pad_of(kc_grad_ctx *g, kg_ref x, const int64_t *begin, const kg_shape *full) {
  const kg_shape *s = &kb_type(g, x)->shape;
  int64_t p[2 * KILN_MAX_RANK];
  for (int d = 0; d < s->rank; d++) p[2 * d] = begin[d], p[2 * d + 1] = full->dim[d] - begin[d] - s->dim[d];
  kg_attr a = kb_attr_ints(g, "paddings", p, 2 * s->rank);
  return kb_node(g, KC_OP_PAD, &x, 1, &a, 1);
}

bool kc_grad_concat(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  int n_in = n->n_in, rank = kb_type(g, dy[0])->shape.rank;
  int64_t axis = kg_attr_int(n, "axis", 0);
  if (axis < 0) axis += rank;
  kg_ref in[256];
  memcpy(in, n->in, sizeof(kg_ref) * (size_t)(n_in < 256 ? n_in : 256));
  int64_t begin[KILN_MAX_RANK] = {0};
  for (int i = 0; i < n_in && i < 256; i++) {
    kg_shape s = kb_type(g, in[i])->shape;
    dx[i] = slice_of(g, dy[0], begin, &s);
    begin[axis] += s.dim[axis];
  }
  return true;
}

bool kc_grad_slice(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  kg_shape full = kb_type(g, n->in[0])->shape;
  int cnt = 0;
  const int64_t *begin = NULL;
  kc_attr_ints(n, "begin", &cnt, &begin);
  int64_t b[KILN_MAX_RANK];
  for (int d = 0; d < full.rank; d++) b[d] = d < cnt ? begin[d] : 0;
  dx[0] = pad_of(g, dy[0], b, &full);
  return true;
}

bool kc_grad_pad(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  kg_shape s = kb_type(g, n->in[0])->shape;
  int cnt = 0;
  const int64_t *p = NULL;
  kc_attr_ints(n, "paddings", &cnt, &p);
  int64_t b[KILN_MAX_RANK];
  for (int d = 0; d < s.rank; d++) b[d] = 2 * d < cnt ? p[2 * d] : 0;
  dx[0] = slice_of(g, dy[0], b, &s);
  return true;
}

/* strided_slice's gradient scatters dy back into zeros of the input's
 * shape: strided_slice_grad, with the forward node's attributes. */
bool kc_grad_strided_slice(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  kg_shape in = kb_type(g, n->in[0])->shape;
  int na = n->n_attrs;
  kg_attr attrs[16];
  if (na > 15) na = 15;
  memcpy(attrs, n->attrs, sizeof(kg_attr) * (size_t)na);
  attrs[na] = kb_attr_ints(g, "shape", in.dim, in.rank);
  dx[0] = kb_node(g, KC_OP_STRIDED_SLICE_GRAD, dy, 1, attrs, na + 1);
  return true;
}

/* gather's gradient adds the slices of dy into zeros of params' shape at the
 * gathered indices (repeated indices accumulate). */
bool kc_grad_gather(kc_grad_ctx *g, int node, const kg_ref *dy, kg_ref *dx) {
  const kg_node *n = &g->m->nodes[node];
  kg_shape ps = kb_type(g, n->in[0])->shape;
  kg_ref in[] = {dy[0], n->in[1]};
  kg_attr attrs[] = {kb_attr_ints(g, "shape", ps.dim, ps.rank), kb_attr_int("axis", kg_attr_int(n, "axis", 0))};
  dx[0] = kb_node(g, KC_OP_SCATTER_ADD, in, 2, attrs, 2);
  return true;
}

/* ---- the scatters that gradients use ---- */

static bool shape_attr(kc_infer_ctx *c, const kg_node *n, kg_shape *s) {
  int cnt = 0;
  const int64_t *v = NULL;
  if (!kc_attr_ints(n, "shape", &cnt, &v) || cnt > KILN_MAX_RANK) return kc_node_error(c, n, "needs a shape of rank <= %d", KILN_MAX_RANK);
  s->rank = cnt;
  for (int i = 0; i < cnt; i++) {
    if (v[i] < 0) return kc_node_error(c, n, "negative dimension in shape");
    s->dim[i] = v[i];
  }
  return check_size(c, n, s);
}

bool kc_infer_strided_slice_grad(kc_infer_ctx *c, kg_node *n) {
  kg_shape in;
  if (!shape_attr(c, n, &in)) return false;
  ss_plan p;
  char err[256];
  if (!ss_compute(n, &in, &p, err, sizeof err)) return kc_node_error(c, n, "%s", err);
  kg_shape s = {.rank = p.out_rank};
  for (int d = 0; d < p.out_rank; d++) s.dim[d] = p.from[d] < 0 ? 1 : p.count[p.from[d]];
  const kg_type *dy = kc_in_type(c, n, 0);
  if (!kg_shape_eq(&s, &dy->shape)) {
    char a[96], b[96];
    return kc_node_error(c, n, "dy is %s but the slice of %s is %s", kc_shape_str(&dy->shape, a, sizeof a),
                         kc_shape_str(&in, b, sizeof b), kc_shape_str(&s, a, sizeof a));
  }
  kc_set_out(c, n, dy->dtype, &in);
  return true;
}

/* Zeros, then dy copied into the strided view (a strided slice selects each
 * element at most once, so a copy is a scatter). */
bool kl_lower_strided_slice_grad(kl_ctx *L, int node) {
  const kg_type *x = kl_out_type(L, node, 0);
  kl_memset0(L, kl_out(L, node, 0), kg_type_bytes(x));
  return ss_copy(L, node, &x->shape, &kl_in_type(L, node, 0)->shape, true);
}

bool kc_infer_scatter_add(kc_infer_ctx *c, kg_node *n) {
  kg_shape ps;
  if (!shape_attr(c, n, &ps)) return false;
  const kg_type *u = kc_in_type(c, n, 0), *it = kc_in_type(c, n, 1);
  char b[160];
  if (it->dtype != KILN_I32 && it->dtype != KILN_I64)
    return kc_node_error(c, n, "indices are %s; they must be i32 or i64", kg_type_str(it, b, sizeof b));
  int ax = 0;
  if (!kc_axis(c, n, kg_attr_int(n, "axis", 0), ps.rank, &ax)) return false;
  kg_shape want = gathered_shape(&ps, ax, &it->shape);
  if (!kg_shape_eq(&want, &u->shape)) {
    char a[96], bb[96];
    return kc_node_error(c, n, "updates are %s; gathering that shape's indices gives %s", kc_shape_str(&u->shape, a, sizeof a),
                         kc_shape_str(&want, bb, sizeof bb));
  }
  kc_set_out(c, n, u->dtype, &ps);
  return true;
}

/* out viewed as [outer, A, inner], updates as [outer, N, inner]:
 * out[o, indices[k], :] += updates[o, k, :], after the same index check as
 * gather. */
bool kl_lower_scatter_add(kl_ctx *L, int node) {
  const kg_type *ot = kl_out_type(L, node, 0), *it = kl_in_type(L, node, 1);
  gview g = kc_gather_view_of(&ot->shape, kg_attr_int(&L->m->nodes[node], "axis", 0), &it->shape);
  LLVMValueRef upd = kl_in(L, node, 0), idx = kl_in(L, node, 1), out = kl_out(L, node, 0);
  kl_memset0(L, out, kg_type_bytes(ot));
  if (g.N == 0) return true;
  check_indices(L, node, it->dtype, idx, &g, "scatter");
  if (g.outer == 0 || g.inner == 0) return true;
  span so = span_begin(L, g.outer, "scatter_outer"), sk = span_begin(L, g.N, "scatter");
  LLVMValueRef k = load_index(L, it->dtype, idx, sk.i);
  LLVMValueRef di = madd(L, madd(L, so.i, g.A, k), g.inner, NULL);
  LLVMValueRef si = madd(L, madd(L, so.i, g.N, sk.i), g.inner, NULL);
  span sj = span_begin(L, g.inner, "scatter_inner");
  LLVMValueRef d = LLVMBuildAdd(L->B, di, sj.i, ""), s2 = LLVMBuildAdd(L->B, si, sj.i, "");
  LLVMValueRef args[] = {kl_load(L, ot->dtype, out, d), kl_load(L, ot->dtype, upd, s2)};
  kl_store(L, ot->dtype, out, d, kl_prim(L, "add", ot->dtype, ot->dtype, args, 2));
  span_end(L, &sj);
  span_end(L, &sk);
  span_end(L, &so);
  return true;
}

bool kc_strided_slice_plan(const kg_node *n, const kg_shape *in, kc_ss_plan *p, char *err, size_t errlen) {
  return ss_compute(n, in, p, err, errlen);
}
