/* queue.c — TF-style bounded FIFO queues, shared between threads of one
 * instance, and the kiln_rt_* entry points generated code calls on them.
 *
 * Elements are stored element-major in a ring (all components of one element
 * together) so one slot is one memcpy per component no matter the layout the
 * caller uses.  The ring grows by doubling up to the capacity; a negative
 * capacity means unbounded (TF's convention). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

struct kiln_queue {
  pthread_mutex_t mu;
  pthread_cond_t not_full;  /* signalled when room appears or on close */
  pthread_cond_t not_empty; /* signalled when elements arrive or on close */
  int64_t capacity;         /* < 0: unbounded */
  int32_t n_comp;
  int64_t *comp_bytes;
  int64_t *comp_off; /* offset of component i inside a slot */
  int64_t slot_bytes;
  uint8_t *ring;
  int64_t ring_slots; /* allocated slots */
  int64_t head;       /* slot of the oldest element */
  int64_t size;
  int closed;
  int cancel_pending; /* blocked enqueuers woken by close fail with CANCELLED */
  /* Tickets serve enqueuers and dequeuers in arrival order, as TF does: a
   * batch goes in contiguously even while it waits for room, and a waiting
   * dequeue_many is not starved by later single dequeues. */
  uint64_t enq_next, enq_serving, deq_next, deq_serving;
};

kiln_queue *kiln_queue_new(int64_t capacity, int32_t n_comp, const int64_t *comp_bytes) {
  if (n_comp < 0 || (n_comp > 0 && !comp_bytes)) return NULL;
  kiln_queue *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->capacity = capacity;
  q->n_comp = n_comp;
  q->comp_bytes = calloc(n_comp > 0 ? (size_t)n_comp : 1, sizeof(int64_t));
  q->comp_off = calloc(n_comp > 0 ? (size_t)n_comp : 1, sizeof(int64_t));
  if (!q->comp_bytes || !q->comp_off) goto fail;
  for (int32_t i = 0; i < n_comp; i++) {
    if (comp_bytes[i] < 0) goto fail;
    q->comp_bytes[i] = comp_bytes[i];
    q->comp_off[i] = q->slot_bytes;
    if (__builtin_add_overflow(q->slot_bytes, comp_bytes[i], &q->slot_bytes)) goto fail;
  }
  /* Rings start small and double up to the capacity, so a generous capacity
   * of large elements costs nothing until the queue actually fills. */
  int64_t initial = capacity >= 0 && capacity < 16 ? capacity : 16;
  if (initial < 1) initial = 1;
  int64_t bytes;
  if (__builtin_mul_overflow(initial, q->slot_bytes > 0 ? q->slot_bytes : 1, &bytes) ||
      (uint64_t)bytes > SIZE_MAX)
    goto fail;
  q->ring = malloc((size_t)bytes);
  if (!q->ring) goto fail;
  q->ring_slots = initial;
  if (pthread_mutex_init(&q->mu, NULL) != 0) goto fail;
  if (pthread_cond_init(&q->not_full, NULL) != 0) {
    pthread_mutex_destroy(&q->mu);
    goto fail;
  }
  if (pthread_cond_init(&q->not_empty, NULL) != 0) {
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->mu);
    goto fail;
  }
  return q;
fail:
  free(q->ring);
  free(q->comp_bytes);
  free(q->comp_off);
  free(q);
  return NULL;
}

void kiln_queue_free(kiln_queue *q) {
  if (!q) return;
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
  pthread_mutex_destroy(&q->mu);
  free(q->ring);
  free(q->comp_bytes);
  free(q->comp_off);
  free(q);
}

static int full(const kiln_queue *q) { return q->capacity >= 0 && q->size >= q->capacity; }

/* Makes room for one more element in the ring; caller holds the lock. */
static int ring_reserve(kiln_queue *q) {
  if (q->size < q->ring_slots) return 0;
  int64_t slots, bytes, sb = q->slot_bytes > 0 ? q->slot_bytes : 1;
  if (__builtin_mul_overflow(q->ring_slots, 2, &slots)) return -1;
  if (q->capacity >= 0 && slots > q->capacity) slots = q->capacity;
  if (__builtin_mul_overflow(slots, sb, &bytes) || (uint64_t)bytes > SIZE_MAX) return -1;
  uint8_t *ring = malloc((size_t)bytes);
  if (!ring) return -1;
  /* Unwrap into the new ring so head starts at 0 again. */
  for (int64_t i = 0; i < q->size; i++)
    memcpy(ring + i * q->slot_bytes, q->ring + ((q->head + i) % q->ring_slots) * q->slot_bytes,
           (size_t)q->slot_bytes);
  free(q->ring);
  q->ring = ring;
  q->ring_slots = slots;
  q->head = 0;
  return 0;
}

