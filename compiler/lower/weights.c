/* weights.c — the compiler's half of --weights-file (weights.h): zeroed
 * buffers in the module, the kiln_weights_desc that points the runtime at
 * them, and the file itself.  The format is documented in docs/runtime.md
 * and at the top of runtime/weights.c, which reads it. */
#include "lower/weights.h"
#include "lower/lower.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W_MAGIC "KILNWGTS"
#define W_VERSION 1u
#define W_PREAMBLE 48
#define W_ENTRY 16
#define W_ALIGN 64

static int64_t align_up(int64_t v) { return (v + W_ALIGN - 1) / W_ALIGN * W_ALIGN; }

/* zlib's CRC-32 (reflected 0xEDB88320), as runtime/checkpoint.c computes it. */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t n) {
  uint32_t tab[256]; /* cheap next to the bytes it checksums */
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

static const uint8_t zeros[W_ALIGN];

void kl_weights_init(kl_weights *w, kc_arena *a, const char *out, bool strip_ext, bool write) {
  memset(w, 0, sizeof *w);
  const char *slash = strrchr(out, '/');
  const char *base = slash ? slash + 1 : out;
  const char *dot = strip_ext ? strrchr(base, '.') : NULL;
  int n = dot && dot != base ? (int)(dot - out) : (int)strlen(out);
  const char *path = kc_sprintf(a, "%.*s.weights", n, out);
  w->file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  w->path = write ? path : NULL;
}

LLVMValueRef kl_weights_add(kl_ctx *L, kl_weights *w, const void *bytes, int64_t n, const char *name) {
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 16;
    w->blob = realloc(w->blob, sizeof *w->blob * (size_t)w->cap);
  }
  LLVMTypeRef ty = LLVMArrayType2(L->t_i8, (uint64_t)n);
  LLVMValueRef g = LLVMAddGlobal(L->M, ty, name);
  LLVMSetInitializer(g, LLVMConstNull(ty));
  LLVMSetLinkage(g, LLVMInternalLinkage);
  LLVMSetAlignment(g, W_ALIGN);
  w->blob[w->n++] = (kl_blob){bytes, n, 0, g};
  return g;
}

static void lay_out(kl_weights *w) {
  int64_t at = 0;
  uint32_t crc = 0;
  for (int i = 0; i < w->n; i++) {
    int64_t off = align_up(at);
    crc = crc32_update(crc, zeros, (size_t)(off - at));
    crc = crc32_update(crc, w->blob[i].data, (size_t)w->blob[i].size);
    w->blob[i].offset = off;
    at = off + w->blob[i].size;
  }
  w->data_size = align_up(at);
  w->data_crc = crc32_update(crc, zeros, (size_t)(w->data_size - at));
  w->header_size = align_up(W_PREAMBLE + (int64_t)w->n * W_ENTRY + 4);
  w->sealed = true;
}

