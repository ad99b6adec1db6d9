/* test_coord.c — threads under the coordinator (runtime/coord.c): spawned
 * threads run an entry in a loop until a stop; an error in one thread stops
 * the others and reaches join with its message; join's grace period turns a
 * stuck thread into an error instead of a hang, and close ... cancel_pending
 * frees it; a spawn group closes its queue when its last thread ends; every
 * thread runs on its own arena and random streams.  The module descriptor is
 * written by hand, as a compiled module's would be.  All tests are in suite
 * "coord", which `make test-threads` also runs under ThreadSanitizer. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "kilnrt.h"

/* ---- the module ---------------------------------------------------------- */

/* The variable block: counters the entries bump atomically, and slots where
 * each thread reports what it saw. */
typedef struct {
  _Atomic int64_t ticks;   /* runs of `tick` */
  _Atomic int64_t slot;    /* next free report slot */
  _Atomic int64_t bad;     /* a thread saw something it should not have */
  uint64_t counter[8];     /* `rand`: the random counter each thread started from */
  uint32_t drawn[8];       /* `rand`: the first number each thread drew */
} kc_vars;

/* The parent instance's arena, which no thread may use. */
static uint8_t *kc_parent_arena;

static void kc_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double kc_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum { Q_FULL, Q_INDEX, Q_OUT, Q_SINK, N_QUEUES };

/* One run: counts itself, and checks that its arena is its own (it writes
 * its address there, yields, and expects to read it back). */
static int kc_tick(kiln_inst *inst, const void *in, void *out) {
  (void)in, (void)out;
  kc_vars *v = (kc_vars *)inst->vars;
  if (inst->arena == kc_parent_arena || inst->tracing != 0) atomic_store(&v->bad, 1);
  uintptr_t me = (uintptr_t)inst;
  memcpy(inst->arena, &me, sizeof me);
  sched_yield();
  uintptr_t back;
  memcpy(&back, inst->arena, sizeof back);
  if (back != me) return kiln_fail(inst, KILN_ERROR, "arena shared between threads");
  atomic_fetch_add(&v->ticks, 1);
  return KILN_OK;
}

/* Fails once the tick threads have run a while. */
static int kc_boom(kiln_inst *inst, const void *in, void *out) {
  (void)in, (void)out;
  kc_vars *v = (kc_vars *)inst->vars;
  if (atomic_load(&v->ticks) < 50) {
    sched_yield();
    return KILN_OK;
  }
  return kiln_fail(inst, KILN_ERROR, "node 'boom': exploded in a thread");
}

static int kc_oor(kiln_inst *inst, const void *in, void *out) {
  (void)in, (void)out;
  return kiln_fail(inst, KILN_OUT_OF_RANGE, "queue 'x' is closed and empty (OutOfRange)");
}

/* Enqueues 7 into Q_FULL (capacity 1): the second run blocks for good.
 * Counts its runs in `ticks`. */
static int kc_push_full(kiln_inst *inst, const void *in, void *out) {
  (void)in, (void)out;
  atomic_fetch_add(&((kc_vars *)inst->vars)->ticks, 1);
  int32_t x = 7;
  void *c[1] = {&x};
  return kiln_rt_enqueue(inst, Q_FULL, c);
}

/* Enqueues into Q_SINK, which nobody drains. */
static int kc_push_sink(kiln_inst *inst, const void *in, void *out) {
  (void)in, (void)out;
  int32_t x = 1;
  void *c[1] = {&x};
  return kiln_rt_enqueue(inst, Q_SINK, c);
}

/* A reader: one index from Q_INDEX, its square into Q_OUT. */
static int kc_relay(kiln_inst *inst, const void *in, void *out) {
  (void)in;
  int32_t *o = out; /* the entry's out struct: the dequeued value */
  void *d[1] = {o};
  int st = kiln_rt_dequeue(inst, Q_INDEX, d);
  if (st != KILN_OK) return st;
  int32_t sq = o[0] * o[0];
  void *c[1] = {&sq};
  return kiln_rt_enqueue(inst, Q_OUT, c);
}

