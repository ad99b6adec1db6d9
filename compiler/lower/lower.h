/* lower.h — lowering the scheduled, planned graph to LLVM IR.
 *
 * lower.c walks each entry point's schedule and calls the op table's
 * `lower` function for every node.  An op's lowering sees a kl_ctx with the
 * builder positioned inside the entry function; it reads operand buffers with
 * kl_in(), writes its results through kl_out(), and uses the helpers below
 * for loops, loads/stores, runtime calls and status checks.  Booleans are
 * stored as one byte (0/1), as C's _Bool and NumPy's bool are.
 */
#ifndef KILN_LOWER_H
#define KILN_LOWER_H

#include <llvm-c/Core.h>
#include "ir/ir.h"
#include "ir/ops.h"
#include "passes/plan.h"
#include "lower/target.h"

struct kc_expr;

typedef struct kl_ctx {
  kc_diag *diag;
  kg_module *m;
  const kc_plan *plan;
  const kc_target *target;
  LLVMContextRef C;
  LLVMModuleRef M;
  LLVMBuilderRef B;
  LLVMTypeRef t_void, t_i1, t_i8, t_i32, t_i64, t_f32, t_f64, t_ptr;
  /* the function being emitted */
  LLVMValueRef fn;
  LLVMValueRef inst;        /* kiln_inst * */
  LLVMValueRef vars, arena; /* base pointers loaded from the instance */
  LLVMValueRef in_struct, out_struct;
  const kg_entry *entry;    /* NULL in the variable-initializer function */
  LLVMValueRef status_slot; /* i32 alloca: the status returned at exit */
  LLVMBasicBlockRef exit_bb;
  LLVMValueRef *node_const; /* per node: the global holding a const's value */
  const kc_entry_plan *ep;  /* the plan of the entry being emitted */
  /* GPU kernels (lower/nvptx.c): when kernel_index is set, kl_emit_map emits
   * one element at that index instead of a loop, and math calls use
   * libdevice names (__nv_expf ...) instead of libm's. */
  LLVMValueRef kernel_index;
  LLVMValueRef *kernel_args; /* per operand, then per output: data pointers */
  LLVMValueRef kernel_counter; /* random kernels: the i64 Philox counter of the launch */
  bool gpu;
  /* host code for GPU-placed nodes and device partitions (lower/gpu_host.c) */
  struct kl_gpu_host *gpu_host;
} kl_ctx;

/* ---- buffers ---- */

/* Pointer to the data of operand k of node `node`. */
LLVMValueRef kl_in(kl_ctx *L, int node, int k);
/* Pointer to the data of output k of node `node`. */
LLVMValueRef kl_out(kl_ctx *L, int node, int k);
/* Pointer to output `r` (a node output anywhere in the graph). */
LLVMValueRef kl_ref_ptr(kl_ctx *L, kg_ref r);
/* Type of operand k / output k. */
const kg_type *kl_in_type(kl_ctx *L, int node, int k);
const kg_type *kl_out_type(kl_ctx *L, int node, int k);

/* ---- types and constants ---- */

/* In-memory LLVM type of one element (bool is i8). */
LLVMTypeRef kl_elem_type(kl_ctx *L, kiln_dtype dt);
/* Type used for arithmetic on that dtype (bool is i1). */
LLVMTypeRef kl_value_type(kl_ctx *L, kiln_dtype dt);
LLVMValueRef kl_i32(kl_ctx *L, int64_t v);
LLVMValueRef kl_i64(kl_ctx *L, int64_t v);
/* A constant of dtype dt (value type) from a double / an int64. */
LLVMValueRef kl_const_f(kl_ctx *L, kiln_dtype dt, double v);
LLVMValueRef kl_const_i(kl_ctx *L, kiln_dtype dt, int64_t v);
/* Converts a value between dtypes with TF's cast semantics. */
LLVMValueRef kl_convert(kl_ctx *L, LLVMValueRef v, kiln_dtype from, kiln_dtype to);

/* ---- memory ---- */

