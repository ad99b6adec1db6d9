/* gd.h — inside the TensorFlow frontend: the import context, the converter
 * table and the helpers converters share.
 *
 * Both input forms arrive as protobuf-c GraphDef structs (tensorflow.GraphDef
 * of proto/graph.proto): the binary form unpacked by protobuf-c, the TF.js
 * JSON form built by json.c into the same structs, its weights decoded into
 * a table by name (weights.c).  import.c walks the nodes the fetches need in
 * dependency order; one converter per TensorFlow op (ops_*.c, each family a
 * table `gd_ops_<family>`) builds kiln nodes with the kb_* builders of
 * passes/autodiff.h and writes one kiln reference per TensorFlow output.
 * After each node, every new node whose operands are all constants is folded
 * (passes/fold.h): Shape -> StridedSlice -> Pack -> Reshape become static.
 *
 * What a node converted to is recorded in a scope: the graph itself (the
 * root), or one iteration of a TensorFlow 1.x while loop, whose nodes
 * control.c converts anew each iteration (the loop is unrolled).  A
 * TensorList (ops_list.c) exists only at import time: its value is a list
 * of kiln references, carried as a gd_list reference.
 *
 * tf.cond's Switch and Merge (cond.c) give values a guard: the run-time
 * predicates (and sides) under which they exist; a value on the side of a
 * Switch whose predicate folded to the other constant is dead, and so is
 * every node that takes it (such a node is never converted). */
#ifndef KILN_GD_H
#define KILN_GD_H

#include "graph.pb-c.h"
#include "frontends/graphdef/graphdef_import.h"
#include "ir/ops.h"
#include "passes/autodiff.h"

/* A weight decoded from the TF.js shards, by the Const node it belongs to. */
typedef struct gd_weight {
  const char *name;
  kg_tensor t;
} gd_weight;

/* A guard (cond.c): the value exists when every run-time predicate of the
 * list has its side; NULL, always.  Lists are immutable (arena), shared. */
typedef struct gd_guard {
  kg_ref pred;          /* the predicate's kiln value (identities skipped) */
  bool side;            /* the true branch (Switch output 1) or the false one */
  int sw;               /* the Switch node that added it (messages) */
  const struct gd_guard *next;
} gd_guard;

/* What one TensorFlow node converted to, in one scope. */
typedef struct gd_val {
  int state;            /* 0 not seen, 1 being converted (on the stack), 2 done, 3 fed */
  int n_out;
  kg_ref *out;          /* its outputs' kiln references (a dead output: gd_dead) */
  int dead;             /* 1 + the Switch whose untaken side the node depends on; 0 live */
  const gd_guard **guard; /* per output; NULL: none anywhere */
} gd_val;

/* Where nodes are converted: the root (the graph), or one iteration of a
 * while loop (frame > 0), inside the scope that runs the loop. */
typedef struct gd_scope {
  struct gd_scope *parent; /* NULL for the root */
  int frame;               /* control.c's frame index; 0 for the root */
  int iter;                /* the iteration (frames) */
  const int *slot;         /* node -> index in val (frames); NULL: the node index (root) */
  gd_val *val;
} gd_scope;

/* A TensorList value (ops_list.c): its elements, KG_NOREF where unset. */
typedef struct gd_list {
  int n;
  kg_ref *item;
  kg_type elem;         /* the element type, where known */
  bool elem_known;
} gd_list;

/* A kg_ref whose node is GD_LIST_NODE is TensorList number `index`. */
#define GD_LIST_NODE (-2)
static inline bool gd_is_list(kg_ref r) { return r.node == GD_LIST_NODE; }
/* A dead value (the untaken side of Switch `index`, cond.c). */
#define GD_DEAD_NODE (-3)
static inline bool gd_is_dead(kg_ref r) { return r.node == GD_DEAD_NODE; }
static inline kg_ref gd_dead(int sw) { return (kg_ref){.node = GD_DEAD_NODE, .index = sw}; }

typedef struct gd_ctx {
  kg_module *m;
  kc_diag *d;
  kc_grad_ctx g;        /* builders; g.prefix is the current node's name */
  const char *path;     /* the model file (error locations) */
  const kc_import_options *opts;
  const Tensorflow__GraphDef *gdef;
  int n_weights;
  gd_weight *weights;   /* TF.js only */
  int n_sig_outputs;    /* TF.js signature outputs ("name:0"), in order */
  const char **sig_outputs;
  gd_scope root;        /* per TensorFlow node (index in gdef->node) */
  gd_scope *scope;      /* the scope of the node being converted */
  struct gd_frames *frames; /* while loops (control.c); NULL: the graph has none */
  int n_lists, cap_lists;
  gd_list *lists;       /* TensorList values (ops_list.c) */
  int cap_index;
  int *index;           /* open-addressed: name -> node index (-1 empty) */
} gd_ctx;

