/* queue.c — TF-style bounded queues, shared between threads of one instance,
 * and the kiln_rt_* entry points generated code calls on them.
 *
 * Elements are stored element-major in a ring (all components of one element
 * together) so one slot is one memcpy per component no matter the layout the
 * caller uses.  The ring grows by doubling up to the capacity; a negative
 * capacity means unbounded (TF's convention).
 *
 * A random_shuffle queue (tf.RandomShuffleQueue) keeps its elements unordered
 * in slots 0..size-1 of the same ring (head stays 0): a dequeue takes a slot
 * chosen uniformly at random and moves the last element into the hole.
 *
 * Every call is an *attempt* (as in TF's QueueBase), appended to the list of
 * its side (enqueue or dequeue) and served strictly in arrival order: a batch
 * goes in contiguously even while it waits for room, and a waiting
 * dequeue_many is not starved by later single dequeues.  Whichever thread
 * changes the queue serves the attempts at the heads of both lists on the
 * spot (flush): a dequeue that makes room copies the waiting enqueuer's next
 * element in, an enqueue copies straight into the buffers of a waiting
 * dequeuer.  A blocked caller sleeps on a condition variable of its own and
 * is woken once, when its attempt is complete; nobody has to wake up for the
 * queue to move.  (With one shared condition variable per side, every
 * dequeue woke every blocked producer, and strict order then made the queue
 * advance one thread wake-up at a time: 8 producers and 2 consumers through a
 * queue of 16 moved 27,000 elements a second instead of millions.) */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

/* One call waiting to be served; on its caller's stack. */
typedef struct attempt {
  struct attempt *next;
  void *const *bufs; /* enqueue: the components; dequeue: the outputs */
  int64_t n;         /* elements to move */
  int64_t done;      /* elements moved so far */
  int finished;      /* the call's result is in status */
  int status;
  int sleeping; /* the caller waits on cv */
  pthread_cond_t cv;
} attempt;

typedef struct {
  attempt *head, *tail;
} attempt_list;

struct kiln_queue {
  pthread_mutex_t mu;
  attempt_list enq, deq; /* unfinished attempts, oldest first */
  int64_t capacity;      /* < 0: unbounded */
  int32_t n_comp;
  int64_t *comp_bytes;
  int64_t *comp_off; /* offset of component i inside a slot */
  int64_t slot_bytes;
  uint8_t *ring;
  int64_t ring_slots; /* allocated slots */
  int64_t head;       /* slot of the oldest element */
  int64_t size;
  int closed;
  int cancel_pending; /* set by a close with cancel_pending (sticky) */
  /* random_shuffle only (shuffle != 0) */
  int shuffle;
  int64_t min_after_dequeue;
  uint32_t key[2];  /* Philox key: the seed */
  uint64_t ctr;     /* Philox blocks drawn so far */
  uint64_t rbuf[2]; /* the unused words of the last block */
  int rpos;         /* next unused word of rbuf; 2 = empty */
};

_Thread_local int kiln_rt_enqueue_closed;

kiln_queue *kiln_queue_new(int64_t capacity, int32_t n_comp, const int64_t *comp_bytes) {
  if (n_comp < 0 || (n_comp > 0 && !comp_bytes)) return NULL;
  kiln_queue *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->capacity = capacity;
  q->n_comp = n_comp;
  q->rpos = 2;
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
  return q;
fail:
  free(q->ring);
  free(q->comp_bytes);
  free(q->comp_off);
  free(q);
  return NULL;
}

kiln_queue *kiln_queue_new_shuffle(int64_t capacity, int32_t n_comp, const int64_t *comp_bytes,
                                   int64_t min_after_dequeue, uint64_t seed) {
  if (min_after_dequeue < 0) return NULL;
  kiln_queue *q = kiln_queue_new(capacity, n_comp, comp_bytes);
  if (!q) return NULL;
  q->shuffle = 1;
  q->min_after_dequeue = min_after_dequeue;
  q->key[0] = (uint32_t)seed;
  q->key[1] = (uint32_t)(seed >> 32);
  return q;
}

void kiln_queue_free(kiln_queue *q) {
  if (!q) return;
  pthread_mutex_destroy(&q->mu);
  free(q->ring);
  free(q->comp_bytes);
  free(q->comp_off);
  free(q);
}

static int full(const kiln_queue *q) { return q->capacity >= 0 && q->size >= q->capacity; }

/* Makes room for one more element in the ring; caller holds the lock.
 * `beyond_capacity`: a closed shuffle queue taking back what a failed
 * dequeue_many had taken may briefly hold more than its capacity. */
