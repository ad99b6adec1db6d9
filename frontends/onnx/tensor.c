/* tensor.c — ONNX TensorProto and data types as kiln literals: raw_data,
 * the typed repeated fields, and external data files beside the model
 * (location / offset / length, checked against the file's size). */
#include "frontends/onnx/ox.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  int32_t onnx;
  const char *name;
  int kiln; /* -1: kiln has no such dtype */
} dtypes[] = {
    {1, "float", KILN_F32},    {2, "uint8", KILN_U8},      {3, "int8", KILN_I8},      {4, "uint16", -1},
    {5, "int16", -1},          {6, "int32", KILN_I32},     {7, "int64", KILN_I64},    {8, "string", -1},
    {9, "bool", KILN_BOOL},    {10, "float16", -1},        {11, "double", KILN_F64},  {12, "uint32", -1},
    {13, "uint64", -1},        {14, "complex64", -1},      {15, "complex128", -1},    {16, "bfloat16", -1},
};

bool ox_dtype(int32_t t, kiln_dtype *out) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (dtypes[i].onnx == t && dtypes[i].kiln >= 0) {
      *out = (kiln_dtype)dtypes[i].kiln;
      return true;
    }
  return false;
}

const char *ox_dtype_name(int32_t t) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (dtypes[i].onnx == t) return dtypes[i].name;
  return "undefined";
}

/* Reads `len` bytes at `off` of the external file named by the tensor's
 * entries (len -1: to the end of the file) into t's data, allocated once
 * the file is known to hold them. */
static bool read_external(ox_ctx *c, const Onnx__TensorProto *p, const char *what, kg_tensor *t, int64_t want) {
  const char *loc = NULL;
  long long off = 0, len = -1;
  for (size_t i = 0; i < p->n_external_data; i++) {
    const char *k = p->external_data[i]->key, *v = p->external_data[i]->value;
    if (!k || !v) continue;
    if (!strcmp(k, "location")) loc = v;
    else if (!strcmp(k, "offset")) off = atoll(v);
    else if (!strcmp(k, "length")) len = atoll(v);
  }
  kc_loc at = {c->path, 0, 0};
  if (!loc) return kc_error(c->d, at, "%s: external data without a 'location'", what);
  if (loc[0] == '/' || strstr(loc, ".."))
    return kc_error(c->d, at, "%s: external data location '%s' must be a relative path inside the model's folder",
                    what, loc);
  char *path = kc_sprintf(c->m->arena, "%s/%s", c->dir, loc);
  FILE *f = fopen(path, "rb");
  if (!f) return kc_error(c->d, at, "%s: cannot open external data file '%s': %s", what, path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  if (len < 0) len = size - off;
  bool ok = off >= 0 && off + len <= size;
  if (!ok)
    kc_error(c->d, at, "%s: external data '%s' is %ld bytes, but the tensor needs bytes %lld..%lld", what, path, size,
             off, off + len);
  else if (len != want)
    ok = kc_error(c->d, at, "%s: external data holds %lld bytes, but the tensor's type needs %lld", what, len,
                  (long long)want);
  else if (fseek(f, off, SEEK_SET) != 0 ||
           fread(t->data = kc_alloc(c->m->arena, (size_t)len + 1), 1, (size_t)len, f) != (size_t)len)
    ok = kc_error(c->d, at, "%s: cannot read external data '%s'", what, path);
  fclose(f);
  return ok;
}

bool ox_tensor(ox_ctx *c, const Onnx__TensorProto *p, const char *what, kg_tensor *t) {
  kc_loc at = {c->path, 0, 0};
  kiln_dtype dt;
  if (!ox_dtype(p->data_type, &dt))
    return kc_error(c->d, at, "%s: unsupported data type %s (kiln has bool, int8, uint8, int32, int64, float, double)",
                    what, ox_dtype_name(p->data_type));
  if (p->n_dims > KILN_MAX_RANK) return kc_error(c->d, at, "%s: rank %zu is above kiln's %d", what, p->n_dims, KILN_MAX_RANK);
  t->type.dtype = dt;
  t->type.shape.rank = (int)p->n_dims;
  t->data = NULL;
  int64_t numel = 1;
  for (size_t i = 0; i < p->n_dims; i++) {
    if (p->dims[i] < 0 || (p->dims[i] && numel > (INT64_C(1) << 40) / p->dims[i]))
      return kc_error(c->d, at, "%s: invalid dimension %lld", what, (long long)p->dims[i]);
    t->type.shape.dim[i] = p->dims[i];
    numel *= p->dims[i];
  }
  /* the data is allocated only once it is known to be there: a corrupt
   * shape must not cost its size in memory */
  int64_t bytes = kg_type_bytes(&t->type);
  if (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return read_external(c, p, what, t, bytes);
  if (p->has_raw_data) {
    if ((int64_t)p->raw_data.len != bytes)
      return kc_error(c->d, at, "%s: raw_data holds %zu bytes, but %s needs %lld", what, p->raw_data.len,
                      kg_type_str(&t->type, (char[64]){0}, 64), (long long)bytes);
    t->data = kc_alloc(c->m->arena, (size_t)bytes + 1);
    if (bytes) memcpy(t->data, p->raw_data.data, (size_t)bytes); /* an empty tensor's data may be NULL */
    return true;
  }
  /* the typed fields: floats in float_data, doubles in double_data, int64
   * in int64_data, every narrower integer and bool in int32_data */
  size_t have = dt == KILN_F32 ? p->n_float_data : dt == KILN_F64 ? p->n_double_data
              : dt == KILN_I64 ? p->n_int64_data : p->n_int32_data;
  if ((int64_t)have != numel)
    return kc_error(c->d, at, "%s: holds %zu values, but its shape needs %lld", what, have, (long long)numel);
  t->data = kc_alloc(c->m->arena, (size_t)bytes + 1);
  for (int64_t i = 0; i < numel; i++) {
    switch (dt) {
    case KILN_F32: ((float *)t->data)[i] = p->float_data[i]; break;
    case KILN_F64: ((double *)t->data)[i] = p->double_data[i]; break;
    case KILN_I64: ((int64_t *)t->data)[i] = p->int64_data[i]; break;
    case KILN_I32: ((int32_t *)t->data)[i] = p->int32_data[i]; break;
    case KILN_I8: ((int8_t *)t->data)[i] = (int8_t)p->int32_data[i]; break;
    case KILN_U8: ((uint8_t *)t->data)[i] = (uint8_t)p->int32_data[i]; break;
    case KILN_BOOL: ((_Bool *)t->data)[i] = p->int32_data[i] != 0; break;
    default: break;
    }
  }
  return true;
}
