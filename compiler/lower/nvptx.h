/* nvptx.h — GPU kernels through LLVM's NVPTX back end. */
#ifndef KILN_NVPTX_H
#define KILN_NVPTX_H

#include <stdio.h>
#include "ir/ir.h"
#include "passes/plan.h"

struct kl_ctx;
struct LLVMOpaqueValue;

/* What a node placed on a GPU does there (lower/gpu_kernels.c). */
typedef enum kc_gpu_kind {
  KC_GPU_NONE,      /* no GPU kernel: the placement pass moves it or fails */
  KC_GPU_NOCODE,    /* runs nowhere: variables, no_op, aliases (device_copy: the runtime copies) */
  KC_GPU_MAP,       /* elementwise, fused, bias_add, assignments: element i per thread */
  KC_GPU_FILL,      /* fill, zeros, ones, range: element i per thread */
  KC_GPU_REDUCE,    /* sum mean max min prod: output element i per thread, or per block when large */
  KC_GPU_ARGMAX,    /* argmax: row i per thread */
  KC_GPU_TOP_K,     /* top_k: input element i per thread finds its rank in its row */
  KC_GPU_SOFTMAX,   /* softmax, log_softmax: row i per thread */
  KC_GPU_STRIDED,   /* transpose, slice, broadcast_to, strided_slice, pad, strided_slice_grad: output element i */
  KC_GPU_MATMUL,    /* a tiled GEMM, one 64 x 64 tile of C per block (or cuBLAS at run time) */
  KC_GPU_CONCAT,    /* output element i per thread */
  KC_GPU_GATHER,    /* gather, scatter_add, one_hot: output element i per thread (indices out of range: 0) */
  KC_GPU_WINDOW,    /* conv2d, depthwise_conv2d, the pools and all their gradients (lower/gpu_window.c) */
  KC_GPU_RANDOM     /* random_uniform, random_normal of f32/f64: element i per thread, the CPU's Philox stream */
} kc_gpu_kind;

kc_gpu_kind kc_gpu_kind_of(const kg_module *m, int node);
/* The units of work in the node's kernel (elements, rows). */
int64_t kc_gpu_threads(const kg_module *m, int node);

/* A kernel's launch: `grid` blocks of `block` threads and the kernel's `n`.
 * Thread kernels do unit i < n in thread i; block kernels (`blocked`: the
 * tiled GEMM, reductions of many elements into each output) use every
 * thread of every block, with barriers, and n = grid * block. */
typedef struct kc_gpu_geom {
  int64_t n, grid;
  int block;
  bool blocked;
} kc_gpu_geom;
kc_gpu_geom kc_gpu_geometry(const kg_module *m, int node);

/* A matmul that cuBLAS can compute (f32/f64; each operand's batch is the
 * output's or absent): the runtime's kiln_gpu_gemm, field for field. */
typedef struct kc_gpu_gemm {
  int32_t dtype, trans_a, trans_b, batch;
  int64_t m, n, k;
  int64_t stride_a, stride_b, stride_c; /* elements between matrices of the batch (0: repeated) */
} kc_gpu_gemm;
bool kc_gpu_gemm_of(const kg_module *m, int node, kc_gpu_gemm *out);

/* A random kernel (KC_GPU_RANDOM) takes the Philox counter of its launch
 * as two u32 parameters (low, high word) before n, and the launch advances
 * the node's counter by this many blocks: as many as the CPU's draw. */
int64_t kc_gpu_random_blocks(const kg_module *m, int node);
/* The u32 parameters between a kernel's pointers and n: 2 for a random
 * kernel (its counter), else 0. */
int kc_gpu_counter_params(const kg_module *m, int node);
/* The i64 counter from its two u32 parameter values. */
struct LLVMOpaqueValue *kl_gpu_join_counter(struct kl_ctx *L, struct LLVMOpaqueValue *lo, struct LLVMOpaqueValue *hi);

/* True when a GPU-placed node becomes a kernel of the PTX module. */
bool kc_gpu_is_kernel(const kg_module *m, int node);
/* Emits the whole work of node v's kernel at the builder, with `args` its
 * operand and result pointers (then, for a random kernel, its i64 counter)
 * and `n` its thread count.  On the GPU
 * (emulate false, inside the PTX kernel): the thread's unit or its part of
 * a block kernel.  emulate: the same code run on the CPU for every thread,
 * block kernels phase by phase between their barriers (docs/gpu.md). */
bool kl_gpu_emit_kernel(struct kl_ctx *L, int node, struct LLVMOpaqueValue **args, struct LLVMOpaqueValue *n,
                        bool emulate);
const char *kc_gpu_kernel_symbol(kg_module *m, int node);

/* Compiles every GPU-placed kernel node into one PTX module for `arch`
 * (sm_80 default) and writes it to f.  Kernels are marked with the PTX
 * kernel calling convention; math comes from libdevice.  Returns the number
 * of kernels (0 is a valid, empty module), or -1 after errors. */
int kc_emit_ptx(kg_module *m, const kc_plan *p, const char *arch, int opt_level, FILE *f, kc_diag *d);
/* The same PTX as a malloc'd, NUL-terminated string (NULL after errors);
 * *kernels gets the count. */
char *kc_emit_ptx_string(kg_module *m, const kc_plan *p, const char *arch, int opt_level, int *kernels, kc_diag *d);
/* Where libdevice lives ($KILN_LIBDEVICE or the CUDA toolkit's). */
const char *kc_libdevice_path(void);

#endif
