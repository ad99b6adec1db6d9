/* test_summary.c — summaries, event files and traced runs.
 *
 * examples/summaries.kg is built and run; its event file is then checked
 * independently of the runtime that wrote it: the TFRecords are read here
 * (both masked CRC32Cs of every record checked by this file's own bitwise
 * CRC), each record is decoded by `protoc --decode=tensorflow.Event` (with
 * the files of proto/), and the nested GraphDef and RunMetadata bytes, cut out of
 * the records by this file's own wire-format reader, by protoc too.  The
 * scalars must equal what the program printed; the Chrome trace must parse
 * (python3's json) and name the same nodes as the RunMetadata.  The runtime
 * API is also driven directly: threads recording at once, the flush period,
 * the flush at exit, and the errors.  No Criterion timeouts (they leak under
 * LeakSanitizer): tu_run bounds every command. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "crc32c.h"
#include "kilnrt.h"
#include "summary_internal.h"
#include "testutil.h"

/* ---- an independent TFRecord reader ---- */

static uint32_t crc32c_bitwise(const uint8_t *p, size_t n) {
  uint32_t c = ~0u;
  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
  }
  return ~c;
}

static uint32_t masked(const uint8_t *p, size_t n) {
  uint32_t c = crc32c_bitwise(p, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct record {
  const uint8_t *data;
  size_t len;
} record;

/* Splits a file into records, checking both CRCs of each.  Returns the
 * record count, or -1 with the reason in err. */
static int read_records(const uint8_t *buf, size_t size, record *out, int max, char *err, size_t errlen) {
  size_t off = 0;
  int n = 0;
  while (off < size) {
    if (size - off < 12) return snprintf(err, errlen, "record %d at %zu: truncated header", n, off), -1;
    uint64_t len = 0;
    for (int i = 0; i < 8; i++) len |= (uint64_t)buf[off + i] << (8 * i);
    if (le32(buf + off + 8) != masked(buf + off, 8))
      return snprintf(err, errlen, "record %d at %zu: length CRC mismatch", n, off), -1;
    if (len > size - off - 12 || size - off - 12 - len < 4)
      return snprintf(err, errlen, "record %d at %zu: truncated data", n, off), -1;
    const uint8_t *data = buf + off + 12;
    if (le32(data + len) != masked(data, (size_t)len))
      return snprintf(err, errlen, "record %d at %zu: data CRC mismatch", n, off), -1;
    if (n < max) out[n] = (record){data, (size_t)len};
    n++;
    off += 12 + (size_t)len + 4;
  }
  return n;
}

/* ---- an independent protobuf wire reader (enough to cut out bytes fields) ---- */

static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v) {
  *v = 0;
  for (int s = 0; *i < n && s < 64; s += 7) {
    uint8_t c = p[(*i)++];
    *v |= (uint64_t)(c & 0x7f) << s;
    if (c < 0x80) return 0;
  }
  return -1;
}

/* The first length-delimited field `field` of a message; 0 when found. */
static int bytes_field(const uint8_t *p, size_t n, uint32_t field, const uint8_t **out, size_t *len) {
  size_t i = 0;
  while (i < n) {
    uint64_t key, v;
    if (varint(p, n, &i, &key)) return -1;
    switch (key & 7) {
    case 0:
      if (varint(p, n, &i, &v)) return -1;
      break;
    case 1: i += 8; break;
    case 5: i += 4; break;
    case 2:
      if (varint(p, n, &i, &v) || v > n - i) return -1;
      if ((key >> 3) == field) {
        *out = p + i, *len = (size_t)v;
        return 0;
      }
      i += (size_t)v;
      break;
    default: return -1;
    }
  }
  return -1;
}

/* ---- protoc ---- */

/* `protoc --decode=TYPE -I proto proto/FILE` of the bytes, on its stdin. */
static char *decode(const char *type, const char *file, const uint8_t *bytes, size_t n) {
  char tmp[] = "/tmp/kiln-pb-XXXXXX";
  int fd = mkstemp(tmp);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, bytes, n), (ssize_t)n);
  close(fd);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "exec protoc --decode=%s -I proto proto/%s < %s", type, file, tmp);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  tu_result r = tu_run(argv, 60);
  unlink(tmp);
  cr_assert_eq(r.status, 0, "protoc --decode=%s failed:\n%s", type, r.err);
  char *out = r.out;
  r.out = NULL;
  tu_free(&r);
  return out;
}