/* Draws one number from random stream 0 and reports it, once per thread. */
static int kc_rand(kiln_inst *inst, const void *in, void *out) {
  (void)in, (void)out;
  kc_vars *v = (kc_vars *)inst->vars;
  int64_t k = atomic_fetch_add(&v->slot, 1);
  if (k >= 8) return KILN_OUT_OF_RANGE;
  v->counter[k] = inst->random_counters[0];
  int32_t x;
  int st = kiln_rt_random(inst, KILN_I32, 0, 1, &x, 0, 2147483647.0, 42, &inst->random_counters[0]);
  if (st != KILN_OK) return st;
  v->drawn[k] = (uint32_t)x;
  return KILN_OUT_OF_RANGE; /* one run each */
}

enum { E_TICK, E_BOOM, E_OOR, E_PUSH_FULL, E_PUSH_SINK, E_RELAY, E_RAND, N_ENTRIES };

static const int64_t kc_no_dims[1] = {0};
static const kiln_tensor_desc kc_i32[1] = {{"x", KILN_I32, 0, kc_no_dims, 0, 4}};
static const kiln_queue_desc kc_queues[N_QUEUES] = {
    {"full", 1, 1, 0, kc_i32, 0, 0},
    {"index", 4096, 1, 0, kc_i32, 0, 0},
    {"out", 16, 1, 0, kc_i32, 0, 0},
    {"sink", 8, 1, 0, kc_i32, 0, 0},
};
static const kiln_tensor_desc kc_relay_out[1] = {{"i", KILN_I32, 0, kc_no_dims, 0, 4}};
static const kiln_entry_desc kc_entries[N_ENTRIES] = {
    {"tick", kc_tick, 0, 0, NULL, NULL, 0, 0},
    {"boom", kc_boom, 0, 0, NULL, NULL, 0, 0},
    {"oor", kc_oor, 0, 0, NULL, NULL, 0, 0},
    {"push_full", kc_push_full, 0, 0, NULL, NULL, 0, 0},
    {"push_sink", kc_push_sink, 0, 0, NULL, NULL, 0, 0},
    {"relay", kc_relay, 0, 1, NULL, kc_relay_out, 0, 4},
    {"rand", kc_rand, 0, 0, NULL, NULL, 0, 0},
};
static const kiln_module_desc kc_module = {
    .name = "coordm",
    .vars_size = sizeof(kc_vars),
    .arena_size = 64,
    .n_queues = N_QUEUES,
    .n_entries = N_ENTRIES,
    .n_random = 1,
    .queues = kc_queues,
    .entries = kc_entries,
};

static kiln_inst *kc_create(void) {
  int st = -1;
  kiln_inst *inst = kiln_inst_create(&kc_module, &st);
  cr_assert_not_null(inst);
  cr_assert_eq(st, KILN_OK);
  kc_parent_arena = inst->arena;
  return inst;
}

static kc_vars *kc_v(kiln_inst *inst) { return (kc_vars *)inst->vars; }

/* Waits up to 10 s for *p >= n. */
static int kc_wait_at_least(_Atomic int64_t *p, int64_t n) {
  for (int i = 0; i < 10000 && atomic_load(p) < n; i++) kc_sleep_ms(1);
  return atomic_load(p) >= n;
}

/* ---- tests ----------------------------------------------------------------- */

Test(coord, threads_run_until_stop) {
  kiln_inst *inst = kc_create();
  cr_assert_eq(kiln_rt_should_stop(inst), 0);
  cr_assert_eq(kiln_rt_spawn(inst, 3, E_TICK, -1), KILN_OK, "%s", kiln_inst_error(inst));
  cr_assert(kc_wait_at_least(&kc_v(inst)->ticks, 300), "the threads did not run");
  cr_assert_eq(kiln_rt_should_stop(inst), 0);
  cr_assert_eq(kiln_rt_request_stop(inst), KILN_OK);
  cr_assert_neq(kiln_rt_should_stop(inst), 0);
  cr_assert_eq(kiln_rt_join(inst, 5000), KILN_OK, "%s", kiln_inst_error(inst));
  int64_t after = atomic_load(&kc_v(inst)->ticks);
  kc_sleep_ms(20);
  cr_assert_eq(atomic_load(&kc_v(inst)->ticks), after, "a thread ran after join");
  cr_assert_eq(atomic_load(&kc_v(inst)->bad), 0, "a thread ran on the parent's arena or traced");
  /* A finished join leaves the coordinator ready for another round. */
  cr_assert_eq(kiln_rt_should_stop(inst), 0);
  cr_assert_eq(kiln_rt_spawn(inst, 2, E_TICK, -1), KILN_OK);
  cr_assert(kc_wait_at_least(&kc_v(inst)->ticks, after + 100));
  cr_assert_eq(kiln_rt_join(inst, 5000), KILN_OK);
  kiln_inst_destroy(inst);
}

