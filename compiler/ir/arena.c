/* arena.c — the bump allocator behind every IR module: one free releases a
 * whole graph, which keeps parsers and passes (and the fuzzer) leak-free. */
#include "ir/ir.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} chunk;

struct kc_arena {
  chunk *head;
};

kc_arena *kc_arena_new(void) { return calloc(1, sizeof(kc_arena)); }

void kc_arena_free(kc_arena *a) {
  if (!a) return;
  for (chunk *c = a->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(a);
}

void *kc_alloc(kc_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!n) n = 16;
  chunk *c = a->head;
  if (!c || c->used + n > c->cap) {
    size_t cap = n > 65536 ? n : 65536;
    c = calloc(1, sizeof(chunk) + cap);
    if (!c) abort(); /* out of memory: nothing sensible to report */
    c->cap = cap;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

char *kc_strndup(kc_arena *a, const char *s, size_t n) {
  char *p = kc_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *kc_strdup(kc_arena *a, const char *s) { return kc_strndup(a, s, strlen(s)); }

char *kc_sprintf(kc_arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0; /* an encoding error: an empty string rather than a wild size */
  char *p = kc_alloc(a, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}
