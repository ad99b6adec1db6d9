/* test_queue.c — the runtime FIFO: ordering, blocking at capacity, batches,
 * and the close() semantics that TF input pipelines rely on to stop; stress
 * runs of many producers and consumers; the random_shuffle queue.  All
 * tests are in suite "queue" so the Makefile's queue filter runs them under TSan. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kilnrt.h"
#include "rt_internal.h"

/* Two components per element: an i32 and an f64, to catch stride mix-ups. */
static const int64_t qt_bytes[2] = {4, 8};

static void qt_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int qt_enqueue1(kiln_queue *q, int32_t i, double d) {
  void *comps[2] = {&i, &d};
  return kiln_queue_enqueue(q, comps, 1);
}

static int qt_dequeue1(kiln_queue *q, int32_t *i, double *d) {
  void *out[2] = {i, d};
  return kiln_queue_dequeue(q, out, 1);
}

Test(queue, fifo_order) {
  kiln_queue *q = kiln_queue_new(10, 2, qt_bytes);
  cr_assert_not_null(q);
  for (int i = 0; i < 5; i++) cr_assert_eq(qt_enqueue1(q, i * 10, i + 0.5), KILN_OK);
  cr_assert_eq(kiln_queue_size(q), 5);
  for (int i = 0; i < 5; i++) {
    int32_t a = -1;
    double b = -1;
    cr_assert_eq(qt_dequeue1(q, &a, &b), KILN_OK);
    cr_assert_eq(a, i * 10);
    cr_assert_float_eq(b, i + 0.5, 1e-12);
  }
  cr_assert_eq(kiln_queue_size(q), 0);
  kiln_queue_free(q);
}

Test(queue, wraps_around_ring) {
  /* Interleaving keeps the head moving so the ring index wraps many times. */
  kiln_queue *q = kiln_queue_new(3, 2, qt_bytes);
  int32_t next_out = 0;
  for (int32_t i = 0; i < 100; i++) {
    cr_assert_eq(qt_enqueue1(q, i, -i), KILN_OK);
    if (kiln_queue_size(q) == 3) {
      int32_t a;
      double b;
      cr_assert_eq(qt_dequeue1(q, &a, &b), KILN_OK);
      cr_assert_eq(a, next_out);
      cr_assert_float_eq(b, -next_out, 0);
      next_out++;
    }
  }
  /* Whenever it reached 3 one was taken out, so 2 remain: 98 and 99. */
  cr_assert_eq(next_out, 98);
  cr_assert_eq(kiln_queue_size(q), 2);
  kiln_queue_free(q);
}

Test(queue, unbounded_grows) {
  kiln_queue *q = kiln_queue_new(-1, 2, qt_bytes);
  for (int32_t i = 0; i < 1000; i++) cr_assert_eq(qt_enqueue1(q, i, i * 2.0), KILN_OK);
  cr_assert_eq(kiln_queue_size(q), 1000);
  for (int32_t i = 0; i < 1000; i++) {
    int32_t a;
    double b;
    cr_assert_eq(qt_dequeue1(q, &a, &b), KILN_OK);
    cr_assert_eq(a, i);
    cr_assert_float_eq(b, i * 2.0, 0);
  }
  kiln_queue_free(q);
}

typedef struct {
  kiln_queue *q;
  int64_t n;
  int32_t base;
  int status;
  int done; /* set by the thread when its call returned */
  pthread_mutex_t mu;
} qt_job;

static void qt_job_init(qt_job *j, kiln_queue *q, int64_t n, int32_t base) {
  memset(j, 0, sizeof *j);
  j->q = q, j->n = n, j->base = base;
  pthread_mutex_init(&j->mu, NULL);
}

static int qt_job_done(qt_job *j) {
  pthread_mutex_lock(&j->mu);
  int d = j->done;
  pthread_mutex_unlock(&j->mu);
  return d;
}

static void qt_job_finish(qt_job *j, int status) {
  pthread_mutex_lock(&j->mu);
  j->status = status;
  j->done = 1;
  pthread_mutex_unlock(&j->mu);
}

