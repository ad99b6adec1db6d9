/* print.c — the program's `print`, run-failure reports, and the text format
 * of tensors.  The format follows NumPy's str() (nesting, blank lines between
 * blocks) so output can be compared with a TF/NumPy reference, but without
 * column alignment or line wrapping, and with "%.6g" floats, so that it is
 * easy to produce and to predict. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "rt_internal.h"

static void put_elem(FILE *f, int32_t dtype, const uint8_t *p) {
  char buf[64];
  double d;
  switch (dtype) {
  case KILN_BOOL:
    fputs(*p ? "True" : "False", f);
    return;
  case KILN_I8: {
    int8_t v;
    memcpy(&v, p, sizeof v);
    fprintf(f, "%d", (int)v);
    return;
  }
  case KILN_U8:
    fprintf(f, "%u", (unsigned)*p);
    return;
  case KILN_I32: {
    int32_t v;
    memcpy(&v, p, sizeof v);
    fprintf(f, "%ld", (long)v);
    return;
  }
  case KILN_I64: {
    int64_t v;
    memcpy(&v, p, sizeof v);
    fprintf(f, "%lld", (long long)v);
    return;
  }
  case KILN_F32: {
    float v;
    memcpy(&v, p, sizeof v);
    d = v;
    break;
  }
  default: { /* KILN_F64; the caller has rejected anything else */
    memcpy(&d, p, sizeof d);
    break;
  }
  }
  /* glibc prints a negative NaN as "-nan"; NumPy never shows the sign. */
  if (isnan(d)) {
    fputs("nan", f);
    return;
  }
  snprintf(buf, sizeof buf, "%.6g", d);
  /* Mark floats as floats ("3.0", not "3") unless the text already says so. */
  if (!strpbrk(buf, ".eni")) strcat(buf, ".0");
  fputs(buf, f);
}

/* Prints the sub-array at `depth` starting at element `*idx`; `*idx` advances. */
static void put_array(FILE *f, int32_t dtype, size_t esize, int32_t rank, const int64_t *dims,
                      int32_t depth, const uint8_t *data, int64_t *idx) {
  if (depth == rank) {
    put_elem(f, dtype, data + (size_t)*idx * esize);
    (*idx)++;
    return;
  }
  fputc('[', f);
  int32_t left = rank - depth; /* axes from here down, this one included */
  for (int64_t i = 0; i < dims[depth]; i++) {
    if (i > 0) {
      /* NumPy: one space between scalars; between sub-arrays, left-1
       * newlines and an indent of one space per bracket still open. */
      if (left == 1) {
        fputc(' ', f);
      } else {
        for (int32_t k = 0; k < left - 1; k++) fputc('\n', f);
        for (int32_t k = 0; k <= depth; k++) fputc(' ', f);
      }
    }
    put_array(f, dtype, esize, rank, dims, depth + 1, data, idx);
  }
  fputc(']', f);
}

int kiln_rt_fprint(FILE *f, kiln_inst *inst, int32_t dtype, int32_t rank, const int64_t *dims,
                   const void *data) {
  size_t esize = kiln_dtype_size(dtype);
  int64_t n;
  if (!esize) return kiln_fail(inst, KILN_ERROR, "print: unknown dtype %d", (int)dtype);
  if (kiln_shape_numel(rank, dims, &n) != 0)
    return kiln_fail(inst, KILN_ERROR, "print: invalid shape (rank %d)", (int)rank);
  if (n > 0 && !data) return kiln_fail(inst, KILN_ERROR, "print: no data");
  /* One tensor is one unit of output even when several threads print. */
  flockfile(f);
  if (n == 0) {
    fputs("[]", f);
  } else {
    int64_t idx = 0;
    put_array(f, dtype, esize, rank, dims, 0, data, &idx);
  }
  fputc('\n', f);
  funlockfile(f);
  return KILN_OK;
}

int kiln_rt_print(kiln_inst *inst, int32_t dtype, int32_t rank, const int64_t *dims,
                  const void *data) {
  return kiln_rt_fprint(stdout, inst, dtype, rank, dims, data);
}

int kiln_rt_print_text(kiln_inst *inst, const char *text) {
  (void)inst;
  flockfile(stdout);
  fputs(text ? text : "", stdout);
  fputc('\n', stdout);
  funlockfile(stdout);
  return KILN_OK;
}

int kiln_rt_report(kiln_inst *inst, int status) {
  if (status == KILN_OK) return status;
  /* Keep the program's output ahead of the error when both go to a terminal. */
  fflush(stdout);
  const char *msg = inst ? inst->error : "";
  if (!msg[0]) {
    switch (status) {
    case KILN_OUT_OF_RANGE:
      msg = "out of range: a queue is closed and has too few elements (OutOfRange)";
      break;
    case KILN_CANCELLED:
      msg = "cancelled: a blocked enqueue was cancelled by close (Cancelled)";
      break;
    default:
      msg = "the run failed";
      break;
    }
  }
  fprintf(stderr, "error: %s\n", msg);
  return status;
}
