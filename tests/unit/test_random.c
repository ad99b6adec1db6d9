/* test_random.c — Philox streams: known answers, reproducibility from
 * (seed, counter), counter advance, and the distributions' ranges/moments. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kilnrt.h"
#include "rt_internal.h"

static const kiln_module_desc rnd_module = {.name = "rnd", .n_random = 1};

Test(random, philox_known_answers) {
  /* Known-answer vectors of Random123 (kat_vectors, philox4x32_10). */
  static const struct {
    uint32_t ctr[4], key[2], out[4];
  } kat[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (size_t i = 0; i < sizeof kat / sizeof *kat; i++) {
    uint32_t out[4];
    kiln_philox4x32_10(kat[i].ctr, kat[i].key, out);
    for (int k = 0; k < 4; k++)
      cr_assert_eq(out[k], kat[i].out[k], "vector %zu word %d: %08x != %08x", i, k, out[k],
                   kat[i].out[k]);
  }
}

Test(random, same_seed_and_counter_same_numbers) {
  int st;
  kiln_inst *inst = kiln_inst_create(&rnd_module, &st);
  float a[37], b[37];
  uint64_t c1 = 5, c2 = 5;
  cr_assert_eq(kiln_rt_random(inst, KILN_F32, 1, 37, a, 0, 1, 42, &c1), KILN_OK);
  cr_assert_eq(kiln_rt_random(inst, KILN_F32, 1, 37, b, 0, 1, 42, &c2), KILN_OK);
  cr_assert_eq(memcmp(a, b, sizeof a), 0);
  cr_assert_eq(c1, c2);
  /* 37 f32 normals use 38 words = 10 blocks. */
  cr_assert_eq(c1, 5 + 10, "counter %llu", (unsigned long long)c1);
  /* The next call continues the stream: different numbers. */
  cr_assert_eq(kiln_rt_random(inst, KILN_F32, 1, 37, b, 0, 1, 42, &c2), KILN_OK);
  cr_assert_neq(memcmp(a, b, sizeof a), 0);
  /* And a different seed at the same counter differs too. */
  uint64_t c3 = 5;
  cr_assert_eq(kiln_rt_random(inst, KILN_F32, 1, 37, b, 0, 1, 43, &c3), KILN_OK);
  cr_assert_neq(memcmp(a, b, sizeof a), 0);
  kiln_inst_destroy(inst);
}

Test(random, stream_is_counter_addressed) {
  /* Drawing 8 then 8 equals drawing 16 at once (f32 uniform: 4 per block). */
  float whole[16], part[16];
  uint64_t c = 0;
  cr_assert_eq(kiln_rt_random(NULL, KILN_F32, 0, 16, whole, 0, 1, 7, &c), KILN_OK);
  cr_assert_eq(c, 4);
  c = 0;
  cr_assert_eq(kiln_rt_random(NULL, KILN_F32, 0, 8, part, 0, 1, 7, &c), KILN_OK);
  cr_assert_eq(kiln_rt_random(NULL, KILN_F32, 0, 8, part + 8, 0, 1, 7, &c), KILN_OK);
  cr_assert_eq(memcmp(whole, part, sizeof whole), 0);
}

Test(random, uniform_float_range_and_mean) {
  enum { N = 100000 };
  float *f = malloc(N * sizeof *f);
  double *d = malloc(N * sizeof *d);
  uint64_t c = 0;
  cr_assert_eq(kiln_rt_random(NULL, KILN_F32, 0, N, f, -2, 3, 1, &c), KILN_OK);
  cr_assert_eq(kiln_rt_random(NULL, KILN_F64, 0, N, d, 10, 10.5, 1, &c), KILN_OK);
  double sf = 0, sd = 0, minf = 1e9, maxf = -1e9;
  for (int i = 0; i < N; i++) {
    cr_assert(f[i] >= -2.0f && f[i] < 3.0f, "f32 %g out of [-2, 3)", f[i]);
    cr_assert(d[i] >= 10.0 && d[i] < 10.5, "f64 %g out of [10, 10.5)", d[i]);
    sf += f[i], sd += d[i];
    minf = fmin(minf, f[i]), maxf = fmax(maxf, f[i]);
  }
  /* Mean of U(a,b) is (a+b)/2, stddev of the mean (b-a)/sqrt(12 N) ~ 0.0046. */
  cr_assert_float_eq(sf / N, 0.5, 0.03);
  cr_assert_float_eq(sd / N, 10.25, 0.003);
  cr_assert(minf < -1.99 && maxf > 2.99, "range not covered: [%g, %g]", minf, maxf);
  free(f);
  free(d);
}

