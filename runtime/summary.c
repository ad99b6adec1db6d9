/* summary.c — tf.summary for kiln: values recorded by the summary ops, and
 * TensorBoard event files (tf.summary.FileWriter).
 *
 * The summary ops call kiln_rt_summary_scalar/histogram/text as they run;
 * the values wait in the instance (one list under a mutex, so threads may
 * record concurrently; a tag recorded again replaces its value) until the
 * program's `summary write` turns them into one Event.
 *
 * An event file is a sequence of TFRecords, each one serialized Event
 * (proto/event.proto, TensorFlow's field numbers):
 *
 *   uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)
 *
 * all little endian; the first record is Event{wall_time, file_version:
 * "brain.Event:2"}.  Records are buffered and written out on close, when a
 * write finds the last flush KILN_SUMMARY_FLUSH_SECS old or the buffer
 * KILN_SUMMARY_FLUSH_BYTES full, at kiln_inst_destroy and at exit: a crash
 * loses at most the last period.
 *
 * Built with -DKILN_NO_PROTOBUF (the cross runtimes build/<triple>/libkilnrt.a,
 * where the target has no protobuf-c: docs/cross.md), the values are
 * still recorded but opening an event file is an error. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "crc32c.h"
#include "rt_internal.h"
#include "summary_internal.h"
#ifndef KILN_NO_PROTOBUF
#include "event.pb-c.h"
#else
#pragma GCC diagnostic ignored "-Wunused-function" /* the writer's helpers */
#pragma GCC diagnostic ignored "-Wunused-variable"
#endif

/* ---- TensorFlow's histogram (tensorflow/core/lib/histogram/histogram.cc) ---- */

static double *limits;
static size_t n_limits;
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;

static void make_limits(void) {
  /* buckets growing by 10% from 1e-12 to 1e20, mirrored, with 0 between */
  size_t n_pos = 0;
  for (double v = 1.0e-12; v < 1.0e20; v *= 1.1) n_pos++;
  n_pos++; /* DBL_MAX */
  limits = malloc(sizeof *limits * (2 * n_pos + 1));
  if (!limits) return;
  size_t i = 0, k = 0;
  double *pos = limits + n_pos + 1;
  for (double v = 1.0e-12; v < 1.0e20; v *= 1.1) pos[k++] = v;
  pos[k] = DBL_MAX;
  for (k = 0; k < n_pos; k++) limits[i++] = -pos[n_pos - 1 - k];
  limits[i] = 0.0;
  n_limits = 2 * n_pos + 1;
}

const double *kiln_histogram_limits(size_t *n) {
  pthread_once(&limits_once, make_limits);
  *n = n_limits;
  return limits;
}

typedef struct histo {
  double min, max, num, sum, sum_squares;
  double *counts; /* one per limit: counts[i] holds values in [limit[i-1], limit[i]) */
} histo;

static void histo_add(histo *h, const double *lim, size_t n, double v) {
  size_t lo = 0, hi = n; /* first limit > v (std::upper_bound) */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (lim[mid] > v) hi = mid;
    else lo = mid + 1;
  }
  if (lo >= n) lo = n - 1; /* only DBL_MAX itself; not reached for finite input */
  h->counts[lo] += 1.0;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
  h->num += 1.0;
  h->sum += v;
  h->sum_squares += v * v;
}

/* ---- the state of one instance ---- */

enum { V_SCALAR, V_HISTO, V_TEXT };

typedef struct pending {
  char *tag;
  int kind;
  float simple;
  histo *h;
  char *text;
} pending;

struct kiln_summary {
  pthread_mutex_t mu;
  pending *vals;
  int n_vals, cap_vals;
  /* the open writer (fd < 0: none) */
  int fd;
  char *path, *logdir;
  uint8_t *buf;
  size_t len, cap;
  double last_flush; /* CLOCK_MONOTONIC seconds */
  int64_t writes;    /* `summary write`s so far: the step when none is given */
  struct kiln_summary *next_open; /* the open writers, flushed at exit */
};

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