/* One TensorFlow node during conversion. */
typedef struct gd_node {
  const Tensorflow__NodeDef *p;
  int k;                /* its index in gdef->node */
  const char *label;    /* "node 'name' (Op)" for messages */
  int n_in;             /* data inputs (control inputs are not counted) */
  kg_ref *in;
  int n_out;
  kg_ref *out;          /* written by the converter (gd_outputs sets the count) */
  const gd_guard **in_guard; /* per data input (cond.c) */
  const gd_guard *guard;     /* the outputs' guard: the inputs' together (Merge sets its own) */
  const gd_guard **out_guard; /* per output, where they differ (Switch); NULL: guard */
} gd_node;

typedef bool (*gd_convert_fn)(gd_ctx *c, gd_node *n);

typedef struct gd_op {
  const char *name;     /* TensorFlow op name */
  gd_convert_fn convert;
} gd_op;

extern const gd_op gd_ops_math[];
extern const gd_op gd_ops_nn[];
extern const gd_op gd_ops_array[];
extern const gd_op gd_ops_control[]; /* these two take TensorList operands */
extern const gd_op gd_ops_list[];
/* Identity and its kin (ops_array.c): they pass TensorLists through too. */
bool gd_cv_identity(gd_ctx *c, gd_node *n);

/* ---- the walk (import.c) ---- */
/* Converts node k and what it needs in scope s (the scope k belongs to). */
bool gd_walk(gd_ctx *c, gd_scope *s, int k);
gd_val *gd_val_of(const gd_scope *s, int k);
/* "name", "name:k" or "^name": the node (-1: none such), the output index
 * and whether it is a control input.  False for a malformed ":k". */
bool gd_parse_input(gd_ctx *c, const char *s, int *node, int *index, bool *ctrl);
/* "node 'name' (Op)" */
const char *gd_node_label(gd_ctx *c, int k);

/* ---- while loops (control.c) ---- */
/* Finds the while-loop frames (a no-op for graphs without Enter). */
bool gd_ctl_analyze(gd_ctx *c);
/* The scope holding node k's values, seen from s; NULL when k is inside a
 * loop that s is not in (or mixes loops). */
gd_scope *gd_ctl_scope(gd_ctx *c, gd_scope *s, int k);
/* Fails with a message: node k cannot use src (another loop's inside). */
bool gd_ctl_bad_input(gd_ctx *c, int k, int src);
/* Nodes whose inputs the walk leaves to control.c: Exit, a loop's Merge. */
bool gd_ctl_opaque(gd_ctx *c, int k);
/* Converts Exit node k in scope s: unrolls its loop (once for all its Exits). */
bool gd_ctl_exit(gd_ctx *c, gd_scope *s, int k);
/* The name kiln nodes of TensorFlow node `name` get in scope s: the name,
 * with the iteration(s) appended inside loops ("x/iter2"). */
const char *gd_ctl_name(gd_ctx *c, const gd_scope *s, const char *name);

/* ---- conditionals: tf.cond's Switch and Merge (cond.c) ---- */
/* Output idx of v (gd_dead(sw) when v is dead) and its guard. */
kg_ref gd_val_out(const gd_val *v, int idx);
const gd_guard *gd_val_guard(const gd_val *v, int idx);
/* The guard of a node taking values guarded by a and b; false with a
 * message naming node k when they need both sides of one predicate. */
bool gd_guard_join(gd_ctx *c, int k, const gd_guard *a, const gd_guard *b, const gd_guard **out);
/* Records n's results in v: outputs, guards (n->out_guard or n->guard). */
void gd_cond_record(gd_ctx *c, const gd_node *n, gd_val *v);
/* Fails: node k (-1: a fetch `what`) needs dead value r. */
bool gd_cond_dead_use(gd_ctx *c, int k, const char *what, kg_ref r);
/* Switch and Merge of a tf.cond (control.c's converters hand them over). */
bool gd_cond_switch(gd_ctx *c, gd_node *n);
bool gd_cond_merge(gd_ctx *c, gd_node *n);

