/* diag.h — errors as values: a context object collects diagnostics with
 * file:line:col, so no library function ever prints-and-exits.  The driver
 * prints what was collected (cproc's style: `file:line:col: error: msg`). */
#ifndef KILN_DIAG_H
#define KILN_DIAG_H

#include <stdbool.h>
#include <stdio.h>

typedef struct kc_loc {
  const char *file;
  int line, col; /* 1-based; 0 when unknown */
} kc_loc;

typedef struct kc_diag {
  int n_errors;
  int max_errors;  /* stop collecting after this many (0 = 20) */
  char *text;      /* every diagnostic, one per line */
  size_t len, cap;
} kc_diag;

/* Records an error at `loc`; returns false so callers can `return kc_error(...)`. */
bool kc_error(kc_diag *d, kc_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records an error about a named node (for IR that came without positions). */
bool kc_error_node(kc_diag *d, kc_loc loc, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records a note (does not count as an error). */
void kc_note(kc_diag *d, kc_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes all collected text to f. */
void kc_diag_print(const kc_diag *d, FILE *f);
/* Frees collected text and resets the counts. */
void kc_diag_clear(kc_diag *d);

#endif
