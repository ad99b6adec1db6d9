/* npy.c — reading and writing NumPy .npy files (format 1.0, 2.0, 3.0), the
 * way feeds get into and fetches get out of a kiln binary.
 *
 * Input files come from users (and a fuzzer), so the reader trusts nothing:
 * every length is bounded, the header is parsed as a small Python literal
 * rather than with sscanf, and each failure names the file and says what
 * was expected and what was found. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* Generous for any real header (numpy caps them at 10000 bytes on load) and
 * small enough that a hostile length field cannot exhaust memory. */
#define MAX_HEADER (1 << 20)
/* Shapes longer than this are rejected before comparing with the expected one. */
#define MAX_FILE_RANK 64

typedef struct {
  char descr[32];
  int have_descr, have_fortran, have_shape;
  int fortran;
  int rank;
  int64_t dims[MAX_FILE_RANK];
} header;

typedef struct {
  const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int eat(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A Python string literal without escapes (all numpy ever writes); copied
 * into out, truncated to cap-1 bytes.  Returns 0 on success. */
static int parse_str(cursor *c, char *out, size_t cap) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
  char q = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\') return -1;
    if (n + 1 < cap) out[n++] = *c->p;
    c->p++;
  }
  if (c->p >= c->end) return -1;
  c->p++;
  out[n] = '\0';
  return 0;
}

static int parse_bool(cursor *c, int *out) {
  skip_ws(c);
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
    c->p += 4, *out = 1;
    return 0;
  }
  if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
    c->p += 5, *out = 0;
    return 0;
  }
  return -1;
}

/* A non-negative decimal integer, optionally with Python 2's 'L' suffix. */
static int parse_dim(cursor *c, int64_t *out) {
  skip_ws(c);
  if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
  int64_t v = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *c->p - '0', &v))
      return -1;
    c->p++;
  }
  if (c->p < c->end && *c->p == 'L') c->p++;
  *out = v;
  return 0;
}

/* "(2, 3)", "(2,)", "()": the tuple of dims. */
static int parse_shape(cursor *c, header *h) {
  if (!eat(c, '(')) return -1;
  h->rank = 0;
  if (eat(c, ')')) return 0;
  for (;;) {
    if (h->rank >= MAX_FILE_RANK) return -1;
    if (parse_dim(c, &h->dims[h->rank++]) != 0) return -1;
    if (eat(c, ')')) return 0;
    if (!eat(c, ',')) return -1;
    if (eat(c, ')')) return 0;
  }
}

/* Parses the header dict; on failure writes a short reason to why. */
static int parse_header(const char *text, size_t len, header *h, const char **why) {
  cursor c = {text, text + len};
  memset(h, 0, sizeof *h);
  *why = "malformed header";
  if (!eat(&c, '{')) return -1;
  for (;;) {
    if (eat(&c, '}')) break;
    char key[32];
    if (parse_str(&c, key, sizeof key) != 0 || !eat(&c, ':')) return -1;
    if (strcmp(key, "descr") == 0) {
      skip_ws(&c);
      if (c.p < c.end && *c.p == '[') {
        *why = "structured dtypes are not supported";
        return -1;
      }
      if (parse_str(&c, h->descr, sizeof h->descr) != 0) return -1;
      h->have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (parse_bool(&c, &h->fortran) != 0) return -1;
      h->have_fortran = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (parse_shape(&c, h) != 0) {
        *why = "malformed or over-long shape in header";
        return -1;
      }
      h->have_shape = 1;
    } else {
      *why = "unexpected key in header";
      return -1;
    }
    if (eat(&c, '}')) break;
    if (!eat(&c, ',')) return -1;
  }
  if (!h->have_descr || !h->have_fortran || !h->have_shape) {
    *why = "header lacks 'descr', 'fortran_order' or 'shape'";
    return -1;
  }
  return 0;
}

/* Maps a descr to a kiln dtype, or -1.  Multi-byte types must be
 * little-endian ('<', or '=' which numpy resolves to native = little on every
 * target kiln runs on); byte order is meaningless for one-byte types. */
