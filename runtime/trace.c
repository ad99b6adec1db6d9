/* trace.c — traced runs (RunOptions(trace_level=FULL_TRACE) + RunMetadata).
 *
 * While inst->tracing is set, generated code calls kiln_rt_trace_begin and
 * kiln_rt_trace_end around every node.  begin only reads the clock into a
 * thread-local; end appends one record (node, op, start, end, thread, output
 * bytes) to the instance's list under its mutex, so threads running entries
 * of the same instance may trace at once.  The node and op names are the
 * module's string constants: records keep the pointers.
 *
 * kiln_rt_trace_finish turns the run's records into
 *   - a RunMetadata (StepStats, one DeviceStepStats for
 *     /job:localhost/replica:0/task:0/device:CPU:0, one NodeExecStats per
 *     node) written to the open event file as Event{tagged_run_metadata},
 *     as TF1's FileWriter.add_run_metadata(run_metadata, 'step%03d' % i);
 *   - a Chrome trace (trace-<tag>.json in the writer's log directory, or the
 *     working directory when none is open): one complete event ("ph": "X")
 *     per node, for chrome://tracing and Perfetto.
 * Built with -DKILN_NO_PROTOBUF, only the Chrome trace is written. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "rt_internal.h"
#include "summary_internal.h"
#ifndef KILN_NO_PROTOBUF
#include "event.pb-c.h"
#include "step_stats.pb-c.h"
#endif

/* At most this many records are kept (about 100 MB); later nodes are
 * counted as dropped and the finish says so. */
#define MAX_RECORDS ((size_t)1 << 21)

#define CPU_DEVICE "/job:localhost/replica:0/task:0/device:CPU:0"

typedef struct trec {
  const char *node, *op;
  int64_t start, end; /* CLOCK_MONOTONIC ns */
  int64_t bytes;
  uint32_t tid;
} trec;

struct kiln_trace {
  pthread_mutex_t mu;
  trec *recs;
  size_t n, cap;
  size_t mark;        /* first record of the current traced run */
  size_t dropped;
  int all;            /* --trace: keep everything until kiln_trace_all_end */
  int64_t counter;    /* traced runs finished: the default tag's number */
  int64_t mono0, wall0; /* both clocks at the start of the run (ns) */
  int64_t all_mono0, all_wall0;
};

