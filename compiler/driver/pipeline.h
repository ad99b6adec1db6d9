/* pipeline.h — the whole compiler as one call: read, verify, run the pass
 * list, lower, optimize, emit, link.  The `kiln` command is a thin layer of
 * option parsing over kc_compile(); tests call it directly. */
#ifndef KILN_PIPELINE_H
#define KILN_PIPELINE_H

#include <stdio.h>
#include "ir/ir.h"
#include "passes/place.h"
#include "frontends/onnx/onnx_import.h"

typedef enum kc_emit {
  KC_EMIT_GRAPH,     /* the parsed, verified graph (.kg) */
  KC_EMIT_OPT_GRAPH, /* the graph after all passes (.kg, with the plan as comments) */
  KC_EMIT_LLVM,      /* LLVM IR before optimization */
  KC_EMIT_OPT_LLVM,  /* LLVM IR after the -O pipeline */
  KC_EMIT_ASM,       /* target assembly */
  KC_EMIT_OBJ,       /* object file */
  KC_EMIT_PTX,       /* PTX of the GPU-placed nodes */
  KC_EMIT_DOT,       /* Graphviz */
  KC_EMIT_EXE,       /* standalone executable */
  KC_EMIT_LIB,       /* object + C header for embedding */
  KC_EMIT_C          /* portable C99 and the header (the C backend, compiler/emitc/) */
} kc_emit;

typedef struct kc_options {
  const char *input;
  const char *output;   /* NULL: stdout for text forms, derived name for files */
  kc_emit emit;
  const char *triple;   /* NULL: the host */
  const char *cpu, *features;
  const char *cpu_dispatch; /* --cpu-dispatch: none, auto (NULL) or a list of x86-64-v3/v4 */
  int opt_level;        /* default 2 */
  const char *print_after; /* a pass name, or "all" */
  const char *gpu_arch; /* sm_80 (default), sm_90, ... */
  const char *cc;       /* the linker driver; NULL: $KILN_CC or cc (host), <triple>-gcc (--target) */
  bool static_link;     /* --static: link a static executable */
  const char *blas;     /* --blas: "openblas" or "generated" (kiln's own GEMM); NULL: openblas
                           for the host, generated for a --target (where there is no OpenBLAS) */
  bool weights_file;    /* --weights-file: constants in <output>.weights, not in the binary */
  FILE *dump;           /* where --print-after writes (stderr) */
  const kc_import_options *import; /* --input-shape / --input-value for imported models */
  bool soft_placement;  /* --soft-placement: GPU-placed ops without a GPU kernel run on the CPU, and so
                           does a binary started without a usable GPU (docs/gpu.md) */
  const char *device_map; /* --device-map FROM=TO,...: rename devices before placement */
  const char *device;   /* --device: where the nodes placed nowhere run (gpu:0, cpu:1); NULL: the host */
  const char *backend;  /* --backend: NULL or "llvm", or "c" (portable C, compiler/emitc/, docs/c-backend.md) */
} kc_options;

/* The placement pass's options of o (--soft-placement, --device-map, --device). */
kc_place_options kc_options_place(const kc_options *o);
/* Parses the emit name ("graph", "opt-llvm", "exe", ...); false if unknown. */
bool kc_emit_parse(const char *name, kc_emit *out);
/* The names of the passes, in order, NULL-terminated (for --print-after). */
const char *const *kc_pass_names(void);
/* Runs the whole pipeline for o.  Returns true on success; errors are in d. */
bool kc_compile(const kc_options *o, kc_diag *d);
/* Reads a module from a .kg file or, by its suffix, an imported model
 * (.onnx); NULL after errors. */
kg_module *kc_read_input(const char *path, const kc_import_options *io, kc_diag *d);
/* Reads and verifies a module (kc_read_input + verify).  NULL after errors. */
kg_module *kc_load(const char *path, const kc_import_options *io, kc_diag *d);
/* Runs the pass list on a verified module, printing after `print_after`. */
bool kc_run_passes(kg_module *m, const char *print_after, FILE *dump, kc_diag *d);
/* The same with the placement pass's options (NULL: hard placement, no map). */
struct kc_place_options;
bool kc_run_passes_with(kg_module *m, const struct kc_place_options *place, const char *print_after, FILE *dump,
                        kc_diag *d);

#endif