Test(random, uniform_int_range_covers_all) {
  enum { N = 100000 };
  int32_t *v = malloc(N * sizeof *v);
  int64_t *w = malloc(N * sizeof *w);
  uint64_t c = 0;
  cr_assert_eq(kiln_rt_random(NULL, KILN_I32, 0, N, v, -3, 4, 9, &c), KILN_OK);
  cr_assert_eq(kiln_rt_random(NULL, KILN_I64, 0, N, w, 1e12, 1e12 + 10, 9, &c), KILN_OK);
  int hits[7] = {0}, hits64[10] = {0};
  for (int i = 0; i < N; i++) {
    cr_assert(v[i] >= -3 && v[i] < 4, "i32 %d out of [-3, 4)", v[i]);
    cr_assert(w[i] >= 1000000000000LL && w[i] < 1000000000010LL, "i64 %lld", (long long)w[i]);
    hits[v[i] + 3]++;
    hits64[w[i] - 1000000000000LL]++;
  }
  /* Each value expected N/7 ~ 14286 times; sd ~ 111. */
  for (int k = 0; k < 7; k++) cr_assert(abs(hits[k] - N / 7) < 1000, "value %d: %d", k - 3, hits[k]);
  for (int k = 0; k < 10; k++) cr_assert(abs(hits64[k] - N / 10) < 1000, "value %d: %d", k, hits64[k]);
  free(v);
  free(w);
}

Test(random, normal_moments) {
  enum { N = 100000 };
  double *d = malloc(N * sizeof *d);
  float *f = malloc(N * sizeof *f);
  uint64_t c = 123;
  cr_assert_eq(kiln_rt_random(NULL, KILN_F64, 1, N, d, 0, 1, 2024, &c), KILN_OK);
  cr_assert_eq(kiln_rt_random(NULL, KILN_F32, 1, N, f, 5, 2, 2024, &c), KILN_OK);
  double s = 0, s2 = 0, t = 0, t2 = 0;
  for (int i = 0; i < N; i++) {
    cr_assert(isfinite(d[i]) && isfinite(f[i]));
    s += d[i], s2 += d[i] * d[i];
    t += f[i], t2 += (double)f[i] * f[i];
  }
  double mean = s / N, sd = sqrt(s2 / N - mean * mean);
  double tmean = t / N, tsd = sqrt(t2 / N - tmean * tmean);
  /* Standard error of the mean is 1/sqrt(N) ~ 0.003: bounds are ~6 sigma. */
  cr_assert_float_eq(mean, 0.0, 0.02, "mean %g", mean);
  cr_assert_float_eq(sd, 1.0, 0.02, "stddev %g", sd);
  cr_assert_float_eq(tmean, 5.0, 0.04, "mean %g", tmean);
  cr_assert_float_eq(tsd, 2.0, 0.04, "stddev %g", tsd);
  free(d);
  free(f);
}

Test(random, unsupported_requests_fail_clearly) {
  int st;
  kiln_inst *inst = kiln_inst_create(&rnd_module, &st);
  uint64_t c = 0;
  int32_t iv[4];
  _Bool bv[4];
  cr_assert_eq(kiln_rt_random(inst, KILN_I32, 1, 4, iv, 0, 1, 0, &c), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "normal") && strstr(kiln_inst_error(inst), "i32"),
            "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_random(inst, KILN_BOOL, 0, 4, bv, 0, 1, 0, &c), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "bool"), "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_random(inst, KILN_F32, 5, 4, iv, 0, 1, 0, &c), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "kind 5"), "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_random(inst, KILN_I32, 0, 4, iv, 3, 3, 0, &c), KILN_ERROR);
  cr_assert(strstr(kiln_inst_error(inst), "minval < maxval"), "%s", kiln_inst_error(inst));
  cr_assert_eq(kiln_rt_random(inst, KILN_I32, 0, 4, iv, 0, 1e10, 0, &c), KILN_ERROR);
  cr_assert_eq(c, 0, "a failed call must not advance the counter");
  kiln_inst_destroy(inst);
}