static int ring_reserve(kiln_queue *q, int beyond_capacity) {
  if (q->size < q->ring_slots) return 0;
  int64_t slots, bytes, sb = q->slot_bytes > 0 ? q->slot_bytes : 1;
  if (__builtin_mul_overflow(q->ring_slots, 2, &slots)) return -1;
  if (!beyond_capacity && q->capacity >= 0 && slots > q->capacity) slots = q->capacity;
  if (slots <= q->size) return -1;
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

/* ---- attempts ---- */

static void list_push(attempt_list *l, attempt *a) {
  a->next = NULL;
  if (l->tail) l->tail->next = a;
  else l->head = a;
  l->tail = a;
}

static attempt *list_pop(attempt_list *l) {
  attempt *a = l->head;
  if (a) {
    l->head = a->next;
    if (!l->head) l->tail = NULL;
  }
  return a;
}

/* Ends the head attempt of `l`; its caller may return (and its stack frame
 * go away) as soon as the lock is released, so it is not touched after. */
static void finish_head(attempt_list *l, int status) {
  attempt *a = list_pop(l);
  a->finished = 1;
  a->status = status;
  if (a->sleeping) pthread_cond_signal(&a->cv);
}

/* Copies element e of a's buffers into the back of the queue (room reserved). */
static void put_element(kiln_queue *q, void *const *bufs, int64_t e) {
  uint8_t *slot = q->ring + ((q->head + q->size) % q->ring_slots) * q->slot_bytes;
  for (int32_t c = 0; c < q->n_comp; c++)
    if (q->comp_bytes[c] > 0)
      memcpy(slot + q->comp_off[c], (const uint8_t *)bufs[c] + e * q->comp_bytes[c],
             (size_t)q->comp_bytes[c]);
  q->size++;
}

/* Copies the element in `slot` into element e of the output buffers. */
static void get_element(const kiln_queue *q, void *const *bufs, int64_t e, const uint8_t *slot) {
  for (int32_t c = 0; c < q->n_comp; c++)
    if (q->comp_bytes[c] > 0)
      memcpy((uint8_t *)bufs[c] + e * q->comp_bytes[c], slot + q->comp_off[c], (size_t)q->comp_bytes[c]);
}

/* ---- random_shuffle ---- */

/* The next 64 random bits of the queue's stream; caller holds the lock. */
static uint64_t shuffle_bits(kiln_queue *q) {
  if (q->rpos == 2) {
    uint32_t ctr[4] = {(uint32_t)q->ctr, (uint32_t)(q->ctr >> 32), 0, 0}, w[4];
    q->ctr++;
    kiln_philox4x32_10(ctr, q->key, w);
    q->rbuf[0] = (uint64_t)w[0] << 32 | w[1];
    q->rbuf[1] = (uint64_t)w[2] << 32 | w[3];
    q->rpos = 0;
  }
  return q->rbuf[q->rpos++];
}

/* Uniform in [0, n), n > 0, without modulo bias. */
static int64_t shuffle_pick(kiln_queue *q, int64_t n) {
  uint64_t un = (uint64_t)n, floor = -un % un; /* 2^64 mod n */
  uint64_t x;
  do x = shuffle_bits(q);
  while (x < floor);
  return (int64_t)(x % un);
}

/* Moves one randomly chosen element into element `e` of out. */
static void shuffle_take(kiln_queue *q, void *const *out, int64_t e) {
  int64_t r = shuffle_pick(q, q->size);
  uint8_t *slot = q->ring + r * q->slot_bytes;
  get_element(q, out, e, slot);
  q->size--;
  if (r != q->size && q->slot_bytes > 0)
    memcpy(slot, q->ring + q->size * q->slot_bytes, (size_t)q->slot_bytes);
}

/* Serves the head dequeue attempt of a shuffle queue as far as it may now;
 * returns whether anything changed.  While open, it takes elements only
 * while more than min_after_dequeue remain, and waits for min_after_dequeue
 * + (what it still needs) unless the queue is full, in which case it takes
 * what it may (TF's RandomShuffleQueue also fills a dequeue_many piecewise),
 * so a capacity below min_after_dequeue + n cannot deadlock.  Closed and
 * short: what it took goes back and the answer is OutOfRange, as for the
 * FIFO; once closed the rest drains below min_after_dequeue. */
static int shuffle_serve(kiln_queue *q, attempt *a) {
  int64_t need = a->n - a->done;
  if (need == 0) {
    finish_head(&q->deq, KILN_OK);
    return 1;
  }
  if (q->closed) {
    if (q->size >= need) {
      while (a->done < a->n) shuffle_take(q, a->bufs, a->done++);
      finish_head(&q->deq, KILN_OK);
      return 1;
    }
    int status = KILN_OUT_OF_RANGE;
    while (a->done > 0) {
      if (ring_reserve(q, 1) != 0) {
        status = KILN_ERROR; /* out of memory: those elements are lost */
        break;
      }
      put_element(q, a->bufs, --a->done);
    }
    finish_head(&q->deq, status);
    return 1;
  }
  int64_t avail = q->size - q->min_after_dequeue;
  if (avail >= need || (full(q) && avail > 0)) {
    int64_t k = avail < need ? avail : need;
    for (int64_t i = 0; i < k; i++) shuffle_take(q, a->bufs, a->done++);
    if (a->done == a->n) finish_head(&q->deq, KILN_OK);
    return 1;
  }
  return 0;
}

/* ---- serving ---- */

/* Serves the attempts at the heads of both lists until neither can move;
 * caller holds the lock.  An enqueue moves one element at a time, like TF's
 * enqueue_many: a large batch flows through a small queue as consumers make
 * room.  A FIFO dequeue_many waits until all its elements are there. */
static void flush(kiln_queue *q) {
  for (int moved = 1; moved;) {
    moved = 0;
    attempt *a;
    while ((a = q->enq.head)) {
      while (a->done < a->n && !full(q)) {
        if (ring_reserve(q, 0) != 0) break;
        put_element(q, a->bufs, a->done++);
        moved = 1;
      }
      if (a->done < a->n && !full(q)) { /* could not grow the ring */
        finish_head(&q->enq, KILN_ERROR);
        moved = 1;
        continue;
      }
      if (a->done < a->n) break;
      finish_head(&q->enq, KILN_OK);
      moved = 1;
    }
    while ((a = q->deq.head)) {
      if (q->shuffle) {
        if (!shuffle_serve(q, a)) break;
        moved = 1;
        continue;
      }
      if (q->size >= a->n) {
        for (int64_t e = 0; e < a->n; e++) {
          get_element(q, a->bufs, e, q->ring + q->head * q->slot_bytes);
          q->head = (q->head + 1) % q->ring_slots;
          q->size--;
        }
        finish_head(&q->deq, KILN_OK);
        moved = 1;
      } else if (q->closed) {
        /* Closed and short: consume nothing so the remainder can still be
         * read by a smaller dequeue. */
        finish_head(&q->deq, KILN_OUT_OF_RANGE);
        moved = 1;
      } else {
        break;
      }
    }
  }
}

/* Queues `a`, serves what can be served, and sleeps until `a` is finished. */
static int run_attempt(kiln_queue *q, attempt_list *l, attempt *a) {
  list_push(l, a);
  flush(q);
  if (!a->finished) {
    pthread_cond_init(&a->cv, NULL);
    a->sleeping = 1;
    while (!a->finished) pthread_cond_wait(&a->cv, &q->mu);
    pthread_cond_destroy(&a->cv);
  }
  return a->status;
}

int kiln_queue_enqueue(kiln_queue *q, void *const *comps, int64_t n) {
  if (!q || n < 0 || (n > 0 && q->n_comp > 0 && !comps)) return KILN_ERROR;
  pthread_mutex_lock(&q->mu);
  int status = KILN_ERROR;
  if (q->closed) {
    /* nothing */
  } else if (n == 1 && !q->enq.head && !full(q) && ring_reserve(q, 0) == 0) {
    /* the common case, nobody ahead and room: no attempt to queue */
    put_element(q, comps, 0);
    if (q->deq.head) flush(q);
    status = KILN_OK;
  } else {
    attempt a = {.bufs = comps, .n = n};
    status = run_attempt(q, &q->enq, &a);
  }
  pthread_mutex_unlock(&q->mu);
  return status;
}

int kiln_queue_dequeue(kiln_queue *q, void *const *out, int64_t n) {
  if (!q || n < 0 || (n > 0 && q->n_comp > 0 && !out)) return KILN_ERROR;
  pthread_mutex_lock(&q->mu);
  int status;
  if (n == 1 && !q->shuffle && !q->deq.head && q->size > 0) {
    /* the common case, nobody ahead and an element there */
    get_element(q, out, 0, q->ring + q->head * q->slot_bytes);
    q->head = q->head + 1 == q->ring_slots ? 0 : q->head + 1;
    q->size--;
    if (q->enq.head) flush(q);
    status = KILN_OK;
  } else {
    attempt a = {.bufs = out, .n = n};
    status = run_attempt(q, &q->deq, &a);
  }
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
  if (cancel_pending) q->cancel_pending = 1;
  /* The enqueues still waiting for room are the ones cancel_pending cancels;
   * without it they fail too (TF would let them wait for room).  What a
   * batch put in before stays. */
  while (q->enq.head) finish_head(&q->enq, q->cancel_pending ? KILN_CANCELLED : KILN_ERROR);
  flush(q); /* waiting dequeues get what remains, or OutOfRange */
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
    kiln_rt_enqueue_closed = 1;
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