/* The number after `field: ` in the block of `value { tag: "TAG" ... }`, or
 * 0 when the field is absent (proto3 leaves zeros out). */
static double value_field(const char *text, const char *tag, const char *field) {
  char key[128];
  snprintf(key, sizeof key, "tag: \"%s\"", tag);
  const char *p = strstr(text, key);
  cr_assert_not_null(p, "no value tagged %s in:\n%s", tag, text);
  const char *end = strstr(p, "\n  value {");
  if (!end) end = p + strlen(p);
  char f[64];
  snprintf(f, sizeof f, " %s: ", field);
  const char *q = strstr(p, f);
  if (!q || q > end) return 0;
  return strtod(q + strlen(f), NULL);
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static const char *python(void) {
  const char *py = getenv("PYTHON");
  return py && *py ? py : "/usr/bin/python3";
}

/* Node names of the complete events of a Chrome trace, one a line, in file
 * order; the JSON must parse and every event must carry what viewers need. */
static char *chrome_names(const char *path) {
  static const char script[] =
      "import json, sys\n"
      "d = json.load(open(sys.argv[1]))\n"
      "for e in d['traceEvents']:\n"
      "    if e['ph'] == 'X':\n"
      "        assert e['dur'] >= 0 and e['ts'] >= 0 and 'pid' in e and 'tid' in e\n"
      "        assert e['args']['op'] and e['args']['bytes'] >= 0\n"
      "        print(e['name'])\n";
  char *argv[] = {(char *)python(), "-c", (char *)script, (char *)path, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "%s is not a valid Chrome trace:\n%s", path, r.err);
  char *out = r.out;
  r.out = NULL;
  tu_free(&r);
  return out;
}

/* ---- the example ---- */

typedef struct printed {
  int64_t step;
  double loss, w_norm, w[4];
} printed;

/* Builds examples/summaries.kg into dir and runs it there (its log
 * directory is relative); returns its stdout. */
static char *build_and_run(const char *dir, const char *extra_arg) {
  char exe[512], cmd[1024];
  snprintf(exe, sizeof exe, "%s/summaries", dir);
  char *build[] = {(char *)tu_kiln(), "build", "examples/summaries.kg", "-o", exe, NULL};
  tu_result r = tu_run(build, 120);
  cr_assert_eq(r.status, 0, "kiln build failed:\n%s", r.err);
  tu_free(&r);
  snprintf(cmd, sizeof cmd, "cd '%s' && exec ./summaries %s", dir, extra_arg);
  char *run[] = {"/bin/sh", "-c", cmd, NULL};
  r = tu_run(run, 60);
  cr_assert_eq(r.status, 0, "summaries exited %d:\n%s", r.status, r.err);
  char *out = r.out;
  r.out = NULL;
  tu_free(&r);
  return out;
}

static int parse_printed(const char *out, printed *p, int max) {
  int n = 0;
  const char *s = out;
  while (n < max) {
    char *end;
    long long step = strtoll(s, &end, 10);
    if (end == s || *end != '\n') break;
    p[n].step = step;
    s = end + 1;
    p[n].loss = strtod(s, &end), s = strchr(end, '\n') + 1;
    p[n].w_norm = strtod(s, &end), s = strchr(end, '\n') + 1;
    cr_assert_eq(*s, '[');
    s++;
    for (int i = 0; i < 4; i++) p[n].w[i] = strtod(s, &end), s = end;
    s = strchr(s, '\n') + 1;
    n++;
  }
  return n;
}

static void assert_close(double got, double want, const char *what) {
  cr_assert(fabs(got - want) <= 1e-5 * fmax(1.0, fabs(want)), "%s: event file has %.9g, program printed %.9g", what,
            got, want);
}

static char *only_event_file(const char *logdir) {
  int n = 0;
  char **files = tu_list(logdir, "", &n);
  char *found = NULL;
  for (int i = 0; i < n; i++) {
    if (strstr(files[i], "/events.out.tfevents.")) {
      cr_assert_null(found, "two event files in %s", logdir);
      found = files[i];
    } else {
      free(files[i]);
    }
  }
  free(files);
  cr_assert_not_null(found, "no event file in %s", logdir);
  return found;
}

Test(summary, example_event_file) {
  char *dir = tu_tmpdir();
  char *out = build_and_run(dir, "");
  printed p[8];
  int steps = parse_printed(out, p, 8);
  cr_assert_eq(steps, 4, "the program printed:\n%s", out);
  cr_assert_not_null(strstr(out, "traced one step"));

  char logdir[600];
  snprintf(logdir, sizeof logdir, "%s/build/summaries-logs", dir);
  char *events = only_event_file(logdir);
  size_t size;
  uint8_t *buf = (uint8_t *)tu_read_file(events, &size);
  cr_assert_not_null(buf);
  record rec[32];
  char err[256];
  int n = read_records(buf, size, rec, 32, err, sizeof err);
  cr_assert_geq(n, 0, "%s: %s", events, err);
  /* file_version, graph, 4 summaries, the run metadata */
  cr_assert_eq(n, 7, "%d records", n);

  char *text[7];
  for (int i = 0; i < n; i++) text[i] = decode("tensorflow.Event", "event.proto", rec[i].data, rec[i].len);
  cr_assert_not_null(strstr(text[0], "file_version: \"brain.Event:2\""), "%s", text[0]);
  cr_assert_not_null(strstr(text[0], "wall_time: "), "%s", text[0]);

  /* the graph */
  cr_assert_not_null(strstr(text[1], "graph_def: "), "%s", text[1]);
  const uint8_t *gbytes;
  size_t glen;
  cr_assert_eq(bytes_field(rec[1].data, rec[1].len, 4, &gbytes, &glen), 0);
  char *graph = decode("tensorflow.GraphDef", "graph.proto", gbytes, glen);
  static const char *const nodes[] = {"global_step", "w", "target", "loss", "w_norm", "loss_summary",
                                      "norm_summary", "weights_hist", "note", "merged", "sgd/step", "train"};
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
    char want[128];
    snprintf(want, sizeof want, "  name: \"%s\"\n", nodes[i]);
    cr_assert_not_null(strstr(graph, want), "no node %s in the GraphDef:\n%.4000s", nodes[i], graph);
  }
  cr_assert_not_null(strstr(graph, "op: \"histogram_summary\""));
  cr_assert_not_null(strstr(graph, "input: \"^sgd/step\""), "train's control input");
  cr_assert_not_null(strstr(graph, "type: DT_INT64"), "global_step's dtype");
  cr_assert_not_null(strstr(graph, "key: \"_output_shapes\""));

  /* the four summaries, one per step, equal to what was printed */
  for (int s = 0; s < 4; s++) {
    const char *t = text[2 + s];
    cr_assert_not_null(strstr(t, "summary {"), "%s", t);
    long long step = 0;
    const char *sp = strstr(t, "\nstep: ");
    if (sp) step = strtoll(sp + 7, NULL, 10);
    cr_assert_eq(step, p[s].step, "summary %d has step %lld, printed %lld", s, step, (long long)p[s].step);
    assert_close(value_field(t, "loss", "simple_value"), p[s].loss, "loss");
    assert_close(value_field(t, "w_norm", "simple_value"), p[s].w_norm, "w_norm");
    double mn = DBL_MAX, mx = -DBL_MAX, sum = 0, sq = 0;
    for (int i = 0; i < 4; i++) {
      mn = fmin(mn, p[s].w[i]), mx = fmax(mx, p[s].w[i]);
      sum += p[s].w[i], sq += p[s].w[i] * p[s].w[i];
    }
    cr_assert_eq(value_field(t, "weights", "num"), 4.0);
    assert_close(value_field(t, "weights", "min"), mn, "histogram min");
    assert_close(value_field(t, "weights", "max"), mx, "histogram max");
    assert_close(value_field(t, "weights", "sum"), sum, "histogram sum");
    assert_close(value_field(t, "weights", "sum_squares"), sq, "histogram sum_squares");
    cr_assert_not_null(strstr(t, "bucket_limit: "));
    cr_assert_not_null(strstr(t, "string_val: \"least squares, lr 0.25\""), "%s", t);
    cr_assert_not_null(strstr(t, "plugin_name: \"text\""), "%s", t);
    cr_assert_not_null(strstr(t, "dtype: DT_STRING"), "%s", t);
  }

  /* the traced run: RunMetadata with one NodeExecStats per traced node */
  const char *tr = text[6];
  cr_assert_not_null(strstr(tr, "tag: \"train_step\""), "%s", tr);
  const uint8_t *trm, *md;
  size_t trm_len, md_len;
  cr_assert_eq(bytes_field(rec[6].data, rec[6].len, 8, &trm, &trm_len), 0);
  cr_assert_eq(bytes_field(trm, trm_len, 2, &md, &md_len), 0);
  char *meta = decode("tensorflow.RunMetadata", "step_stats.proto", md, md_len);
  cr_assert_eq(count(meta, "dev_stats {"), 1, "%s", meta);
  cr_assert_not_null(strstr(meta, "device: \"/job:localhost/replica:0/task:0/device:CPU:0\""));
  char json[700];
  snprintf(json, sizeof json, "%s/trace-train_step.json", logdir);
  char *names = chrome_names(json);
  int n_stats = count(meta, "node_stats {");
  cr_assert_geq(n_stats, 3, "%s", meta);
  cr_assert_eq(n_stats, count(names, "\n"), "RunMetadata has %d nodes, the Chrome trace:\n%s", n_stats, names);
  /* the same nodes in the same order */
  const char *m = meta, *nl = names;
  for (int i = 0; i < n_stats; i++) {
    m = strstr(m, "node_name: \"");
    cr_assert_not_null(m);
    m += 12;
    const char *e = strchr(nl, '\n');
    cr_assert(strncmp(m, nl, (size_t)(e - nl)) == 0 && m[e - nl] == '"', "node %d differs: %.40s vs %.40s", i, m, nl);
    nl = e + 1;
  }
  cr_assert_not_null(strstr(names, "sgd/step\n"), "%s", names);
  cr_assert_not_null(strstr(names, "train\n"), "%s", names);
  cr_assert_not_null(strstr(meta, "all_start_micros: "));
  cr_assert_not_null(strstr(meta, "timeline_label: \"sgd/step = "), "%s", meta);
  cr_assert_eq(strstr(names, "loss_summary\n"), NULL, "only the traced run's nodes");

  free(names), free(meta), free(graph);
  for (int i = 0; i < n; i++) free(text[i]);
  free(buf), free(events), free(out);
  tu_rmtree(dir);
  free(dir);
}

