/* kilnrt.h — libkilnrt, the small runtime every kiln binary links.
 *
 * Generated code and the runtime meet here.  The compiler emits, per module,
 * one constant `kiln_module_desc` describing its variables, queues and entry
 * points; the runtime owns everything with a lifetime (instances, queues,
 * I/O, errors).  Generated entry functions are plain C-ABI functions:
 *
 *     int entry(kiln_inst *inst, const void *in, void *out);
 *
 * `in` and `out` point to structs whose fields are the feeds and fetches laid
 * out as a C compiler lays out `T name[d0][d1]...` fields in order.  The
 * return value is a kiln_status; on failure the message is in the instance.
 *
 * The layout of every struct below is part of the ABI: the compiler builds
 * them as LLVM constants (compiler/lower/descriptors.c).  Change both sides
 * together.  A library never exits: every function reports through its
 * return value and kiln_inst_error().
 */
#ifndef KILNRT_H
#define KILNRT_H

#include <stddef.h>
#include <stdint.h>
#include "kiln_dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by entry points and runtime calls. */
typedef enum kiln_status {
  KILN_OK = 0,
  KILN_OUT_OF_RANGE = 1, /* a queue is closed and drained (TF's OutOfRangeError) */
  KILN_CANCELLED = 2,    /* a blocked enqueue was cancelled by close(cancel_pending) */
  KILN_ERROR = 3         /* anything else; the message says what */
} kiln_status;

typedef struct kiln_queue kiln_queue;

/* One tensor slot: a feed, a fetch, a variable or a queue component. */
typedef struct kiln_tensor_desc {
  const char *name;
  int32_t dtype; /* kiln_dtype */
  int32_t rank;
  const int64_t *dims;
  int64_t offset; /* byte offset in the in/out struct or the variable block */
  int64_t nbytes;
} kiln_tensor_desc;

typedef struct kiln_inst kiln_inst;
typedef int (*kiln_entry_fn)(kiln_inst *inst, const void *in, void *out);

typedef struct kiln_entry_desc {
  const char *name;
  kiln_entry_fn fn;
  int32_t n_in, n_out;
  const kiln_tensor_desc *in;
  const kiln_tensor_desc *out;
  int64_t in_size, out_size; /* sizeof the in/out structs */
} kiln_entry_desc;

typedef struct kiln_queue_desc {
  const char *name;
  int64_t capacity;
  int32_t n_comp;
  int32_t kind; /* 0 = fifo, 1 = random_shuffle */
  const kiln_tensor_desc *comp; /* offsets unused; shapes of one element */
  int64_t min_after_dequeue;    /* random_shuffle: elements a dequeue leaves while open */
  uint64_t seed;                /* random_shuffle: seed of its choices */
} kiln_queue_desc;

/* The constants of a module built with --weights-file: they live in a file
 * beside the binary (format and lookup: docs/runtime.md, "Weights files"),
 * loaded into the module's zeroed buffers before the first initializer runs. */
typedef struct kiln_weights_desc {
  const char *file;      /* the file's name, without a directory: "model.weights" */
  int64_t total_size;    /* its size in bytes */
  uint32_t data_crc;     /* CRC-32 (zlib's) of its data section */
  int32_t n_blobs;
  uint8_t *const *blobs; /* per constant: the buffer it is loaded into */
  const int64_t *sizes;  /* per constant: its size in bytes */
  int32_t *loaded;       /* non-zero once loaded (once per process; the runtime's lock guards it) */
} kiln_weights_desc;

/* ---- GPU-placed nodes (docs/gpu.md; runtime/cuda.c) ---- */

/* A buffer on a GPU: a byte offset into that device's copy of the arena
 * (space 0) or of the variable block (space 1).  Space 2 is a random
 * kernel's Philox counter, passed by value as two u32 parameters (low,
 * high): random_counters[slot], which the launch then advances by `offset`
 * blocks, as the CPU's draw would. */