/* The instance's state, created on first use; NULL when out of memory. */
static struct kiln_summary *state_of(kiln_inst *inst, int create) {
  struct kiln_services *s = inst->services;
  struct kiln_summary *sm = s ? __atomic_load_n(&s->summary, __ATOMIC_ACQUIRE) : NULL;
  if (sm || !create) return sm;
  pthread_mutex_lock(&create_mu);
  s = kiln_services(inst);
  if (s && !(sm = s->summary)) {
    sm = calloc(1, sizeof *sm);
    if (sm && pthread_mutex_init(&sm->mu, NULL) != 0) {
      free(sm);
      sm = NULL;
    }
    if (sm) {
      sm->fd = -1;
      __atomic_store_n(&s->summary, sm, __ATOMIC_RELEASE);
    }
  }
  pthread_mutex_unlock(&create_mu);
  return sm;
}

static int oom(kiln_inst *inst, const char *what) {
  return kiln_fail(inst, KILN_ERROR, "%s: out of memory", what);
}

static void free_pending(pending *p) {
  free(p->tag);
  if (p->h) free(p->h->counts);
  free(p->h);
  free(p->text);
  memset(p, 0, sizeof *p);
}

/* Records `v` (ownership passes) under its tag, replacing an earlier value. */
static int record(kiln_inst *inst, pending *v, const char *what) {
  struct kiln_summary *sm = state_of(inst, 1);
  if (!sm) {
    free_pending(v);
    return oom(inst, what);
  }
  pthread_mutex_lock(&sm->mu);
  int i = 0;
  while (i < sm->n_vals && strcmp(sm->vals[i].tag, v->tag) != 0) i++;
  if (i < sm->n_vals) {
    free_pending(&sm->vals[i]);
  } else if (sm->n_vals == sm->cap_vals) {
    int cap = sm->cap_vals ? 2 * sm->cap_vals : 8;
    pending *grown = realloc(sm->vals, sizeof *grown * (size_t)cap);
    if (!grown) {
      pthread_mutex_unlock(&sm->mu);
      free_pending(v);
      return oom(inst, what);
    }
    sm->vals = grown, sm->cap_vals = cap;
    i = sm->n_vals++;
  } else {
    i = sm->n_vals++;
  }
  sm->vals[i] = *v;
  pthread_mutex_unlock(&sm->mu);
  return KILN_OK;
}

static double element(int32_t dtype, const void *data, int64_t i) {
  switch (dtype) {
#define KILN_DT_READ(e, n, s, f, sg, np, ct) \
  case KILN_##e: { ct x; memcpy(&x, (const char *)data + i * (int64_t)sizeof(ct), sizeof x); return (double)x; }
    KILN_DTYPES(KILN_DT_READ)
#undef KILN_DT_READ
  default: return NAN;
  }
}

int kiln_rt_summary_scalar(kiln_inst *inst, const char *tag, int32_t dtype, const void *value) {
  if (!tag || !value || !kiln_dtype_size(dtype))
    return kiln_fail(inst, KILN_ERROR, "scalar_summary: bad arguments (dtype %d)", (int)dtype);
  pending v = {.tag = strdup(tag), .kind = V_SCALAR, .simple = (float)element(dtype, value, 0)};
  if (!v.tag) return oom(inst, "scalar_summary");
  return record(inst, &v, "scalar_summary");
}

int kiln_rt_summary_histogram(kiln_inst *inst, const char *tag, int32_t dtype, int64_t n, const void *data) {
  if (!tag || n < 0 || (n > 0 && !data) || !kiln_dtype_size(dtype))
    return kiln_fail(inst, KILN_ERROR, "histogram_summary: bad arguments (dtype %d, %lld values)", (int)dtype,
                     (long long)n);
  size_t nl;
  const double *lim = kiln_histogram_limits(&nl);
  if (!lim) return oom(inst, "histogram_summary");
  /* as TF's HistogramSummaryOp: NaN and infinity are errors */
  for (int64_t i = 0; i < n; i++) {
    double x = element(dtype, data, i);
    if (isnan(x)) return kiln_fail(inst, KILN_ERROR, "Nan in summary histogram for: %s", tag);
    if (isinf(x)) return kiln_fail(inst, KILN_ERROR, "Infinity in summary histogram for: %s", tag);
  }
  pending v = {.tag = strdup(tag), .kind = V_HISTO, .h = calloc(1, sizeof(histo))};
  if (v.h) v.h->counts = calloc(nl, sizeof(double));
  if (!v.tag || !v.h || !v.h->counts) {
    free_pending(&v);
    return oom(inst, "histogram_summary");
  }
  v.h->min = lim[nl - 1]; /* TF's empty histogram: min DBL_MAX, max -DBL_MAX */
  v.h->max = -DBL_MAX;
  for (int64_t i = 0; i < n; i++) histo_add(v.h, lim, nl, element(dtype, data, i));
  return record(inst, &v, "histogram_summary");
}