Test(summary, crc_check_detects_corruption) {
  char *dir = tu_tmpdir();
  char *out = build_and_run(dir, "");
  char logdir[600];
  snprintf(logdir, sizeof logdir, "%s/build/summaries-logs", dir);
  char *events = only_event_file(logdir);
  size_t size;
  uint8_t *buf = (uint8_t *)tu_read_file(events, &size);
  record rec[32];
  char err[256];
  cr_assert_eq(read_records(buf, size, rec, 32, err, sizeof err), 7, "%s", err);
  /* flip one bit in the data of each record, then in each length */
  for (int i = 0; i < 7; i++) {
    size_t at = (size_t)(rec[i].data - buf) + rec[i].len / 2;
    buf[at] ^= 0x10;
    cr_assert_eq(read_records(buf, size, rec, 32, err, sizeof err), -1, "record %d: a flipped data byte passed", i);
    char want[64];
    snprintf(want, sizeof want, "record %d at", i);
    cr_assert(strstr(err, want) && strstr(err, "data CRC mismatch"), "%s", err);
    buf[at] ^= 0x10;
    size_t hdr = (size_t)(rec[i].data - buf) - 12;
    buf[hdr + 1] ^= 0x01;
    cr_assert_eq(read_records(buf, size, rec, 32, err, sizeof err), -1);
    cr_assert(strstr(err, want) && strstr(err, "length CRC mismatch"), "%s", err);
    buf[hdr + 1] ^= 0x01;
  }
  /* a flipped CRC byte, and a cut file */
  buf[size - 1] ^= 0xff;
  cr_assert_eq(read_records(buf, size, rec, 32, err, sizeof err), -1);
  cr_assert(strstr(err, "data CRC mismatch"), "%s", err);
  buf[size - 1] ^= 0xff;
  cr_assert_eq(read_records(buf, size - 3, rec, 32, err, sizeof err), -1);
  cr_assert(strstr(err, "truncated"), "%s", err);
  cr_assert_eq(read_records(buf, size, rec, 32, err, sizeof err), 7, "%s", err);
  free(buf), free(events), free(out);
  tu_rmtree(dir);
  free(dir);
}

