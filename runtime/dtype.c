/* dtype.c — dtype facts and shape arithmetic.  Everything is derived from the
 * X-macro table in kiln_dtype.h so the runtime can never disagree with the
 * compiler about what a dtype code means. */
#include <stdio.h>
#include <string.h>
#include "rt_internal.h"

size_t kiln_dtype_size(int32_t dtype) {
  switch (dtype) {
#define KILN_DT_SIZE(e, n, s, f, sg, np, ct) \
  case KILN_##e:                             \
    return s;
    KILN_DTYPES(KILN_DT_SIZE)
#undef KILN_DT_SIZE
  default:
    return 0;
  }
}

const char *kiln_dtype_name(int32_t dtype) {
  switch (dtype) {
#define KILN_DT_NAME(e, n, s, f, sg, np, ct) \
  case KILN_##e:                             \
    return n;
    KILN_DTYPES(KILN_DT_NAME)
#undef KILN_DT_NAME
  default:
    return "?";
  }
}

int kiln_shape_numel(int32_t rank, const int64_t *dims, int64_t *numel) {
  if (rank < 0 || rank > KILN_MAX_RANK || (rank > 0 && !dims)) return -1;
  int64_t n = 1;
  for (int32_t i = 0; i < rank; i++) {
    if (dims[i] < 0) return -1;
    if (__builtin_mul_overflow(n, dims[i], &n)) return -1;
  }
  /* Keep n * 8 (the largest element) representable so byte counts never wrap. */
  if (n > INT64_MAX / 8) return -1;
  *numel = n;
  return 0;
}

void kiln_fmt_type(char *buf, size_t cap, int32_t dtype, int32_t rank, const int64_t *dims) {
  if (cap == 0) return;
  size_t len = 0;
  int w = snprintf(buf, cap, "%s[", kiln_dtype_name(dtype));
  if (w > 0) len = (size_t)w;
  for (int32_t i = 0; dims && i < rank && len < cap; i++) {
    w = snprintf(buf + len, cap - len, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (w > 0) len += (size_t)w;
  }
  if (len < cap) snprintf(buf + len, cap - len, "]");
}