/* ---- errors ---- */
/* Records "path: error: node 'x' (Op): message"; returns false. */
bool gd_fail(gd_ctx *c, const gd_node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- attributes (absent: the default) ---- */
const Tensorflow__AttrValue *gd_attr(const gd_node *n, const char *name);
int64_t gd_attr_int(const gd_node *n, const char *name, int64_t dflt);
double gd_attr_float(const gd_node *n, const char *name, double dflt);
bool gd_attr_bool(const gd_node *n, const char *name, bool dflt);
/* The string attribute (arena copy), or dflt. */
const char *gd_attr_string(gd_ctx *c, const gd_node *n, const char *name, const char *dflt);
/* A list(int) attribute; count 0 when absent. */
const int64_t *gd_attr_ints(const gd_node *n, const char *name, int *count);
/* A type attribute as a kiln dtype; false (with a message) for types kiln lacks. */
bool gd_attr_dtype(gd_ctx *c, gd_node *n, const char *name, kiln_dtype dflt, kiln_dtype *out);
/* list(string) attribute element i (arena copy), or NULL. */
const char *gd_attr_list_string(gd_ctx *c, const gd_node *n, const char *name, int i, int *count);

/* ---- operands ---- */
const kg_type *gd_type(gd_ctx *c, kg_ref r);
/* Needs exactly `k` data inputs (at least, when at_least). */
bool gd_inputs(gd_ctx *c, gd_node *n, int k, bool at_least);
/* The literal of a constant operand (after folding), or NULL. */
const kg_tensor *gd_const(gd_ctx *c, kg_ref r);
/* Operand i as integers (a constant of an integer dtype, rank 0 or 1);
 * fails naming the node when it is computed at run time. */
bool gd_const_ints(gd_ctx *c, gd_node *n, int i, int64_t **v, int *count);
/* Normalizes a possibly negative axis for rank; fails naming the node. */
bool gd_axis(gd_ctx *c, gd_node *n, int64_t axis, int rank, int *out);

/* ---- building ---- */
/* Sets the node's output count (all KG_NOREF). */
void gd_outputs(gd_ctx *c, gd_node *n, int count);
kg_ref gd_tensor_const(gd_ctx *c, const kg_tensor *t);
kg_ref gd_const_from(gd_ctx *c, kiln_dtype dt, const kg_shape *s, const double *v);
/* An elementwise node computing `expr` (ir/expr.h syntax over x0, x1, ...)
 * over operands broadcast together, result dtype dt. */
kg_ref gd_expr(gd_ctx *c, const char *expr, const kg_ref *in, int n_in, kiln_dtype dt);
kg_ref gd_reshape(gd_ctx *c, kg_ref x, const kg_shape *s);
kg_ref gd_transpose(gd_ctx *c, kg_ref x, const int64_t *perm, int rank);
kg_ref gd_cast(gd_ctx *c, kg_ref x, kiln_dtype to);
/* (ops_array.c) x with a new axis of size 1 at `axis`; x[.., begin:begin+size, ..]
 * along `axis`; concat along `axis` (an identity of one value). */
kg_ref gd_expand(gd_ctx *c, kg_ref x, int axis);
kg_ref gd_slice_axis(gd_ctx *c, kg_ref x, int axis, int64_t begin, int64_t size);
kg_ref gd_concat(gd_ctx *c, const kg_ref *v, int count, int axis);
kg_attr gd_kattr_str(const char *name, const char *v);
/* The activation `act` (TF spelling: Relu, Relu6, Elu, LeakyRelu, Prelu,
 * Sigmoid, Tanh) applied to x; alpha: LeakyRelu's slope, Prelu's operand. */
kg_ref gd_activation(gd_ctx *c, gd_node *n, const char *act, kg_ref x, kg_ref prelu_alpha, double leaky_alpha);

/* ---- tensors and types (tensor.c) ---- */
/* TensorFlow DataType -> kiln dtype; false for types kiln lacks. */
bool gd_dtype(int tf_type, kiln_dtype *out);
const char *gd_dtype_name(int tf_type);
/* TensorFlow DataType by its name ("DT_FLOAT"); -1 if unknown. */
int gd_dtype_parse(const char *name);
/* A TensorProto as a kiln literal; messages name `what`. */
bool gd_tensor(gd_ctx *c, const Tensorflow__TensorProto *p, const char *what, kg_tensor *t);
/* IEEE half -> float. */
float gd_half_to_float(uint16_t h);

/* ---- the TF.js form (json.c, weights.c) ---- */
/* Parses model.json into c->gdef (arena-owned structs), the weights table
 * and the signature; false after errors. */
bool gd_tfjs_parse(gd_ctx *c, const char *json, size_t len, const char *dir);

#endif