enum { KILN_GPU_ARENA = 0, KILN_GPU_VARS = 1, KILN_GPU_COUNTER = 2 };
typedef struct kiln_gpu_arg {
  int32_t space;
  int32_t slot; /* space 2: the random counter's index */
  int64_t offset;
} kiln_gpu_arg;

/* One kernel launch of a GPU-placed node in one entry: the kernel's
 * parameters are the args' device pointers (a counter: two u32), then the
 * i64 `n`. */
typedef struct kiln_gpu_kernel {
  const char *node;   /* the node, for messages */
  const char *symbol; /* the kernel's name in the PTX */
  int32_t device;     /* GPU index */
  int32_t n_args;
  const kiln_gpu_arg *args;
  int64_t n;          /* threads that do work */
  int32_t block, grid;/* 1-D launch geometry */
  const struct kiln_gpu_gemm *gemm; /* a matmul cuBLAS may compute instead (args: A, B, C); NULL: none */
} kiln_gpu_kernel;

/* C = A B of a matmul kernel, row-major, for cuBLAS (runtime/cublas.c):
 * each of `batch` matrices at stride_* elements from the last (0: the same
 * matrix for every batch); trans_*: the operand is stored transposed. */
typedef struct kiln_gpu_gemm {
  int32_t dtype; /* KILN_F32 or KILN_F64 */
  int32_t trans_a, trans_b, batch;
  int64_t m, n, k;
  int64_t stride_a, stride_b, stride_c;
} kiln_gpu_gemm;

/* A device_copy node in one entry: device -1 is host memory, whose address
 * generated code passes at run time. */
typedef struct kiln_gpu_copy {
  const char *node;
  int32_t src_device, dst_device;
  kiln_gpu_arg src, dst; /* the device sides */
  int64_t nbytes;
} kiln_gpu_copy;

/* A variable resident on a GPU (initialized on the host, then uploaded). */
typedef struct kiln_gpu_var {
  const char *name;
  int32_t device;
  int32_t reserved;
  int64_t offset, nbytes; /* in the variable block */
} kiln_gpu_var;

typedef struct kiln_gpu_desc {
  const char *ptx;        /* the PTX module of every kernel, NUL-terminated */
  const char *arch;       /* what it was compiled for: "sm_80" */
  int32_t soft_placement; /* no usable GPU: run the CPU code (else fail) */
  int32_t n_devices;      /* 1 + the highest GPU index used */
  int32_t n_kernels, n_copies, n_vars, reserved;
  const kiln_gpu_kernel *kernels;
  const kiln_gpu_copy *copies;
  const kiln_gpu_var *vars;
} kiln_gpu_desc;

typedef struct kiln_module_desc {
  const char *name;
  int64_t vars_size;  /* bytes of variable storage, persists across runs */
  int64_t arena_size; /* bytes of scratch, planned at compile time */
  int32_t n_vars, n_queues, n_entries, n_random;
  const kiln_tensor_desc *vars;
  const kiln_queue_desc *queues;
  const kiln_entry_desc *entries;
  int (*init)(kiln_inst *inst);    /* runs variable initializers */
  int (*program)(kiln_inst *inst); /* the module's program, or NULL */
  const kiln_weights_desc *weights; /* NULL: the constants are in the binary */
  /* appended fields (older generated code leaves them zero) */
  const kiln_gpu_desc *gpu; /* NULL: nothing runs on a GPU */
} kiln_module_desc;

/* The instance: state of one loaded module.  Generated code reads the first
 * five fields directly (by index), so they stay first and in this order. */
struct kiln_inst {
  uint8_t *vars;
  uint8_t *arena;
  kiln_queue **queues;
  uint64_t *random_counters; /* one per random op, so reruns draw new numbers */
  int32_t tracing;           /* non-zero during a traced run: nodes report their times */
  const kiln_module_desc *desc;
  struct kiln_services *services; /* threads, summaries, traces (runtime-private) */
  char error[1024];
};