static int64_t clock_ns(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static _Thread_local int64_t t_begin;
static _Thread_local uint32_t t_tid;

static uint32_t thread_id(void) {
  if (!t_tid) t_tid = (uint32_t)syscall(SYS_gettid);
  return t_tid;
}

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

static struct kiln_trace *state_of(kiln_inst *inst, int create) {
  struct kiln_services *s = inst->services;
  struct kiln_trace *t = s ? __atomic_load_n(&s->trace, __ATOMIC_ACQUIRE) : NULL;
  if (t || !create) return t;
  pthread_mutex_lock(&create_mu);
  s = kiln_services(inst);
  if (s && !(t = s->trace)) {
    t = calloc(1, sizeof *t);
    if (t && pthread_mutex_init(&t->mu, NULL) != 0) {
      free(t);
      t = NULL;
    }
    if (t) __atomic_store_n(&s->trace, t, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&create_mu);
  return t;
}

static void set_tracing(kiln_inst *inst, int32_t on) { __atomic_store_n(&inst->tracing, on, __ATOMIC_RELAXED); }

int kiln_rt_trace_start(kiln_inst *inst) {
  struct kiln_trace *t = state_of(inst, 1);
  if (!t) return kiln_fail(inst, KILN_ERROR, "trace: out of memory");
  pthread_mutex_lock(&t->mu);
  if (!t->all) t->n = 0, t->dropped = 0;
  t->mark = t->n;
  t->mono0 = clock_ns(CLOCK_MONOTONIC);
  t->wall0 = clock_ns(CLOCK_REALTIME);
  pthread_mutex_unlock(&t->mu);
  set_tracing(inst, 1);
  return KILN_OK;
}

void kiln_rt_trace_begin(kiln_inst *inst) {
  (void)inst;
  t_begin = clock_ns(CLOCK_MONOTONIC);
}

void kiln_rt_trace_end(kiln_inst *inst, const char *node, const char *op, int64_t bytes) {
  int64_t end = clock_ns(CLOCK_MONOTONIC);
  struct kiln_trace *t = inst->services ? __atomic_load_n(&inst->services->trace, __ATOMIC_ACQUIRE) : NULL;
  if (!t) return; /* tracing set by hand, never started: nothing to record into */
  trec r = {node, op, t_begin, end, bytes, thread_id()};
  pthread_mutex_lock(&t->mu);
  if (r.start < t->mono0 && !t->all) { /* a node of a run that began before this trace */
    pthread_mutex_unlock(&t->mu);
    return;
  }
  if (t->n == t->cap && t->cap < MAX_RECORDS) {
    size_t cap = t->cap ? 2 * t->cap : 256;
    trec *grown = realloc(t->recs, sizeof *grown * cap);
    if (grown) t->recs = grown, t->cap = cap;
  }
  if (t->n < t->cap) t->recs[t->n++] = r;
  else t->dropped++;
  pthread_mutex_unlock(&t->mu);
}

/* ---- RunMetadata ---- */
#ifndef KILN_NO_PROTOBUF

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
  int failed;
} buf;

static void buf_put(buf *b, const void *data, size_t n) {
  if (b->failed) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    uint8_t *grown = realloc(b->p, cap);
    if (!grown) {
      b->failed = 1;
      return;
    }
    b->p = grown, b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void buf_varint(buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
    v >>= 7;
  } while (v);
  buf_put(b, tmp, n);
}

/* Appends a length-delimited field (wire type 2) holding `n` bytes. */
static void buf_field(buf *b, uint32_t field, const void *data, size_t n) {
  buf_varint(b, (uint64_t)field << 3 | 2);
  buf_varint(b, n);
  buf_put(b, data, n);
}

static void buf_message(buf *b, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t small[512];
  uint8_t *p = n <= sizeof small ? small : malloc(n);
  if (!p) {
    b->failed = 1;
    return;
  }
  protobuf_c_message_pack(m, p);
  buf_put(b, p, n);
  if (p != small) free(p);
}

/* Serialized RunMetadata of records r[0..n).  The NodeExecStats are packed
 * one at a time and appended as DeviceStepStats field 2, so a long --trace
 * needs no message tree of its size. */
static int run_metadata(const trec *r, size_t n, int64_t mono0, int64_t wall0, buf *out) {
  buf dev = {0};
  /* device and thread names first (protobuf-c), then the node stats */
  Tensorflow__DeviceStepStats ds;
  tensorflow__device_step_stats__init(&ds);
  ds.device = CPU_DEVICE;
  size_t n_threads = 0;
  uint32_t *tids = malloc(sizeof *tids * (n ? n : 1));
  if (!tids) return -1;
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < n_threads && tids[k] != r[i].tid) k++;
    if (k == n_threads) tids[n_threads++] = r[i].tid;
  }
  Tensorflow__DeviceStepStats__ThreadNamesEntry *names = calloc(n_threads ? n_threads : 1, sizeof *names);
  Tensorflow__DeviceStepStats__ThreadNamesEntry **pnames = calloc(n_threads ? n_threads : 1, sizeof *pnames);
  char (*labels)[32] = calloc(n_threads ? n_threads : 1, sizeof *labels);
  if (!names || !pnames || !labels) dev.failed = 1;
  uint32_t pid = (uint32_t)getpid();
  for (size_t k = 0; !dev.failed && k < n_threads; k++) {
    tensorflow__device_step_stats__thread_names_entry__init(&names[k]);
    names[k].key = tids[k];
    snprintf(labels[k], sizeof labels[k], tids[k] == pid ? "main" : "thread %" PRIu32, tids[k]);
    names[k].value = labels[k];
    pnames[k] = &names[k];
  }
  ds.n_thread_names = dev.failed ? 0 : n_threads;
  ds.thread_names = pnames;
  buf_message(&dev, &ds.base);
  free(names), free(pnames), free(labels), free(tids);

  char label[512];
  for (size_t i = 0; i < n && !dev.failed; i++) {
    int64_t start_ns = wall0 + (r[i].start - mono0), dur_ns = r[i].end - r[i].start;
    Tensorflow__NodeExecStats s;
    tensorflow__node_exec_stats__init(&s);
    s.node_name = (char *)(r[i].node ? r[i].node : "?");
    s.all_start_micros = start_ns / 1000;
    s.op_start_rel_micros = 0;
    s.op_end_rel_micros = s.all_end_rel_micros = dur_ns / 1000;
    s.all_start_nanos = start_ns;
    s.op_end_rel_nanos = s.all_end_rel_nanos = dur_ns;
    s.thread_id = r[i].tid;
    snprintf(label, sizeof label, "%s = %s()", s.node_name, r[i].op ? r[i].op : "?");
    s.timeline_label = label;
    Tensorflow__AllocatorMemoryUsed mem, *pmem = &mem;
    Tensorflow__AllocationDescription alloc;
    Tensorflow__TensorDescription desc;
    Tensorflow__NodeOutput output, *poutput = &output;
    if (r[i].bytes > 0) {
      /* the node's outputs: kiln plans them in the arena before the run, so
       * they are reported as one allocation of their total size */
      tensorflow__allocator_memory_used__init(&mem);
      mem.allocator_name = "cpu";
      mem.total_bytes = mem.peak_bytes = r[i].bytes;
      s.n_memory = 1, s.memory = &pmem;
      tensorflow__allocation_description__init(&alloc);
      alloc.requested_bytes = alloc.allocated_bytes = r[i].bytes;
      alloc.allocator_name = "cpu";
      tensorflow__tensor_description__init(&desc);
      desc.allocation_description = &alloc;
      tensorflow__node_output__init(&output);
      output.slot = 0;
      output.tensor_description = &desc;
      s.n_output = 1, s.output = &poutput;
    }
    size_t len = protobuf_c_message_get_packed_size(&s.base);
    uint8_t small[1024];
    uint8_t *p = len <= sizeof small ? small : malloc(len);
    if (!p) {
      dev.failed = 1;
      break;
    }
    protobuf_c_message_pack(&s.base, p);
    buf_field(&dev, 2, p, len); /* DeviceStepStats.node_stats */
    if (p != small) free(p);
  }
  /* RunMetadata{step_stats = 1: StepStats{dev_stats = 1: dev}} */
  buf step = {0};
  if (!dev.failed) buf_field(&step, 1, dev.p, dev.len);
  if (!dev.failed && !step.failed) buf_field(out, 1, step.p, step.len);
  int failed = dev.failed || step.failed || out->failed;
  free(dev.p);
  free(step.p);
  return failed ? -1 : 0;
}

