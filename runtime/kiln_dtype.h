/* kiln_dtype.h — the element types kiln knows, shared by the compiler and
 * libkilnrt so that a dtype code means the same thing on both sides of the
 * generated-code ABI.  Add a dtype by adding one X() line. */
#ifndef KILN_DTYPE_H
#define KILN_DTYPE_H

#include <stddef.h>

/* X(enum suffix, .kg name, size in bytes, is_float, is_signed, numpy descr, C type) */
#define KILN_DTYPES(X)                                        \
  X(BOOL, "bool", 1, 0, 0, "|b1", _Bool)                      \
  X(I8, "i8", 1, 0, 1, "|i1", int8_t)                         \
  X(U8, "u8", 1, 0, 0, "|u1", uint8_t)                        \
  X(I32, "i32", 4, 0, 1, "<i4", int32_t)                      \
  X(I64, "i64", 8, 0, 1, "<i8", int64_t)                      \
  X(F32, "f32", 4, 1, 1, "<f4", float)                        \
  X(F64, "f64", 8, 1, 1, "<f8", double)

typedef enum kiln_dtype {
#define KILN_DT_ENUM(e, n, s, f, sg, np, ct) KILN_##e,
  KILN_DTYPES(KILN_DT_ENUM)
#undef KILN_DT_ENUM
  KILN_DTYPE_COUNT
} kiln_dtype;

/* Largest rank a tensor may have. */
#define KILN_MAX_RANK 8

#endif
