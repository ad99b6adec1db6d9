/* random.c — seeded random tensors for the program's random ops.
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3") is counter-based: block i of a stream is philox(counter + i, key) with
 * no hidden state, so a run is reproducible from (seed, counter) alone and the
 * per-op counter in the instance is all that must persist between calls. */
#include <math.h>
#include <string.h>
#include "rt_internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

void kiln_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* A stream of 32-bit words: blocks are generated on demand and a partly used
 * last block is dropped, so the counter advance is ceil(words / 4). */
typedef struct {
  uint32_t key[2];
  uint64_t base;   /* counter of block 0 */
  uint64_t blocks; /* blocks generated so far */
  uint32_t buf[4];
  int pos; /* next unused word of buf; 4 = empty */
} stream;

static uint32_t next32(stream *s) {
  if (s->pos == 4) {
    uint64_t c = s->base + s->blocks++; /* wraps mod 2^64 by design */
    uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
    kiln_philox4x32_10(ctr, s->key, s->buf);
    s->pos = 0;
  }
  return s->buf[s->pos++];
}

static uint64_t next64(stream *s) {
  uint64_t hi = next32(s);
  return hi << 32 | next32(s);
}

/* [0, 1) from the top 24 / 53 bits: every value is exactly representable. */
static float unit_f32(stream *s) { return (float)(next32(s) >> 8) * 0x1p-24f; }
static double unit_f64(stream *s) { return (double)(next64(s) >> 11) * 0x1p-53; }

/* Uniform integer in [0, range) without modulo bias (reject the short tail). */
static uint64_t below(stream *s, uint64_t range, int wide) {
  if (!wide) {
    uint32_t r = (uint32_t)range, limit = (uint32_t)(-r) % r; /* 2^32 mod r */
    for (;;) {
      uint32_t x = next32(s);
      if (x >= limit) return x % r;
    }
  }
  uint64_t limit = (-range) % range; /* 2^64 mod range */
  for (;;) {
    uint64_t x = next64(s);
    if (x >= limit) return x % range;
  }
}

/* Box–Muller on a pair of uniforms; u1 in (0, 1] keeps log() finite. */
static void box_muller(double u1, double u2, double *z0, double *z1) {
  double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586476925 * u2;
  *z0 = r * cos(t);
  *z1 = r * sin(t);
}

static int fill_uniform_int(kiln_inst *inst, int32_t dtype, stream *s, int64_t n, void *out,
                            double a, double b) {
  double lo_lim = dtype == KILN_I32 ? -2147483648.0 : -9223372036854775808.0;
  double hi_lim = dtype == KILN_I32 ? 2147483648.0 : 9223372036854775808.0;
  /* Check before converting: an out-of-range double -> int cast is undefined. */
  if (!(a >= lo_lim && a < hi_lim && b > lo_lim && b <= hi_lim) || !(a < b))
    return kiln_fail(inst, KILN_ERROR,
                     "random uniform %s: need minval < maxval within range, got [%g, %g)",
                     kiln_dtype_name(dtype), a, b);
  int64_t lo = (int64_t)ceil(a);
  /* b == 2^63 is allowed for i64: then the range simply ends at INT64_MAX. */
  uint64_t range = b >= 9223372036854775808.0
                       ? (uint64_t)INT64_MAX - (uint64_t)lo + 1
                       : (uint64_t)(int64_t)ceil(b) - (uint64_t)lo;
  if (range == 0)
    return kiln_fail(inst, KILN_ERROR, "random uniform %s: empty range [%g, %g)",
                     kiln_dtype_name(dtype), a, b);
  /* i32 draws one word per try, except for the full 2^32 range. */
  int wide = dtype == KILN_I64 || range > UINT32_MAX;
  for (int64_t i = 0; i < n; i++) {
    uint64_t v = (uint64_t)lo + below(s, range, wide);
    if (dtype == KILN_I32)
      ((int32_t *)out)[i] = (int32_t)(int64_t)v;
    else
      ((int64_t *)out)[i] = (int64_t)v;
  }
  return KILN_OK;
}