Test(summary, trace_flag_traces_every_run) {
  char *dir = tu_tmpdir();
  char *out = build_and_run(dir, "--trace");
  /* the program closes its writer, so the whole-program trace lands in the
   * working directory; its own traced run still has its file */
  char path[600];
  snprintf(path, sizeof path, "%s/trace-program.json", dir);
  char *names = chrome_names(path);
  /* 4 summary runs, 4 + 1 training runs: every node of every run */
  cr_assert_eq(count(names, "merged\n"), 4, "%s", names);
  cr_assert_eq(count(names, "\ntrain\n"), 5, "%s", names);
  snprintf(path, sizeof path, "%s/build/summaries-logs/trace-train_step.json", dir);
  char *step = chrome_names(path);
  cr_assert_eq(count(step, "\ntrain\n"), 1, "%s", step);
  free(step), free(names), free(out);
  tu_rmtree(dir);
  free(dir);
}

/* ---- the runtime API directly ---- */

static const kiln_module_desc empty_desc = {.name = "empty"};

static kiln_inst *new_inst(void) {
  int st;
  kiln_inst *inst = kiln_inst_create(&empty_desc, &st);
  cr_assert(inst && st == KILN_OK);
  return inst;
}

Test(summary, crc32c_known_answers) {
  cr_assert_eq(kiln_crc32c("123456789", 9), 0xe3069283u);
  uint8_t data[1000];
  for (int i = 0; i < 1000; i++) data[i] = (uint8_t)(i * 131 + 7);
  for (size_t off = 0; off < 8; off++)
    for (size_t n = 0; n + off <= 1000; n += 61) cr_assert_eq(kiln_crc32c(data + off, n), crc32c_bitwise(data + off, n));
  cr_assert_eq(kiln_crc32c_extend(kiln_crc32c(data, 333), data + 333, 667), kiln_crc32c(data, 1000));
  cr_assert_eq(kiln_crc32c_unmask(kiln_crc32c_mask(0x12345678u)), 0x12345678u);
  uint8_t hdr[12], ftr[4];
  kiln_tfrecord_frame(data, 100, hdr, ftr);
  cr_assert_eq(hdr[0], 100);
  cr_assert_eq(le32(hdr + 8), masked(hdr, 8));
  cr_assert_eq(le32(ftr), masked(data, 100));
}

