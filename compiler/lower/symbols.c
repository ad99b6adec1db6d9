/* symbols.c — C identifiers for generated symbols (see symbols.h). */
#include "lower/symbols.h"
#include <ctype.h>
#include <string.h>

const char *kc_symbol(kc_arena *a, const char *name) {
  size_t n = strlen(name);
  char *s = kc_alloc(a, n + 2);
  size_t k = 0;
  if (!n || isdigit((unsigned char)name[0])) s[k++] = '_';
  for (size_t i = 0; i < n; i++) s[k++] = isalnum((unsigned char)name[i]) ? name[i] : '_';
  s[k] = 0;
  return s;
}

const char *kc_symbol_prefix(const kg_module *m) { return kc_symbol(m->arena, m->name); }
