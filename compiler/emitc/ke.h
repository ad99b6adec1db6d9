/* ke.h — the C backend's internal interface (compiler/emitc/): the context
 * every C rendering sees, the text builders, and the pieces the family
 * files share.  The public entry points are in emitc.h.
 *
 * The backend reads the same scheduled, planned graph as the LLVM lowering
 * (lower/lower.c) and writes it as C99 text instead of LLVM IR.  Each op
 * family has a file here beside its LLVM lowering in compiler/ops/:
 *
 *   emitc.c    the translation unit: prelude, constants, entry functions,
 *              the variable initializer, the program, the descriptor, main
 *   scalar.c   the scalar primitives of ir/expr.h as C expressions (ke_prim),
 *              the one place the backend defines kiln's arithmetic in C
 *   map.c      the loop nest of elementwise ops, fused nodes and assignments
 *              (rendered from the op table's `expr`, as kl_emit_map does)
 *   table.c    the per-op rendering table, keyed by KC_OP_*
 *   state.c    sources, copies, random ops, queues, summaries
 *   reduce.c   sum/mean/max/min/prod, argmax, softmax, top_k
 *   linalg.c   matmul: cblas, kiln's GEMM written in C, integer loops
 *   shape.c    transpose, concat, slice, strided_slice, gather, pad, ...
 *   nn.c       conv2d, depthwise_conv2d, pooling and their gradient ops
 *   geom.c     window and strided-slice geometry (checked against the
 *              verified node's types)
 *   data.c     constants: static arrays, or the --weights-file side file
 *   build.c    `kiln build --backend c`: the system compiler and the link
 *
 * Generated code follows the LLVM lowering's ABI exactly (runtime/kilnrt.h):
 * the same entry functions, descriptor, instance fields and runtime calls,
 * so runtime/main.c and the header of `kiln build -c` work with either. */
#ifndef KILN_EMITC_KE_H
#define KILN_EMITC_KE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ir/expr.h"
#include "ir/ir.h"
#include "ir/ops.h"
#include "ops/ops_util.h"
#include "passes/plan.h"

/* ---- growing text ---- */

typedef struct ke_buf {
  char *p;
  size_t len, cap;
} ke_buf;

