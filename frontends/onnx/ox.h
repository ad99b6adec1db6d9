/* ox.h — inside the ONNX frontend: the import context, the converter table
 * and the helpers converters share.
 *
 * One converter per ONNX op (grouped by family in ops_*.c, each family a
 * table `ox_ops_<family>`).  A converter sees its node's operands as kiln
 * references (KG_NOREF for an omitted optional input), builds kiln nodes
 * with the kb_* builders of passes/autodiff.h — each new node is verified
 * and typed at once — and writes one reference per ONNX output.  After each
 * ONNX node, every new node whose operands are all constants is folded into
 * a constant (passes/fold.h), which is how shape computations (Shape ->
 * Gather -> Concat -> Reshape) become the static shapes kiln compiles. */
#ifndef KILN_OX_H
#define KILN_OX_H

#include "onnx.pb-c.h"
#include "frontends/onnx/onnx_import.h"
#include "ir/ops.h"
#include "passes/autodiff.h"

typedef struct ox_value {
  const char *name; /* ONNX value name */
  kg_ref ref;
} ox_value;

typedef struct ox_ctx {
  kg_module *m;
  kc_diag *d;
  kc_grad_ctx g;       /* builders; g.prefix is the current node's name */
  const char *path;    /* the model file (error locations) */
  const char *dir;     /* its folder (external data) */
  int opset;           /* the default domain's opset version */
  const kc_import_options *opts;
  int n_values, cap_values;
  ox_value *values;    /* open-addressed table: ONNX name -> kiln ref */
} ox_ctx;

/* One ONNX node during conversion. */
typedef struct ox_node {
  const Onnx__NodeProto *p;
  const char *label;   /* "node 'name' (Op)" for messages */
  int n_in;
  kg_ref *in;          /* KG_NOREF where an optional input is omitted */
  int n_out;
  kg_ref *out;         /* written by the converter; KG_NOREF for unused optional outputs */
} ox_node;

typedef bool (*ox_convert_fn)(ox_ctx *c, ox_node *n);

typedef struct ox_op {
  const char *name;     /* ONNX op_type (default domain) */
  ox_convert_fn convert;
} ox_op;

/* The families (NULL-name terminated). */
extern const ox_op ox_ops_elementwise[];
extern const ox_op ox_ops_shape[];
extern const ox_op ox_ops_nn[];
extern const ox_op ox_ops_reduce[];
extern const ox_op ox_ops_misc[];
extern const ox_op ox_ops_linalg[];
extern const ox_op ox_ops_quant[];

/* ---- errors ---- */
/* Records "path: error: node 'x' (Op): message"; returns false. */
bool ox_fail(ox_ctx *c, const ox_node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- attributes (absent: the default) ---- */
const Onnx__AttributeProto *ox_attr(const ox_node *n, const char *name);
int64_t ox_attr_int(const ox_node *n, const char *name, int64_t dflt);
double ox_attr_float(const ox_node *n, const char *name, double dflt);
/* The string attribute, or dflt (arena copy). */
const char *ox_attr_string(ox_ctx *c, const ox_node *n, const char *name, const char *dflt);
/* Ints attribute: count in *count (0 when absent), values (not copied). */
const int64_t *ox_attr_ints(const ox_node *n, const char *name, int *count);
const float *ox_attr_floats(const ox_node *n, const char *name, int *count);

/* ---- operands ---- */
/* True when operand i is present. */
bool ox_has(const ox_node *n, int i);
const kg_type *ox_type(ox_ctx *c, kg_ref r);
/* The literal of a constant operand (after folding), or NULL. */
const kg_tensor *ox_const(ox_ctx *c, kg_ref r);
/* Operand i as a list of integers (a constant of any integer dtype, rank
 * 0 or 1).  Fails, naming the node, when it is not known at compile time. */
bool ox_const_ints(ox_ctx *c, ox_node *n, int i, int64_t **v, int *count);
/* Normalizes a possibly negative axis for rank; fails naming the node. */
bool ox_axis(ox_ctx *c, ox_node *n, int64_t axis, int rank, int *out);

/* ---- building ---- */
/* A constant node holding t (copied into the module's arena). */
kg_ref ox_tensor_const(ox_ctx *c, const kg_tensor *t);
/* A constant of dtype dt and shape s (rank may be 0) from doubles. */
kg_ref ox_const_from(ox_ctx *c, kiln_dtype dt, const kg_shape *s, const double *v);
/* An elementwise node computing `expr` (ir/expr.h syntax over x0, x1, ...)
 * over operands in, broadcast together, with result dtype dt. */
kg_ref ox_expr(ox_ctx *c, const char *expr, const kg_ref *in, int n_in, kiln_dtype dt);
/* kb_node with attribute helpers; the same as the builders of autodiff.h. */
kg_ref ox_reshape(ox_ctx *c, kg_ref x, const kg_shape *s);
kg_ref ox_transpose(ox_ctx *c, kg_ref x, const int64_t *perm, int rank);
kg_ref ox_cast(ox_ctx *c, kg_ref x, kiln_dtype to);

/* ---- quantized operands (ops_quant.c) ---- */
/* Operand i (uint8, int8 or int32) minus zero-point operand zi (absent: 0),
 * in f64, where products and sums of 8-bit values stay exact; a 1-D zero
 * point applies along axis `axis` of operand i. */
bool ox_minus_zero_point(ox_ctx *c, ox_node *n, int i, int zi, int axis, kg_ref *out);
/* The saturation range of uint8 [0, 255] and int8 [-128, 127]; false for
 * other types. */
bool ox_quant_range(kiln_dtype dt, int *lo, int *hi);

/* ---- tensors and types ---- */
/* ONNX TensorProto data type -> kiln dtype; false for types kiln lacks. */
bool ox_dtype(int32_t onnx_type, kiln_dtype *out);
const char *ox_dtype_name(int32_t onnx_type);
/* Decodes a TensorProto (raw, typed fields or external data beside the
 * model) into t; messages name `what`. */
bool ox_tensor(ox_ctx *c, const Onnx__TensorProto *p, const char *what, kg_tensor *t);

#endif