int kiln_rt_summary_text(kiln_inst *inst, const char *tag, const char *text) {
  if (!tag || !text) return kiln_fail(inst, KILN_ERROR, "text_summary: bad arguments");
  pending v = {.tag = strdup(tag), .kind = V_TEXT, .text = strdup(text)};
  if (!v.tag || !v.text) {
    free_pending(&v);
    return oom(inst, "text_summary");
  }
  return record(inst, &v, "text_summary");
}

/* ---- TFRecord framing and the writer ---- */

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void kiln_tfrecord_frame(const void *data, uint64_t n, uint8_t header[12], uint8_t footer[4]) {
  for (int i = 0; i < 8; i++) header[i] = (uint8_t)(n >> (8 * i));
  put_le32(header + 8, kiln_crc32c_mask(kiln_crc32c(header, 8)));
  put_le32(footer, kiln_crc32c_mask(kiln_crc32c(data, (size_t)n)));
}

static double mono_secs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double wall_secs(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Writes the buffer out; caller holds sm->mu.  -1 with errno on failure
 * (what could not be written stays buffered). */
static int flush_locked(struct kiln_summary *sm) {
  size_t done = 0;
  while (done < sm->len) {
    ssize_t w = write(sm->fd, sm->buf + done, sm->len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      memmove(sm->buf, sm->buf + done, sm->len - done);
      sm->len -= done;
      errno = e;
      return -1;
    }
    done += (size_t)w;
  }
  sm->len = 0;
  sm->last_flush = mono_secs();
  return 0;
}

/* The open writers, so that exit flushes what is buffered. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kiln_summary *open_list;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void flush_all_at_exit(void) {
  pthread_mutex_lock(&open_mu);
  for (struct kiln_summary *sm = open_list; sm; sm = sm->next_open) {
    /* a thread still inside a write at exit keeps its lock: skip it */
    if (pthread_mutex_trylock(&sm->mu) != 0) continue;
    if (sm->fd >= 0) flush_locked(sm);
    pthread_mutex_unlock(&sm->mu);
  }
  pthread_mutex_unlock(&open_mu);
}

static void register_atexit(void) { atexit(flush_all_at_exit); }

static void list_remove(struct kiln_summary *sm) {
  pthread_mutex_lock(&open_mu);
  for (struct kiln_summary **p = &open_list; *p; p = &(*p)->next_open)
    if (*p == sm) {
      *p = sm->next_open;
      break;
    }
  sm->next_open = NULL;
  pthread_mutex_unlock(&open_mu);
}

/* Appends one framed record; flushes when due.  Caller holds sm->mu. */
static int append_locked(kiln_inst *inst, struct kiln_summary *sm, const uint8_t *data, size_t n, int force) {
  size_t need = sm->len + n + 16;
  if (need > sm->cap) {
    size_t cap = sm->cap ? sm->cap : 4096;
    while (cap < need) cap *= 2;
    uint8_t *grown = realloc(sm->buf, cap);
    if (!grown) return oom(inst, "summary");
    sm->buf = grown, sm->cap = cap;
  }
  uint8_t *p = sm->buf + sm->len;
  kiln_tfrecord_frame(data, n, p, p + 12 + n);
  if (n) memcpy(p + 12, data, n);
  sm->len += n + 16;
  if (force || sm->len >= KILN_SUMMARY_FLUSH_BYTES || mono_secs() - sm->last_flush >= KILN_SUMMARY_FLUSH_SECS) {
    if (flush_locked(sm) != 0)
      return kiln_fail(inst, KILN_ERROR, "summary: writing %s: %s", sm->path, strerror(errno));
  }
  return KILN_OK;
}

