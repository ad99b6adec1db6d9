/* coord.c — threads under a coordinator: the program's `spawn`, `stop` and
 * `join` (tf.train.Coordinator with tf.train.QueueRunner threads).
 *
 * kiln_rt_spawn starts `count` threads that each run one entry in a loop, as
 * a QueueRunner thread runs its enqueue op:
 *
 *     with coord.stop_on_exception():
 *         while not coord.should_stop(): sess.run(enqueue_op)
 *
 * Each thread runs on a view of the instance of its own: the same variables,
 * queues, descriptor and services as the parent, but its own arena (the
 * scratch of a run, so runs on different threads never share it), its own
 * error buffer, random counters copied from the parent's and moved to a
 * stream region of their own (threads draw different numbers) and tracing
 * off.  Variables are shared as in TF: two threads assigning the same
 * variable race, as two sess.run calls would.
 *
 * A run that ends in OutOfRange (an input queue is closed and drained) or
 * Cancelled (close ... cancel_pending woke its enqueue), or an enqueue into a
 * queue that was already closed (TF's CancelledError), ends the thread
 * quietly.  Any other failure is kept as the coordinator's first error
 * (status and message) and requests a stop, which `join` reports.  When the
 * last thread of a spawn group ends, for whatever reason, the group's queue
 * (`spawn ... close q`) is closed without cancel_pending, as a QueueRunner
 * closes its queue: a consumer drains what is left and then gets OutOfRange.
 *
 * request_stop only sets a flag that threads read between runs.  As in TF it
 * does not wake a thread blocked inside a run (an enqueue into a full queue,
 * a dequeue from an empty one): the program does that by closing the queue,
 * `close q cancel_pending`, before `join`.  join waits at most its grace
 * period and then reports the threads still running instead of hanging.
 * Only kiln_inst_destroy, which must not leave a thread behind, closes every
 * queue with cancel_pending itself.
 *
 * Locking: the coordinator mutex guards the thread list, the counts and the
 * first error; the stop flag is an atomic read by every loop.  A queue is
 * closed outside the coordinator mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rt_internal.h"

typedef struct group {
  int remaining;       /* threads of the group still running */
  int32_t close_queue; /* closed when the last one ends; -1: none */
} group;

typedef struct worker {
  struct worker *next;
  struct kiln_coord *coord;
  kiln_inst *parent;
  kiln_inst view;
  int32_t entry;
  void *out;
  group *grp;
  pthread_t tid;
  int started; /* pthread_create succeeded */
  int done;    /* the thread has finished its last access to coordinator state */
} worker;

struct kiln_coord {
  pthread_mutex_t mu;
  pthread_cond_t changed; /* a thread ended (CLOCK_MONOTONIC) */
  atomic_int stop;
  int live;           /* threads started and not yet done */
  worker *workers;    /* every thread not yet reclaimed by join */
  uint64_t next_seq;  /* threads ever spawned: the random-stream region of the next */
  int err_status;     /* first error a thread raised (0: none) */
  char err_msg[sizeof(((kiln_inst *)0)->error)];
};

/* Created on first use by whichever service comes first, possibly from two
 * threads at once: the loser of the compare-and-swap frees its copy. */
struct kiln_services *kiln_services(kiln_inst *inst) {
  if (!inst) return NULL;
  struct kiln_services *s = __atomic_load_n(&inst->services, __ATOMIC_ACQUIRE);
  if (s) return s;
  struct kiln_services *fresh = calloc(1, sizeof *fresh), *expected = NULL;
  if (!fresh) return NULL;
  if (!__atomic_compare_exchange_n(&inst->services, &expected, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    free(fresh);
    return expected;
  }
  return fresh;
}

static struct kiln_coord *coord_of(kiln_inst *inst) {
  return inst && inst->services ? inst->services->coord : NULL;
}

static struct kiln_coord *coord_get(kiln_inst *inst) {
  struct kiln_services *s = kiln_services(inst);
  if (!s) return NULL;
  if (s->coord) return s->coord;
  struct kiln_coord *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) goto fail;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&c->changed, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) goto fail;
  if (pthread_mutex_init(&c->mu, NULL) != 0) {
    pthread_cond_destroy(&c->changed);
    goto fail;
  }
  atomic_init(&c->stop, 0);
  s->coord = c;
  return c;
fail:
  free(c);
  return NULL;
}

/* Stream region of thread `seq` (counted from 1): the parent keeps region 0,
 * and a run would need 2^40 Philox blocks of one op to cross into the next. */
#define KILN_THREAD_STREAM_SHIFT 40

static void worker_free(worker *w) {
  free(w->view.arena);
  free(w->view.random_counters);
  free(w->out);
  free(w);
}