Test(summary, histogram_buckets_are_tensorflows) {
  size_t n;
  const double *lim = kiln_histogram_limits(&n);
  /* 1e-12 * 1.1^k below 1e20: 774 of them, DBL_MAX, mirrored, 0 between */
  cr_assert_eq(n, 2 * 775 + 1);
  cr_assert_eq(lim[0], -DBL_MAX);
  cr_assert_eq(lim[n / 2], 0.0);
  cr_assert_eq(lim[n / 2 + 1], 1e-12);
  cr_assert_eq(lim[n - 1], DBL_MAX);
  for (size_t i = 0; i + 1 < n; i++) cr_assert_lt(lim[i], lim[i + 1]);
  for (size_t i = 0; i < n; i++) cr_assert_eq(lim[i], -lim[n - 1 - i]);
}

typedef struct worker {
  kiln_inst *inst;
  int id;
} worker;

static void *record_and_trace(void *arg) {
  worker *w = arg;
  char tag[32];
  for (int i = 0; i < 500; i++) {
    float v = (float)(w->id * 1000 + i);
    snprintf(tag, sizeof tag, "t%d/%d", w->id, i % 10);
    kiln_rt_summary_scalar(w->inst, tag, KILN_F32, &v);
    kiln_rt_trace_begin(w->inst);
    kiln_rt_trace_end(w->inst, "node", "op", 4);
  }
  return NULL;
}