/* Enqueues n elements base, base+1, ... in one enqueue_many call. */
static void *qt_producer(void *arg) {
  qt_job *j = arg;
  int32_t *a = calloc((size_t)j->n + 1, sizeof *a);
  double *b = calloc((size_t)j->n + 1, sizeof *b);
  for (int64_t i = 0; i < j->n; i++) a[i] = j->base + (int32_t)i, b[i] = (double)(j->base + i);
  void *comps[2] = {a, b};
  int st = kiln_queue_enqueue(j->q, comps, j->n);
  free(a);
  free(b);
  qt_job_finish(j, st);
  return NULL;
}

static void *qt_consumer(void *arg) {
  qt_job *j = arg;
  int32_t a[8];
  double b[8];
  void *out[2] = {a, b};
  qt_job_finish(j, kiln_queue_dequeue(j->q, out, j->n));
  return NULL;
}

Test(queue, enqueue_blocks_at_capacity) {
  kiln_queue *q = kiln_queue_new(2, 2, qt_bytes);
  qt_job j;
  qt_job_init(&j, q, 5, 100);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, qt_producer, &j), 0);
  /* The producer fills the queue and then must stay blocked. */
  for (int i = 0; i < 200 && kiln_queue_size(q) < 2; i++) qt_sleep_ms(1);
  qt_sleep_ms(30);
  cr_assert_eq(kiln_queue_size(q), 2);
  cr_assert_eq(qt_job_done(&j), 0, "enqueue_many returned although the queue was full");
  /* Draining lets the rest through, in order. */
  for (int32_t i = 0; i < 5; i++) {
    int32_t a;
    double b;
    cr_assert_eq(qt_dequeue1(q, &a, &b), KILN_OK);
    cr_assert_eq(a, 100 + i);
    cr_assert_float_eq(b, 100.0 + i, 0);
  }
  pthread_join(t, NULL);
  cr_assert_eq(j.status, KILN_OK);
  cr_assert_eq(kiln_queue_size(q), 0);
  pthread_mutex_destroy(&j.mu);
  kiln_queue_free(q);
}

Test(queue, enqueue_many_dequeue_many_stack) {
  kiln_queue *q = kiln_queue_new(10, 2, qt_bytes);
  int32_t a[4] = {1, 2, 3, 4};
  double b[4] = {0.5, 1.5, 2.5, 3.5};
  void *comps[2] = {a, b};
  cr_assert_eq(kiln_queue_enqueue(q, comps, 4), KILN_OK);
  cr_assert_eq(kiln_queue_size(q), 4);
  int32_t oa[3] = {0};
  double ob[3] = {0};
  void *out[2] = {oa, ob};
  cr_assert_eq(kiln_queue_dequeue(q, out, 3), KILN_OK);
  cr_assert_eq(oa[0], 1);
  cr_assert_eq(oa[1], 2);
  cr_assert_eq(oa[2], 3);
  cr_assert_float_eq(ob[0], 0.5, 0);
  cr_assert_float_eq(ob[2], 2.5, 0);
  cr_assert_eq(kiln_queue_size(q), 1);
  kiln_queue_free(q);
}

Test(queue, dequeue_many_waits_for_enough) {
  kiln_queue *q = kiln_queue_new(10, 2, qt_bytes);
  qt_job c;
  qt_job_init(&c, q, 3, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, qt_consumer, &c), 0);
  cr_assert_eq(qt_enqueue1(q, 1, 1), KILN_OK);
  cr_assert_eq(qt_enqueue1(q, 2, 2), KILN_OK);
  qt_sleep_ms(30);
  cr_assert_eq(qt_job_done(&c), 0, "dequeue_many(3) returned with only 2 elements queued");
  cr_assert_eq(qt_enqueue1(q, 3, 3), KILN_OK);
  pthread_join(t, NULL);
  cr_assert_eq(c.status, KILN_OK);
  cr_assert_eq(kiln_queue_size(q), 0);
  pthread_mutex_destroy(&c.mu);
  kiln_queue_free(q);
}

Test(queue, close_wakes_blocked_dequeuer) {
  kiln_queue *q = kiln_queue_new(4, 2, qt_bytes);
  qt_job c;
  qt_job_init(&c, q, 1, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, qt_consumer, &c), 0);
  qt_sleep_ms(30);
  cr_assert_eq(qt_job_done(&c), 0, "dequeue on an empty open queue returned");
  kiln_queue_close(q, 0);
  pthread_join(t, NULL);
  cr_assert_eq(c.status, KILN_OUT_OF_RANGE);
  kiln_queue_free(q);
  pthread_mutex_destroy(&c.mu);
}