LLVMValueRef kl_emit_weights_desc(kl_ctx *L, kl_weights *w, const char *sym) {
  lay_out(w);
  LLVMValueRef blobs = LLVMConstNull(L->t_ptr), sizes = LLVMConstNull(L->t_ptr);
  if (w->n) {
    LLVMValueRef *ptrs = calloc((size_t)w->n, sizeof *ptrs);
    int64_t *n = calloc((size_t)w->n, sizeof *n);
    for (int i = 0; i < w->n; i++) ptrs[i] = w->blob[i].global, n[i] = w->blob[i].size;
    LLVMValueRef arr = LLVMConstArray2(L->t_ptr, ptrs, (uint64_t)w->n);
    blobs = LLVMAddGlobal(L->M, LLVMTypeOf(arr), "weights_blobs");
    LLVMSetInitializer(blobs, arr);
    LLVMSetGlobalConstant(blobs, 1);
    LLVMSetLinkage(blobs, LLVMPrivateLinkage);
    sizes = kl_const_i64s(L, n, w->n, "weights_sizes");
    free(ptrs);
    free(n);
  }
  LLVMValueRef name = LLVMConstStringInContext(L->C, w->file, (unsigned)strlen(w->file), 0);
  LLVMValueRef file = LLVMAddGlobal(L->M, LLVMTypeOf(name), "weights_file");
  LLVMSetInitializer(file, name);
  LLVMSetGlobalConstant(file, 1);
  LLVMSetLinkage(file, LLVMPrivateLinkage);
  LLVMValueRef loaded = LLVMAddGlobal(L->M, L->t_i32, kc_sprintf(L->m->arena, "%s__weights_loaded", sym));
  LLVMSetInitializer(loaded, kl_i32(L, 0));
  LLVMSetLinkage(loaded, LLVMInternalLinkage);
  LLVMValueRef f[] = {file, kl_i64(L, w->header_size + w->data_size), LLVMConstInt(L->t_i32, w->data_crc, 0),
                      kl_i32(L, w->n), blobs, sizes, loaded};
  LLVMValueRef v = LLVMConstStructInContext(L->C, f, 7, 0);
  LLVMValueRef g = LLVMAddGlobal(L->M, LLVMTypeOf(v), kc_sprintf(L->m->arena, "%s__weights", sym));
  LLVMSetInitializer(g, v);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  return g;
}

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

bool kl_weights_write(const kl_weights *w, kc_diag *d) {
  if (!w->path) return true;
  if (!w->sealed) return kc_error(d, (kc_loc){w->path, 0, 0}, "internal error: weights not laid out");
  size_t tn = strlen(w->path) + 32;
  char *tmp = malloc(tn);
  snprintf(tmp, tn, "%s.tmp.%ld", w->path, (long)getpid());
  uint8_t *hdr = calloc(1, (size_t)w->header_size);
  memcpy(hdr, W_MAGIC, 8);
  put_u32(hdr + 8, W_VERSION);
  put_u32(hdr + 12, (uint32_t)w->n);
  put_u64(hdr + 16, (uint64_t)w->header_size);
  put_u64(hdr + 24, (uint64_t)w->data_size);
  put_u64(hdr + 32, (uint64_t)(w->header_size + w->data_size));
  put_u32(hdr + 40, w->data_crc);
  for (int i = 0; i < w->n; i++) {
    put_u64(hdr + W_PREAMBLE + (size_t)i * W_ENTRY, (uint64_t)w->blob[i].offset);
    put_u64(hdr + W_PREAMBLE + (size_t)i * W_ENTRY + 8, (uint64_t)w->blob[i].size);
  }
  put_u32(hdr + w->header_size - 4, crc32_update(0, hdr, (size_t)w->header_size - 4));
  FILE *f = fopen(tmp, "wb");
  bool ok = f != NULL;
  if (ok) {
    ok = fwrite(hdr, 1, (size_t)w->header_size, f) == (size_t)w->header_size;
    int64_t at = 0;
    for (int i = 0; ok && i <= w->n; i++) {
      int64_t off = i < w->n ? w->blob[i].offset : w->data_size;
      ok = fwrite(zeros, 1, (size_t)(off - at), f) == (size_t)(off - at);
      if (!ok || i == w->n) break;
      size_t sz = (size_t)w->blob[i].size;
      ok = !sz || fwrite(w->blob[i].data, 1, sz, f) == sz;
      at = off + w->blob[i].size;
    }
    ok = fclose(f) == 0 && ok;
  }
  int err = errno;
  if (ok && rename(tmp, w->path) != 0) ok = false, err = errno;
  if (!ok) {
    unlink(tmp);
    kc_error(d, (kc_loc){w->path, 0, 0}, "cannot write the weights file: %s", strerror(err));
  }
  free(hdr);
  free(tmp);
  return ok;
}

void kl_weights_free(kl_weights *w) {
  free(w->blob);
  w->blob = NULL;
  w->n = w->cap = 0;
}
