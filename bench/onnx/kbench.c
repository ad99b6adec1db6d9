/* kbench.c — kiln's side of the ONNX benchmark (bench/onnx/bench.py): runs
 * the entry of a model compiled with `kiln build -c MODEL.onnx -o M.o` in
 * this process, the way bench/onnx/ort_run.js runs ONNX Runtime, and prints
 * one JSON line with the median latency.  Built once per model:
 *
 *   cc -O2 -Iruntime -DKILN_DESC=NAME_desc -o kbench bench/onnx/kbench.c M.o \
 *      build/libkilnrt.a -lopenblas -lpthread -lm
 *
 * (NAME_desc is the module descriptor M.h declares.)  Options, as ort_run.js's:
 *
 *   --feed NAME=FILE.npy   an input of the entry (every input needs one)
 *   --chunked NAME         NAME's .npy holds one feed per chunk along axis 0;
 *                          every chunk is one run, in order
 *   --carry OUT=IN         output OUT of one run is input IN of the next
 *   --save DIR             writes each output as DIR/OUT.npy (with --chunked:
 *                          those of all chunks stacked along a new axis 0)
 *   --time N               then times N runs after --warmup W (default 20)
 *                          and prints {"median_ms":..,"min_ms":..,"mean_ms":..}
 *   --entry NAME           the entry (default: the module's only one)
 *
 * Only the entry call is timed (clock_gettime around e->fn); choosing the
 * chunk and copying the carried state (a few KB) happen between the calls.
 * OpenBLAS's threads: OPENBLAS_NUM_THREADS.  Exit status 0, 1 on failure,
 * 2 on a wrong command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "kilnrt.h"

#ifndef KILN_DESC
#error "compile with -DKILN_DESC=<module>_desc"
#endif
extern const kiln_module_desc KILN_DESC;

#define MAXB 16

typedef struct { const char *a, *b; } pair;

static int die_usage(const char *msg, const char *arg) {
  fprintf(stderr, "kbench: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  return 2;
}

static int split(char *s, pair *p) {
  char *eq = strchr(s, '=');
  if (!eq || eq == s || !eq[1]) return -1;
  *eq = 0;
  p->a = s, p->b = eq + 1;
  return 0;
}

static const kiln_tensor_desc *find(const kiln_tensor_desc *t, int32_t n, const char *name) {
  for (int32_t i = 0; i < n; i++)
    if (t[i].name && strcmp(t[i].name, name) == 0) return &t[i];
  return NULL;
}

static int64_t bytes_of(const kiln_tensor_desc *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->rank; i++) n *= t->dims[i];
  return n * (int64_t)kiln_dtype_size(t->dtype);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
  pair feeds[MAXB], carry[MAXB];
  int n_feeds = 0, n_carry = 0;
  const char *chunked = NULL, *save = NULL, *entry = NULL;
  long runs = 0, warmup = 20;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) return die_usage("option without a value (or unknown)", a);
    char *v = argv[++i];
    if (strcmp(a, "--feed") == 0 || strcmp(a, "--carry") == 0) {
      int feed = a[2] == 'f';
      int *n = feed ? &n_feeds : &n_carry;
      if (*n == MAXB) return die_usage("too many", a);
      if (split(v, feed ? &feeds[*n] : &carry[*n]) != 0) return die_usage("expected A=B", v);
      (*n)++;
    } else if (strcmp(a, "--chunked") == 0) chunked = v;
    else if (strcmp(a, "--save") == 0) save = v;
    else if (strcmp(a, "--entry") == 0) entry = v;
    else if (strcmp(a, "--time") == 0 || strcmp(a, "--warmup") == 0) {
      char *end;
      errno = 0;
      long x = strtol(v, &end, 10);
      if (errno || *end || x < 0) return die_usage("needs a non-negative integer", v);
      *(a[2] == 't' ? &runs : &warmup) = x;
    } else return die_usage("unknown option", a);
  }

  const kiln_module_desc *d = &KILN_DESC;
  const kiln_entry_desc *e = NULL;
  for (int32_t i = 0; i < d->n_entries; i++)
    if (!entry ? d->n_entries == 1 : strcmp(d->entries[i].name, entry) == 0) e = &d->entries[i];
  if (!e) return die_usage("no such entry (or several: give --entry)", entry ? entry : d->name);

  int st = 0;
  kiln_inst *inst = kiln_inst_create(d, &st);
  if (!inst || st) {
    fprintf(stderr, "kbench: creating the instance: %s\n", inst ? kiln_inst_error(inst) : "out of memory");
    return 1;
  }
  uint8_t *in = aligned_alloc(64, (size_t)((e->in_size + 63) / 64 * 64 + 64));
  uint8_t *out = aligned_alloc(64, (size_t)((e->out_size + 63) / 64 * 64 + 64));
  memset(in, 0, (size_t)e->in_size);

  /* Feeds; the chunked one is read whole, [C, dims...]. */
  uint8_t *chunks = NULL;
  int64_t n_chunks = 1, chunk_bytes = 0;
  const kiln_tensor_desc *chunk_slot = NULL;
  for (int i = 0; i < n_feeds; i++) {
    const kiln_tensor_desc *t = find(e->in, e->n_in, feeds[i].a);
    if (!t) return die_usage("the entry has no such input", feeds[i].a);
    if (chunked && strcmp(chunked, feeds[i].a) == 0) {
      /* The chunk count is read from the file's header: numpy writes "(C, ...". */
      FILE *f = fopen(feeds[i].b, "rb");
      char hdr[256] = {0};
      if (!f || fread(hdr, 1, sizeof hdr - 1, f) < 16) return die_usage("cannot read", feeds[i].b);
      fclose(f);
      const char *sh = strstr(hdr + 10, "'shape': (");
      if (!sh) return die_usage("no shape in .npy header", feeds[i].b);
      n_chunks = strtoll(sh + 10, NULL, 10);
      if (n_chunks < 1) return die_usage("bad chunk count", feeds[i].b);
      int64_t dims[9];
      if (t->rank > 8) return die_usage("rank too high", feeds[i].a);
      dims[0] = n_chunks;
      memcpy(dims + 1, t->dims, (size_t)t->rank * sizeof *dims);
      chunk_slot = t;
      chunk_bytes = bytes_of(t);
      chunks = malloc((size_t)(chunk_bytes * n_chunks));
      st = kiln_npy_read(inst, feeds[i].b, t->dtype, t->rank + 1, dims, chunks);
    } else {
      st = kiln_npy_read(inst, feeds[i].b, t->dtype, t->rank, t->dims, in + t->offset);
    }
    if (st) {
      fprintf(stderr, "kbench: %s\n", kiln_inst_error(inst));
      return 1;
    }
  }
  for (int32_t j = 0; j < e->n_in; j++) {
    int fed = 0;
    for (int i = 0; i < n_feeds; i++) fed |= strcmp(feeds[i].a, e->in[j].name) == 0;
    if (!fed) return die_usage("missing --feed for input", e->in[j].name);
  }
  if (chunked && !chunk_slot) return die_usage("--chunked names no --feed", chunked);
  const kiln_tensor_desc *cin[MAXB], *cout[MAXB];
  for (int i = 0; i < n_carry; i++) {
    cout[i] = find(e->out, e->n_out, carry[i].a);
    cin[i] = find(e->in, e->n_in, carry[i].b);
    if (!cout[i] || !cin[i] || bytes_of(cout[i]) != bytes_of(cin[i]) || cout[i]->dtype != cin[i]->dtype)
      return die_usage("--carry OUT=IN needs an output and an input of one type", carry[i].a);
  }
  /* The initial values of the carried inputs, for restarting. */
  uint8_t *initial = malloc((size_t)e->in_size + 1);
  memcpy(initial, in, (size_t)e->in_size);

  int64_t k = 0;