#ifndef KILN_NO_PROTOBUF
/* Serializes ev (wall_time defaulted) and appends it.  Caller holds sm->mu. */
static int emit_locked(kiln_inst *inst, struct kiln_summary *sm, Tensorflow__Event *ev, int force) {
  if (ev->wall_time == 0) ev->wall_time = wall_secs();
  size_t n = protobuf_c_message_get_packed_size(&ev->base);
  uint8_t *bytes = malloc(n ? n : 1);
  if (!bytes) return oom(inst, "summary");
  protobuf_c_message_pack(&ev->base, bytes);
  int st = append_locked(inst, sm, bytes, n, force);
  free(bytes);
  return st;
}

#endif

int kiln_summary_emit(kiln_inst *inst, struct Tensorflow__Event *ev, int *written) {
  *written = 0;
#ifdef KILN_NO_PROTOBUF
  (void)inst, (void)ev;
  return KILN_OK;
#else
  struct kiln_summary *sm = state_of(inst, 0);
  if (!sm) return KILN_OK;
  pthread_mutex_lock(&sm->mu);
  int st = KILN_OK;
  if (sm->fd >= 0) {
    *written = 1;
    st = emit_locked(inst, sm, ev, 0);
  }
  pthread_mutex_unlock(&sm->mu);
  return st;
#endif
}

int kiln_summary_logdir(kiln_inst *inst, char *buf, size_t cap) {
  struct kiln_summary *sm = state_of(inst, 0);
  if (!sm) return 0;
  pthread_mutex_lock(&sm->mu);
  int open = sm->fd >= 0 && sm->logdir;
  if (open) snprintf(buf, cap, "%s", sm->logdir);
  pthread_mutex_unlock(&sm->mu);
  return open;
}

/* Closes the open writer, if any.  Caller holds sm->mu. */
static int close_locked(kiln_inst *inst, struct kiln_summary *sm) {
  if (sm->fd < 0) return KILN_OK;
  int st = KILN_OK;
  if (flush_locked(sm) != 0 || fsync(sm->fd) != 0) {
    /* fsync of a pipe or terminal fails harmlessly; a file's failure is real */
    if (errno != EINVAL && errno != EROFS)
      st = kiln_fail(inst, KILN_ERROR, "summary: writing %s: %s", sm->path, strerror(errno));
  }
  if (close(sm->fd) != 0 && st == KILN_OK)
    st = kiln_fail(inst, KILN_ERROR, "summary: closing %s: %s", sm->path, strerror(errno));
  sm->fd = -1;
  sm->len = 0;
  free(sm->path);
  free(sm->logdir);
  sm->path = sm->logdir = NULL;
  list_remove(sm);
  return st;
}