/* Address of element `idx` (i64) of a `dt` array at `base`. */
LLVMValueRef kl_gep(kl_ctx *L, kiln_dtype dt, LLVMValueRef base, LLVMValueRef idx);
/* Loads element idx as a value-typed scalar (bool -> i1). */
LLVMValueRef kl_load(kl_ctx *L, kiln_dtype dt, LLVMValueRef base, LLVMValueRef idx);
/* Stores a value-typed scalar to element idx (i1 -> i8 for bool). */
void kl_store(kl_ctx *L, kiln_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
void kl_memcpy(kl_ctx *L, LLVMValueRef dst, LLVMValueRef src, int64_t bytes);
void kl_memset0(kl_ctx *L, LLVMValueRef dst, int64_t bytes);

/* ---- loops ---- */

typedef struct kl_loop {
  LLVMValueRef index; /* i64 induction variable, 0..n-1 */
  LLVMBasicBlockRef header, body, latch, exit;
  LLVMValueRef next;
} kl_loop;

/* Opens `for (i = 0; i < n; i++)`; the builder is left in the body. */
kl_loop kl_for(kl_ctx *L, LLVMValueRef n, const char *name);
/* Closes the loop; the builder continues after it. */
void kl_for_end(kl_ctx *L, kl_loop *lp);

/* ---- scalar math (the primitives of ir/expr.h) ---- */

/* Applies primitive `prim` ("add", "exp", "max", "lt", ...) to value-typed
 * operands of dtype dt; `out` is the result dtype (differs for comparisons
 * and cast).  Reductions and fused ops use the same primitives. */
LLVMValueRef kl_prim(kl_ctx *L, const char *prim, kiln_dtype dt, kiln_dtype out, LLVMValueRef *args,
                     int n);
/* Calls an LLVM intrinsic overloaded on the type of args[0] (e.g. "llvm.exp"). */
LLVMValueRef kl_intrinsic(kl_ctx *L, const char *name, LLVMValueRef *args, int n);

/* ---- runtime calls and status ---- */

/* Calls (declaring on first use) an external C function. */
LLVMValueRef kl_call(kl_ctx *L, const char *name, LLVMTypeRef ret, LLVMValueRef *args, int n);
/* If status (i32) is not KILN_OK: stores it and leaves the entry function. */
void kl_check(kl_ctx *L, LLVMValueRef status);
/* Fails the run with a fixed message naming the node (for run-time checks
 * such as out-of-range gather indices): branches to exit when cond is true. */
void kl_fail_if(kl_ctx *L, LLVMValueRef cond, int node, const char *message);
/* The literal behind r when r is a const node's value, seen through
 * aliasing ops (reshape, ...), else NULL: lowerings may transform it at
 * compile time (the generated GEMM packs a constant B). */
const void *kl_ref_literal(kl_ctx *L, kg_ref r);
/* A private constant global holding `bytes`; returns its address. */
LLVMValueRef kl_const_data(kl_ctx *L, const void *bytes, int64_t n, const char *name);
/* A private constant NUL-terminated string; returns its address. */
LLVMValueRef kl_const_string(kl_ctx *L, const char *s, const char *name);
/* A private constant array of n elements of type elem (a null pointer when
 * n is 0); returns its address. */
LLVMValueRef kl_const_array(kl_ctx *L, LLVMTypeRef elem, LLVMValueRef *v, int n, const char *name);
/* A private constant array of int64 (dims tables for runtime calls). */
LLVMValueRef kl_const_i64s(kl_ctx *L, const int64_t *v, int n, const char *name);
/* Pointer to this random op's counter slot in the instance. */
LLVMValueRef kl_random_counter(kl_ctx *L, int node);
/* The LLVM type of the leading fields of struct kiln_inst. */
LLVMTypeRef kl_inst_type(kl_ctx *L);
/* An array of pointers on the stack (for runtime calls taking void**). */
LLVMValueRef kl_ptr_array(kl_ctx *L, LLVMValueRef *ptrs, int n);

/* ---- elementwise emission (lower/elementwise.c) ---- */

/* Emits a broadcasting loop nest that evaluates a scalar expression: used by
 * kl_lower_elementwise and by fused nodes. */
bool kl_emit_map(kl_ctx *L, int node, const struct kc_expr *expr);

/* ---- element rules the CPU lowerings and the GPU kernels share ---- */

/* The value every element of a fill, zeros or ones node takes. */
LLVMValueRef kl_fill_value(kl_ctx *L, int node);
/* Element i (an i64) of a range node: start + i*delta, computed in f64. */
LLVMValueRef kl_range_value(kl_ctx *L, int node, LLVMValueRef i);
/* argmax: whether v replaces best (greater, or a NaN over a number: TF's rule). */
LLVMValueRef kl_argmax_takes(kl_ctx *L, kiln_dtype dt, LLVMValueRef v, LLVMValueRef best);
/* top_k: whether the element b, earlier in its row, stays ahead of v: b >= v
 * for largest (b <= v for smallest), NaN counting as the largest value. */
LLVMValueRef kl_top_k_stays_ahead(kl_ctx *L, kiln_dtype dt, bool largest, LLVMValueRef b, LLVMValueRef v);
/* max_pool_grad: whether tap v becomes its window's maximum over best:
 * strictly greater, so the first maximum in window order wins, or `first`
 * (the window's first tap, so a window of NaN or -inf still has one). */
LLVMValueRef kl_pool_max_takes(kl_ctx *L, kiln_dtype dt, LLVMValueRef v, LLVMValueRef best, LLVMValueRef first);

/* ---- the module descriptor (lower/descriptors.c) ---- */

/* Emits `<sym>_desc`, the kiln_module_desc of runtime/kilnrt.h. */
LLVMValueRef kl_emit_descriptor(kl_ctx *L, const char *sym, LLVMValueRef *entry_fns, LLVMValueRef init,
                                LLVMValueRef program);

/* ---- devices (lower/gpu_host.c, lower/gpu_parts.c; docs/gpu.md) ---- */

/* Prepares the GPU path of a host module (the embedded PTX); false after
 * errors.  Without GPU work, or for a --target, GPU-placed nodes simply run
 * their CPU code. */
bool kl_gpu_host_begin(kl_ctx *L);
void kl_gpu_host_end(kl_ctx *L);
/* Lowers one scheduled node: its CPU code, and for GPU-placed work the
 * launch or copy the runtime runs instead when a GPU is active. */
bool kl_lower_node(kl_ctx *L, int node);
/* At the end of an entry: waits for the GPUs when the entry used them. */
void kl_gpu_entry_end(kl_ctx *L);
/* The `gpu` field of the module descriptor: a kiln_gpu_desc, or null. */
LLVMValueRef kl_gpu_descriptor(kl_ctx *L);
/* An entry whose nodes sit on several CPU devices: lowers it as one
 * function per device run by kiln_rt_run_parts (true: handled here). */
bool kl_lower_partitioned_entry(kl_ctx *L, int entry, LLVMValueRef fn, bool *ok);

/* ---- whole-module lowering (lower/lower.c) ---- */

/* Builds the LLVM module for `m` (entries, initializer, program, descriptor,
 * and `main` when with_main).  Returns NULL after reporting errors. */
LLVMModuleRef kl_lower_module(kg_module *m, const kc_plan *plan, const kc_target *t, LLVMContextRef C,
                              bool with_main, kc_diag *diag);

#endif
