/* graphdef_import.h — the TensorFlow frontend: a frozen GraphDef (.pb,
 * binary protobuf) or a TensorFlow.js graph model (model.json: its
 * modelTopology is a GraphDef in proto3 JSON, its weightsManifest names the
 * weight shards beside it) becomes an ordinary kiln module, the same graph
 * the .kg parser produces, with one entry point `main`.
 *
 * Feeds are the Placeholders the fetches depend on (or the tensors named by
 * --feed); fetches are the tensors named by --fetch, else the model's
 * signature outputs (TF.js), else the nodes nothing consumes.  Only what the
 * fetches need is converted, as TensorFlow runs only that.  Every kiln node
 * computing a TensorFlow tensor carries the node's name, so any tensor can
 * be fetched (--fetch at build time, or --fetch-all) and diffed against
 * TensorFlow node by node.  Reference: docs/tensorflow.md. */
#ifndef KILN_GRAPHDEF_IMPORT_H
#define KILN_GRAPHDEF_IMPORT_H

#include "frontends/onnx/onnx_import.h"

/* Reads a frozen GraphDef (.pb) or a TF.js model.json into a verified
 * module; NULL after errors (in d; each names the node and its op). */
kg_module *kc_graphdef_import(const char *path, const kc_import_options *o, kc_diag *d);

/* A binary GraphDef already in memory (`path` names it in messages). */
kg_module *kc_graphdef_import_buffer(const char *path, const void *data, size_t len, const kc_import_options *o,
                                     kc_diag *d);

/* A TF.js model.json already in memory; shards are looked for in `path`'s
 * folder. */
kg_module *kc_tfjs_import_buffer(const char *path, const char *json, size_t len, const kc_import_options *o,
                                 kc_diag *d);

/* True when path names a TensorFlow graph: a .pb or a .json file. */
bool kc_is_graphdef_path(const char *path);

#endif
