/* types.c — dtypes, shapes, tensor types and literals. */
#include "ir/ir.h"
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  size_t size;
  bool is_float, is_signed;
} dtypes[] = {
#define DT(e, n, s, f, sg, np, ct) {n, s, f, sg},
    KILN_DTYPES(DT)
#undef DT
};

size_t kg_dtype_size(kiln_dtype d) { return d < KILN_DTYPE_COUNT ? dtypes[d].size : 0; }
bool kg_dtype_is_float(kiln_dtype d) { return d < KILN_DTYPE_COUNT && dtypes[d].is_float; }
bool kg_dtype_is_signed(kiln_dtype d) { return d < KILN_DTYPE_COUNT && dtypes[d].is_signed; }
bool kg_dtype_is_int(kiln_dtype d) { return d != KILN_BOOL && !kg_dtype_is_float(d); }
const char *kg_dtype_name(kiln_dtype d) { return d < KILN_DTYPE_COUNT ? dtypes[d].name : "?"; }

bool kg_dtype_parse(const char *name, size_t len, kiln_dtype *out) {
  for (int i = 0; i < KILN_DTYPE_COUNT; i++)
    if (strlen(dtypes[i].name) == len && !memcmp(dtypes[i].name, name, len)) {
      *out = (kiln_dtype)i;
      return true;
    }
  return false;
}

int64_t kg_shape_numel(const kg_shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->dim[i];
  return n;
}

bool kg_shape_eq(const kg_shape *a, const kg_shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

bool kg_type_eq(const kg_type *a, const kg_type *b) {
  return a->dtype == b->dtype && kg_shape_eq(&a->shape, &b->shape);
}

int64_t kg_type_bytes(const kg_type *t) {
  return kg_shape_numel(&t->shape) * (int64_t)kg_dtype_size(t->dtype);
}

char *kg_type_str(const kg_type *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", kg_dtype_name(t->dtype));
  for (int i = 0; i < t->shape.rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape.dim[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

double kg_tensor_get_f(const kg_tensor *t, int64_t i) {
  const void *p = t->data;
  switch (t->type.dtype) {
  case KILN_BOOL: return ((const _Bool *)p)[i];
  case KILN_I8: return ((const int8_t *)p)[i];
  case KILN_U8: return ((const uint8_t *)p)[i];
  case KILN_I32: return ((const int32_t *)p)[i];
  case KILN_I64: return (double)((const int64_t *)p)[i];
  case KILN_F32: return ((const float *)p)[i];
  case KILN_F64: return ((const double *)p)[i];
  default: return 0;
  }
}

int64_t kg_tensor_get_i(const kg_tensor *t, int64_t i) {
  switch (t->type.dtype) {
  case KILN_I64: return ((const int64_t *)t->data)[i];
  case KILN_F32:
  case KILN_F64: return (int64_t)kg_tensor_get_f(t, i);
  default: return (int64_t)kg_tensor_get_f(t, i);
  }
}