int kiln_queue_enqueue(kiln_queue *q, void *const *comps, int64_t n) {
  if (!q || n < 0 || (n > 0 && q->n_comp > 0 && !comps)) return KILN_ERROR;
  pthread_mutex_lock(&q->mu);
  if (q->closed) {
    pthread_mutex_unlock(&q->mu);
    return KILN_ERROR;
  }
  uint64_t me = q->enq_next++;
  int status = KILN_OK;
  while (!q->closed && q->enq_serving != me) pthread_cond_wait(&q->not_full, &q->mu);
  /* One element at a time, like TF's enqueue_many: a large batch flows
   * through a small queue as consumers make room. */
  for (int64_t e = 0; e < n && !q->closed; e++) {
    while (!q->closed && full(q)) pthread_cond_wait(&q->not_full, &q->mu);
    if (q->closed) break;
    if (ring_reserve(q) != 0) {
      status = KILN_ERROR;
      break;
    }
    uint8_t *slot = q->ring + ((q->head + q->size) % q->ring_slots) * q->slot_bytes;
    for (int32_t c = 0; c < q->n_comp; c++)
      if (q->comp_bytes[c] > 0)
        memcpy(slot + q->comp_off[c], (const uint8_t *)comps[c] + e * q->comp_bytes[c],
               (size_t)q->comp_bytes[c]);
    q->size++;
    pthread_cond_broadcast(&q->not_empty);
  }
  /* The queue was open on entry, so a close seen now happened while we were
   * blocked: exactly the enqueues that cancel_pending cancels. */
  if (status == KILN_OK && q->closed) status = q->cancel_pending ? KILN_CANCELLED : KILN_ERROR;
  if (q->enq_serving == me) {
    q->enq_serving++;
    pthread_cond_broadcast(&q->not_full);
  }
  pthread_mutex_unlock(&q->mu);
  return status;
}

int kiln_queue_dequeue(kiln_queue *q, void *const *out, int64_t n) {
  if (!q || n < 0 || (n > 0 && q->n_comp > 0 && !out)) return KILN_ERROR;
  pthread_mutex_lock(&q->mu);
  uint64_t me = q->deq_next++;
  /* Even after close, wait for our turn: earlier dequeuers drain first. */
  while (q->deq_serving != me) pthread_cond_wait(&q->not_empty, &q->mu);
  while (!q->closed && q->size < n) pthread_cond_wait(&q->not_empty, &q->mu);
  int status = KILN_OK;
  if (q->size < n) {
    /* Closed and short: consume nothing so the remainder can still be read
     * by a smaller dequeue. */
    status = KILN_OUT_OF_RANGE;
  } else {
    for (int64_t e = 0; e < n; e++) {
      const uint8_t *slot = q->ring + q->head * q->slot_bytes;
      for (int32_t c = 0; c < q->n_comp; c++)
        if (q->comp_bytes[c] > 0)
          memcpy((uint8_t *)out[c] + e * q->comp_bytes[c], slot + q->comp_off[c],
                 (size_t)q->comp_bytes[c]);
      q->head = (q->head + 1) % q->ring_slots;
      q->size--;
    }
    if (n > 0) pthread_cond_broadcast(&q->not_full);
  }
  q->deq_serving++;
  pthread_cond_broadcast(&q->not_empty); /* the next dequeuer in line */
  pthread_mutex_unlock(&q->mu);
  return status;
}

int64_t kiln_queue_size(kiln_queue *q) {
  if (!q) return 0;
  pthread_mutex_lock(&q->mu);
  int64_t n = q->size;
  pthread_mutex_unlock(&q->mu);
  return n;
}