Test(queue, close_cancel_pending_wakes_blocked_enqueuer) {
  kiln_queue *q = kiln_queue_new(1, 2, qt_bytes);
  qt_job p;
  qt_job_init(&p, q, 3, 7);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, qt_producer, &p), 0);
  for (int i = 0; i < 200 && kiln_queue_size(q) < 1; i++) qt_sleep_ms(1);
  qt_sleep_ms(30);
  cr_assert_eq(qt_job_done(&p), 0, "enqueue into a full queue returned");
  kiln_queue_close(q, 1);
  pthread_join(t, NULL);
  cr_assert_eq(p.status, KILN_CANCELLED);
  /* What got in before the close is still there to drain. */
  int32_t a;
  double b;
  cr_assert_eq(qt_dequeue1(q, &a, &b), KILN_OK);
  cr_assert_eq(a, 7);
  cr_assert_eq(qt_dequeue1(q, &a, &b), KILN_OUT_OF_RANGE);
  kiln_queue_free(q);
  pthread_mutex_destroy(&p.mu);
}

Test(queue, close_semantics_single_thread) {
  kiln_queue *q = kiln_queue_new(4, 2, qt_bytes);
  cr_assert_eq(qt_enqueue1(q, 1, 1), KILN_OK);
  cr_assert_eq(qt_enqueue1(q, 2, 2), KILN_OK);
  kiln_queue_close(q, 0);
  cr_assert_eq(qt_enqueue1(q, 3, 3), KILN_ERROR);
  /* dequeue_many of more than remains consumes nothing... */
  int32_t oa[3];
  double ob[3];
  void *out[2] = {oa, ob};
  cr_assert_eq(kiln_queue_dequeue(q, out, 3), KILN_OUT_OF_RANGE);
  cr_assert_eq(kiln_queue_size(q), 2);
  /* ...so the remainder still drains. */
  cr_assert_eq(kiln_queue_dequeue(q, out, 2), KILN_OK);
  cr_assert_eq(oa[0], 1);
  cr_assert_eq(oa[1], 2);
  cr_assert_eq(kiln_queue_dequeue(q, out, 1), KILN_OUT_OF_RANGE);
  kiln_queue_free(q);
}

Test(queue, many_producers_consumers_sum) {
  enum { PRODUCERS = 4, PER = 500 };
  kiln_queue *q = kiln_queue_new(8, 2, qt_bytes);
  qt_job jobs[PRODUCERS];
  pthread_t t[PRODUCERS];
  for (int i = 0; i < PRODUCERS; i++) {
    qt_job_init(&jobs[i], q, PER, i * PER);
    cr_assert_eq(pthread_create(&t[i], NULL, qt_producer, &jobs[i]), 0);
  }
  /* Each producer's values must arrive in its own order, and all must arrive. */
  int32_t last[PRODUCERS];
  for (int i = 0; i < PRODUCERS; i++) last[i] = -1;
  long long sum = 0;
  for (int k = 0; k < PRODUCERS * PER; k++) {
    int32_t a;
    double b;
    cr_assert_eq(qt_dequeue1(q, &a, &b), KILN_OK);
    cr_assert_float_eq(b, (double)a, 0);
    int who = a / PER;
    cr_assert(a > last[who], "producer %d out of order: %d after %d", who, a, last[who]);
    last[who] = a;
    sum += a;
  }
  for (int i = 0; i < PRODUCERS; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(jobs[i].status, KILN_OK);
    pthread_mutex_destroy(&jobs[i].mu);
  }
  long long n = PRODUCERS * PER;
  cr_assert_eq(sum, n * (n - 1) / 2);
  kiln_queue_free(q);
}

