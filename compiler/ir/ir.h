/* ir.h — the kiln graph: the single in-memory form every frontend produces
 * and every later stage reads.
 *
 * A module holds nodes.  Variables and queues are nodes too (ops `variable`
 * and `queue`), declared with `var` / `queue` in the text form, so every
 * operand is simply "output k of node n" and every pass walks one array.
 * Entry points name sets of fetches (TF's sess.run fetch lists); the
 * program is the compiled form of the Python loop around sess.run.
 *
 * All IR memory comes from one arena owned by the module (kc_module_free
 * releases everything), so parsers and passes never free piecemeal.
 */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "kiln_dtype.h"
#include "ir/diag.h"

/* ---- types ---- */

typedef struct kg_shape {
  int rank;
  int64_t dim[KILN_MAX_RANK];
} kg_shape;

typedef struct kg_type {
  kiln_dtype dtype;
  kg_shape shape;
} kg_type;

int64_t kg_shape_numel(const kg_shape *s);
bool kg_shape_eq(const kg_shape *a, const kg_shape *b);
bool kg_type_eq(const kg_type *a, const kg_type *b);
/* Bytes of one tensor of type t. */
int64_t kg_type_bytes(const kg_type *t);
/* Size, float-ness and signedness of a dtype. */
size_t kg_dtype_size(kiln_dtype d);
bool kg_dtype_is_float(kiln_dtype d);
bool kg_dtype_is_signed(kiln_dtype d);
bool kg_dtype_is_int(kiln_dtype d);
const char *kg_dtype_name(kiln_dtype d);
/* Looks up a dtype by its .kg name; false if unknown. */
bool kg_dtype_parse(const char *name, size_t len, kiln_dtype *out);
/* Writes "f32[2,3]" into buf (always NUL-terminated); returns buf. */
char *kg_type_str(const kg_type *t, char *buf, size_t n);

/* ---- the arena ---- */