/* ---- instance lifetime (used by generated create/destroy and by main) ---- */

/* Allocates and initializes an instance (variables initialized, queues
 * created).  Returns NULL only when out of memory; if an initializer fails,
 * returns the instance with kiln_inst_error() set and *status non-zero. */
kiln_inst *kiln_inst_create(const kiln_module_desc *desc, int *status);
/* The same, for a module built with --weights-file, naming where its weights
 * file is: the file itself, or a directory holding desc->weights->file.
 * NULL: $KILN_WEIGHTS (the same two forms), else the executable's directory.
 * The file is read and checked by the first instance of the process; a
 * missing, truncated or corrupt file fails the creation (status non-zero,
 * the message names the file).  Modules without a weights file ignore it. */
kiln_inst *kiln_inst_create_with_weights(const kiln_module_desc *desc, const char *weights,
                                         int *status);
/* Frees an instance and its queues; NULL is allowed. */
void kiln_inst_destroy(kiln_inst *inst);
/* The message of the last failure, or "" if none. */
const char *kiln_inst_error(const kiln_inst *inst);
/* Records a printf-style message in the instance; returns `status` unchanged
 * so callers can write `return kiln_fail(inst, KILN_ERROR, ...)`. */
int kiln_fail(kiln_inst *inst, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- queues (called from generated code; qid indexes desc->queues) ---- */

/* Enqueues one element; comps[i] points to component i.  Blocks while full. */
int kiln_rt_enqueue(kiln_inst *inst, int32_t qid, void *const *comps);
/* Enqueues n elements; comps[i] points to n consecutive component-i values. */
int kiln_rt_enqueue_many(kiln_inst *inst, int32_t qid, void *const *comps, int64_t n);
/* Dequeues one element into out[i].  KILN_OUT_OF_RANGE when closed and empty. */
int kiln_rt_dequeue(kiln_inst *inst, int32_t qid, void *const *out);
/* Dequeues n elements, stacked, into out[i].  OUT_OF_RANGE if fewer remain
 * and the queue is closed (nothing is consumed then). */
int kiln_rt_dequeue_many(kiln_inst *inst, int32_t qid, void *const *out, int64_t n);
/* Writes the number of queued elements to *out. */
int kiln_rt_queue_size(kiln_inst *inst, int32_t qid, int32_t *out);
/* Closes the queue; with cancel_pending, blocked enqueuers fail with CANCELLED. */
int kiln_rt_queue_close(kiln_inst *inst, int32_t qid, int32_t cancel_pending);

/* ---- queue objects (the thread-safe core used by the calls above) ---- */

/* Creates a bounded FIFO of elements of `n_comp` components of the given sizes. */
kiln_queue *kiln_queue_new(int64_t capacity, int32_t n_comp, const int64_t *comp_bytes);
/* Frees a queue; no thread may be blocked on it. */
void kiln_queue_free(kiln_queue *q);
/* Core operations; return kiln_status.  `n` elements, component-major. */
int kiln_queue_enqueue(kiln_queue *q, void *const *comps, int64_t n);
int kiln_queue_dequeue(kiln_queue *q, void *const *out, int64_t n);
int64_t kiln_queue_size(kiln_queue *q);
void kiln_queue_close(kiln_queue *q, int cancel_pending);

/* ---- random numbers (seeded, reproducible; counter-based) ---- */

/* Fills `n` values of `dtype` at `out`: kind 0 = uniform in [a, b),
 * kind 1 = normal with mean a and stddev b, kind 2 = the same normal
 * truncated to two stddevs (values beyond are redrawn, as TF's).  The stream is a pure function of
 * (seed, *counter); *counter advances so the next call draws new numbers. */
int kiln_rt_random(kiln_inst *inst, int32_t dtype, int32_t kind, int64_t n, void *out,
                   double a, double b, uint64_t seed, uint64_t *counter);

/* ---- printing (the program's `print`) ---- */

/* Prints a tensor as NumPy's str() would (no line wrapping), then a newline. */
int kiln_rt_print(kiln_inst *inst, int32_t dtype, int32_t rank, const int64_t *dims,
                  const void *data);
/* Prints a literal line of text. */
int kiln_rt_print_text(kiln_inst *inst, const char *text);
/* Reports a failed run from the program: message to stderr. */
int kiln_rt_report(kiln_inst *inst, int status);

/* ---- checkpoints (tf.train.Saver; runtime/checkpoint.c) ---- */

/* Saves every variable to `<prefix>-<step>.kckpt` (or `<prefix>.kckpt` when
 * step < 0), atomically (temporary file, fsync, rename), checksummed; records
 * it in the `checkpoint` index beside it and keeps the newest max_to_keep
 * (docs/checkpoints.md). */
int kiln_rt_save(kiln_inst *inst, const char *prefix, int64_t step, int32_t max_to_keep);
/* Restores every variable from the checkpoint `prefix` names (the latest in
 * its directory's index when prefix is the save prefix).  A corrupt or
 * mismatched file is refused before any variable changes. */
int kiln_rt_restore(kiln_inst *inst, const char *prefix);

/* ---- threads and the coordinator (tf.train.Coordinator; runtime/coord.c) ---- */

/* Starts `count` threads, each running entry `entry` in a loop until a stop
 * is requested; a thread that gets OutOfRange or Cancelled ends quietly,
 * another error requests a stop and is kept for join.  When the last thread
 * of the group ends, queue `close_queue` (>= 0) is closed. */
int kiln_rt_spawn(kiln_inst *inst, int32_t count, int32_t entry, int32_t close_queue);
/* Asks every thread to stop after its current run. */
int kiln_rt_request_stop(kiln_inst *inst);
/* Non-zero once a stop was requested. */
int32_t kiln_rt_should_stop(kiln_inst *inst);
/* Requests a stop and waits up to grace_ms for the threads; returns the
 * first error a thread raised (with its message), or an error naming the
 * threads that did not finish in time. */
int kiln_rt_join(kiln_inst *inst, int64_t grace_ms);

/* ---- summaries and event files (tf.summary; runtime/summary.c) ---- */

/* Record one value for the next summary write (called by the summary ops;
 * thread-safe; a tag recorded again replaces its value).  A histogram of a
 * NaN or infinity is an error, as in TF.  Formats: docs/summaries.md. */
int kiln_rt_summary_scalar(kiln_inst *inst, const char *tag, int32_t dtype, const void *value);
int kiln_rt_summary_histogram(kiln_inst *inst, const char *tag, int32_t dtype, int64_t n, const void *data);
int kiln_rt_summary_text(kiln_inst *inst, const char *tag, const char *text);
/* Opens `events.out.tfevents.<seconds>.<host>` in logdir (created if needed). */
int kiln_rt_summary_open(kiln_inst *inst, const char *logdir);
/* Writes the recorded values as one Event at `step` (< 0: the number of
 * earlier writes) and clears them.  Buffered: flushed every 2 s of writes,
 * on close, at kiln_inst_destroy and at exit. */
int kiln_rt_summary_write(kiln_inst *inst, int64_t step);
/* Writes the module's graph (a serialized GraphDef) as an Event. */
int kiln_rt_summary_graph(kiln_inst *inst, const void *graph_def, int64_t n);
/* Flushes and closes the writer (also done at exit). */
int kiln_rt_summary_close(kiln_inst *inst);

/* ---- traced runs (RunOptions FULL_TRACE; runtime/trace.c) ---- */

/* Starts tracing the next run: clears the records and sets inst->tracing. */
int kiln_rt_trace_start(kiln_inst *inst);
/* Generated code, around each node of a traced run. */
void kiln_rt_trace_begin(kiln_inst *inst);
void kiln_rt_trace_end(kiln_inst *inst, const char *node, const char *op, int64_t bytes);
/* Ends the traced run: writes RunMetadata (StepStats) to the summary writer
 * under `tag` (or "stepNNN") and a Chrome trace JSON file (trace-<tag>.json
 * in the writer's log directory, else the working directory); clears tracing. */
int kiln_rt_trace_finish(kiln_inst *inst, const char *tag);

/* ---- devices (docs/gpu.md; runtime/cuda.c, runtime/devices.c) ---- */

/* Non-zero when this instance runs its GPU-placed nodes on GPUs; zero when
 * it runs their CPU code (no GPU, soft placement).  Cheap: one load. */
int32_t kiln_rt_gpu_active(kiln_inst *inst);
/* Launches kernel `k` of desc->gpu->kernels (asynchronously). */
int kiln_rt_gpu_launch(kiln_inst *inst, int32_t k);
/* Runs copy `c` of desc->gpu->copies; host_src / host_dst are the host
 * sides (unused for a device side). */
int kiln_rt_gpu_copy(kiln_inst *inst, int32_t c, const void *host_src, void *host_dst);
/* Waits for the GPUs' queued work; reports a failed kernel (its node). */
int kiln_rt_gpu_sync(kiln_inst *inst);
/* Downloads the GPU-resident variables into inst->vars (before a save) /
 * uploads them (after a restore).  No-ops without an active GPU. */
int kiln_rt_gpu_vars_to_host(kiln_inst *inst);
int kiln_rt_gpu_vars_to_device(kiln_inst *inst);

/* An entry whose nodes sit on several CPU devices (cpu:0, cpu:1, ...) runs
 * as one function per device, concurrently, each on a thread of its own
 * (partition 0 on the caller's).  A partition waits for an event before it
 * reads what another one made, and signals the events it makes. */
typedef int (*kiln_part_fn)(kiln_inst *inst, const void *in, void *out, void *sync);
int kiln_rt_run_parts(kiln_inst *inst, const void *in, void *out, int32_t n_parts,
                      const kiln_part_fn *parts, int32_t n_events);
/* KILN_OK once event `e` was signalled; non-zero when another partition
 * failed (the run is abandoned; the failing partition's status is kept). */
int kiln_rt_part_wait(void *sync, int32_t e);
void kiln_rt_part_signal(void *sync, int32_t e);

/* ---- kernel variants (kiln build --cpu-dispatch; runtime/cpu.c) ---- */

/* The best kernel variant this machine runs: 4 x86-64-v4 (AVX-512), 3
 * x86-64-v3 (AVX2, FMA), 0 the baseline; set before main, lowered (never
 * raised) by KILN_CPU_LEVEL.  Generated code reads it at each dispatching call. */
extern int32_t kiln_cpu_level;
/* kiln_cpu_level, for callers that prefer a function. */
int32_t kiln_rt_cpu_level(void);

/* ---- .npy files ---- */

/* Reads `path` into `out` expecting exactly the dtype and dims given; a clear
 * message (file, expected vs found) on any mismatch or truncation. */
int kiln_npy_read(kiln_inst *inst, const char *path, int32_t dtype, int32_t rank,
                  const int64_t *dims, void *out);
/* Writes a tensor as a .npy file. */
int kiln_npy_write(kiln_inst *inst, const char *path, int32_t dtype, int32_t rank,
                   const int64_t *dims, const void *data);

/* ---- dtype facts ---- */

/* Size in bytes of one element of `dtype`, or 0 if unknown. */
size_t kiln_dtype_size(int32_t dtype);
/* The .kg name ("f32"...) of `dtype`, or "?" if unknown. */
const char *kiln_dtype_name(int32_t dtype);

/* ---- the standalone executable ---- */

/* main() of a kiln binary: runs the module's program, or the generic main
 * (--run ENTRY --feed name=file.npy --fetch name[=file.npy] --repeat N).
 * Returns the process exit status. */
int kiln_main(int argc, char **argv, const kiln_module_desc *desc);

#ifdef __cplusplus
}
#endif
#endif