#define STEP()                                                                             \
  do {                                                                                     \
    if (chunk_slot) memcpy(in + chunk_slot->offset, chunks + (k % n_chunks) * chunk_bytes, \
                           (size_t)chunk_bytes);                                           \
  } while (0)
#define CARRY()                                                                             \
  do {                                                                                      \
    for (int i = 0; i < n_carry; i++)                                                       \
      memcpy(in + cin[i]->offset, out + cout[i]->offset, (size_t)bytes_of(cin[i]));         \
    k++;                                                                                    \
  } while (0)

  if (save) {
    mkdir(save, 0777);
    uint8_t **all = calloc((size_t)e->n_out, sizeof *all);
    for (int32_t j = 0; j < e->n_out; j++) all[j] = malloc((size_t)(bytes_of(&e->out[j]) * n_chunks));
    for (int64_t c = 0; c < n_chunks; c++) {
      STEP();
      if ((st = e->fn(inst, in, out)) != 0) break;
      for (int32_t j = 0; j < e->n_out; j++)
        memcpy(all[j] + c * bytes_of(&e->out[j]), out + e->out[j].offset, (size_t)bytes_of(&e->out[j]));
      CARRY();
    }
    for (int32_t j = 0; st == 0 && j < e->n_out; j++) {
      const kiln_tensor_desc *t = &e->out[j];
      char path[4096];
      snprintf(path, sizeof path, "%s/%s.npy", save, t->name);
      int64_t dims[9];
      int r = t->rank;
      if (chunk_slot) {
        dims[0] = n_chunks;
        memcpy(dims + 1, t->dims, (size_t)r * sizeof *dims);
        r++;
      } else memcpy(dims, t->dims, (size_t)r * sizeof *dims);
      st = kiln_npy_write(inst, path, t->dtype, r, dims, all[j]);
    }
    for (int32_t j = 0; j < e->n_out; j++) free(all[j]);
    free(all);
    if (st) {
      fprintf(stderr, "kbench: %s\n", kiln_inst_error(inst));
      return 1;
    }
  }

  if (runs > 0) {
    memcpy(in, initial, (size_t)e->in_size);
    k = 0;
    for (long r = 0; r < warmup; r++) {
      STEP();
      if ((st = e->fn(inst, in, out)) != 0) break;
      CARRY();
    }
    double *ms = malloc((size_t)runs * sizeof *ms);
    for (long r = 0; st == 0 && r < runs; r++) {
      STEP();
      double t0 = now_ms();
      st = e->fn(inst, in, out);
      ms[r] = now_ms() - t0;
      CARRY();
    }
    if (st) {
      fprintf(stderr, "kbench: %s\n", kiln_inst_error(inst));
      return 1;
    }
    double sum = 0;
    for (long r = 0; r < runs; r++) sum += ms[r];
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    double med = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
    printf("{\"module\":\"%s\",\"runs\":%ld,\"warmup\":%ld,\"median_ms\":%.6f,\"min_ms\":%.6f,\"mean_ms\":%.6f}\n",
           d->name, runs, warmup, med, ms[0], sum / runs);
    free(ms);
  }
  free(initial);
  free(chunks);
  free(in);
  free(out);
  kiln_inst_destroy(inst);
  return 0;
}
