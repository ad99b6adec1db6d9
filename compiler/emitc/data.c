/* data.c — the C backend's constants: const nodes, literal variable
 * initializers and the summary GraphDef as static arrays of their dtype
 * (values printed to round-trip), or, with --weights-file, as zeroed
 * buffers listed in a kiln_weights_desc that the runtime fills from the
 * checksummed side file.  The file's layout and checksums are
 * lower/weights.c's (docs/runtime.md, "Weights files"), and the file is
 * written by the same kl_weights_write. */
#include "emitc/ke.h"
#include "lower/symbols.h"
#include "lower/weights.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { W_PREAMBLE = 48, W_ENTRY = 16, W_ALIGN = 64 };

static int64_t align_up(int64_t v) { return (v + W_ALIGN - 1) / W_ALIGN * W_ALIGN; }

/* zlib's CRC-32, as lower/weights.c and runtime/weights.c compute it */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t n) {
  static uint32_t tab[256];
  if (!tab[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      tab[i] = c;
    }
  const uint8_t *p = data;
  crc = ~crc;
  while (n--) crc = tab[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static void value(ke_buf *b, kiln_dtype dt, const void *data, int64_t i) {
  char s[64];
  switch (dt) {
  case KILN_F32:
  case KILN_F64: {
    double v = dt == KILN_F32 ? (double)((const float *)data)[i] : ((const double *)data)[i];
    bool f32 = dt == KILN_F32;
    if (isnan(v)) snprintf(s, sizeof s, "%s", f32 ? "NAN" : "(double)NAN");
    else if (isinf(v)) snprintf(s, sizeof s, "%s%s", v < 0 ? "-" : "", f32 ? "INFINITY" : "(double)INFINITY");
    else {
      snprintf(s, sizeof s, f32 ? "%.9g" : "%.17g", v);
      if (!strpbrk(s, ".e")) strcat(s, ".0");
      if (f32) strcat(s, "f");
    }
    break;
  }
  case KILN_I32: {
    int32_t v = ((const int32_t *)data)[i];
    if (v == INT32_MIN) snprintf(s, sizeof s, "(-2147483647 - 1)");
    else snprintf(s, sizeof s, "%ld", (long)v);
    break;
  }
  case KILN_I64: {
    int64_t v = ((const int64_t *)data)[i];
    if (v == INT64_MIN) snprintf(s, sizeof s, "(-9223372036854775807LL - 1)");
    else snprintf(s, sizeof s, "%lldLL", (long long)v);
    break;
  }
  case KILN_I8: snprintf(s, sizeof s, "%d", (int)((const int8_t *)data)[i]); break;
  default: snprintf(s, sizeof s, "%u", (unsigned)((const uint8_t *)data)[i]); break;
  }
  ke_puts(b, s);
}

const char *ke_const_data(ke_ctx *E, const void *bytes, int64_t n, kiln_dtype dt, const char *name) {
  int64_t es = (int64_t)kg_dtype_size(dt);
  if (n % es) dt = KILN_U8, es = 1;
  int64_t count = n / es;
  const char *cname = ke_str(E, "k%d_%s", E->uid++, kc_symbol(E->m->arena, name));
  if (E->weights_file) { /* a zeroed buffer, filled by the runtime from the side file */
    if (E->n_blobs == E->cap_blobs) {
      E->cap_blobs = E->cap_blobs ? 2 * E->cap_blobs : 16;
      E->blobs = realloc(E->blobs, sizeof *E->blobs * (size_t)E->cap_blobs);
    }
    E->blobs[E->n_blobs++] = (ke_blob){bytes, n, 0, cname};
    ke_printf(&E->data, "static %s %s[%lld]; /* %lld bytes from the weights file */\n", ke_ctype(dt), cname,
              (long long)(count ? count : 1), (long long)n);
    return cname;
  }
  E->const_bytes += n;
  if (E->const_bytes > E->static_limit) return cname; /* reported once at the end; nothing more is written */
  ke_printf(&E->data, "static const %s %s[%lld] = {", ke_ctype(dt), cname, (long long)(count ? count : 1));
  for (int64_t i = 0; i < count; i++) {
    if (i) ke_puts(&E->data, ",");
    if (i % 8 == 0 && count > 8) ke_puts(&E->data, "\n  ");
    value(&E->data, dt, bytes, i);
  }
  if (!count) ke_puts(&E->data, "0");
  ke_puts(&E->data, count > 8 ? "\n};\n" : "};\n");
  return cname;
}

/* Offsets, the data checksum and the sizes, as lower/weights.c lays out. */
static void lay_out(ke_ctx *E, int64_t *header_size, int64_t *data_size, uint32_t *data_crc) {
  static const uint8_t zeros[W_ALIGN];
  int64_t at = 0;
  uint32_t crc = 0;
  for (int i = 0; i < E->n_blobs; i++) {
    int64_t off = align_up(at);
    crc = crc32_update(crc, zeros, (size_t)(off - at));
    crc = crc32_update(crc, E->blobs[i].data, (size_t)E->blobs[i].size);
    E->blobs[i].offset = off;
    at = off + E->blobs[i].size;
  }
  *data_size = align_up(at);
  *data_crc = crc32_update(crc, zeros, (size_t)(*data_size - at));
  *header_size = align_up(W_PREAMBLE + (int64_t)E->n_blobs * W_ENTRY + 4);
}

const char *ke_weights_desc(ke_ctx *E) {
  if (!E->weights_file) return "0";
  int64_t hs, ds;
  uint32_t crc;
  lay_out(E, &hs, &ds, &crc);
  ke_buf *b = &E->data;
  ke_printf(b, "\n/* --weights-file: where the runtime loads the side file's constants */\n");
  if (E->n_blobs) {
    ke_printf(b, "static uint8_t *const %s__weights_blobs[%d] = {", E->sym, E->n_blobs);
    for (int i = 0; i < E->n_blobs; i++) ke_printf(b, "%s(uint8_t *)%s", i ? ", " : "", E->blobs[i].name);
    ke_printf(b, "};\nstatic const int64_t %s__weights_sizes[%d] = {", E->sym, E->n_blobs);
    for (int i = 0; i < E->n_blobs; i++) ke_printf(b, "%s%lld", i ? ", " : "", (long long)E->blobs[i].size);
    ke_puts(b, "};\n");
  }
  ke_printf(b, "static int32_t %s__weights_loaded;\n", E->sym);
  ke_printf(b, "static const kiln_weights_desc %s__weights = {%s, %lld, %luUL, %d, %s, %s, &%s__weights_loaded};\n",
            E->sym, ke_cstring(E, E->weights_file), (long long)(hs + ds), (unsigned long)crc, E->n_blobs,
            E->n_blobs ? ke_str(E, "%s__weights_blobs", E->sym) : "0",
            E->n_blobs ? ke_str(E, "%s__weights_sizes", E->sym) : "0", E->sym);
  return ke_str(E, "&%s__weights", E->sym);
}

bool ke_weights_write(ke_ctx *E, const char *path) {
  kl_weights w = {0};
  w.path = path;
  w.file = E->weights_file;
  w.n = w.cap = E->n_blobs;
  w.blob = calloc((size_t)E->n_blobs + 1, sizeof *w.blob);
  for (int i = 0; i < E->n_blobs; i++) w.blob[i] = (kl_blob){E->blobs[i].data, E->blobs[i].size, E->blobs[i].offset, NULL};
  lay_out(E, &w.header_size, &w.data_size, &w.data_crc);
  w.sealed = true;
  bool ok = kl_weights_write(&w, E->diag);
  free(w.blob);
  return ok;
}
