/* rt_internal.h — helpers shared by the runtime's own files (and its unit
 * tests).  Not part of the generated-code ABI: nothing here is called from
 * compiled modules, so it may change freely. */
#ifndef KILN_RT_INTERNAL_H
#define KILN_RT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include "kilnrt.h"

/* Alignment of every block the runtime hands to generated code. */
#define KILN_ALIGN 64

/* Zeroed, KILN_ALIGN-aligned block of `size` bytes (size 0 gives a valid
 * block); NULL when out of memory or size < 0.  Free with free(). */
void *kiln_aligned_zalloc(int64_t size);

/* Element count of a shape: 0 on success, -1 when the rank is outside
 * 0..KILN_MAX_RANK, a dim is negative or the count/bytes would overflow. */
int kiln_shape_numel(int32_t rank, const int64_t *dims, int64_t *numel);

/* Writes "f32[2,3]" (or "f32[]" for a scalar) into buf, always terminated. */
void kiln_fmt_type(char *buf, size_t cap, int32_t dtype, int32_t rank, const int64_t *dims);

/* kiln_rt_print writing to `f` instead of stdout (tests use open_memstream). */
int kiln_rt_fprint(FILE *f, kiln_inst *inst, int32_t dtype, int32_t rank, const int64_t *dims,
                   const void *data);

/* One Philox4x32-10 block: out = philox(ctr, key).  Exposed for known-answer tests. */
void kiln_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif
