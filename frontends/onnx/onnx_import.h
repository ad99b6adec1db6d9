/* onnx_import.h — the ONNX frontend: a .onnx model file becomes an ordinary
 * kiln module (the same graph the .kg parser produces), so every later stage
 * — passes, lowering, the printed .kg of `kiln import` — is shared.
 *
 * Initializers become constants, graph inputs become placeholders of one
 * entry point named `main`, graph outputs its fetches.  kiln compiles static
 * shapes: a dynamic dimension needs its size from the caller (--input-shape),
 * and values that only shape computations use (Shape, Size, ConstantOfShape,
 * the shape operand of Reshape, ...) are computed at import time. */
#ifndef KILN_ONNX_IMPORT_H
#define KILN_ONNX_IMPORT_H

#include "ir/ir.h"

/* What the caller knows about the model's inputs (command-line options). */
typedef struct kc_input_spec {
  const char *name;   /* the ONNX input name */
  bool has_shape;     /* --input-shape NAME=d0,d1,... */
  kg_shape shape;
  bool has_value;     /* --input-value NAME=v0,v1,...: the input becomes a constant */
  int n_values;
  double *values;
} kc_input_spec;

typedef struct kc_import_options {
  int n_inputs;
  const kc_input_spec *inputs;
  /* TensorFlow graphs (frontends/graphdef): --feed NAME[:k] and --fetch
   * NAME[:k] choose the entry's inputs and outputs; --fetch-all adds every
   * converted tensor as an output (node-by-node debugging). */
  int n_feeds;
  const char *const *feeds;
  int n_fetches;
  const char *const *fetches;
  bool fetch_all;
  /* --max-loop-iterations N: the most iterations of a TensorFlow 1.x while
   * loop the importer unrolls (0: its default, 10000). */
  long max_loop_iterations;
} kc_import_options;

/* Reads the model at path into a verified module (NULL after errors, which
 * are in d: unsupported ops name the op, the node and the opset). */
kg_module *kc_onnx_import(const char *path, const kc_import_options *o, kc_diag *d);

/* The same for a model already in memory; `path` names it in messages, and
 * its folder is where external data is looked for. */
kg_module *kc_onnx_import_buffer(const char *path, const void *data, size_t len, const kc_import_options *o,
                                 kc_diag *d);

/* True when path names an ONNX model (by its .onnx suffix). */
bool kc_is_onnx_path(const char *path);

#endif