static int descr_dtype(const char *d, int *big_endian) {
  *big_endian = 0;
  if (!d[0]) return -1;
  char order = d[0];
  if (order != '<' && order != '|' && order != '>' && order != '=') return -1;
#define KILN_DT_DESCR(e, n, s, f, sg, np, ct)                      \
  if (strcmp(d + 1, (np) + 1) == 0) {                               \
    if ((s) > 1 && order == '>') {                                  \
      *big_endian = 1;                                              \
      return -1;                                                    \
    }                                                               \
    if ((s) > 1 && order == '|') return -1;                         \
    return KILN_##e;                                                \
  }
  KILN_DTYPES(KILN_DT_DESCR)
#undef KILN_DT_DESCR
  return -1;
}

/* Closes the file (if open) and records the message. */
__attribute__((format(printf, 3, 4))) static int fail_close(kiln_inst *inst, FILE *f,
                                                            const char *fmt, ...) {
  char msg[sizeof inst->error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (f) fclose(f);
  return kiln_fail(inst, KILN_ERROR, "%s", msg);
}

/* Reads a little-endian unsigned field of `n` bytes; -1 if the file ends. */
static int read_le(FILE *f, int n, uint64_t *out) {
  unsigned char b[4];
  if (fread(b, 1, (size_t)n, f) != (size_t)n) return -1;
  *out = 0;
  for (int i = n - 1; i >= 0; i--) *out = *out << 8 | b[i];
  return 0;
}

/* "f32[2,3]" for the file's type, or "dtype '<u2' [2,3]" when kiln has no name for it. */
static void fmt_found(char *buf, size_t cap, const header *h, int dt) {
  size_t len = 0;
  int w = dt >= 0 ? snprintf(buf, cap, "%s[", kiln_dtype_name(dt))
                  : snprintf(buf, cap, "dtype '%s' [", h->descr);
  if (w > 0) len = (size_t)w;
  for (int i = 0; i < h->rank && len < cap; i++) {
    w = snprintf(buf + len, cap - len, i ? ",%lld" : "%lld", (long long)h->dims[i]);
    if (w > 0) len += (size_t)w;
  }
  if (len < cap) snprintf(buf + len, cap - len, "]");
}

int kiln_npy_read(kiln_inst *inst, const char *path, int32_t dtype, int32_t rank,
                  const int64_t *dims, void *out) {
  if (!path) path = "(null)";
  size_t esize = kiln_dtype_size(dtype);
  int64_t numel;
  if (!esize || kiln_shape_numel(rank, dims, &numel) != 0)
    return fail_close(inst, NULL, "%s: invalid expected type (dtype %d, rank %d)", path,
                      (int)dtype, (int)rank);
  if (numel > 0 && !out) return fail_close(inst, NULL, "%s: no output buffer", path);
  char want[256];
  kiln_fmt_type(want, sizeof want, dtype, rank, dims);

  FILE *f = fopen(path, "rb");
  if (!f) return fail_close(inst, NULL, "%s: cannot open: %s", path, strerror(errno));

  unsigned char pre[8];
  size_t got = fread(pre, 1, sizeof pre, f);
  if (got < 6 || memcmp(pre, magic, 6) != 0)
    return fail_close(inst, f, "%s: not a .npy file (bad magic)", path);
  if (got < 8) return fail_close(inst, f, "%s: truncated header", path);
  int major = pre[6], minor = pre[7];
  /* 2.0 widened the header length to 4 bytes; 3.0 only made the header UTF-8. */
  uint64_t hlen;
  if (major != 1 && major != 2 && major != 3)
    return fail_close(inst, f, "%s: unsupported .npy format version %d.%d", path, major, minor);
  if (read_le(f, major == 1 ? 2 : 4, &hlen) != 0)
    return fail_close(inst, f, "%s: truncated header", path);
  if (hlen > MAX_HEADER)
    return fail_close(inst, f, "%s: header too large (%llu bytes)", path,
                      (unsigned long long)hlen);
  char *text = malloc(hlen ? (size_t)hlen : 1);
  if (!text) return fail_close(inst, f, "%s: out of memory reading the header", path);
  if (fread(text, 1, (size_t)hlen, f) != hlen) {
    free(text);
    return fail_close(inst, f, "%s: truncated header", path);
  }
  header h;
  const char *why;
  int bad = parse_header(text, (size_t)hlen, &h, &why);
  free(text);
  if (bad) return fail_close(inst, f, "%s: %s", path, why);
  if (h.fortran)
    return fail_close(inst, f,
                      "%s: fortran_order arrays are not supported (save a C-ordered array: "
                      "np.save(path, np.ascontiguousarray(a)))",
                      path);

  int big;
  int found_dt = descr_dtype(h.descr, &big);
  char found[512];
  fmt_found(found, sizeof found, &h, found_dt);
  if (big)
    return fail_close(inst, f,
                      "%s: expected %s, found big-endian %s; save it little-endian "
                      "(a.astype(a.dtype.newbyteorder('<')))",
                      path, want, found);
  if (found_dt < 0)
    return fail_close(inst, f, "%s: expected %s, found unsupported %s", path, want, found);
  int same = found_dt == dtype && h.rank == rank;
  for (int i = 0; same && i < rank; i++) same = h.dims[i] == dims[i];
  if (!same) return fail_close(inst, f, "%s: expected %s, found %s", path, want, found);

  uint64_t want_bytes = (uint64_t)numel * esize, have = 0;
  if (want_bytes > 0) have = fread(out, 1, (size_t)want_bytes, f);
  if (have < want_bytes)
    return fail_close(inst, f, "%s: truncated: expected %llu bytes of data, found %llu", path,
                      (unsigned long long)want_bytes, (unsigned long long)have);
  /* Anything after the data means the file is not what its header says. */
  char extra[4096];
  uint64_t more = 0;
  size_t r;
  while ((r = fread(extra, 1, sizeof extra, f)) > 0) more += r;
  fclose(f);
  if (more > 0)
    return fail_close(inst, NULL, "%s: %llu unexpected bytes after the %llu bytes of data", path,
                      (unsigned long long)more, (unsigned long long)want_bytes);
  if (dtype == KILN_BOOL) {
    /* A _Bool holding anything but 0/1 is undefined; numpy reads non-zero as True. */
    uint8_t *b = out;
    for (int64_t i = 0; i < numel; i++) b[i] = b[i] != 0;
  }
  return KILN_OK;
}

int kiln_npy_write(kiln_inst *inst, const char *path, int32_t dtype, int32_t rank,
                   const int64_t *dims, const void *data) {
  if (!path) path = "(null)";
  size_t esize = kiln_dtype_size(dtype);
  int64_t numel;
  if (!esize || kiln_shape_numel(rank, dims, &numel) != 0)
    return kiln_fail(inst, KILN_ERROR, "%s: cannot write: invalid type (dtype %d, rank %d)", path,
                     (int)dtype, (int)rank);
  if (numel > 0 && !data) return kiln_fail(inst, KILN_ERROR, "%s: cannot write: no data", path);
  const char *descr = "";
#define KILN_DT_NP(e, n, s, f, sg, np, ct) \
  if (dtype == KILN_##e) descr = np;
  KILN_DTYPES(KILN_DT_NP)
#undef KILN_DT_NP

  /* 10-byte preamble + dict + padding + '\n', a multiple of 64 so the data
   * is aligned for memory mapping, as numpy itself writes it. */
  char dict[512];
  size_t len = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
  for (int32_t i = 0; i < rank; i++)
    len += (size_t)snprintf(dict + len, sizeof dict - len, i ? ", %lld" : "%lld",
                            (long long)dims[i]);
  len += (size_t)snprintf(dict + len, sizeof dict - len, "%s), }", rank == 1 ? "," : "");
  size_t total = 10 + len + 1;
  size_t pad = (KILN_ALIGN - total % KILN_ALIGN) % KILN_ALIGN;
  size_t hlen = len + pad + 1;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                           (unsigned char)(hlen >> 8)};

  FILE *f = fopen(path, "wb");
  if (!f) return kiln_fail(inst, KILN_ERROR, "%s: cannot create: %s", path, strerror(errno));
  int ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(dict, 1, len, f) == len;
  for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF;
  size_t nbytes = (size_t)numel * esize;
  if (ok && nbytes > 0) ok = fwrite(data, 1, nbytes, f) == nbytes;
  int err = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    err = errno;
  }
  if (!ok) return kiln_fail(inst, KILN_ERROR, "%s: write failed: %s", path, strerror(err));
  return KILN_OK;
}
