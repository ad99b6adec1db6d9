/* ops_util.h — helpers shared by the op families' shape rules (compiler/ops/).
 * Each family file (elementwise.c, reduce.c, shape.c, ...) holds, for its
 * ops, both the shape rule and the lowering that the op table names. */
#ifndef KILN_OPS_UTIL_H
#define KILN_OPS_UTIL_H

#include "ir/ir.h"
#include "ir/ops.h"

/* Type of operand k of n. */
const kg_type *kc_in_type(kc_infer_ctx *c, const kg_node *n, int k);
/* Sets n to one output of type t. */
void kc_set_out(kc_infer_ctx *c, kg_node *n, kiln_dtype dt, const kg_shape *s);
/* Normalizes a possibly negative axis against rank (for insertion
 * positions pass rank+1); false with an error naming the node if out of range. */
bool kc_axis(kc_infer_ctx *c, const kg_node *n, int64_t axis, int rank, int *out);
/* NumPy broadcast of two shapes; false with an error naming the node. */
bool kc_broadcast(kc_infer_ctx *c, const kg_node *n, const kg_shape *a, const kg_shape *b,
                  kg_shape *out);
/* Reports an error at the node: "node 'x' (op): ..." */
bool kc_node_error(kc_infer_ctx *c, const kg_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ints attribute as an array (n elements); false if absent. */
bool kc_attr_ints(const kg_node *n, const char *name, int *count, const int64_t **v);
/* Formats integers as "[1,-1,3]" into buf (attribute values; may be negative). */
const char *kc_ints_str(const int64_t *v, int n, char *buf, size_t len);
/* Formats a shape as "[2,3]" into buf. */
const char *kc_shape_str(const kg_shape *s, char *buf, size_t len);

/* The window of a conv2d-family or pooling node over an NHWC input: TF's
 * output-size and SAME-padding arithmetic, one definition for the shape
 * rules, the LLVM lowering and the C backend (compiler/emitc/). */
typedef struct kc_window {
  int64_t N, H, W, C;     /* the input, NHWC */
  int64_t KH, KW;         /* the window: filter taps or pooling ksize */
  int64_t M;              /* conv2d: output channels; depthwise: multiplier; pools: 1 (set by the caller) */
  int64_t OH, OW;         /* the output's spatial size */
  int64_t sh, sw, dh, dw; /* strides and dilations */
  int64_t pt, pl;         /* padding before the first row / column (TF's pad_before) */
} kc_window;
/* The window of kh x kw taps of node n over input x (dilations read when
 * `dilated`); false for attributes the shape rule would reject. */
bool kc_window_of(const kg_node *n, const kg_shape *x, int64_t kh, int64_t kw, bool dilated, kc_window *g);
/* The whole window (M included) of a conv2d-family or pooling node of m, its
 * gradient ops too; false for any other node or a geometry the shape rule rejects. */
bool kc_window_of_node(const kg_module *m, const kg_node *n, kc_window *g);

/* The compile-time form of a strided slice: per input dimension the first
 * index, step and count; per output dimension the input dimension it walks
 * (-1 for a new axis of size 1). */
typedef struct kc_ss_plan {
  int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK], count[KILN_MAX_RANK];
  int out_rank;
  int from[KILN_MAX_RANK];
} kc_ss_plan;
/* TF's ValidateStridedSliceOp for node n over input shape `in`; on a user
 * error false with the message in err. */
bool kc_strided_slice_plan(const kg_node *n, const kg_shape *in, kc_ss_plan *p, char *err, size_t errlen);

/* Layout arithmetic both backends use (the LLVM lowerings of ops/shape.c
 * and the C renderings of compiler/emitc/). */
/* Row-major element strides of a shape. */
void kc_row_strides(const kg_shape *s, int64_t *st);
/* v[from] * ... * v[to-1] (1 when empty). */
int64_t kc_prod(const int64_t *v, int from, int to);
/* A strided copy: for every index of dim[], element src_off + sum(i*src_stride)
 * goes to dst_off + sum(i*dst_stride). */
typedef struct kc_copy_plan {
  int rank;
  int64_t dim[KILN_MAX_RANK];
  int64_t src_stride[KILN_MAX_RANK], dst_stride[KILN_MAX_RANK];
  int64_t src_off, dst_off;
} kc_copy_plan;
/* A plan writing all of a (contiguous) result of shape out; the caller sets
 * the source view (transpose, slice). */
kc_copy_plan kc_copy_plan_into(const kg_shape *out);
/* A plan reading all of a (contiguous) operand of shape in; the caller sets
 * the destination view (concat, pad). */
kc_copy_plan kc_copy_plan_from(const kg_shape *in);
/* A tensor of shape `full` indexed along `axis` (gather, scatter_add),
 * viewed as [outer, A, inner], with N indices. */
typedef struct kc_gather_view {
  int ax;
  int64_t outer, A, inner, N;
} kc_gather_view;
kc_gather_view kc_gather_view_of(const kg_shape *full, int64_t axis, const kg_shape *indices);
/* True when constant v of dtype dt is all zero bits (a pad that memset can write). */
bool kc_const_is_zero(kiln_dtype dt, double v);

#endif