#endif

/* ---- Chrome trace JSON ---- */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : "?"); *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

/* ns as microseconds with three decimals ("-0.250" too). */
static void put_us(FILE *f, int64_t ns) {
  uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
  fprintf(f, "%s%" PRIu64 ".%03u", ns < 0 ? "-" : "", a / 1000, (unsigned)(a % 1000));
}

static int chrome_trace(kiln_inst *inst, const char *path, const char *tag, const trec *r, size_t n,
                        int64_t mono0, size_t dropped) {
  size_t tlen = strlen(path) + 8;
  char *tmp = malloc(tlen);
  if (!tmp) return kiln_fail(inst, KILN_ERROR, "trace: out of memory");
  snprintf(tmp, tlen, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    int st = kiln_fail(inst, KILN_ERROR, "trace: cannot create %s: %s", path, strerror(errno));
    free(tmp);
    return st;
  }
  unsigned pid = (unsigned)getpid();
  const char *module = inst->desc && inst->desc->name ? inst->desc->name : "kiln";
  fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"module\":");
  json_str(f, module);
  fprintf(f, ",\"tag\":");
  json_str(f, tag);
  fprintf(f, ",\"dropped\":%zu},\"traceEvents\":[\n", dropped);
  fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":", pid);
  json_str(f, module);
  fprintf(f, "}}");
  for (size_t i = 0; i < n; i++) {
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) seen = r[j].tid == r[i].tid;
    if (seen) continue;
    fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%" PRIu32
               ",\"args\":{\"name\":\"%s%" PRIu32 "\"}}",
            pid, r[i].tid, r[i].tid == pid ? "main " : "thread ", r[i].tid);
  }
  for (size_t i = 0; i < n; i++) {
    fprintf(f, ",\n{\"name\":");
    json_str(f, r[i].node);
    fprintf(f, ",\"cat\":\"op\",\"ph\":\"X\",\"ts\":");
    put_us(f, r[i].start - mono0);
    fprintf(f, ",\"dur\":");
    put_us(f, r[i].end - r[i].start);
    fprintf(f, ",\"pid\":%u,\"tid\":%" PRIu32 ",\"args\":{\"op\":", pid, r[i].tid);
    json_str(f, r[i].op);
    fprintf(f, ",\"bytes\":%" PRId64 "}}", r[i].bytes);
  }
  fprintf(f, "\n]}\n");
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  int st = KILN_OK;
  if (bad || rename(tmp, path) != 0) {
    st = kiln_fail(inst, KILN_ERROR, "trace: writing %s: %s", path, strerror(errno));
    unlink(tmp);
  }
  free(tmp);
  return st;
}