Test(queue, enqueue_many_batches_stay_contiguous) {
  /* Two batches pushed through a queue smaller than either: TF serves
   * enqueuers in order, so each batch arrives unbroken. */
  enum { BATCH = 50 };
  kiln_queue *q = kiln_queue_new(2, 2, qt_bytes);
  qt_job jobs[2];
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    qt_job_init(&jobs[i], q, BATCH, 1000 * (i + 1));
    cr_assert_eq(pthread_create(&t[i], NULL, qt_producer, &jobs[i]), 0);
  }
  for (int b = 0; b < 2; b++) {
    int32_t first = -1;
    for (int k = 0; k < BATCH; k++) {
      int32_t a;
      double d;
      cr_assert_eq(qt_dequeue1(q, &a, &d), KILN_OK);
      if (k == 0) first = a;
      cr_assert(first == 1000 || first == 2000, "batch starts at %d", first);
      cr_assert_eq(a, first + k, "element %d of a batch is %d, expected %d", k, a, first + k);
    }
  }
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(jobs[i].status, KILN_OK);
    pthread_mutex_destroy(&jobs[i].mu);
  }
  kiln_queue_free(q);
}

/* The kiln_rt_* wrappers: lookup by id, size, and messages naming the queue. */
static const int64_t qt_dims_none[1] = {0};
static const kiln_tensor_desc qt_comp[1] = {{"x", KILN_I32, 0, qt_dims_none, 0, 4}};
static const kiln_queue_desc qt_queues[1] = {{"q", 3, 1, 0, qt_comp, 0, 0}};
static const kiln_module_desc qt_module = {.name = "qm", .n_queues = 1, .queues = qt_queues};

Test(queue, rt_wrappers_and_messages) {
  int st = -1;
  kiln_inst *inst = kiln_inst_create(&qt_module, &st);
  cr_assert_not_null(inst);
  cr_assert_eq(st, KILN_OK);
  int32_t v[2] = {5, 6};
  void *comps[1] = {v};
  cr_assert_eq(kiln_rt_enqueue_many(inst, 0, comps, 2), KILN_OK);
  int32_t size = -1;
  cr_assert_eq(kiln_rt_queue_size(inst, 0, &size), KILN_OK);
  cr_assert_eq(size, 2);
  int32_t got[2] = {0, 0};
  void *out[1] = {got};
  cr_assert_eq(kiln_rt_dequeue(inst, 0, out), KILN_OK);
  cr_assert_eq(got[0], 5);
  cr_assert_eq(kiln_rt_queue_close(inst, 0, 0), KILN_OK);
  cr_assert_eq(kiln_rt_enqueue(inst, 0, comps), KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(inst), "queue 'q' is closed");
  cr_assert_eq(kiln_rt_dequeue_many(inst, 0, out, 2), KILN_OUT_OF_RANGE);
  cr_assert(strstr(kiln_inst_error(inst), "queue 'q' is closed") != NULL, "%s",
            kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_dequeue(inst, 0, out), KILN_OK);
  cr_assert_eq(got[0], 6);
  cr_assert_eq(kiln_rt_dequeue(inst, 0, out), KILN_OUT_OF_RANGE);
  cr_assert_str_eq(kiln_inst_error(inst), "queue 'q' is closed and empty (OutOfRange)");
  cr_assert_eq(kiln_rt_dequeue(inst, 0, NULL), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "no component buffers") != NULL);
  cr_assert_eq(kiln_rt_dequeue(inst, 7, out), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "no queue with id 7") != NULL);
  kiln_inst_destroy(inst);
}

/* ---- stress: many producers and consumers through a small queue ----------- */

/* -DQT_STRESS_SCALE=K runs the stress tests on 1/K of the elements. */
#ifndef QT_STRESS_SCALE
#define QT_STRESS_SCALE 1
#endif

enum { QS_PRODUCERS = 8, QS_CONSUMERS = 2, QS_TOTAL = 1000000 / QT_STRESS_SCALE, QS_PER = QS_TOTAL / QS_PRODUCERS };

typedef struct {
  kiln_queue *q;
  int32_t base;    /* producer: its first id */
  int64_t limit;   /* producer: how many it tries */
  int64_t ok;      /* producer: enqueues that succeeded (its ids base .. base+ok-1) */
  int last_status; /* producer: the status that ended it; consumer: the same */
  uint8_t *counts; /* consumer: how often it saw each id (its own array) */
  int64_t got;     /* consumer: elements dequeued */
  int bad;         /* consumer: a payload or an order was wrong */
  atomic_llong *total; /* consumed so far, all consumers together */
} qs_job;

