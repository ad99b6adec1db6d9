/* fuzz_onnx.c — libFuzzer target for the ONNX frontend: protobuf decoding
 * (protobuf-c's generated codec), the graph walk, every converter reached
 * and the constant folder.  Whatever the bytes, the importer must return a
 * module or errors, never crash, leak or read out of bounds.  Imported
 * modules are verified by the importer itself.
 *
 * Built and run by `make fuzz` (after the .kg parser's target), seeded with
 * the small models of tests/fuzz/onnx-seeds/. */
#include <stdint.h>
#include <stdio.h>
#include "frontends/onnx/onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kc_diag d = {0};
  /* a path inside a folder that holds no data files: external data fails */
  kg_module *m = kc_onnx_import_buffer("/nonexistent-kiln-fuzz/model.onnx", data, size, NULL, &d);
  kc_module_free(m);
  kc_diag_clear(&d);
  return 0;
}
