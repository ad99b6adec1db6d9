/* rt_internal.h — helpers shared by the runtime's own files (and its unit
 * tests).  Not part of the generated-code ABI: nothing here is called from
 * compiled modules, so it may change freely. */
#ifndef KILN_RT_INTERNAL_H
#define KILN_RT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include "kilnrt.h"

/* Alignment of every block the runtime hands to generated code. */
#define KILN_ALIGN 64

/* Zeroed, KILN_ALIGN-aligned block of `size` bytes (size 0 gives a valid
 * block); NULL when out of memory or size < 0.  Free with free(). */
void *kiln_aligned_zalloc(int64_t size);

/* zlib's CRC-32 of n bytes, continuing from `crc` (0 to start); checkpoint.c. */
uint32_t kiln_crc32(uint32_t crc, const void *data, size_t n);

/* Finds, checks and loads inst->desc->weights (runtime/weights.c) unless this
 * process already did; `path` as kiln_inst_create_with_weights takes it. */
int kiln_weights_load(kiln_inst *inst, const char *path);

/* Element count of a shape: 0 on success, -1 when the rank is outside
 * 0..KILN_MAX_RANK, a dim is negative or the count/bytes would overflow. */
int kiln_shape_numel(int32_t rank, const int64_t *dims, int64_t *numel);

/* Writes "f32[2,3]" (or "f32[]" for a scalar) into buf, always terminated. */
void kiln_fmt_type(char *buf, size_t cap, int32_t dtype, int32_t rank, const int64_t *dims);

/* kiln_rt_print writing to `f` instead of stdout (tests use open_memstream). */
int kiln_rt_fprint(FILE *f, kiln_inst *inst, int32_t dtype, int32_t rank, const int64_t *dims,
                   const void *data);

/* One Philox4x32-10 block: out = philox(ctr, key).  Exposed for known-answer tests. */
void kiln_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* ---- queue kinds (kiln_queue_desc.kind) ---- */

#define KILN_QUEUE_FIFO 0
#define KILN_QUEUE_RANDOM_SHUFFLE 1

/* A tf.RandomShuffleQueue: like kiln_queue_new, but a dequeue takes elements
 * chosen uniformly at random among those buffered, and (while the queue is
 * open) leaves at least min_after_dequeue behind, waiting for more to arrive.
 * Once closed it drains the rest, still in random order.  The choices are a
 * pure function of `seed` and the order of the queue's operations, so one
 * consumer fed in a fixed order sees the same sequence in every process. */
kiln_queue *kiln_queue_new_shuffle(int64_t capacity, int32_t n_comp, const int64_t *comp_bytes,
                                   int64_t min_after_dequeue, uint64_t seed);

/* Set (on the calling thread) when kiln_rt_enqueue/_many failed because the
 * queue was already closed, which TF reports as CancelledError and a queue
 * runner treats as its normal end; the coordinator clears it before each run
 * of a spawned thread's entry and reads it after a failed one. */
extern _Thread_local int kiln_rt_enqueue_closed;

/* ---- runtime services (kiln_inst.services) ---- */

/* State of an instance that generated code never touches, created on first
 * use.  Each part belongs to one runtime file; add a member per service. */
struct kiln_coord;   /* runtime/coord.c: threads and the coordinator */
struct kiln_summary; /* runtime/summary.c: the event-file writer */
struct kiln_trace;   /* runtime/trace.c: traced runs */
struct kiln_gpu;     /* runtime/cuda.c: the CUDA driver, device memory */
struct kiln_services {
  struct kiln_coord *coord;
  struct kiln_summary *summary;
  struct kiln_trace *trace;
  struct kiln_gpu *gpu;
};

/* inst->services, allocated on first use (runtime/coord.c); NULL when out of
 * memory.  Threads spawned on an instance share its services. */
struct kiln_services *kiln_services(kiln_inst *inst);

/* Stops and joins every thread spawned on `inst` (closing its queues with
 * cancel_pending if a thread is still running after the stop) and frees the
 * coordinator.  kiln_inst_destroy calls it first: no thread outlives the
 * instance. */
void kiln_coord_destroy(kiln_inst *inst);

/* ---- GPUs (runtime/cuda.c) ---- */

/* Brings up the GPUs of a module with desc->gpu after its initializer ran:
 * loads the CUDA driver, the PTX, allocates device memory and uploads the
 * GPU-resident variables; or, where that is impossible, falls back to the
 * CPU code (soft placement, said once on stderr) or fails with a message.
 * Weak: only binaries whose generated code calls the GPU runtime link it. */
int kiln_gpu_start(kiln_inst *inst) __attribute__((weak));
/* Frees the device memory and contexts of an instance (weak, as above). */
void kiln_gpu_stop(kiln_inst *inst) __attribute__((weak));
/* Brings the host copy of the GPU-resident variables up to date (to_host),
 * or uploads the host copy to the GPUs (after a restore): checkpoint.c calls
 * it around save and restore.  A no-op where no GPU is active (weak, as
 * above: binaries without GPU work do not link it). */
int kiln_gpu_sync_vars(kiln_inst *inst, int to_host) __attribute__((weak));

#endif