static void *qs_produce(void *arg) {
  qs_job *j = arg;
  j->last_status = KILN_OK;
  for (int64_t i = 0; i < j->limit; i++) {
    int st = qt_enqueue1(j->q, j->base + (int32_t)i, (double)(j->base + i) * 0.5);
    if (st != KILN_OK) {
      j->last_status = st;
      break;
    }
    j->ok++;
  }
  return NULL;
}

/* Dequeues until OutOfRange; checks each payload and that every producer's
 * ids arrive in increasing order (FIFO per producer). */
static void *qs_consume(void *arg) {
  qs_job *j = arg;
  int32_t last[QS_PRODUCERS];
  for (int i = 0; i < QS_PRODUCERS; i++) last[i] = -1;
  for (;;) {
    int32_t a;
    double b;
    int st = qt_dequeue1(j->q, &a, &b);
    if (st != KILN_OK) {
      j->last_status = st;
      break;
    }
    if (a < 0 || a >= QS_TOTAL || b != a * 0.5 || a <= last[a / QS_PER]) j->bad = 1;
    else {
      last[a / QS_PER] = a;
      if (j->counts[a] < 255) j->counts[a]++;
    }
    j->got++;
    if (j->total) atomic_fetch_add_explicit(j->total, 1, memory_order_relaxed);
  }
  return NULL;
}

static double qs_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 8 producers, 2 consumers, capacity 16; with close_at >= 0 the queue is
 * closed with cancel_pending once close_at elements were consumed. */
static void qs_run(int64_t close_at, const char *what) {
  kiln_queue *q = kiln_queue_new(16, 2, qt_bytes);
  cr_assert_not_null(q);
  atomic_llong total;
  atomic_init(&total, 0);
  qs_job prod[QS_PRODUCERS], cons[QS_CONSUMERS];
  pthread_t tp[QS_PRODUCERS], tc[QS_CONSUMERS];
  memset(prod, 0, sizeof prod);
  memset(cons, 0, sizeof cons);
  double t0 = qs_now();
  for (int i = 0; i < QS_CONSUMERS; i++) {
    cons[i].q = q;
    cons[i].counts = calloc(QS_TOTAL, 1);
    cons[i].total = &total;
    cr_assert_not_null(cons[i].counts);
    cr_assert_eq(pthread_create(&tc[i], NULL, qs_consume, &cons[i]), 0);
  }
  for (int i = 0; i < QS_PRODUCERS; i++) {
    prod[i].q = q;
    prod[i].base = i * QS_PER;
    prod[i].limit = QS_PER;
    cr_assert_eq(pthread_create(&tp[i], NULL, qs_produce, &prod[i]), 0);
  }
  if (close_at >= 0) {
    while (atomic_load(&total) < close_at) sched_yield();
    kiln_queue_close(q, 1);
  }
  for (int i = 0; i < QS_PRODUCERS; i++) cr_assert_eq(pthread_join(tp[i], NULL), 0);
  if (close_at < 0) kiln_queue_close(q, 0); /* the consumers drain, then OutOfRange */
  for (int i = 0; i < QS_CONSUMERS; i++) cr_assert_eq(pthread_join(tc[i], NULL), 0);
  double dt = qs_now() - t0;

  /* Exactly the ids that were enqueued came out, each once. */
  int64_t produced = 0, consumed = 0;
  for (int i = 0; i < QS_PRODUCERS; i++) {
    produced += prod[i].ok;
    if (close_at < 0) {
      cr_assert_eq(prod[i].last_status, KILN_OK);
      cr_assert_eq(prod[i].ok, QS_PER);
    } else {
      /* a blocked enqueue was cancelled, a later one found the queue closed */
      cr_assert(prod[i].ok == QS_PER || prod[i].last_status == KILN_CANCELLED ||
                    prod[i].last_status == KILN_ERROR,
                "producer %d ended with %d after %lld", i, prod[i].last_status, (long long)prod[i].ok);
    }
  }
  for (int i = 0; i < QS_CONSUMERS; i++) {
    cr_assert_eq(cons[i].last_status, KILN_OUT_OF_RANGE, "consumer %d ended with %d", i, cons[i].last_status);
    cr_assert_eq(cons[i].bad, 0, "consumer %d saw a wrong payload or order", i);
    consumed += cons[i].got;
  }
  cr_assert_eq(consumed, produced, "%lld enqueued, %lld dequeued", (long long)produced, (long long)consumed);
  for (int p = 0; p < QS_PRODUCERS; p++)
    for (int64_t k = 0; k < QS_PER; k++) {
      int32_t id = p * QS_PER + (int32_t)k;
      int seen = cons[0].counts[id] + cons[1].counts[id];
      cr_assert_eq(seen, k < prod[p].ok ? 1 : 0, "id %d seen %d times", id, seen);
    }
  if (close_at >= 0) cr_assert(produced < QS_TOTAL, "the close came after every element");
  fprintf(stderr, "queue stress (%s): %lld elements in %.3f s, %.0f elements/s\n", what,
          (long long)consumed, dt, (double)consumed / dt);
  for (int i = 0; i < QS_CONSUMERS; i++) free(cons[i].counts);
  kiln_queue_free(q);
}

