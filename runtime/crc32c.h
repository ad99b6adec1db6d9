/* crc32c.h — CRC-32C (Castagnoli), as TFRecord files frame their records.
 * Runtime-private (runtime/summary.c writes event files with it). */
#ifndef KILN_CRC32C_H
#define KILN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of n bytes, continuing from `crc` (0 to start a new one). */
uint32_t kiln_crc32c_extend(uint32_t crc, const void *data, size_t n);
static inline uint32_t kiln_crc32c(const void *data, size_t n) { return kiln_crc32c_extend(0, data, n); }

/* TensorFlow's masked CRC (tensorflow/core/lib/hash/crc32c.h): a CRC of data
 * that itself holds CRCs is hard to tell from noise, so TFRecord stores
 * ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
static inline uint32_t kiln_crc32c_mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
static inline uint32_t kiln_crc32c_unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

#endif
