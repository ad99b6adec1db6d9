/* test_queue.c — the runtime FIFO: ordering, blocking at capacity, batches,
 * and the close() semantics that TF input pipelines rely on to stop.  All
 * tests are in suite "queue" so the Makefile's queue filter runs them under TSan. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kilnrt.h"

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
static const kiln_queue_desc qt_queues[1] = {{"q", 3, 1, 0, qt_comp}};
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