Test(queue, stress_8_producers_2_consumers) { qs_run(-1, "8 producers, 2 consumers, capacity 16"); }

Test(queue, stress_close_midway) { qs_run(QS_TOTAL / 3, "closed with cancel_pending a third of the way"); }

/* ---- random_shuffle -------------------------------------------------------- */

static const int64_t qt_i32[1] = {4};

static kiln_queue *qt_shuffle(int64_t cap, int64_t min_after, uint64_t seed) {
  kiln_queue *q = kiln_queue_new_shuffle(cap, 1, qt_i32, min_after, seed);
  cr_assert_not_null(q);
  return q;
}

static int qt_put(kiln_queue *q, int32_t v) {
  void *c[1] = {&v};
  return kiln_queue_enqueue(q, c, 1);
}

static int qt_take(kiln_queue *q, int32_t *v, int64_t n) {
  void *o[1] = {v};
  return kiln_queue_dequeue(q, o, n);
}

/* Fills 0..n-1, closes, drains one at a time into out. */
static void qt_shuffle_order(uint64_t seed, int32_t *out, int n) {
  kiln_queue *q = qt_shuffle(100, 20, seed);
  for (int32_t i = 0; i < n; i++) cr_assert_eq(qt_put(q, i), KILN_OK);
  kiln_queue_close(q, 0);
  for (int i = 0; i < n; i++) cr_assert_eq(qt_take(q, &out[i], 1), KILN_OK);
  int32_t x;
  cr_assert_eq(qt_take(q, &x, 1), KILN_OUT_OF_RANGE);
  kiln_queue_free(q);
}

Test(queue, shuffle_is_a_seeded_permutation) {
  int32_t a[100], b[100], c[100];
  qt_shuffle_order(3, a, 100);
  qt_shuffle_order(3, b, 100);
  qt_shuffle_order(4, c, 100);
  uint8_t seen[100] = {0};
  int in_place = 0, same_as_other_seed = 0;
  for (int i = 0; i < 100; i++) {
    cr_assert(a[i] >= 0 && a[i] < 100);
    cr_assert_eq(seen[a[i]], 0, "%d twice", a[i]);
    seen[a[i]] = 1;
    cr_assert_eq(a[i], b[i], "same seed, different order at %d", i);
    in_place += a[i] == i;
    same_as_other_seed += a[i] == c[i];
  }
  cr_assert(in_place < 10, "%d of 100 elements kept their place", in_place);
  cr_assert(same_as_other_seed < 10, "seeds 3 and 4 agree on %d places", same_as_other_seed);
}

Test(queue, shuffle_first_pick_is_uniform) {
  /* 20000 rounds of 10 elements: which one comes out first.  Expected 2000
   * each, standard deviation 42; the bound is 6 of those. */
  kiln_queue *q = qt_shuffle(10, 0, 12345);
  int first[10] = {0};
  for (int r = 0; r < 20000; r++) {
    for (int32_t i = 0; i < 10; i++) cr_assert_eq(qt_put(q, i), KILN_OK);
    int32_t got[10];
    cr_assert_eq(qt_take(q, got, 10), KILN_OK);
    first[got[0]]++;
  }
  for (int i = 0; i < 10; i++) cr_assert(first[i] > 2000 - 255 && first[i] < 2000 + 255, "%d first %d times", i, first[i]);
  kiln_queue_free(q);
}