/* Writes records [from, n) under `tag` (default stepNNN); keep: leave them
 * (and tracing) in place, as --trace does for the runs inside it. */
static int finish(kiln_inst *inst, struct kiln_trace *t, const char *tag, int all) {
  pthread_mutex_lock(&t->mu);
  size_t from = all ? 0 : t->mark;
  int keep = t->all && !all;
  if (all) t->all = 0;
  if (!t->all) set_tracing(inst, 0);
  int64_t mono0 = all ? t->all_mono0 : t->mono0, wall0 = all ? t->all_wall0 : t->wall0;
  size_t n = t->n > from ? t->n - from : 0, dropped = t->dropped;
  trec *r = malloc(sizeof *r * (n ? n : 1));
  if (r && n) memcpy(r, t->recs + from, sizeof *r * n);
  char deftag[32];
  snprintf(deftag, sizeof deftag, "step%03" PRId64, t->counter);
  if (!all) t->counter++;
  if (!keep) t->n = t->mark = 0, t->dropped = 0;
  pthread_mutex_unlock(&t->mu);
  if (!r) return kiln_fail(inst, KILN_ERROR, "trace: out of memory");
  if (!tag || !tag[0]) tag = deftag;
  if (dropped)
    fprintf(stderr, "warning: trace '%s': %zu node runs not recorded (the limit is %zu)\n", tag, dropped,
            (size_t)MAX_RECORDS);

  int st = KILN_OK;
#ifndef KILN_NO_PROTOBUF
  buf md = {0};
  if (run_metadata(r, n, mono0, wall0, &md) != 0) {
    st = kiln_fail(inst, KILN_ERROR, "trace: out of memory");
  } else {
    Tensorflow__TaggedRunMetadata trm;
    tensorflow__tagged_run_metadata__init(&trm);
    trm.tag = (char *)tag;
    trm.run_metadata.data = md.p;
    trm.run_metadata.len = md.len;
    Tensorflow__Event ev;
    tensorflow__event__init(&ev);
    ev.what_case = TENSORFLOW__EVENT__WHAT_TAGGED_RUN_METADATA;
    ev.tagged_run_metadata = &trm;
    int written;
    st = kiln_summary_emit(inst, &ev, &written);
  }
  free(md.p);
#else
  (void)wall0;
#endif

  char dir[4096], safe[256], *path = NULL;
  if (!kiln_summary_logdir(inst, dir, sizeof dir)) snprintf(dir, sizeof dir, ".");
  size_t k = 0;
  for (const char *c = tag; *c && k + 1 < sizeof safe; c++)
    safe[k++] = (*c == '/' || *c == '\\' || (unsigned char)*c < 0x20) ? '_' : *c;
  safe[k] = '\0';
  if (asprintf(&path, "%s/trace-%s.json", dir, safe) < 0) path = NULL;
  int st2 = path ? chrome_trace(inst, path, tag, r, n, mono0, dropped) : kiln_fail(inst, KILN_ERROR, "trace: out of memory");
  free(path);
  free(r);
  return st != KILN_OK ? st : st2;
}

int kiln_rt_trace_finish(kiln_inst *inst, const char *tag) {
  struct kiln_trace *t = state_of(inst, 1);
  if (!t) {
    set_tracing(inst, 0);
    return kiln_fail(inst, KILN_ERROR, "trace: out of memory");
  }
  return finish(inst, t, tag, 0);
}

int kiln_trace_all_begin(kiln_inst *inst) {
  struct kiln_trace *t = state_of(inst, 1);
  if (!t) return kiln_fail(inst, KILN_ERROR, "trace: out of memory");
  pthread_mutex_lock(&t->mu);
  t->all = 1;
  t->n = t->mark = t->dropped = 0;
  t->all_mono0 = t->mono0 = clock_ns(CLOCK_MONOTONIC);
  t->all_wall0 = t->wall0 = clock_ns(CLOCK_REALTIME);
  pthread_mutex_unlock(&t->mu);
  set_tracing(inst, 1);
  return KILN_OK;
}

int kiln_trace_all_end(kiln_inst *inst, const char *tag) {
  struct kiln_trace *t = state_of(inst, 0);
  if (!t || !t->all) return KILN_OK;
  return finish(inst, t, tag, 1);
}

void kiln_trace_destroy(kiln_inst *inst) {
  if (!inst || !inst->services) return;
  struct kiln_trace *t = inst->services->trace;
  if (!t) return;
  pthread_mutex_destroy(&t->mu);
  free(t->recs);
  free(t);
  inst->services->trace = NULL;
}
