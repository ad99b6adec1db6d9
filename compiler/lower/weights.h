/* weights.h — `kiln build --weights-file`: the module's constants (const
 * nodes' values, variables' literal initializers, the summary GraphDef) go
 * to a file beside the output instead of into the object.  The lowering
 * collects them here and gives each a zeroed internal buffer; the module
 * descriptor's `weights` table tells the runtime where to load them
 * (runtime/weights.c, which also describes the file format). */
#ifndef KILN_WEIGHTS_H
#define KILN_WEIGHTS_H

#include <stdint.h>
#include <llvm-c/Core.h>
#include "ir/ir.h"

struct kl_ctx;

typedef struct kl_blob {
  const void *data; /* not owned: the module's arena holds it */
  int64_t size, offset; /* offset into the data section, once laid out */
  LLVMValueRef global;  /* the zeroed buffer the runtime loads it into */
} kl_blob;

typedef struct kl_weights {
  const char *path; /* where the file is written; NULL: nowhere (--emit=llvm, ...) */
  const char *file; /* the name recorded in the descriptor (path's last component) */
  kl_blob *blob;
  int n, cap;
  bool sealed; /* laid out and checksummed: no more constants */
  int64_t header_size, data_size;
  uint32_t data_crc;
} kl_weights;

/* Sets up w for an output: `out` is the executable (the file is out.weights)
 * or, with strip_ext, the object (its extension replaced: model.o ->
 * model.weights); write false records the name without writing a file. */
void kl_weights_init(kl_weights *w, kc_arena *a, const char *out, bool strip_ext, bool write);
/* A zeroed internal global for a constant, recorded for the file. */
LLVMValueRef kl_weights_add(struct kl_ctx *L, kl_weights *w, const void *bytes, int64_t n, const char *name);
/* Lays the constants out, checksums them and emits the kiln_weights_desc
 * (runtime/kilnrt.h) the module descriptor points to. */
LLVMValueRef kl_emit_weights_desc(struct kl_ctx *L, kl_weights *w, const char *sym);
/* Writes the file (atomically: a temporary name, then rename) when w->path
 * is set; false with an error otherwise. */
bool kl_weights_write(const kl_weights *w, kc_diag *d);
void kl_weights_free(kl_weights *w);

#endif