typedef struct kc_arena kc_arena;
kc_arena *kc_arena_new(void);
void kc_arena_free(kc_arena *a);
/* Zeroed memory that lives as long as the arena. */
void *kc_alloc(kc_arena *a, size_t n);
char *kc_strndup(kc_arena *a, const char *s, size_t n);
char *kc_strdup(kc_arena *a, const char *s);
char *kc_sprintf(kc_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- tensor literals ---- */

typedef struct kg_tensor {
  kg_type type;
  void *data; /* kg_type_bytes(&type) bytes, row-major */
} kg_tensor;

/* Reads element i of a literal as double / int64 (any dtype). */
double kg_tensor_get_f(const kg_tensor *t, int64_t i);
int64_t kg_tensor_get_i(const kg_tensor *t, int64_t i);

/* ---- attributes ---- */

typedef enum kg_attr_kind {
  KG_ATTR_INT, KG_ATTR_FLOAT, KG_ATTR_BOOL, KG_ATTR_STRING,
  KG_ATTR_INTS, KG_ATTR_FLOATS, KG_ATTR_DTYPE, KG_ATTR_SHAPE, KG_ATTR_TENSOR
} kg_attr_kind;

typedef struct kg_attr {
  const char *name;
  kg_attr_kind kind;
  kc_loc loc;
  union {
    int64_t i;
    double f;
    bool b;
    const char *s;
    struct { int n; int64_t *v; } ints;
    struct { int n; double *v; } floats;
    kiln_dtype dtype;
    kg_shape shape;
    kg_tensor tensor;
  };
} kg_attr;

/* ---- nodes ---- */

typedef struct kg_ref {
  int node;  /* index into module->nodes */
  int index; /* which output */
} kg_ref;

typedef struct kg_node {
  const char *name;
  int op;      /* index into the op table (ir/ops.h) */
  kc_loc loc;
  int n_in;
  kg_ref *in;
  int n_attrs;
  kg_attr *attrs;
  int n_out;
  kg_type *out;       /* result types (inferred; checked against declared ones) */
  bool out_declared;  /* the text gave `: type` */
  int n_ctrl;
  int *ctrl;          /* control dependencies: nodes that must run first */
  const char *device; /* "gpu:0", "cpu:0", or NULL for the default */
  int n_comp;
  kg_type *comp;      /* queue nodes: the component types of one element */
  bool dead;          /* removed by a pass; skipped everywhere, dropped by compaction */
} kg_node;

/* ---- entry points and the program ---- */

typedef struct kg_entry {
  const char *name;
  kc_loc loc;
  int n_feeds;
  int *feeds;   /* placeholder nodes */
  int n_fetches;
  kg_ref *fetches; /* tensors to return; ops without outputs are run targets */
  const char **fetch_names; /* per fetch: the name the user wrote ("g.1"),
                               kept when passes redirect the ref */
  bool synthesized; /* made for a program `run` statement */
} kg_entry;

typedef enum kg_stmt_kind {
  KG_STMT_RUN,    /* run the entry `entry` */
  KG_STMT_REPEAT, /* repeat count times: body */
  KG_STMT_LOOP,   /* repeat body until a run raises OutOfRange */
  KG_STMT_PRINT,  /* print the value of `ref` as fetched by run statement `run_stmt` */
  KG_STMT_PRINT_TEXT,
  KG_STMT_CLOSE,  /* close queue `node` (cancel_pending in count) */
  KG_STMT_SAVE,   /* checkpoint every variable to prefix `text` (step: variable `node` or -1; keep: count) */
  KG_STMT_RESTORE,/* restore every variable from the latest checkpoint of prefix `text` */
  KG_STMT_SPAWN,  /* start `count` threads running `entry` until stopped (then close queue `node`, or -1) */
  KG_STMT_STOP,   /* ask the coordinator's threads to stop */
  KG_STMT_JOIN,   /* wait for the threads (grace period `count` ms); their first error ends the program */
  KG_STMT_SUMMARY_OPEN,  /* open an event-file writer in directory `text` */
  KG_STMT_SUMMARY_WRITE, /* write the summaries the last runs produced (step: variable `node` or -1) */
  KG_STMT_SUMMARY_GRAPH, /* write the module's graph */
  KG_STMT_SUMMARY_CLOSE  /* flush and close the writer */
} kg_stmt_kind;

typedef struct kg_stmt {
  kg_stmt_kind kind;
  kc_loc loc;
  int entry;       /* RUN */
  int64_t count;   /* REPEAT; CLOSE: cancel_pending */
  int n_body;
  struct kg_stmt **body;
  kg_ref ref;      /* PRINT */
  struct kg_stmt *source; /* PRINT: the RUN whose fetch is printed */
  int fetch_index; /* PRINT: which fetch of that run */
  int node;        /* CLOSE: the queue node; SAVE, SUMMARY_WRITE: the step variable; SPAWN: queue to close */
  const char *text;/* PRINT_TEXT; SAVE/RESTORE: checkpoint prefix; SUMMARY_OPEN: log directory; RUN: trace tag */
  bool trace;      /* RUN: a traced run (RunOptions FULL_TRACE) */
} kg_stmt;

typedef struct kg_module {
  kc_arena *arena;
  const char *name;
  const char *file;
  int n_nodes, cap_nodes;
  kg_node *nodes;
  int n_entries, cap_entries;
  kg_entry *entries;
  bool has_program;
  int n_program;
  kg_stmt **program;
} kg_module;

kg_module *kc_module_new(const char *name);
void kc_module_free(kg_module *m);
/* Appends a node (copied) and returns its index. Pointers into nodes[] are
 * invalidated by the next add. */
int kc_module_add_node(kg_module *m, const kg_node *n);
/* Index of the live node named `name`, or -1. */
int kc_module_find(const kg_module *m, const char *name, size_t len);
int kc_module_add_entry(kg_module *m, const kg_entry *e);
int kc_module_find_entry(const kg_module *m, const char *name);
/* Attribute lookup; NULL when absent. */
const kg_attr *kg_node_attr(const kg_node *n, const char *name);
/* Attribute value with a default (int/bool/float/string). */
int64_t kg_attr_int(const kg_node *n, const char *name, int64_t dflt);
double kg_attr_float(const kg_node *n, const char *name, double dflt);
bool kg_attr_bool(const kg_node *n, const char *name, bool dflt);
const char *kg_attr_str(const kg_node *n, const char *name, const char *dflt);
/* Type of an operand. */
const kg_type *kg_ref_type(const kg_module *m, kg_ref r);
/* The seed of a random op or initializer: its `seed` attribute, or a hash
 * of its name when none is given. */
uint64_t kc_node_seed(const kg_node *n);
/* The name fetch i of entry e is known by outside ("name" or "name.N"). */
const char *kc_fetch_name(const kg_module *m, const kg_entry *e, int i);
/* Makes every use of output `from` (operands, entry fetches, program
 * prints) use `to` instead: how passes replace a node. */
void kc_module_redirect(kg_module *m, kg_ref from, kg_ref to);
/* Makes every `after [from]` wait for `to` instead. */
void kc_module_redirect_ctrl(kg_module *m, int from, int to);
/* Removes dead nodes, renumbering every reference; entries/program too. */
void kc_module_compact(kg_module *m);

#endif
