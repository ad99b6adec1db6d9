/* fuzz_graphdef.c — libFuzzer target for the TensorFlow frontend: binary
 * GraphDef decoding (protobuf-c's generated codec for proto/graph.proto),
 * the dependency walk (cycles, dangling inputs, ^control and :N inputs),
 * every converter reached and the constant folder; inputs that begin with
 * '{' go through the TF.js model.json reader (cJSON, the GraphDef's JSON
 * mapping, base64, the weights manifest) instead.  Whatever the bytes, the
 * importer must return a module or errors, never crash, leak or read out of
 * bounds.  Imported modules are verified by the importer itself.
 *
 * Built and run by `make fuzz`, seeded with tests/fuzz/graphdef-seeds/ (the
 * hand-made graphs of tests/tf/graphs, encoded, and a small model.json). */
#include <stdint.h>
#include <stdio.h>
#include "frontends/graphdef/graphdef_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kc_diag d = {0};
  /* a path inside a folder that holds no shards: weights fail to open */
  kg_module *m = size && data[0] == '{'
                     ? kc_tfjs_import_buffer("/nonexistent-kiln-fuzz/model.json", (const char *)data, size, NULL, &d)
                     : kc_graphdef_import_buffer("/nonexistent-kiln-fuzz/graph.pb", data, size, NULL, &d);
  kc_module_free(m);
  kc_diag_clear(&d);
  return 0;
}