typedef struct {
  kiln_queue *q;
  int64_t n;
  int32_t got[16];
  int status;
  atomic_int done;
} qt_taker;

static void *qt_take_thread(void *arg) {
  qt_taker *t = arg;
  t->status = qt_take(t->q, t->got, t->n);
  atomic_store(&t->done, 1);
  return NULL;
}

Test(queue, shuffle_keeps_min_after_dequeue) {
  kiln_queue *q = qt_shuffle(10, 5, 1);
  for (int32_t i = 0; i < 6; i++) cr_assert_eq(qt_put(q, i), KILN_OK);
  /* 6 buffered, 5 must stay: a dequeue of 2 waits for a 7th */
  qt_taker t = {.q = q, .n = 2};
  atomic_init(&t.done, 0);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, qt_take_thread, &t), 0);
  qt_sleep_ms(30);
  cr_assert_eq(atomic_load(&t.done), 0, "dequeue_many(2) left fewer than min_after_dequeue");
  cr_assert_eq(qt_put(q, 6), KILN_OK);
  pthread_join(th, NULL);
  cr_assert_eq(t.status, KILN_OK);
  cr_assert_neq(t.got[0], t.got[1]);
  cr_assert_eq(kiln_queue_size(q), 5);
  /* once closed, the rest drains below min_after_dequeue, still at random */
  kiln_queue_close(q, 0);
  int32_t rest[8];
  cr_assert_eq(qt_take(q, rest, 6), KILN_OUT_OF_RANGE, "dequeue_many of more than remain");
  cr_assert_eq(kiln_queue_size(q), 5, "a failed dequeue_many consumed elements");
  cr_assert_eq(qt_take(q, rest, 5), KILN_OK);
  int sum = t.got[0] + t.got[1];
  for (int i = 0; i < 5; i++) sum += rest[i];
  cr_assert_eq(sum, 0 + 1 + 2 + 3 + 4 + 5 + 6);
  cr_assert_eq(qt_take(q, rest, 1), KILN_OUT_OF_RANGE);
  kiln_queue_free(q);
}

Test(queue, shuffle_close_wakes_waiting_dequeue) {
  kiln_queue *q = qt_shuffle(10, 5, 1);
  for (int32_t i = 0; i < 3; i++) cr_assert_eq(qt_put(q, i), KILN_OK);
  qt_taker t = {.q = q, .n = 2};
  atomic_init(&t.done, 0);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, qt_take_thread, &t), 0);
  qt_sleep_ms(30);
  cr_assert_eq(atomic_load(&t.done), 0);
  kiln_queue_close(q, 0);
  pthread_join(th, NULL);
  cr_assert_eq(t.status, KILN_OK, "closed with 3 left, a dequeue of 2 succeeds");
  cr_assert_eq(kiln_queue_size(q), 1);
  kiln_queue_free(q);
}

typedef struct {
  kiln_queue *q;
  int32_t from, n;
  int status;
} qt_feeder;

static void *qt_feed_thread(void *arg) {
  qt_feeder *f = arg;
  f->status = KILN_OK;
  for (int32_t i = 0; i < f->n && f->status == KILN_OK; i++) f->status = qt_put(f->q, f->from + i);
  return NULL;
}

Test(queue, shuffle_dequeue_many_beyond_capacity_does_not_deadlock) {
  /* capacity 8, min_after_dequeue 4: a dequeue_many of 6 can never see 10
   * buffered, so it fills piecewise whenever the queue is full */
  kiln_queue *q = qt_shuffle(8, 4, 9);
  qt_feeder f = {q, 0, 20, 0};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, qt_feed_thread, &f), 0);
  int32_t got[16];
  uint8_t seen[20] = {0};
  for (int round = 0; round < 2; round++) {
    cr_assert_eq(qt_take(q, got, 6), KILN_OK);
    for (int i = 0; i < 6; i++) {
      cr_assert(got[i] >= 0 && got[i] < 20);
      cr_assert_eq(seen[got[i]], 0);
      seen[got[i]] = 1;
    }
  }
  pthread_join(th, NULL);
  cr_assert_eq(f.status, KILN_OK);
  cr_assert_eq(kiln_queue_size(q), 8);
  kiln_queue_free(q);
}

typedef struct {
  kiln_queue *q;
  uint8_t *counts; /* its own: how often it saw each value */
  int64_t got;
  int status;
} qt_drain;