Test(summary, threads_record_at_once) {
  char *dir = tu_tmpdir();
  kiln_inst *inst = new_inst();
  cr_assert_eq(kiln_rt_summary_open(inst, dir), KILN_OK, "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_trace_start(inst), KILN_OK);
  pthread_t th[4];
  worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){inst, i};
    pthread_create(&th[i], NULL, record_and_trace, &w[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  cr_assert_eq(kiln_rt_summary_write(inst, 7), KILN_OK, "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_trace_finish(inst, NULL), KILN_OK, "%s", kiln_inst_error(inst));
  cr_assert_eq(inst->tracing, 0);
  cr_assert_eq(kiln_rt_summary_close(inst), KILN_OK);
  kiln_inst_destroy(inst);

  char *events = only_event_file(dir);
  size_t size;
  uint8_t *buf = (uint8_t *)tu_read_file(events, &size);
  record rec[8];
  char err[256];
  cr_assert_eq(read_records(buf, size, rec, 8, err, sizeof err), 3, "%s", err);
  char *t = decode("tensorflow.Event", "event.proto", rec[1].data, rec[1].len);
  /* 40 tags, each holding the last value its thread recorded */
  cr_assert_eq(count(t, "tag: \""), 40, "%s", t);
  cr_assert_not_null(strstr(t, "\nstep: 7\n"));
  cr_assert_eq(value_field(t, "t2/9", "simple_value"), 2499.0);
  char *trm = decode("tensorflow.Event", "event.proto", rec[2].data, rec[2].len);
  cr_assert_not_null(strstr(trm, "tag: \"step000\""), "the default tag");
  char path[256];
  snprintf(path, sizeof path, "%s/trace-step000.json", dir);
  char *names = chrome_names(path);
  cr_assert_eq(count(names, "node\n"), 2000);
  free(names), free(trm), free(t), free(buf), free(events);
  tu_rmtree(dir);
  free(dir);
}

static size_t file_size(const char *path) {
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  return (size_t)st.st_size;
}

Test(summary, flushed_on_a_period) {
  char *dir = tu_tmpdir();
  kiln_inst *inst = new_inst();
  cr_assert_eq(kiln_rt_summary_open(inst, dir), KILN_OK);
  char *events = only_event_file(dir);
  size_t first = file_size(events);
  cr_assert_gt(first, 16, "the file version is written at once");
  float v = 1.5f;
  cr_assert_eq(kiln_rt_summary_scalar(inst, "x", KILN_F32, &v), KILN_OK);
  cr_assert_eq(kiln_rt_summary_write(inst, 0), KILN_OK);
  cr_assert_eq(file_size(events), first, "buffered until the period ends");
  usleep((useconds_t)(KILN_SUMMARY_FLUSH_SECS * 1e6) + 100000);
  cr_assert_eq(kiln_rt_summary_write(inst, 1), KILN_OK);
  size_t both = file_size(events);
  cr_assert_gt(both, first, "a write after the period flushes");
  cr_assert_eq(kiln_rt_summary_write(inst, 2), KILN_OK);
  cr_assert_eq(file_size(events), both);
  kiln_inst_destroy(inst); /* closes: flushed */
  cr_assert_gt(file_size(events), both);
  free(events);
  tu_rmtree(dir);
  free(dir);
}

/* A process that opens a writer and then exits without destroying its
 * instance ("exit"), or writes, lets a flush period pass, writes twice more
 * and aborts ("crash"). */
static const char exit_helper[] =
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <unistd.h>\n"
    "#include \"kilnrt.h\"\n"
    "static const kiln_module_desc desc = {.name = \"helper\"};\n"
    "static kiln_inst *keep; /* reachable at exit: not a leak */\n"
    "int main(int argc, char **argv) {\n"
    "  int st;\n"
    "  float v = 1.0f;\n"
    "  if (argc != 4 || !(keep = kiln_inst_create(&desc, &st)) || st) return 2;\n"
    "  if (kiln_rt_summary_open(keep, argv[1]) || kiln_rt_summary_scalar(keep, \"a\", KILN_F32, &v) ||\n"
    "      kiln_rt_summary_write(keep, 0)) return 3;\n"
    "  if (strcmp(argv[2], \"crash\") == 0) {\n"
    "    usleep((useconds_t)atoi(argv[3]) * 1000);\n"
    "    if (kiln_rt_summary_write(keep, 1) || kiln_rt_summary_write(keep, 2)) return 4;\n"
    "    abort();\n"
    "  }\n"
    "  exit(0);\n"
    "}\n";

static int records_after(const char *dir, const char *exe, const char *mode) {
  char logdir[600], ms[32];
  snprintf(logdir, sizeof logdir, "%s/%s", dir, mode);
  snprintf(ms, sizeof ms, "%d", (int)(KILN_SUMMARY_FLUSH_SECS * 1000) + 200);
  char *run[] = {(char *)exe, logdir, (char *)mode, ms, NULL};
  tu_result r = tu_run(run, 60);
  if (strcmp(mode, "crash") == 0) cr_assert_eq(r.status, 128 + SIGABRT, "%d: %s", r.status, r.err);
  else cr_assert_eq(r.status, 0, "%d: %s", r.status, r.err);
  tu_free(&r);
  char *events = only_event_file(logdir);
  size_t size;
  uint8_t *buf = (uint8_t *)tu_read_file(events, &size);
  record rec[8];
  char err[256];
  int n = read_records(buf, size, rec, 8, err, sizeof err);
  cr_assert_geq(n, 0, "%s: %s", mode, err);
  free(buf), free(events);
  return n;
}

Test(summary, flushed_at_exit_and_bounded_loss_on_crash) {
  char *dir = tu_tmpdir();
  char src[512], exe[512], rt[512];
  snprintf(src, sizeof src, "%s/helper.c", dir);
  snprintf(exe, sizeof exe, "%s/helper", dir);
  snprintf(rt, sizeof rt, "%s/libkilnrt.a", tu_build_dir());
  FILE *f = fopen(src, "w");
  cr_assert_not_null(f);
  fputs(exit_helper, f);
  fclose(f);
  char *cc[40] = {"cc", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Werror", "-Iruntime", src, rt, "-lpthread", "-lm", "-o", exe};
  int ncc = 12;
  char *extra = getenv("KILN_LDFLAGS") ? strdup(getenv("KILN_LDFLAGS")) : NULL;
  for (char *w = extra ? strtok(extra, " ") : NULL; w && ncc < 38; w = strtok(NULL, " ")) cc[ncc++] = w;
  cc[ncc] = NULL;
  tu_result r = tu_run(cc, 120);
  cr_assert_eq(r.status, 0, "compiling the helper failed:\n%s", r.err);
  tu_free(&r);
  free(extra);
  /* exit: the file version and the one write, flushed by the exit handler */
  cr_assert_eq(records_after(dir, exe, "exit"), 2);
  /* crash: the write after the period flushed itself and the one before;
   * only the last write, still buffered, is lost */
  cr_assert_eq(records_after(dir, exe, "crash"), 3);
  tu_rmtree(dir);
  free(dir);
}

Test(summary, errors) {
  kiln_inst *inst = new_inst();
  cr_assert_eq(kiln_rt_summary_write(inst, 0), KILN_ERROR);
  cr_assert_not_null(strstr(kiln_inst_error(inst), "no event file is open"), "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_summary_open(inst, "/proc/kiln-no-such-dir/logs"), KILN_ERROR);
  cr_assert_not_null(strstr(kiln_inst_error(inst), "cannot create log directory"), "%s", kiln_inst_error(inst));
  float bad[3] = {1.0f, NAN, 2.0f};
  cr_assert_eq(kiln_rt_summary_histogram(inst, "h", KILN_F32, 3, bad), KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(inst), "Nan in summary histogram for: h");
  bad[1] = INFINITY;
  cr_assert_eq(kiln_rt_summary_histogram(inst, "h", KILN_F32, 3, bad), KILN_ERROR);
  cr_assert_str_eq(kiln_inst_error(inst), "Infinity in summary histogram for: h");
  cr_assert_eq(kiln_rt_summary_close(inst), KILN_OK, "closing with nothing open is fine");
  /* hooks with tracing never started record nothing and do not crash */
  inst->tracing = 1;
  kiln_rt_trace_begin(inst);
  kiln_rt_trace_end(inst, "n", "op", 0);
  kiln_inst_destroy(inst);
}