void kiln_queue_close(kiln_queue *q, int cancel_pending) {
  if (!q) return;
  pthread_mutex_lock(&q->mu);
  q->closed = 1;
  /* Sticky: a second close without the flag must not un-cancel enqueuers
   * that were woken by the first but have not run yet. */
  if (cancel_pending) q->cancel_pending = 1;
  pthread_cond_broadcast(&q->not_full);
  pthread_cond_broadcast(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

/* ---- the calls generated code makes ---------------------------------------- */

/* Tells a closed-queue failure from an allocation failure; closing is sticky,
 * so asking after the fact gives the right answer. */
static int is_closed(kiln_queue *q) {
  pthread_mutex_lock(&q->mu);
  int c = q->closed;
  pthread_mutex_unlock(&q->mu);
  return c;
}

static kiln_queue *lookup(kiln_inst *inst, int32_t qid, const char *op) {
  if (!inst || !inst->desc || !inst->queues || qid < 0 || qid >= inst->desc->n_queues ||
      !inst->queues[qid]) {
    kiln_fail(inst, KILN_ERROR, "%s: no queue with id %d", op, (int)qid);
    return NULL;
  }
  return inst->queues[qid];
}

static const char *qname(kiln_inst *inst, int32_t qid) {
  const char *n = inst->desc->queues[qid].name;
  return n ? n : "?";
}

static int enqueue_status(kiln_inst *inst, int32_t qid, int status) {
  switch (status) {
  case KILN_OK:
    return KILN_OK;
  case KILN_CANCELLED:
    return kiln_fail(inst, status,
                     "enqueue to queue '%s' was cancelled: the queue was closed with "
                     "cancel_pending_enqueues (Cancelled)",
                     qname(inst, qid));
  default:
    if (!is_closed(inst->queues[qid]))
      return kiln_fail(inst, KILN_ERROR, "enqueue to queue '%s': out of memory",
                       qname(inst, qid));
    return kiln_fail(inst, KILN_ERROR, "queue '%s' is closed", qname(inst, qid));
  }
}

/* The core cannot tell a missing buffer from a closed queue, so check here. */
static int no_buffers(kiln_inst *inst, int32_t qid, void *const *p) {
  if (p || inst->desc->queues[qid].n_comp == 0) return 0;
  kiln_fail(inst, KILN_ERROR, "queue '%s': no component buffers given", qname(inst, qid));
  return 1;
}

int kiln_rt_enqueue(kiln_inst *inst, int32_t qid, void *const *comps) {
  kiln_queue *q = lookup(inst, qid, "enqueue");
  if (!q || no_buffers(inst, qid, comps)) return KILN_ERROR;
  return enqueue_status(inst, qid, kiln_queue_enqueue(q, comps, 1));
}

int kiln_rt_enqueue_many(kiln_inst *inst, int32_t qid, void *const *comps, int64_t n) {
  kiln_queue *q = lookup(inst, qid, "enqueue_many");
  if (!q || no_buffers(inst, qid, comps)) return KILN_ERROR;
  if (n < 0)
    return kiln_fail(inst, KILN_ERROR, "enqueue_many on queue '%s': negative count %lld",
                     qname(inst, qid), (long long)n);
  return enqueue_status(inst, qid, kiln_queue_enqueue(q, comps, n));
}

int kiln_rt_dequeue(kiln_inst *inst, int32_t qid, void *const *out) {
  kiln_queue *q = lookup(inst, qid, "dequeue");
  if (!q || no_buffers(inst, qid, out)) return KILN_ERROR;
  int status = kiln_queue_dequeue(q, out, 1);
  if (status == KILN_OUT_OF_RANGE)
    return kiln_fail(inst, status, "queue '%s' is closed and empty (OutOfRange)",
                     qname(inst, qid));
  if (status != KILN_OK)
    return kiln_fail(inst, KILN_ERROR, "dequeue from queue '%s' failed", qname(inst, qid));
  return KILN_OK;
}

int kiln_rt_dequeue_many(kiln_inst *inst, int32_t qid, void *const *out, int64_t n) {
  kiln_queue *q = lookup(inst, qid, "dequeue_many");
  if (!q || no_buffers(inst, qid, out)) return KILN_ERROR;
  if (n < 0)
    return kiln_fail(inst, KILN_ERROR, "dequeue_many on queue '%s': negative count %lld",
                     qname(inst, qid), (long long)n);
  int status = kiln_queue_dequeue(q, out, n);
  if (status == KILN_OUT_OF_RANGE)
    return kiln_fail(inst, status,
                     "queue '%s' is closed and has fewer than the %lld elements requested "
                     "(OutOfRange)",
                     qname(inst, qid), (long long)n);
  if (status != KILN_OK)
    return kiln_fail(inst, KILN_ERROR, "dequeue_many from queue '%s' failed", qname(inst, qid));
  return KILN_OK;
}

int kiln_rt_queue_size(kiln_inst *inst, int32_t qid, int32_t *out) {
  kiln_queue *q = lookup(inst, qid, "queue_size");
  if (!q) return KILN_ERROR;
  int64_t n = kiln_queue_size(q);
  if (out) *out = n > INT32_MAX ? INT32_MAX : (int32_t)n;
  return KILN_OK;
}

int kiln_rt_queue_close(kiln_inst *inst, int32_t qid, int32_t cancel_pending) {
  kiln_queue *q = lookup(inst, qid, "queue_close");
  if (!q) return KILN_ERROR;
  kiln_queue_close(q, cancel_pending != 0);
  return KILN_OK;
}