/* dequeue_many of 5 until OutOfRange, then single dequeues for the rest */
static void *qt_drain_thread(void *arg) {
  qt_drain *d = arg;
  int32_t v[5];
  int64_t n = 5;
  for (;;) {
    int st = qt_take(d->q, v, n);
    if (st == KILN_OUT_OF_RANGE && n > 1) {
      n = 1;
      continue;
    }
    if (st != KILN_OK) {
      d->status = st;
      return NULL;
    }
    for (int64_t i = 0; i < n; i++) d->counts[v[i]]++;
    d->got += n;
  }
}

Test(queue, stress_shuffle_4_producers_2_consumers) {
  enum { P = 4, PER = 200000 / QT_STRESS_SCALE, N = P * PER };
  kiln_queue *q = qt_shuffle(64, 16, 7);
  qt_feeder f[P];
  qt_drain d[2];
  pthread_t tp[P], tc[2];
  for (int i = 0; i < 2; i++) {
    d[i] = (qt_drain){q, calloc(N, 1), 0, 0};
    cr_assert_not_null(d[i].counts);
    cr_assert_eq(pthread_create(&tc[i], NULL, qt_drain_thread, &d[i]), 0);
  }
  for (int i = 0; i < P; i++) {
    f[i] = (qt_feeder){q, i * PER, PER, 0};
    cr_assert_eq(pthread_create(&tp[i], NULL, qt_feed_thread, &f[i]), 0);
  }
  for (int i = 0; i < P; i++) {
    pthread_join(tp[i], NULL);
    cr_assert_eq(f[i].status, KILN_OK);
  }
  kiln_queue_close(q, 0);
  for (int i = 0; i < 2; i++) {
    pthread_join(tc[i], NULL);
    cr_assert_eq(d[i].status, KILN_OUT_OF_RANGE);
  }
  cr_assert_eq(d[0].got + d[1].got, N);
  for (int32_t v = 0; v < N; v++)
    cr_assert_eq(d[0].counts[v] + d[1].counts[v], 1, "value %d seen %d times", v, d[0].counts[v] + d[1].counts[v]);
  free(d[0].counts);
  free(d[1].counts);
  kiln_queue_free(q);
}

/* A random_shuffle queue declared in a module descriptor (kind 1). */
static const kiln_queue_desc qt_shuffle_queues[1] = {{"sq", 50, 1, 1, qt_comp, 10, 3}};
static const kiln_module_desc qt_shuffle_module = {.name = "sm", .n_queues = 1, .queues = qt_shuffle_queues};

Test(queue, shuffle_from_descriptor) {
  int32_t order[2][40];
  for (int run = 0; run < 2; run++) {
    int st = -1;
    kiln_inst *inst = kiln_inst_create(&qt_shuffle_module, &st);
    cr_assert_not_null(inst);
    cr_assert_eq(st, KILN_OK, "%s", kiln_inst_error(inst));
    int32_t v[40];
    for (int i = 0; i < 40; i++) v[i] = i;
    void *c[1] = {v};
    cr_assert_eq(kiln_rt_enqueue_many(inst, 0, c, 40), KILN_OK);
    /* 40 buffered, 10 must stay: 30 come out while the queue is open */
    void *o[1] = {order[run]};
    cr_assert_eq(kiln_rt_dequeue_many(inst, 0, o, 30), KILN_OK);
    int32_t size = 0;
    cr_assert_eq(kiln_rt_queue_size(inst, 0, &size), KILN_OK);
    cr_assert_eq(size, 10);
    cr_assert_eq(kiln_rt_queue_close(inst, 0, 0), KILN_OK);
    void *o2[1] = {order[run] + 30};
    cr_assert_eq(kiln_rt_dequeue_many(inst, 0, o2, 10), KILN_OK);
    cr_assert_eq(kiln_rt_dequeue(inst, 0, o2), KILN_OUT_OF_RANGE);
    kiln_inst_destroy(inst);
  }
  cr_assert_eq(memcmp(order[0], order[1], sizeof order[0]), 0, "seed 3 gave two orders");
  int sum = 0;
  for (int i = 0; i < 40; i++) sum += order[0][i];
  cr_assert_eq(sum, 39 * 40 / 2);
}