void ke_puts(ke_buf *b, const char *s);
void ke_printf(ke_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ke_buf_free(ke_buf *b);

/* ---- the context ---- */

typedef struct ke_blob {
  const void *data;
  int64_t size, offset;
  const char *name; /* the buffer the runtime loads it into */
} ke_blob;

typedef struct ke_ctx {
  kc_diag *diag;
  kg_module *m;
  const kc_plan *plan;
  const char *sym;         /* the module's C prefix (kc_symbol_prefix) */
  bool generated_blas;     /* --blas generated: kiln's GEMM in C instead of cblas */
  const char *weights_file;/* --weights-file: the side file's name (no directory); NULL: static arrays */
  int64_t static_limit;    /* bytes of constants allowed as static arrays */
  ke_buf *b;               /* the function being written */
  ke_buf data;             /* static data (constants, tables) */
  ke_buf helpers;          /* helper functions, each once */
  ke_buf decls;            /* runtime declarations, each once */
  const char **helper_names;
  int n_helpers, cap_helpers;
  int ind;                 /* indentation depth of the function body */
  const kg_entry *entry;   /* NULL outside entry functions */
  const kc_entry_plan *ep;
  bool used_done;          /* the function jumps to its `done:` label */
  int uid;                 /* counter for unique local and static names */
  const char **node_const; /* per node: the static array holding a const's value */
  ke_blob *blobs;          /* --weights-file: the constants, in file order */
  int n_blobs, cap_blobs;
  int64_t const_bytes;
  bool failed;
} ke_ctx;

/* ---- writing ---- */

/* One line of the function body at the current indentation. */
void ke_line(ke_ctx *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line ending in " {" that opens a block; ke_close ends it. */
void ke_open(ke_ctx *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ke_close(ke_ctx *E);
/* A bare `{` block. */
void ke_block(ke_ctx *E);
/* An arena string. */
const char *ke_str(ke_ctx *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A fresh name: prefix + a number. */
const char *ke_fresh(ke_ctx *E, const char *prefix);
/* Records helper `name` with its definition text, once. */
void ke_helper(ke_ctx *E, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Declares a runtime function (its full prototype), once. */
void ke_declare(ke_ctx *E, const char *name, const char *prototype);
/* `text` as a C string literal (escaped). */
const char *ke_cstring(ke_ctx *E, const char *text);
/* `text` safe inside a comment. */
const char *ke_comment(ke_ctx *E, const char *text);
/* Reports an error that names the node; returns false. */
bool ke_node_error(ke_ctx *E, int node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- types and values ---- */

/* C storage type of one element (bool: uint8_t). */
const char *ke_ctype(kiln_dtype dt);
/* An expression for `v` as a constant of dtype dt (what kl_const_f makes). */
const char *ke_const_f(ke_ctx *E, kiln_dtype dt, double v);
/* An integer constant of dtype dt. */
const char *ke_const_i(ke_ctx *E, kiln_dtype dt, int64_t v);
/* An int64_t literal. */
const char *ke_i64(ke_ctx *E, int64_t v);
/* Converts expression s from dtype `from` to `to` with kl_convert's
 * semantics (saturating float-to-int, bool as != 0). */
const char *ke_convert(ke_ctx *E, const char *s, kiln_dtype from, kiln_dtype to);
/* Primitive `prim` of ir/expr.h on operands of dtype dt giving dtype out;
 * NULL after an error (an unknown primitive) is reported. */
const char *ke_prim(ke_ctx *E, const char *prim, kiln_dtype dt, kiln_dtype out, const char *const *args, int n);
const char *ke_prim2(ke_ctx *E, const char *prim, kiln_dtype dt, const char *a, const char *b);
const char *ke_prim1(ke_ctx *E, const char *prim, kiln_dtype dt, const char *a);
/* Element i of array p as a value (bool: != 0). */
const char *ke_load(ke_ctx *E, kiln_dtype dt, const char *p, const char *i);
/* Writes `p[i] = v;`. */
void ke_store(ke_ctx *E, kiln_dtype dt, const char *p, const char *i, const char *v);
/* Index arithmetic: a * k + b with the trivial terms left out (b may be NULL). */
const char *ke_madd(ke_ctx *E, const char *a, int64_t k, const char *b);
const char *ke_add(ke_ctx *E, const char *a, const char *b);

/* ---- buffers ---- */

/* A `uint8_t *` (or typed constant array) expression for output r. */
const char *ke_ref_ptr(ke_ctx *E, kg_ref r);
const char *ke_in_ptr(ke_ctx *E, int node, int k);
const char *ke_out_ptr(ke_ctx *E, int node, int k);
/* Declares `const T *name = ...;` for operand k / `T *name = ...;` for output k. */
void ke_decl_in(ke_ctx *E, const char *name, int node, int k);
void ke_decl_out(ke_ctx *E, const char *name, int node, int k);
const kg_type *ke_in_type(ke_ctx *E, int node, int k);
const kg_type *ke_out_type(ke_ctx *E, int node, int k);
/* `memset(p, 0, bytes);` / `memcpy(...)`. */
void ke_memset0(ke_ctx *E, const char *p, int64_t bytes);
void ke_memcpy(ke_ctx *E, const char *dst, const char *src, int64_t bytes);
/* A static const int64_t table; returns its name. */
const char *ke_table(ke_ctx *E, const int64_t *v, int64_t n, const char *prefix);
/* Element i of a table of constants: the value itself when uniform. */
const char *ke_table_at(ke_ctx *E, const int64_t *v, int64_t n, const char *i, const char *prefix);

/* ---- status ---- */

/* `st = call; if (st) goto done;` */
void ke_check(ke_ctx *E, const char *call);
/* `if (cond) { st = kiln_fail(...message naming the node...); goto done; }` */
void ke_fail_if(ke_ctx *E, const char *cond, int node, const char *message);

/* ---- constants (data.c) ---- */

/* The static array holding `bytes` (a const node, an initializer, the
 * GraphDef); returns its name.  With --weights-file, a zeroed buffer the
 * runtime fills from the side file. */
const char *ke_const_data(ke_ctx *E, const void *bytes, int64_t n, kiln_dtype dt, const char *name);
/* Writes the kiln_weights_desc (with --weights-file); returns its name or "0". */
const char *ke_weights_desc(ke_ctx *E);
/* Writes the side file at `path`. */
bool ke_weights_write(ke_ctx *E, const char *path);

/* ---- the renderings ---- */

typedef bool (*ke_render_fn)(ke_ctx *E, int node);
/* The rendering of op `op`, or NULL when it has none. */
ke_render_fn ke_rendering(int op);
/* The elementwise loop nest of a node's expression (map.c). */
bool ke_emit_map(ke_ctx *E, int node, const kc_expr *e);

bool ke_render_nothing(ke_ctx *E, int node);
bool ke_render_elementwise(ke_ctx *E, int node);
bool ke_render_copy(ke_ctx *E, int node);
bool ke_render_fill(ke_ctx *E, int node);
bool ke_render_random(ke_ctx *E, int node);
bool ke_render_range(ke_ctx *E, int node);
bool ke_render_queue(ke_ctx *E, int node);
bool ke_render_summary(ke_ctx *E, int node);
bool ke_render_reduce(ke_ctx *E, int node);
bool ke_render_argmax(ke_ctx *E, int node);
bool ke_render_softmax(ke_ctx *E, int node);
bool ke_render_top_k(ke_ctx *E, int node);
bool ke_render_matmul(ke_ctx *E, int node);
bool ke_render_transpose(ke_ctx *E, int node);
bool ke_render_concat(ke_ctx *E, int node);
bool ke_render_slice(ke_ctx *E, int node);
bool ke_render_strided_slice(ke_ctx *E, int node);
bool ke_render_strided_slice_grad(ke_ctx *E, int node);
bool ke_render_gather(ke_ctx *E, int node);
bool ke_render_scatter_add(ke_ctx *E, int node);
bool ke_render_pad(ke_ctx *E, int node);
bool ke_render_broadcast_to(ke_ctx *E, int node);
bool ke_render_one_hot(ke_ctx *E, int node);
bool ke_render_conv2d(ke_ctx *E, int node);
bool ke_render_depthwise(ke_ctx *E, int node);
bool ke_render_pool(ke_ctx *E, int node);

/* C = op(A) op(B) (+ C with accumulate) through cblas or kiln's GEMM in C,
 * f32/f64, one call; M, N, K may be expressions (conv2d's row counts). */
void ke_gemm_call(ke_ctx *E, kiln_dtype dt, bool ta, bool tb, const char *M, const char *N, const char *K,
                  const char *A, int64_t lda, const char *B, int64_t ldb, const char *C, int64_t ldc,
                  bool accumulate);

/* ---- geometry (geom.c) ---- */

typedef kc_window ke_win; /* ops_util.h */

enum { KE_ROLE_FWD, KE_ROLE_INPUT_GRAD, KE_ROLE_FILTER_GRAD };
/* The window geometry of a conv-family node (role set) or a pooling node;
 * false (reported) when it disagrees with the verified types. */
bool ke_conv_geom(ke_ctx *E, int node, ke_win *g, int *role, kg_shape *xs, kg_shape *fs, kg_shape *ys);
bool ke_pool_geom(ke_ctx *E, int node, ke_win *g, kg_shape *xs, kg_shape *ys);
/* For each a < na: the range [lo, lo+cnt) of b < nb with a*sa + b*sb - pad in [0, in). */
void ke_valid_ranges(int64_t na, int64_t sa, int64_t nb, int64_t sb, int64_t pad, int64_t in, int64_t *lo,
                     int64_t *cnt);

typedef kc_ss_plan ke_ss; /* ops_util.h */
/* The strided-slice plan of a node over input shape `in`, checked against
 * the view's shape. */
bool ke_ss_plan(ke_ctx *E, int node, const kg_shape *in, const kg_shape *view, ke_ss *p);


#endif