Test(coord, join_without_threads) {
  kiln_inst *inst = kc_create();
  cr_assert_eq(kiln_rt_join(inst, 0), KILN_OK);
  cr_assert_eq(kiln_rt_should_stop(inst), 0);
  kiln_inst_destroy(inst);
}

Test(coord, spawn_checks_its_arguments) {
  kiln_inst *inst = kc_create();
  cr_assert_eq(kiln_rt_spawn(inst, 2, 99, -1), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "no entry with id 99"), "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_spawn(inst, 0, E_TICK, -1), KILN_ERROR);
  cr_assert_eq(kiln_rt_spawn(inst, 1, E_TICK, 17), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "no queue with id 17"), "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_join(inst, 1000), KILN_OK);
  kiln_inst_destroy(inst);
}

Test(coord, error_in_one_thread_reaches_join) {
  kiln_inst *inst = kc_create();
  cr_assert_eq(kiln_rt_spawn(inst, 2, E_TICK, -1), KILN_OK);
  cr_assert_eq(kiln_rt_spawn(inst, 1, E_BOOM, -1), KILN_OK);
  /* stop_on_exception: the failure asks everyone to stop */
  for (int i = 0; i < 10000 && !kiln_rt_should_stop(inst); i++) kc_sleep_ms(1);
  cr_assert_neq(kiln_rt_should_stop(inst), 0, "the failing thread did not request a stop");
  int st = kiln_rt_join(inst, 5000);
  cr_assert_eq(st, KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(inst), "node 'boom': exploded in a thread");
  /* the tick threads stopped too */
  int64_t after = atomic_load(&kc_v(inst)->ticks);
  kc_sleep_ms(20);
  cr_assert_eq(atomic_load(&kc_v(inst)->ticks), after);
  /* the error was reported once: the next round starts clean */
  cr_assert_eq(kiln_rt_join(inst, 100), KILN_OK);
  kiln_inst_destroy(inst);
}

Test(coord, out_of_range_ends_quietly_and_closes_the_group_queue) {
  kiln_inst *inst = kc_create();
  cr_assert_eq(kiln_rt_spawn(inst, 3, E_OOR, Q_OUT), KILN_OK);
  /* the group's last thread closes Q_OUT: a dequeue wakes with OutOfRange */
  int32_t x;
  void *d[1] = {&x};
  cr_assert_eq(kiln_rt_dequeue(inst, Q_OUT, d), KILN_OUT_OF_RANGE);
  cr_assert_eq(kiln_rt_join(inst, 5000), KILN_OK, "%s", kiln_inst_error(inst));
  kiln_inst_destroy(inst);
}

Test(coord, join_grace_period_then_cancel_pending) {
  kiln_inst *inst = kc_create();
  /* Q_FULL holds one element and nobody drains it: both threads get stuck
   * in an enqueue, where request_stop cannot reach them (as in TF). */
  cr_assert_eq(kiln_rt_spawn(inst, 2, E_PUSH_FULL, -1), KILN_OK);
  /* three runs started: one filled the queue, so each thread is in a run
   * that cannot finish (join's stop only acts between runs) */
  cr_assert(kc_wait_at_least(&kc_v(inst)->ticks, 3));
  int32_t size = 0;
  cr_assert_eq(kiln_rt_queue_size(inst, Q_FULL, &size), KILN_OK);
  cr_assert_eq(size, 1);
  double t0 = kc_now();
  int st = kiln_rt_join(inst, 200);
  double dt = kc_now() - t0;
  cr_assert_eq(st, KILN_ERROR);
  cr_assert(dt >= 0.19 && dt < 5.0, "join took %.3f s with a 200 ms grace period", dt);
  cr_assert_str_eq(kiln_inst_error(inst),
                   "2 threads did not stop within the 200 ms grace period; close their queues "
                   "with cancel_pending");
  cr_assert_neq(kiln_rt_should_stop(inst), 0);
  /* what the TF notes do: close(cancel_pending_enqueues=True), then join */
  cr_assert_eq(kiln_rt_queue_close(inst, Q_FULL, 1), KILN_OK);
  cr_assert_eq(kiln_rt_join(inst, 5000), KILN_OK, "%s", kiln_inst_error(inst));
  kiln_inst_destroy(inst);
}

