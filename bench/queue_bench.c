/* queue_bench.c — enqueue+dequeue pairs per second between two threads (one
 * producer, one consumer, each element one f32) through kiln's queue, as
 * generated code calls it (kiln_rt_enqueue / kiln_rt_dequeue on an instance),
 * against a plain ring buffer under one pthread mutex and two condition
 * variables written here, measured in the same run; both of capacity 64.
 * The figure is the best of several repetitions; the ratio is kiln's rate
 * over the plain ring's (target >= 0.8).
 *
 *   queue_bench [PAIRS]      (default 1,000,000 per repetition) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "kilnrt.h"

enum { CAPACITY = 64, REPS = 5 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the baseline: a bounded ring, one mutex, two condition variables ---- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t not_full, not_empty;
  float buf[CAPACITY];
  long head, size;
} ring;

static void ring_put(ring *r, float x) {
  pthread_mutex_lock(&r->mu);
  while (r->size == CAPACITY) pthread_cond_wait(&r->not_full, &r->mu);
  r->buf[(r->head + r->size) % CAPACITY] = x;
  r->size++;
  pthread_cond_signal(&r->not_empty);
  pthread_mutex_unlock(&r->mu);
}

static float ring_get(ring *r) {
  pthread_mutex_lock(&r->mu);
  while (r->size == 0) pthread_cond_wait(&r->not_empty, &r->mu);
  float x = r->buf[r->head];
  r->head = (r->head + 1) % CAPACITY;
  r->size--;
  pthread_cond_signal(&r->not_full);
  pthread_mutex_unlock(&r->mu);
  return x;
}

/* ---- kiln: a one-queue module, as a compiled module would describe it ---- */

static const kiln_tensor_desc comp[1] = {{"x", KILN_F32, 0, NULL, 0, 4}};
static const kiln_queue_desc queues[1] = {{"q", CAPACITY, 1, 0, comp, 0, 0}};
static const kiln_module_desc module = {.name = "queue_bench", .n_queues = 1, .queues = queues};

typedef struct {
  ring *r;
  kiln_inst *inst;
  long n;
  double sum; /* what the consumer saw, so nothing is optimized away */
} job;

static void *ring_producer(void *arg) {
  job *j = arg;
  for (long i = 0; i < j->n; i++) ring_put(j->r, (float)i);
  return NULL;
}

static void *kiln_producer(void *arg) {
  job *j = arg;
  float x;
  void *c[1] = {&x};
  for (long i = 0; i < j->n; i++) {
    x = (float)i;
    if (kiln_rt_enqueue(j->inst, 0, c) != KILN_OK) abort();
  }
  return NULL;
}

/* Seconds for n pairs: a producer thread, this thread consuming. */
static double run_ring(long n, double *sum) {
  ring r = {.head = 0, .size = 0};
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.not_full, NULL);
  pthread_cond_init(&r.not_empty, NULL);
  job j = {&r, NULL, n, 0};
  pthread_t t;
  double t0 = now();
  pthread_create(&t, NULL, ring_producer, &j);
  double s = 0;
  for (long i = 0; i < n; i++) s += ring_get(&r);
  pthread_join(t, NULL);
  double dt = now() - t0;
  pthread_cond_destroy(&r.not_empty);
  pthread_cond_destroy(&r.not_full);
  pthread_mutex_destroy(&r.mu);
  *sum = s;
  return dt;
}

static double run_kiln(long n, double *sum) {
  int st;
  kiln_inst *inst = kiln_inst_create(&module, &st);
  if (!inst || st != KILN_OK) {
    fprintf(stderr, "queue_bench: %s\n", inst ? kiln_inst_error(inst) : "out of memory");
    exit(1);
  }
  job j = {NULL, inst, n, 0};
  pthread_t t;
  float x;
  void *out[1] = {&x};
  double t0 = now();
  pthread_create(&t, NULL, kiln_producer, &j);
  double s = 0;
  for (long i = 0; i < n; i++) {
    if (kiln_rt_dequeue(inst, 0, out) != KILN_OK) abort();
    s += x;
  }
  pthread_join(t, NULL);
  double dt = now() - t0;
  kiln_inst_destroy(inst);
  *sum = s;
  return dt;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  if (n < 1) n = 1;
  double best_ring = 1e30, best_kiln = 1e30, s_ring = 0, s_kiln = 0;
  /* interleaved, so both see the same machine weather */
  for (int r = 0; r < REPS; r++) {
    double a = run_ring(n, &s_ring), b = run_kiln(n, &s_kiln);
    if (a < best_ring) best_ring = a;
    if (b < best_kiln) best_kiln = b;
  }
  if (s_ring != s_kiln) {
    fprintf(stderr, "queue_bench: the two queues delivered different sums (%g, %g)\n", s_ring, s_kiln);
    return 1;
  }
  double ring_rate = (double)n / best_ring, kiln_rate = (double)n / best_kiln;
  printf("queue       %ld enqueue+dequeue pairs of one f32, 1 producer + 1 consumer, capacity %d\n", n,
         CAPACITY);
  printf("            kiln %.2f M pairs/s   mutex+condvar ring %.2f M pairs/s   ratio %.2f (target >= 0.8)\n",
         kiln_rate / 1e6, ring_rate / 1e6, kiln_rate / ring_rate);
  return 0;
}
