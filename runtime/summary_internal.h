/* summary_internal.h — runtime-private interface of the summary writer
 * (runtime/summary.c) and the tracer (runtime/trace.c): what they share with
 * each other, with inst.c (teardown), main.c (--trace) and the unit tests.
 * Nothing here is called from generated code.
 *
 * Each instance's state lives in its services (rt_internal.h):
 * services->summary (struct kiln_summary, summary.c) and services->trace
 * (struct kiln_trace, trace.c), each created on first use. */
#ifndef KILN_SUMMARY_INTERNAL_H
#define KILN_SUMMARY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "kilnrt.h"

struct Tensorflow__Event; /* build/proto/event.pb-c.h */

/* ---- the event-file writer (summary.c) ---- */

/* Seconds between flushes of an open writer: a write that finds the last
 * flush older than this flushes, so a crash loses at most this much.  Close,
 * kiln_inst_destroy and exit flush too. */
#define KILN_SUMMARY_FLUSH_SECS 2.0
/* A writer also flushes once this many bytes are buffered. */
#define KILN_SUMMARY_FLUSH_BYTES (1 << 20)

/* Frames `n` bytes as one TFRecord: header = uint64 length (little endian) +
 * masked CRC32C of those 8 bytes; footer = masked CRC32C of the data. */
void kiln_tfrecord_frame(const void *data, uint64_t n, uint8_t header[12], uint8_t footer[4]);

/* Appends `ev` (wall_time set to now when 0) to the instance's open event
 * file.  *written is 1 when a writer was open, 0 when none was (nothing
 * done, KILN_OK). */
int kiln_summary_emit(kiln_inst *inst, struct Tensorflow__Event *ev, int *written);

/* Copies the open writer's log directory into buf; 0 when none is open. */
int kiln_summary_logdir(kiln_inst *inst, char *buf, size_t cap);

/* Closes the writer (flushing it) and frees the summary state; inst.c calls
 * it from kiln_inst_destroy, after the tracer's. */
void kiln_summary_destroy(kiln_inst *inst);

/* TensorFlow's default histogram bucket limits (histogram.cc): -DBL_MAX,
 * -1e20/1.1^k ... -1e-12, 0, 1e-12 ... (x1.1) ... DBL_MAX.  *n set. */
const double *kiln_histogram_limits(size_t *n);

/* ---- traced runs (trace.c) ---- */

/* `--trace` of a kiln binary: every node of every run from now on is
 * recorded (inst->tracing stays set; traced runs of the program still write
 * their own step), until kiln_trace_all_end writes them all under `tag`. */
int kiln_trace_all_begin(kiln_inst *inst);
int kiln_trace_all_end(kiln_inst *inst, const char *tag);

/* Frees the tracer's records; inst.c calls it from kiln_inst_destroy. */
void kiln_trace_destroy(kiln_inst *inst);

#endif
