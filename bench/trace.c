/* trace.c — what tracing costs (`make bench`), as ratios against untraced
 * runs measured in the same process, interleaved (these machines are
 * shared and noisy); each figure is the best of REPS batches of BATCH runs.
 *
 *   hooks, tracing off   the per-node `if (inst->tracing)` is always compiled
 *                        in; an untraced step of an instance that has traced
 *                        before against one of an instance that never did,
 *                        and the same instance against itself (the noise)
 *   traced, recording    kiln_rt_trace_start + the step: every node reads the
 *                        clock twice and appends one record
 *   traced + finish      ... + kiln_rt_trace_finish: RunMetadata into an open
 *                        event file and a Chrome trace JSON file per step
 *   elementwise 4M       the same for bench/ew.kg (one fused node), whose
 *                        untraced run bench.c compares with a plain C loop
 *
 * The step is bench/train8.kg: one SGD step of a 784-512-512-10 MLP at
 * batch 8, many small nodes, where per-node costs show most. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ew.h"
#include "train8.h"

#define REPS 15
#define BATCH 20

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum { PLAIN, HOOKS, SAME, TRACED, FINISHED, N_KIND };

static double batch(kiln_inst *m, int kind, int (*run)(kiln_inst *, const void *, void *), const void *in,
                    void *out, int n) {
  double t0 = now();
  for (int i = 0; i < n; i++) {
    if (kind >= TRACED) kiln_rt_trace_start(m);
    if (run(m, in, out) != 0) {
      fprintf(stderr, "bench: run failed: %s\n", kiln_inst_error(m));
      exit(1);
    }
    if (kind == FINISHED) kiln_rt_trace_finish(m, "bench");
  }
  double per = (now() - t0) / n;
  if (kind == TRACED) kiln_rt_trace_finish(m, "bench"); /* once, outside the timing */
  return per;
}

/* Best per-run seconds of each kind; `never` has never traced, `m` has. */
static void measure(kiln_inst *never, kiln_inst *m, int (*run)(kiln_inst *, const void *, void *),
                    const void *in, void *out, int n, double best[N_KIND]) {
  for (int k = 0; k < N_KIND; k++) best[k] = 1e30;
  for (int r = 0; r < REPS; r++)
    for (int k = 0; k < N_KIND; k++) {
      kiln_inst *who = k == PLAIN || k == SAME ? never : m;
      double per = batch(who, k, run, in, out, n);
      if (per < best[k]) best[k] = per;
    }
}

static int count_records(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int n = 0, c, prev = 0;
  /* complete events: "ph":"X" */
  while ((c = fgetc(f)) != EOF) {
    if (prev == 'X' && c == '"') n++;
    prev = c;
  }
  fclose(f);
  return n;
}

/* Seconds per kiln_rt_trace_begin + kiln_rt_trace_end pair while tracing:
 * the per-node price of a traced run, too small to see against a step. */
static double hook_pair(kiln_inst *m) {
  enum { PAIRS = 200000 };
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    kiln_rt_trace_start(m); /* clears the records */
    double t0 = now();
    for (int i = 0; i < PAIRS; i++) {
      kiln_rt_trace_begin(m);
      kiln_rt_trace_end(m, "node", "op", 64);
    }
    double per = (now() - t0) / PAIRS;
    if (per < best) best = per;
  }
  kiln_rt_trace_start(m);
  m->tracing = 0;
  return best;
}

static void row(const char *what, double t, double base) {
  printf("%-48s %10.4f %10.4f %7.3f\n", what, t * 1e3, base * 1e3, t / base);
}

int main(void) {
  char dir[] = "/tmp/kiln-bench-trace-XXXXXX";
  if (!mkdtemp(dir)) return 1;

  mlp8_t *never = mlp8_create(), *m = mlp8_create();
  mlp8_run_in *in = calloc(1, sizeof *in);
  mlp8_run_out out;
  for (int i = 0; i < 8; i++) {
    for (int j = 0; j < 784; j++) in->x[i][j] = (float)((i * 7 + j * 3) % 17) / 17.0f;
    in->labels[i] = i % 10;
  }
  if (!never || !m || kiln_rt_summary_open(m, dir) != 0) return 1;
  for (int w = 0; w < 3; w++) mlp8_run(never, in, &out), mlp8_run(m, in, &out);
  double t[N_KIND];
  measure(never, m, (int (*)(kiln_inst *, const void *, void *))mlp8_run, in, &out, BATCH, t);
  char json[128];
  snprintf(json, sizeof json, "%s/trace-bench.json", dir);
  int nodes = count_records(json);

  ew_t *e_never = ew_create(), *e = ew_create();
  ew_run_in *ein = malloc(sizeof *ein);
  ew_run_out *eout = malloc(sizeof *eout);
  for (long i = 0; i < 4194304; i++) ein->x[i] = (float)(i % 7), ein->y[i] = (float)(i % 5);
  if (!e_never || !e || kiln_rt_summary_open(e, dir) != 0) return 1;
  double te[N_KIND];
  measure(e_never, e, (int (*)(kiln_inst *, const void *, void *))ew_run, ein, eout, 2, te);

  printf("%-48s %10s %10s %7s\n", "benchmark (per run)", "kiln (ms)", "base (ms)", "ratio");
  row("mlp8 step untraced, traced-before vs never", t[HOOKS], t[PLAIN]);
  row("mlp8 step untraced, never vs itself (noise)", t[SAME], t[PLAIN]);
  row("mlp8 step traced (recording) vs untraced", t[TRACED], t[PLAIN]);
  row("mlp8 step traced + finish vs untraced", t[FINISHED], t[PLAIN]);
  row("elementwise 4M traced + finish vs untraced", te[FINISHED], te[PLAIN]);
  row("elementwise 4M untraced, traced-before vs never", te[HOOKS], te[PLAIN]);
  double pair = hook_pair(e_never);
  printf("(ratio = kiln / base: above 1 is slower.  The mlp8 step traces %d nodes; recording one\n"
         " costs %.0f ns (trace_begin + trace_end, best of 5 x 200000), %.1f us per step in all,\n"
         " %.2f%% of the step; writing RunMetadata + the JSON file costs %.0f us per traced run)\n",
         nodes, pair * 1e9, pair * nodes * 1e6, 100.0 * pair * nodes / t[PLAIN], (t[FINISHED] - t[TRACED]) * 1e6);

  mlp8_destroy(never), mlp8_destroy(m), ew_destroy(e_never), ew_destroy(e);
  free(in), free(ein), free(eout);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