static void record_error(struct kiln_coord *c, int status, const char *msg) {
  pthread_mutex_lock(&c->mu);
  if (!c->err_status) {
    c->err_status = status;
    snprintf(c->err_msg, sizeof c->err_msg, "%s", msg && msg[0] ? msg : "a spawned thread failed");
  }
  pthread_mutex_unlock(&c->mu);
  atomic_store(&c->stop, 1);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  struct kiln_coord *c = w->coord;
  const kiln_entry_desc *e = &w->parent->desc->entries[w->entry];
  while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
    kiln_rt_enqueue_closed = 0;
    int st = e->fn(&w->view, NULL, w->out);
    if (st == KILN_OK) continue;
    if (st == KILN_OUT_OF_RANGE || st == KILN_CANCELLED || kiln_rt_enqueue_closed) break;
    record_error(c, st, w->view.error);
    break;
  }
  /* The last thread of the group closes its queue (TF's QueueRunner). */
  pthread_mutex_lock(&c->mu);
  int last = --w->grp->remaining == 0;
  pthread_mutex_unlock(&c->mu);
  if (last) {
    if (w->grp->close_queue >= 0) kiln_queue_close(w->parent->queues[w->grp->close_queue], 0);
    free(w->grp);
  }
  pthread_mutex_lock(&c->mu);
  w->done = 1;
  c->live--;
  pthread_cond_broadcast(&c->changed);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int kiln_rt_spawn(kiln_inst *inst, int32_t count, int32_t entry, int32_t close_queue) {
  if (!inst || !inst->desc) return KILN_ERROR;
  const kiln_module_desc *d = inst->desc;
  if (count < 1) return kiln_fail(inst, KILN_ERROR, "spawn: %d threads (at least 1)", (int)count);
  if (entry < 0 || entry >= d->n_entries || !d->entries || !d->entries[entry].fn)
    return kiln_fail(inst, KILN_ERROR, "spawn: no entry with id %d", (int)entry);
  if (d->entries[entry].n_in > 0)
    return kiln_fail(inst, KILN_ERROR, "spawn: entry '%s' takes feeds; a thread has none to give",
                     d->entries[entry].name ? d->entries[entry].name : "?");
  if (close_queue >= d->n_queues || (close_queue >= 0 && !inst->queues[close_queue]))
    return kiln_fail(inst, KILN_ERROR, "spawn: no queue with id %d", (int)close_queue);
  struct kiln_coord *c = coord_get(inst);
  group *g = calloc(1, sizeof *g);
  if (!c || !g) {
    free(g);
    return kiln_fail(inst, KILN_ERROR, "spawn: out of memory");
  }
  g->close_queue = close_queue < 0 ? -1 : close_queue;

  /* Build every view first so that a failure leaves nothing running. */
  worker *ws[1024];
  if (count > 1024) count = 1024;
  int n = 0;
  int64_t out_size = d->entries[entry].out_size;
  for (; n < count; n++) {
    worker *w = calloc(1, sizeof *w);
    if (!w) break;
    ws[n] = w;
    w->coord = c;
    w->parent = inst;
    w->entry = entry;
    w->grp = g;
    w->view.vars = inst->vars;
    w->view.queues = inst->queues;
    w->view.desc = d;
    w->view.services = inst->services;
    w->view.tracing = 0;
    w->view.arena = kiln_aligned_zalloc(d->arena_size);
    w->view.random_counters = calloc(d->n_random > 0 ? (size_t)d->n_random : 1, sizeof(uint64_t));
    w->out = kiln_aligned_zalloc(out_size > 0 ? out_size : 1);
    if (!w->view.arena || !w->view.random_counters || !w->out) {
      worker_free(w);
      break;
    }
  }
  if (n < count) {
    for (int i = 0; i < n; i++) worker_free(ws[i]);
    free(g);
    return kiln_fail(inst, KILN_ERROR, "spawn: out of memory for %d threads", (int)count);
  }

  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < n; i++) {
    worker *w = ws[i];
    uint64_t seq = ++c->next_seq;
    for (int32_t k = 0; k < d->n_random; k++)
      w->view.random_counters[k] = inst->random_counters[k] + (seq << KILN_THREAD_STREAM_SHIFT);
  }
  g->remaining = n;
  pthread_mutex_unlock(&c->mu);

  int started = 0, err = 0;
  for (int i = 0; i < n; i++) {
    worker *w = ws[i];
    pthread_mutex_lock(&c->mu);
    c->live++;
    w->started = 1;
    w->next = c->workers;
    c->workers = w;
    pthread_mutex_unlock(&c->mu);
    err = pthread_create(&w->tid, NULL, worker_main, w);
    if (err != 0) {
      /* The threads already running keep going; the group closes its queue
       * when they end.  This one and the rest are accounted as ended. */
      pthread_mutex_lock(&c->mu);
      int not_started = n - i;
      c->live--;
      w->started = 0; /* join reclaims it without pthread_join */
      w->done = 1;
      for (int k = i + 1; k < n; k++) worker_free(ws[k]);
      g->remaining -= not_started;
      int last = g->remaining == 0;
      pthread_mutex_unlock(&c->mu);
      if (last) {
        if (g->close_queue >= 0) kiln_queue_close(inst->queues[g->close_queue], 0);
        free(g);
      }
      break;
    }
    started++;
  }
  if (err != 0)
    return kiln_fail(inst, KILN_ERROR, "spawn: could not start thread %d of %d: %s", started + 1,
                     (int)count, strerror(err));
  return KILN_OK;
}