Test(coord, enqueue_into_closed_queue_ends_quietly) {
  kiln_inst *inst = kc_create();
  cr_assert_eq(kiln_rt_spawn(inst, 3, E_PUSH_SINK, -1), KILN_OK);
  int32_t size = 0;
  for (int i = 0; i < 10000 && size < 8; i++) {
    kc_sleep_ms(1);
    kiln_rt_queue_size(inst, Q_SINK, &size);
  }
  cr_assert_eq(size, 8);
  /* closed without cancel_pending: the blocked enqueues fail and the threads'
   * next ones find the queue closed (TF's CancelledError): not an error */
  cr_assert_eq(kiln_rt_queue_close(inst, Q_SINK, 0), KILN_OK);
  cr_assert_eq(kiln_rt_join(inst, 5000), KILN_OK, "%s", kiln_inst_error(inst));
  kiln_inst_destroy(inst);
}

Test(coord, pipeline_of_readers) {
  enum { N = 3000 };
  kiln_inst *inst = kc_create();
  for (int32_t i = 0; i < N; i++) {
    void *c[1] = {&i};
    cr_assert_eq(kiln_rt_enqueue(inst, Q_INDEX, c), KILN_OK);
  }
  cr_assert_eq(kiln_rt_queue_close(inst, Q_INDEX, 0), KILN_OK);
  cr_assert_eq(kiln_rt_spawn(inst, 4, E_RELAY, Q_OUT), KILN_OK);
  /* the consumer loop: until OutOfRange, which comes once the readers have
   * drained Q_INDEX and the last of them closed Q_OUT */
  static uint8_t seen[N];
  memset(seen, 0, sizeof seen);
  int64_t n = 0;
  for (;;) {
    int32_t x;
    void *d[1] = {&x};
    int st = kiln_rt_dequeue(inst, Q_OUT, d);
    if (st == KILN_OUT_OF_RANGE) break;
    cr_assert_eq(st, KILN_OK, "%s", kiln_inst_error(inst));
    int32_t r = 0;
    while ((r + 1) * (r + 1) <= x) r++;
    cr_assert(r * r == x && r < N, "got %d", x);
    cr_assert_eq(seen[r], 0, "%d twice", r);
    seen[r] = 1;
    n++;
  }
  cr_assert_eq(n, N);
  cr_assert_eq(kiln_rt_join(inst, 5000), KILN_OK, "%s", kiln_inst_error(inst));
  kiln_inst_destroy(inst);
}

Test(coord, threads_draw_different_random_numbers) {
  kiln_inst *inst = kc_create();
  cr_assert_eq(kiln_rt_spawn(inst, 8, E_RAND, -1), KILN_OK);
  kc_vars *v = kc_v(inst);
  /* join requests a stop: first let every thread have its one run */
  cr_assert(kc_wait_at_least(&v->slot, 8));
  cr_assert_eq(kiln_rt_join(inst, 5000), KILN_OK, "%s", kiln_inst_error(inst));
  for (int i = 0; i < 8; i++) {
    cr_assert_neq(v->counter[i], 0, "thread %d shares the parent's stream", i);
    for (int j = 0; j < i; j++) {
      cr_assert_neq(v->counter[i], v->counter[j]);
      cr_assert_neq(v->drawn[i], v->drawn[j], "threads %d and %d drew the same number", i, j);
    }
  }
  cr_assert_eq(inst->random_counters[0], 0, "a thread advanced the parent's counter");
  kiln_inst_destroy(inst);
}

Test(coord, destroy_stops_blocked_threads) {
  kiln_inst *inst = kc_create();
  /* stuck enqueuers and a dequeuer of an empty open queue: destroy must
   * still return, with no thread left behind on freed queues */
  cr_assert_eq(kiln_rt_spawn(inst, 2, E_PUSH_FULL, -1), KILN_OK);
  cr_assert_eq(kiln_rt_spawn(inst, 2, E_RELAY, -1), KILN_OK);
  cr_assert_eq(kiln_rt_spawn(inst, 2, E_TICK, -1), KILN_OK);
  kc_sleep_ms(20);
  double t0 = kc_now();
  kiln_inst_destroy(inst);
  cr_assert(kc_now() - t0 < 5.0);
}
