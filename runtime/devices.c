/* devices.c — running an entry whose nodes sit on several CPU devices
 * (cpu:0, cpu:1, ...; docs/gpu.md, "Virtual CPU devices").
 *
 * The compiler splits such an entry into one function per device, each
 * running its device's nodes in schedule order.  Here partition 0 runs on
 * the calling thread and every other one on a thread of its own; they meet
 * at events: a partition signals an event once a node another partition
 * reads is done, and the reader waits for it.  Because every partition
 * follows the one global schedule, the earliest unfinished node can always
 * run, so the waits cannot deadlock.  When a partition fails, every wait
 * returns at once and the run reports the first failure. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

/* What a wait returns when the run was abandoned: not a kiln_status, and
 * never the run's result (the failure that caused it is). */
#define ABANDONED (-1)

typedef struct part_sync {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int failed;     /* a partition failed: waits give up */
  int status;     /* the first failure */
  char *done;     /* per event */
} part_sync;

typedef struct part_run {
  part_sync *sync;
  kiln_inst *inst;
  const void *in;
  void *out;
  kiln_part_fn fn;
} part_run;

int kiln_rt_part_wait(void *s, int32_t e) {
  part_sync *ps = s;
  pthread_mutex_lock(&ps->lock);
  while (!ps->done[e] && !ps->failed) pthread_cond_wait(&ps->cond, &ps->lock);
  int st = ps->done[e] ? KILN_OK : ABANDONED;
  pthread_mutex_unlock(&ps->lock);
  return st;
}

void kiln_rt_part_signal(void *s, int32_t e) {
  part_sync *ps = s;
  pthread_mutex_lock(&ps->lock);
  ps->done[e] = 1;
  pthread_cond_broadcast(&ps->cond);
  pthread_mutex_unlock(&ps->lock);
}

static void finish(part_sync *ps, int st) {
  if (st == KILN_OK) return;
  pthread_mutex_lock(&ps->lock);
  if (st != ABANDONED && !ps->failed) ps->status = st;
  if (st != ABANDONED) ps->failed = 1;
  pthread_cond_broadcast(&ps->cond);
  pthread_mutex_unlock(&ps->lock);
}

static void *part_thread(void *arg) {
  part_run *r = arg;
  finish(r->sync, r->fn(r->inst, r->in, r->out, r->sync));
  return NULL;
}

int kiln_rt_run_parts(kiln_inst *inst, const void *in, void *out, int32_t n_parts, const kiln_part_fn *parts,
                      int32_t n_events) {
  if (n_parts <= 0) return KILN_OK;
  part_sync ps = {.failed = 0, .status = KILN_OK};
  ps.done = calloc((size_t)(n_events > 0 ? n_events : 1), 1);
  part_run *runs = calloc((size_t)n_parts, sizeof *runs);
  pthread_t *th = calloc((size_t)n_parts, sizeof *th);
  char *started = calloc((size_t)n_parts, 1);
  if (!ps.done || !runs || !th || !started) {
    free(ps.done), free(runs), free(th), free(started);
    return kiln_fail(inst, KILN_ERROR, "out of memory");
  }
  pthread_mutex_init(&ps.lock, NULL);
  pthread_cond_init(&ps.cond, NULL);
  for (int32_t i = 0; i < n_parts; i++) runs[i] = (part_run){&ps, inst, in, out, parts[i]};
  for (int32_t i = 1; i < n_parts; i++) {
    if (pthread_create(&th[i], NULL, part_thread, &runs[i]) == 0) {
      started[i] = 1;
      continue;
    }
    finish(&ps, kiln_fail(inst, KILN_ERROR, "cannot start the thread of CPU device partition %d", (int)i));
    break;
  }
  if (!ps.failed) finish(&ps, parts[0](inst, in, out, &ps));
  for (int32_t i = 1; i < n_parts; i++)
    if (started[i]) pthread_join(th[i], NULL);
  int st = ps.failed ? ps.status : KILN_OK;
  pthread_cond_destroy(&ps.cond);
  pthread_mutex_destroy(&ps.lock);
  free(ps.done), free(runs), free(th), free(started);
  return st;
}