int kiln_rt_random(kiln_inst *inst, int32_t dtype, int32_t kind, int64_t n, void *out,
                   double a, double b, uint64_t seed, uint64_t *counter) {
  if (n < 0) return kiln_fail(inst, KILN_ERROR, "random: negative element count %lld", (long long)n);
  if (n > 0 && !out) return kiln_fail(inst, KILN_ERROR, "random: no output buffer");
  if (kind < 0 || kind > 2)
    return kiln_fail(inst, KILN_ERROR,
                     "random: unknown distribution kind %d (0 = uniform, 1 = normal, 2 = truncated normal)", (int)kind);
  int is_float = dtype == KILN_F32 || dtype == KILN_F64;
  int is_int = dtype == KILN_I32 || dtype == KILN_I64;
  if (kind == 0 && !is_float && !is_int)
    return kiln_fail(inst, KILN_ERROR, "random uniform: unsupported dtype %s (need f32, f64, i32 or i64)",
                     kiln_dtype_name(dtype));
  if (kind >= 1 && !is_float)
    return kiln_fail(inst, KILN_ERROR, "random normal: unsupported dtype %s (need f32 or f64)",
                     kiln_dtype_name(dtype));

  stream s = {.key = {(uint32_t)seed, (uint32_t)(seed >> 32)}, .base = counter ? *counter : 0, .pos = 4};
  int status = KILN_OK;
  if (kind == 0 && is_int) {
    status = fill_uniform_int(inst, dtype, &s, n, out, a, b);
  } else if (kind == 0 && dtype == KILN_F32) {
    float fa = (float)a, fb = (float)b, *o = out;
    for (int64_t i = 0; i < n; i++) {
      float v = fa + (fb - fa) * unit_f32(&s);
      /* Rounding can land exactly on b; keep the interval half-open. */
      o[i] = v < fb || !(fa < fb) ? v : nextafterf(fb, fa);
    }
  } else if (kind == 0) {
    double *o = out;
    for (int64_t i = 0; i < n; i++) {
      double v = a + (b - a) * unit_f64(&s);
      o[i] = v < b || !(a < b) ? v : nextafter(b, a);
    }
  } else if (kind == 2) { /* TF's truncated_normal: redraw beyond two stddevs */
    for (int64_t i = 0; i < n;) {
      double u1 = ((next64(&s) >> 11) + 1.0) * 0x1p-53, u2 = unit_f64(&s), z[2];
      box_muller(u1, u2, &z[0], &z[1]);
      for (int k = 0; k < 2 && i < n; k++) {
        if (z[k] < -2 || z[k] > 2) continue;
        if (dtype == KILN_F32) ((float *)out)[i++] = (float)(a + b * z[k]);
        else ((double *)out)[i++] = a + b * z[k];
      }
    }
  } else {
    for (int64_t i = 0; i < n; i += 2) {
      double u1, u2, z0, z1;
      if (dtype == KILN_F32) {
        u1 = ((next32(&s) >> 8) + 1.0) * 0x1p-24; /* (0, 1] */
        u2 = unit_f32(&s);
      } else {
        u1 = ((next64(&s) >> 11) + 1.0) * 0x1p-53;
        u2 = unit_f64(&s);
      }
      box_muller(u1, u2, &z0, &z1);
      if (dtype == KILN_F32) {
        ((float *)out)[i] = (float)(a + b * z0);
        if (i + 1 < n) ((float *)out)[i + 1] = (float)(a + b * z1);
      } else {
        ((double *)out)[i] = a + b * z0;
        if (i + 1 < n) ((double *)out)[i + 1] = a + b * z1;
      }
    }
  }
  if (status == KILN_OK && counter) *counter += s.blocks;
  return status;
}