int kiln_rt_request_stop(kiln_inst *inst) {
  struct kiln_coord *c = coord_get(inst);
  if (!c) return kiln_fail(inst, KILN_ERROR, "stop: out of memory");
  atomic_store_explicit(&c->stop, 1, memory_order_release);
  return KILN_OK;
}

int32_t kiln_rt_should_stop(kiln_inst *inst) {
  struct kiln_coord *c = coord_of(inst);
  return c ? atomic_load_explicit(&c->stop, memory_order_acquire) != 0 : 0;
}

/* pthread_joins and frees the threads that are done; caller holds c->mu. */
static void reclaim_done(struct kiln_coord *c) {
  for (worker **p = &c->workers; *p;) {
    worker *w = *p;
    if (!w->done) {
      p = &w->next;
      continue;
    }
    *p = w->next;
    if (w->started) pthread_join(w->tid, NULL); /* it is past its last lock: returns at once */
    worker_free(w);
  }
}

static void deadline_after(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void fmt_grace(char *buf, size_t cap, int64_t ms) {
  if (ms % 1000 == 0) snprintf(buf, cap, "%lld s", (long long)(ms / 1000));
  else snprintf(buf, cap, "%lld ms", (long long)ms);
}

int kiln_rt_join(kiln_inst *inst, int64_t grace_ms) {
  struct kiln_coord *c = coord_of(inst);
  if (!c) return KILN_OK; /* nothing was ever spawned */
  if (grace_ms < 0) grace_ms = 0;
  atomic_store_explicit(&c->stop, 1, memory_order_release);
  struct timespec deadline;
  deadline_after(&deadline, grace_ms);
  pthread_mutex_lock(&c->mu);
  while (c->live > 0) {
    int rc = pthread_cond_timedwait(&c->changed, &c->mu, &deadline);
    if (rc == ETIMEDOUT) break;
  }
  reclaim_done(c);
  int live = c->live;
  int status = c->err_status;
  char msg[sizeof c->err_msg];
  memcpy(msg, c->err_msg, sizeof msg);
  if (live == 0) {
    /* Every thread has ended: the coordinator starts afresh, so a later
     * spawn and loop run normally (TF's join followed by clear_stop). */
    c->err_status = 0;
    c->err_msg[0] = '\0';
    atomic_store(&c->stop, 0);
  }
  pthread_mutex_unlock(&c->mu);
  char grace[32];
  fmt_grace(grace, sizeof grace, grace_ms);
  if (status != KILN_OK) {
    if (live > 0)
      return kiln_fail(inst, status, "%s (and %d thread%s did not stop within the %s grace period)",
                       msg, live, live == 1 ? "" : "s", grace);
    return kiln_fail(inst, status, "%s", msg);
  }
  if (live > 0)
    return kiln_fail(inst, KILN_ERROR,
                     "%d thread%s did not stop within the %s grace period; close %s queue%s with "
                     "cancel_pending",
                     live, live == 1 ? "" : "s", grace, live == 1 ? "its" : "their",
                     live == 1 ? "" : "s");
  return KILN_OK;
}

void kiln_coord_destroy(kiln_inst *inst) {
  struct kiln_coord *c = coord_of(inst);
  if (!c) return;
  atomic_store(&c->stop, 1);
  pthread_mutex_lock(&c->mu);
  int live = c->live;
  pthread_mutex_unlock(&c->mu);
  /* Wake whatever is blocked in a queue: the queues are about to be freed.
   * A run in progress finishes (its enqueues now fail) and the loop stops. */
  if (live > 0)
    for (int32_t i = 0; i < inst->desc->n_queues; i++) kiln_queue_close(inst->queues[i], 1);
  pthread_mutex_lock(&c->mu);
  while (c->live > 0) pthread_cond_wait(&c->changed, &c->mu);
  reclaim_done(c);
  pthread_mutex_unlock(&c->mu);
  pthread_cond_destroy(&c->changed);
  pthread_mutex_destroy(&c->mu);
  free(c);
  inst->services->coord = NULL;
}
