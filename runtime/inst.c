/* inst.c — the lifetime of a kiln instance (variables, arena, queues, random
 * counters) and its error slot.  Generated code indexes the first fields of
 * kiln_inst directly, so every block here is allocated even when empty: a
 * generated access never has to test for NULL. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"
#include "summary_internal.h"

void *kiln_aligned_zalloc(int64_t size) {
  if (size < 0 || size > INT64_MAX - KILN_ALIGN) return NULL;
  /* aligned_alloc wants a multiple of the alignment, and a non-zero size so
   * that an empty block is still a distinct, freeable pointer. */
  uint64_t rounded = ((uint64_t)size + KILN_ALIGN - 1) / KILN_ALIGN * KILN_ALIGN;
  if (rounded == 0) rounded = KILN_ALIGN;
  if (rounded > SIZE_MAX) return NULL;
  void *p = aligned_alloc(KILN_ALIGN, (size_t)rounded);
  if (p) memset(p, 0, (size_t)rounded);
  return p;
}

/* Writers from different threads (a producer and a consumer failing at once)
 * must not interleave inside the message buffer. */
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

int kiln_fail(kiln_inst *inst, int status, const char *fmt, ...) {
  if (!inst || !fmt) return status;
  /* Format off to the side: callers may pass inst->error as an argument. */
  char msg[sizeof inst->error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&error_lock);
  memcpy(inst->error, msg, sizeof msg);
  pthread_mutex_unlock(&error_lock);
  return status;
}

const char *kiln_inst_error(const kiln_inst *inst) { return inst ? inst->error : ""; }

void kiln_inst_destroy(kiln_inst *inst) {
  if (!inst) return;
  kiln_coord_destroy(inst); /* no spawned thread outlives the instance */
  kiln_trace_destroy(inst);
  kiln_summary_destroy(inst); /* flushes and closes the event file */
  if (kiln_gpu_stop) kiln_gpu_stop(inst);
  if (inst->queues && inst->desc) {
    for (int32_t i = 0; i < inst->desc->n_queues; i++) kiln_queue_free(inst->queues[i]);
  }
  free(inst->queues);
  free(inst->vars);
  free(inst->arena);
  free(inst->random_counters);
  free(inst->services);
  free(inst);
}

/* A malformed descriptor is a compiler bug, not an allocation failure, so it
 * is reported through the instance like a failed initializer. */
static int check_desc(kiln_inst *inst, const kiln_module_desc *d) {
  if (d->vars_size < 0 || d->arena_size < 0 || d->n_queues < 0 || d->n_random < 0 ||
      d->n_entries < 0 || d->n_vars < 0)
    return kiln_fail(inst, KILN_ERROR, "module '%s': malformed descriptor (negative size)",
                     d->name ? d->name : "?");
  if (d->n_queues > 0 && !d->queues)
    return kiln_fail(inst, KILN_ERROR, "module '%s': malformed descriptor (no queue table)",
                     d->name ? d->name : "?");
  for (int32_t i = 0; i < d->n_queues; i++) {
    const kiln_queue_desc *q = &d->queues[i];
    const char *qn = q->name ? q->name : "?";
    if (q->kind != KILN_QUEUE_FIFO && q->kind != KILN_QUEUE_RANDOM_SHUFFLE)
      return kiln_fail(inst, KILN_ERROR, "queue '%s': unsupported queue kind %d", qn,
                       (int)q->kind);
    if (q->kind == KILN_QUEUE_RANDOM_SHUFFLE && q->min_after_dequeue < 0)
      return kiln_fail(inst, KILN_ERROR, "queue '%s': negative min_after_dequeue", qn);
    if (q->n_comp < 0 || (q->n_comp > 0 && !q->comp))
      return kiln_fail(inst, KILN_ERROR, "queue '%s': malformed component list", qn);
    for (int32_t j = 0; j < q->n_comp; j++)
      if (q->comp[j].nbytes < 0)
        return kiln_fail(inst, KILN_ERROR, "queue '%s': component %d has negative size", qn,
                         (int)j);
  }
  return KILN_OK;
}

kiln_inst *kiln_inst_create(const kiln_module_desc *desc, int *status) {
  return kiln_inst_create_with_weights(desc, NULL, status);
}

kiln_inst *kiln_inst_create_with_weights(const kiln_module_desc *desc, const char *weights,
                                         int *status) {
  int dummy;
  if (!status) status = &dummy;
  *status = KILN_ERROR;
  kiln_inst *inst = calloc(1, sizeof *inst);
  if (!inst) return NULL;
  inst->desc = desc;
  if (!desc) {
    kiln_fail(inst, KILN_ERROR, "no module descriptor");
    return inst;
  }
  if ((*status = check_desc(inst, desc)) != KILN_OK) return inst;

  inst->vars = kiln_aligned_zalloc(desc->vars_size);
  inst->arena = kiln_aligned_zalloc(desc->arena_size);
  inst->random_counters = calloc(desc->n_random > 0 ? (size_t)desc->n_random : 1, sizeof(uint64_t));
  inst->queues = calloc(desc->n_queues > 0 ? (size_t)desc->n_queues : 1, sizeof(kiln_queue *));
  if (!inst->vars || !inst->arena || !inst->random_counters || !inst->queues) goto oom;

  for (int32_t i = 0; i < desc->n_queues; i++) {
    const kiln_queue_desc *q = &desc->queues[i];
    int64_t *bytes = calloc(q->n_comp > 0 ? (size_t)q->n_comp : 1, sizeof *bytes);
    if (!bytes) goto oom;
    for (int32_t j = 0; j < q->n_comp; j++) bytes[j] = q->comp[j].nbytes;
    inst->queues[i] = q->kind == KILN_QUEUE_RANDOM_SHUFFLE
                          ? kiln_queue_new_shuffle(q->capacity, q->n_comp, bytes,
                                                   q->min_after_dequeue, q->seed)
                          : kiln_queue_new(q->capacity, q->n_comp, bytes);
    free(bytes);
    if (!inst->queues[i]) goto oom;
  }

  /* before the initializers: a variable's literal may be one of the weights */
  if (desc->weights && (*status = kiln_weights_load(inst, weights)) != KILN_OK) return inst;
  *status = KILN_OK;
  if (desc->init) {
    *status = desc->init(inst);
    if (*status != KILN_OK && inst->error[0] == '\0')
      kiln_fail(inst, *status, "initializer of module '%s' failed (status %d)",
                desc->name ? desc->name : "?", *status);
  }
  /* GPU-placed nodes: the driver, device memory, the variables uploaded */
  if (*status == KILN_OK && desc->gpu && kiln_gpu_start) *status = kiln_gpu_start(inst);
  return inst;

oom:
  kiln_inst_destroy(inst);
  *status = KILN_ERROR;
  return NULL;
}
