/* tensor.c — TensorFlow DataType and TensorProto as kiln dtypes and
 * literals: tensor_content (little-endian raw bytes) or the typed *_val
 * fields, where fewer values than elements repeat the last one (TensorFlow's
 * splat: a Const of shape [64] with one float_val is 64 copies). */
#include "frontends/graphdef/gd.h"
#include <string.h>

static const struct {
  int tf;
  const char *name;
  int kiln; /* -1: kiln has no such dtype */
} dtypes[] = {
    {1, "DT_FLOAT", KILN_F32},   {2, "DT_DOUBLE", KILN_F64},   {3, "DT_INT32", KILN_I32},  {4, "DT_UINT8", KILN_U8},
    {5, "DT_INT16", -1},         {6, "DT_INT8", KILN_I8},      {7, "DT_STRING", -1},       {8, "DT_COMPLEX64", -1},
    {9, "DT_INT64", KILN_I64},   {10, "DT_BOOL", KILN_BOOL},   {11, "DT_QINT8", -1},       {12, "DT_QUINT8", -1},
    {13, "DT_QINT32", -1},       {14, "DT_BFLOAT16", -1},      {15, "DT_QINT16", -1},      {16, "DT_QUINT16", -1},
    {17, "DT_UINT16", -1},       {18, "DT_COMPLEX128", -1},    {19, "DT_HALF", -1},        {20, "DT_RESOURCE", -1},
    {21, "DT_VARIANT", -1},      {22, "DT_UINT32", -1},        {23, "DT_UINT64", -1},
};

bool gd_dtype(int t, kiln_dtype *out) {
  if (t > 100) t -= 100; /* reference types (DT_FLOAT_REF): the value's type */
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (dtypes[i].tf == t && dtypes[i].kiln >= 0) {
      *out = (kiln_dtype)dtypes[i].kiln;
      return true;
    }
  return false;
}

const char *gd_dtype_name(int t) {
  if (t > 100) t -= 100;
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (dtypes[i].tf == t) return dtypes[i].name;
  return "DT_INVALID";
}

int gd_dtype_parse(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
    if (!strcmp(dtypes[i].name, name)) return dtypes[i].tf;
  return -1;
}

float gd_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13); /* inf, nan */
  else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
  else if (!man) bits = sign;
  else { /* subnormal: normalize */
    int e = -1;
    do {
      man <<= 1;
      e++;
    } while (!(man & 0x400));
    bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

enum { GD_MAX_CONST_BYTES = 1 << 30 }; /* 1 GiB */

bool gd_tensor(gd_ctx *c, const Tensorflow__TensorProto *p, const char *what, kg_tensor *t) {
  kc_loc at = {c->path, 0, 0};
  kiln_dtype dt;
  if (!gd_dtype(p->dtype, &dt))
    return kc_error(c->d, at, "%s: unsupported data type %s (kiln has DT_BOOL, DT_INT8, DT_UINT8, DT_INT32, DT_INT64, "
                              "DT_FLOAT, DT_DOUBLE)", what, gd_dtype_name(p->dtype));
  const Tensorflow__TensorShapeProto *sp = p->tensor_shape;
  size_t rank = sp ? sp->n_dim : 0;
  if (rank > KILN_MAX_RANK) return kc_error(c->d, at, "%s: rank %zu is above kiln's %d", what, rank, KILN_MAX_RANK);
  t->type.dtype = dt;
  t->type.shape.rank = (int)rank;
  int64_t numel = 1;
  for (size_t i = 0; i < rank; i++) {
    int64_t dim = sp->dim[i] ? sp->dim[i]->size : -1;
    if (dim < 0 || (dim && numel > (INT64_C(1) << 32) / dim))
      return kc_error(c->d, at, "%s: invalid dimension %lld", what, (long long)dim);
    t->type.shape.dim[i] = dim;
    numel *= dim;
  }
  int64_t bytes = kg_type_bytes(&t->type);
  /* a splat (one value, or none) may describe a tensor far larger than the
   * file: refuse sizes no real constant has rather than allocate them */
  if (bytes > GD_MAX_CONST_BYTES)
    return kc_error(c->d, at, "%s: %s is %lld bytes, above kiln's limit of %lld bytes for one constant", what,
                    kg_type_str(&t->type, (char[64]){0}, 64), (long long)bytes, (long long)GD_MAX_CONST_BYTES);
  t->data = kc_alloc(c->m->arena, (size_t)bytes + 1);
  if (p->tensor_content.len) {
    if ((int64_t)p->tensor_content.len != bytes)
      return kc_error(c->d, at, "%s: tensor_content holds %zu bytes, but %s needs %lld", what, p->tensor_content.len,
                      kg_type_str(&t->type, (char[64]){0}, 64), (long long)bytes);
    if (bytes) memcpy(t->data, p->tensor_content.data, (size_t)bytes); /* empty: data may be NULL */
    return true;
  }
  /* the typed fields: float_val, double_val, int64_val, bool_val, and
   * int_val for every narrower integer */
  size_t have = dt == KILN_F32 ? p->n_float_val : dt == KILN_F64 ? p->n_double_val : dt == KILN_I64 ? p->n_int64_val
              : dt == KILN_BOOL ? p->n_bool_val : p->n_int_val;
  if ((int64_t)have > numel)
    return kc_error(c->d, at, "%s: holds %zu values, but its shape has %lld elements", what, have, (long long)numel);
  if (!have) return true; /* zeros */
  for (int64_t i = 0; i < numel; i++) {
    size_t k = (size_t)i < have ? (size_t)i : have - 1;
    switch (dt) {
    case KILN_F32: ((float *)t->data)[i] = p->float_val[k]; break;
    case KILN_F64: ((double *)t->data)[i] = p->double_val[k]; break;
    case KILN_I64: ((int64_t *)t->data)[i] = p->int64_val[k]; break;
    case KILN_BOOL: ((_Bool *)t->data)[i] = p->bool_val[k] != 0; break;
    case KILN_I32: ((int32_t *)t->data)[i] = p->int_val[k]; break;
    case KILN_I8: ((int8_t *)t->data)[i] = (int8_t)p->int_val[k]; break;
    case KILN_U8: ((uint8_t *)t->data)[i] = (uint8_t)p->int_val[k]; break;
    default: break;
    }
  }
  return true;
}
