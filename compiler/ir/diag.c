/* diag.c — collecting diagnostics into a kc_diag (see diag.h). */
#include "ir/diag.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void append(kc_diag *d, const char *s, size_t n) {
  if (d->len + n + 1 > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 256;
    while (cap < d->len + n + 1) cap *= 2;
    char *t = realloc(d->text, cap);
    if (!t) return;
    d->text = t;
    d->cap = cap;
  }
  memcpy(d->text + d->len, s, n);
  d->len += n;
  d->text[d->len] = 0;
}

static void vrecord(kc_diag *d, kc_loc loc, const char *kind, const char *node, const char *fmt,
                    va_list ap) {
  char buf[1024];
  int k = 0;
  if (loc.file && loc.line > 0)
    k = snprintf(buf, sizeof buf, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
  else if (loc.file)
    k = snprintf(buf, sizeof buf, "%s: %s: ", loc.file, kind);
  else
    k = snprintf(buf, sizeof buf, "kiln: %s: ", kind);
  if (node && k < (int)sizeof buf) k += snprintf(buf + k, sizeof buf - k, "node '%s': ", node);
  if (k < (int)sizeof buf) k += vsnprintf(buf + k, sizeof buf - k, fmt, ap);
  if (k >= (int)sizeof buf) k = sizeof buf - 1;
  append(d, buf, (size_t)k);
  append(d, "\n", 1);
}

static bool full(kc_diag *d) { return d->n_errors >= (d->max_errors ? d->max_errors : 20); }

bool kc_error(kc_diag *d, kc_loc loc, const char *fmt, ...) {
  if (!full(d)) {
    va_list ap;
    va_start(ap, fmt);
    vrecord(d, loc, "error", NULL, fmt, ap);
    va_end(ap);
  }
  d->n_errors++;
  return false;
}

bool kc_error_node(kc_diag *d, kc_loc loc, const char *node, const char *fmt, ...) {
  if (!full(d)) {
    va_list ap;
    va_start(ap, fmt);
    vrecord(d, loc, "error", node, fmt, ap);
    va_end(ap);
  }
  d->n_errors++;
  return false;
}

void kc_note(kc_diag *d, kc_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord(d, loc, "note", NULL, fmt, ap);
  va_end(ap);
}

void kc_diag_print(const kc_diag *d, FILE *f) {
  if (d->text) fputs(d->text, f);
}

void kc_diag_clear(kc_diag *d) {
  free(d->text);
  d->text = NULL;
  d->len = d->cap = 0;
  d->n_errors = 0;
}