/* mkdir -p */
static int make_dirs(const char *dir) {
  char *p = strdup(dir);
  if (!p) return -1;
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (p[0] && mkdir(p, 0777) != 0 && errno != EEXIST) {
        free(p);
        return -1;
      }
      *s = c;
      if (!c) break;
    }
  }
  free(p);
  struct stat st;
  if (stat(dir, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

#ifdef KILN_NO_PROTOBUF
static int no_protobuf(kiln_inst *inst) {
  return kiln_fail(inst, KILN_ERROR, "summaries: this libkilnrt was built without protobuf-c (KILN_NO_PROTOBUF)");
}
int kiln_rt_summary_open(kiln_inst *inst, const char *logdir) { return (void)logdir, no_protobuf(inst); }
int kiln_rt_summary_write(kiln_inst *inst, int64_t step) { return (void)step, no_protobuf(inst); }
int kiln_rt_summary_graph(kiln_inst *inst, const void *g, int64_t n) { return (void)g, (void)n, no_protobuf(inst); }
#else
int kiln_rt_summary_open(kiln_inst *inst, const char *logdir) {
  if (!logdir || !logdir[0]) return kiln_fail(inst, KILN_ERROR, "summary: empty log directory");
  struct kiln_summary *sm = state_of(inst, 1);
  if (!sm) return oom(inst, "summary");
  if (make_dirs(logdir) != 0)
    return kiln_fail(inst, KILN_ERROR, "summary: cannot create log directory %s: %s", logdir, strerror(errno));
  char host[256];
  if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = '\0';
  for (char *c = host; *c; c++)
    if (*c == '/') *c = '_';
  /* TF's name (events_writer.cc): events.out.tfevents.<10-digit seconds>.<host>;
   * a second writer in the same directory and second gets a suffix */
  long long secs = (long long)time(NULL);
  size_t plen = strlen(logdir) + strlen(host) + 64;
  char *path = malloc(plen);
  if (!path) return oom(inst, "summary");
  int fd = -1;
  for (int k = 0; k < 1000 && fd < 0; k++) {
    if (k == 0) snprintf(path, plen, "%s/events.out.tfevents.%010lld.%s", logdir, secs, host);
    else snprintf(path, plen, "%s/events.out.tfevents.%010lld.%s.%d", logdir, secs, host, k);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int e = errno;
    int st = kiln_fail(inst, KILN_ERROR, "summary: cannot create %s: %s", path, strerror(e));
    free(path);
    return st;
  }
  char *dir = strdup(logdir);
  if (!dir) {
    close(fd);
    unlink(path);
    free(path);
    return oom(inst, "summary");
  }
  pthread_once(&atexit_once, register_atexit);
  pthread_mutex_lock(&sm->mu);
  int st = close_locked(inst, sm); /* a new FileWriter replaces the old one */
  sm->fd = fd, sm->path = path, sm->logdir = dir;
  sm->last_flush = mono_secs();
  pthread_mutex_lock(&open_mu);
  sm->next_open = open_list;
  open_list = sm;
  pthread_mutex_unlock(&open_mu);
  /* the first record names the format; written out at once so that a
   * reader sees a valid file from the start */
  Tensorflow__Event ev;
  tensorflow__event__init(&ev);
  ev.what_case = TENSORFLOW__EVENT__WHAT_FILE_VERSION;
  ev.file_version = "brain.Event:2";
  int st2 = emit_locked(inst, sm, &ev, 1);
  pthread_mutex_unlock(&sm->mu);
  return st != KILN_OK ? st : st2;
}

static int no_writer(kiln_inst *inst, const char *what) {
  return kiln_fail(inst, KILN_ERROR, "%s: no event file is open (open one with `summary \"LOGDIR\"` first)", what);
}

/* The Summary.Value of one recorded value; sub-messages in `mem` (zeroed,
 * freed by the caller). */
typedef struct value_mem {
  Tensorflow__Summary__Value value;
  Tensorflow__HistogramProto histo;
  Tensorflow__TensorProto tensor;
  Tensorflow__TensorShapeProto shape;
  Tensorflow__SummaryMetadata meta;
  Tensorflow__SummaryMetadata__PluginData plugin;
  ProtobufCBinaryData text;
  double *bucket_limit, *bucket;
} value_mem;

static int fill_value(value_mem *m, const pending *p) {
  tensorflow__summary__value__init(&m->value);
  m->value.tag = p->tag;
  if (p->kind == V_SCALAR) {
    m->value.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    m->value.simple_value = p->simple;
  } else if (p->kind == V_HISTO) {
    /* TF's Histogram::EncodeToProto(preserve_zero_buckets=false): a run of
     * empty buckets is one entry ending at the run's last limit */
    size_t nl;
    const double *lim = kiln_histogram_limits(&nl);
    m->bucket_limit = malloc(sizeof(double) * nl);
    m->bucket = malloc(sizeof(double) * nl);
    if (!m->bucket_limit || !m->bucket) return -1;
    size_t k = 0;
    for (size_t i = 0; i < nl;) {
      double end = lim[i], count = p->h->counts[i];
      i++;
      if (count <= 0.0)
        while (i < nl && p->h->counts[i] <= 0.0) end = lim[i], count = p->h->counts[i], i++;
      m->bucket_limit[k] = end, m->bucket[k] = count, k++;
    }
    tensorflow__histogram_proto__init(&m->histo);
    m->histo.min = p->h->min, m->histo.max = p->h->max, m->histo.num = p->h->num;
    m->histo.sum = p->h->sum, m->histo.sum_squares = p->h->sum_squares;
    m->histo.n_bucket_limit = m->histo.n_bucket = k;
    m->histo.bucket_limit = m->bucket_limit, m->histo.bucket = m->bucket;
    m->value.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_HISTO;
    m->value.histo = &m->histo;
  } else {
    /* tf.summary.text: a scalar DT_STRING tensor for the "text" plugin */
    tensorflow__tensor_shape_proto__init(&m->shape);
    tensorflow__tensor_proto__init(&m->tensor);
    m->tensor.dtype = TENSORFLOW__DATA_TYPE__DT_STRING;
    m->tensor.tensor_shape = &m->shape;
    m->text.data = (uint8_t *)p->text;
    m->text.len = strlen(p->text);
    m->tensor.n_string_val = 1;
    m->tensor.string_val = &m->text;
    tensorflow__summary_metadata__plugin_data__init(&m->plugin);
    m->plugin.plugin_name = "text";
    tensorflow__summary_metadata__init(&m->meta);
    m->meta.plugin_data = &m->plugin;
    m->value.metadata = &m->meta;
    m->value.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_TENSOR;
    m->value.tensor = &m->tensor;
  }
  return 0;
}

int kiln_rt_summary_write(kiln_inst *inst, int64_t step) {
  struct kiln_summary *sm = state_of(inst, 0);
  if (!sm) return no_writer(inst, "summary write");
  pthread_mutex_lock(&sm->mu);
  if (sm->fd < 0) {
    pthread_mutex_unlock(&sm->mu);
    return no_writer(inst, "summary write");
  }
  int n = sm->n_vals, st = KILN_OK;
  value_mem *mem = calloc(n ? (size_t)n : 1, sizeof *mem);
  Tensorflow__Summary__Value **vals = calloc(n ? (size_t)n : 1, sizeof *vals);
  if (!mem || !vals) st = oom(inst, "summary write");
  for (int i = 0; st == KILN_OK && i < n; i++) {
    if (fill_value(&mem[i], &sm->vals[i]) != 0) st = oom(inst, "summary write");
    vals[i] = &mem[i].value;
  }
  if (st == KILN_OK) {
    Tensorflow__Summary summary;
    tensorflow__summary__init(&summary);
    summary.n_value = (size_t)n;
    summary.value = vals;
    Tensorflow__Event ev;
    tensorflow__event__init(&ev);
    ev.step = step >= 0 ? step : sm->writes;
    ev.what_case = TENSORFLOW__EVENT__WHAT_SUMMARY;
    ev.summary = &summary;
    st = emit_locked(inst, sm, &ev, 0);
  }
  if (st == KILN_OK) {
    for (int i = 0; i < n; i++) free_pending(&sm->vals[i]);
    sm->n_vals = 0;
    sm->writes++;
  }
  for (int i = 0; mem && i < n; i++) free(mem[i].bucket_limit), free(mem[i].bucket);
  free(mem);
  free(vals);
  pthread_mutex_unlock(&sm->mu);
  return st;
}

int kiln_rt_summary_graph(kiln_inst *inst, const void *graph_def, int64_t n) {
  if (!graph_def || n <= 0)
    return kiln_fail(inst, KILN_ERROR, "summary graph: the compiler could not serialize this module's graph");
  Tensorflow__Event ev;
  tensorflow__event__init(&ev);
  ev.what_case = TENSORFLOW__EVENT__WHAT_GRAPH_DEF;
  ev.graph_def.data = (uint8_t *)graph_def;
  ev.graph_def.len = (size_t)n;
  int written;
  int st = kiln_summary_emit(inst, &ev, &written);
  if (st == KILN_OK && !written) return no_writer(inst, "summary graph");
  return st;
}
#endif

int kiln_rt_summary_close(kiln_inst *inst) {
  struct kiln_summary *sm = state_of(inst, 0);
  if (!sm) return KILN_OK;
  pthread_mutex_lock(&sm->mu);
  int st = close_locked(inst, sm);
  pthread_mutex_unlock(&sm->mu);
  return st;
}

void kiln_summary_destroy(kiln_inst *inst) {
  if (!inst || !inst->services) return;
  struct kiln_summary *sm = inst->services->summary;
  if (!sm) return;
  pthread_mutex_lock(&sm->mu);
  if (close_locked(inst, sm) != KILN_OK) fprintf(stderr, "warning: %s\n", kiln_inst_error(inst));
  for (int i = 0; i < sm->n_vals; i++) free_pending(&sm->vals[i]);
  pthread_mutex_unlock(&sm->mu);
  pthread_mutex_destroy(&sm->mu);
  free(sm->vals);
  free(sm->buf);
  free(sm);
  inst->services->summary = NULL;
}
