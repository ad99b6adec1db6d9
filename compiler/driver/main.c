/* main.c — the `kiln` command: option parsing over kc_compile().
 * Reference: docs/cli.md. */
#include "driver/pipeline.h"
#include "ir/ops.h"
#include "lower/target.h"
#include "passes/place.h"
#include "passes/plan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* driver/inspect.c: `kiln inspect ...` (argv: what follows `inspect`) */
int kc_inspect_main(int argc, char **argv);

static const char usage[] =
    "usage: kiln COMMAND [options] FILE.kg|FILE.onnx\n"
    "\n"
    "commands:\n"
    "  build FILE        compile to a standalone executable (-o OUT; default: FILE without .kg)\n"
    "  build -c FILE     compile to FILE.o plus FILE.h for embedding in a C program\n"
    "  emit FILE         print one stage (--emit=KIND; default graph)\n"
    "  check FILE        parse and verify only\n"
    "  import FILE.onnx  print an ONNX model as a .kg graph (-o FILE.kg; default stdout)\n"
    "  import FILE.pb | model.json  the same for a TensorFlow frozen graph or a TF.js graph model\n"
    "  inspect --vars FILE  list the variables (after expansion: slots, EMA shadows) with trainable and collections\n"
    "  ops               list the ops kiln knows (--markdown for docs)\n"
    "\n"
    "options:\n"
    "  -o FILE               output file ('-' is stdout for text stages)\n"
    "  --emit=KIND           graph | opt-graph | llvm | opt-llvm | asm | obj | ptx | dot | exe | lib | c\n"
    "  --backend=KIND        llvm (default) or c: portable C99 compiled by the system compiler (docs/c-backend.md)\n"
    "  --print-after=PASS    print the graph after PASS (parse, verify, expand, autodiff, cse, dce, fuse, place, plan, all) to stderr\n"
    "  -O0 .. -O3            LLVM optimization level (default -O2)\n"
    "  --target=TRIPLE       e.g. aarch64-linux-gnu, riscv64-linux-gnu (default: this machine)\n"
    "  --cpu=CPU             target CPU (default: x86-64-v2 / generic); 'native' tunes for this machine\n"
    "  --features=LIST       target features, e.g. +avx2 or +m,+a,+f,+d,+c\n"
    "  --cpu-dispatch=LIST   GEMM and convolution kernels also for these CPUs, chosen at run time: none,\n"
    "                        auto (default: x86-64-v3,x86-64-v4 for this machine at the default CPU) or a list\n"
    "  --blas=KIND           f32/f64 matmul: openblas (cblas_sgemm/dgemm, -lopenblas; the default for this\n"
    "                        machine) or generated (kiln's own GEMM for the target; the default with --target)\n"
    "  --gpu-arch=SM         GPU architecture of the kernels (--emit=ptx, and what binaries embed; default sm_80)\n"
    "  --soft-placement      GPU-placed ops without a GPU kernel run on the CPU (TF's allow_soft_placement),\n"
    "                        and so does the whole binary where it finds no usable GPU\n"
    "  --device-map=MAP      rename devices before placement: gpu=cpu, gpu:1=cpu:1, ... (comma-separated)\n"
    "  --device=DEV          where the nodes placed nowhere run (gpu:0, cpu:1; default the host CPU):\n"
    "                        a whole .kg, ONNX or TF model on a GPU, as TF's outermost tf.device\n"
    "  --cc=CC               C compiler driver used to link (default: $KILN_CC or cc; <triple>-gcc with --target)\n"
    "  --static              link a static executable (nothing needed on the machine that runs it)\n"
    "  --input-shape NAME=D0,D1,...  size of an imported model's input with dynamic dimensions\n"
    "  --input-value NAME=V0,V1,...  make an imported model's input a constant (e.g. a sample rate)\n"
    "  --feed NAME[:0]       TensorFlow graphs: a tensor the entry takes as input (default: the Placeholders)\n"
    "  --fetch NAME[:K]      TensorFlow graphs: a tensor the entry returns (default: the signature's outputs,\n"
    "                        else the nodes nothing consumes); repeatable\n"
    "  --fetch-all           TensorFlow graphs: every converted tensor is an output too (node-by-node diffs)\n"
    "  --max-loop-iterations=N  TensorFlow graphs: the most iterations of a while loop kiln unrolls (default 10000)\n"
    "  --weights-file        constants in a file beside the output (OUT.weights; -c: model.o -> model.weights),\n"
    "                        not in it; the binary loads and checks it at start\n"
    "  --version, --help\n";

/* Accepts "--name=value" and "--name value". */
static const char *optval(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (!strncmp(argv[*i], name, n)) {
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (!argv[*i][n]) {
      if (*i + 1 >= argc) return NULL;
      return argv[++*i];
    }
  }
  return NULL;
}

/* none, auto, or a list kc_dispatch_list reads */
static bool dispatch_value_ok(const char *v) {
  struct kc_variant vs[2];
  return !strcmp(v, "none") || !strcmp(v, "auto") || kc_dispatch_list(v, vs) >= 0;
}

static void list_ops(bool markdown) {
  if (markdown) puts("| op | operands | attributes | dtypes | meaning |\n|---|---|---|---|---|");
  for (int i = 0; i < KC_OP_COUNT; i++) {
    const kc_op *op = &kc_ops[i];
    if (markdown) {
      printf("| `%s` | %s | %s | %s | ", op->name, *op->operands ? op->operands : "—", *op->attrs ? op->attrs : "—",
             op->dtypes);
      for (const char *c = op->doc; *c; c++) /* a '|' would end the table cell */
        fputs(*c == '|' ? "\\|" : *c == '<' ? "&lt;" : (char[]){*c, 0}, stdout);
      if (op->expr) printf(" — `%s`", op->expr);
      puts(" |");
    }
    else
      printf("%-16s (%s) {%s} %s\n", op->name, op->operands, op->attrs, op->doc);
  }
}

/* --input-shape NAME=d0,d1,... or --input-value NAME=v0,v1,...: the split
 * is at the last '=' (ONNX names may hold anything but values never '='). */
static bool add_input_spec(kc_import_options *io, const char *arg, bool shape) {
  const char *opt = shape ? "--input-shape" : "--input-value";
  const char *eq = strrchr(arg, '=');
  if (!eq || eq == arg) {
    fprintf(stderr, "kiln: %s wants NAME=%s, not '%s'\n", opt, shape ? "d0,d1,..." : "v0,v1,...", arg);
    return false;
  }
  kc_input_spec *all = realloc((void *)io->inputs, sizeof *all * (size_t)(io->n_inputs + 1));
  if (!all) return false;
  io->inputs = all;
  char *name = strndup(arg, (size_t)(eq - arg));
  kc_input_spec *sp = NULL;
  for (int i = 0; i < io->n_inputs; i++)
    if (!strcmp(all[i].name, name)) sp = &all[i];
  if (!sp) {
    sp = &all[io->n_inputs++];
    *sp = (kc_input_spec){.name = name};
  } else free(name);
  int n = 0;
  double vals[4096];
  for (const char *p = eq + 1; *p;) {
    char *end;
    double v = strtod(p, &end);
    if (end == p || n == 4096 || (*end && *end != ',')) {
      fprintf(stderr, "kiln: %s %s: '%s' is not a comma-separated list of numbers\n", opt, sp->name, eq + 1);
      return false;
    }
    vals[n++] = v;
    p = *end ? end + 1 : end;
  }
  if (shape) {
    if (n > KILN_MAX_RANK) {
      fprintf(stderr, "kiln: --input-shape %s: rank %d is above kiln's %d\n", sp->name, n, KILN_MAX_RANK);
      return false;
    }
    sp->has_shape = true;
    sp->shape.rank = n;
    for (int i = 0; i < n; i++) {
      if (vals[i] < 0 || vals[i] != (double)(int64_t)vals[i]) {
        fprintf(stderr, "kiln: --input-shape %s: dimension '%g' is not a size\n", sp->name, vals[i]);
        return false;
      }
      sp->shape.dim[i] = (int64_t)vals[i];
    }
  } else {
    sp->has_value = true;
    sp->n_values = n;
    sp->values = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (n) memcpy(sp->values, vals, sizeof(double) * (size_t)n);
  }
  return true;
}

/* The import options live as long as the process: a file-scope object, so
 * the usage-error exits below leave nothing unreachable behind. */
static kc_import_options imp;

static void free_import_options(kc_import_options *io) {
  for (int i = 0; i < io->n_inputs; i++) {
    free((void *)io->inputs[i].name);
    free(io->inputs[i].values);
  }
  free((void *)io->inputs);
  free((void *)io->feeds);
  free((void *)io->fetches);
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("kiln 0.1 (LLVM %s)\n", KILN_LLVM_VERSION);
    return 0;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "inspect")) return kc_inspect_main(argc - 2, argv + 2);
  if (!strcmp(cmd, "ops")) {
    list_ops(argc > 2 && !strcmp(argv[2], "--markdown"));
    return 0;
  }
  kc_options o = {0};
  o.opt_level = 2;
  o.import = &imp;
  bool emit_given = false, lib = false;
  if (!strcmp(cmd, "build")) o.emit = KC_EMIT_EXE;
  else if (!strcmp(cmd, "emit") || !strcmp(cmd, "check") || !strcmp(cmd, "import")) o.emit = KC_EMIT_GRAPH;
  else {
    fprintf(stderr, "kiln: unknown command '%s'\n%s", cmd, usage);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "-o") && i + 1 < argc) o.output = argv[++i];
    else if (!strcmp(a, "-c")) lib = true;
    else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) o.opt_level = a[2] - '0';
    else if ((v = optval(argc, argv, &i, "--emit"))) {
      if (!kc_emit_parse(v, &o.emit)) {
        fprintf(stderr, "kiln: unknown --emit kind '%s' (graph, opt-graph, llvm, opt-llvm, asm, obj, ptx, dot, exe, lib, c)\n", v);
        return 2;
      }
      emit_given = true;
    } else if ((v = optval(argc, argv, &i, "--print-after"))) {
      bool known = !strcmp(v, "all");
      for (const char *const *p = kc_pass_names(); *p; p++) known |= !strcmp(*p, v);
      if (!known) {
        fprintf(stderr, "kiln: unknown pass '%s' for --print-after (parse, verify, expand, autodiff, cse, dce, fuse, place, plan, all)\n", v);
        return 2;
      }
      o.print_after = v;
    } else if ((v = optval(argc, argv, &i, "--target"))) o.triple = v;
    else if ((v = optval(argc, argv, &i, "--cpu-dispatch"))) {
      if (!dispatch_value_ok(v)) {
        fprintf(stderr, "kiln: unknown --cpu-dispatch '%s' (none, auto, or a comma-separated list of x86-64-v3, x86-64-v4)\n", v);
        return 2;
      }
      o.cpu_dispatch = v;
    }
    else if ((v = optval(argc, argv, &i, "--cpu"))) o.cpu = v;
    else if ((v = optval(argc, argv, &i, "--features"))) o.features = v;
    else if ((v = optval(argc, argv, &i, "--blas"))) {
      if (strcmp(v, "openblas") && strcmp(v, "generated")) {
        fprintf(stderr, "kiln: unknown --blas '%s' (openblas, generated)\n", v);
        return 2;
      }
      o.blas = v;
    }
    else if ((v = optval(argc, argv, &i, "--gpu-arch"))) {
      static const int known[] = {50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90};
      int sm = 0, used = 0;
      bool ok_arch = sscanf(v, "sm_%d%n", &sm, &used) == 1 && (!v[used] || (sm == 90 && !strcmp(v + used, "a")));
      bool listed = false;
      for (size_t j = 0; j < sizeof known / sizeof *known; j++) listed |= known[j] == sm;
      if (!ok_arch || !listed) {
        fprintf(stderr, "kiln: unsupported --gpu-arch '%s' (sm_50 52 53 60 61 62 70 72 75 80 86 87 89 90 90a; default sm_80)\n", v);
        return 2;
      }
      o.gpu_arch = v;
    }
    else if ((v = optval(argc, argv, &i, "--cc"))) o.cc = v;
    else if ((v = optval(argc, argv, &i, "--backend"))) {
      if (strcmp(v, "llvm") && strcmp(v, "c")) {
        fprintf(stderr, "kiln: unknown --backend '%s' (llvm, c)\n", v);
        return 2;
      }
      o.backend = v;
    }
    else if (!strcmp(a, "--weights-file")) o.weights_file = true;
    else if (!strcmp(a, "--static")) o.static_link = true;
    else if (!strcmp(a, "--soft-placement")) o.soft_placement = true;
    else if ((v = optval(argc, argv, &i, "--device-map"))) {
      char err[200];
      if (!kc_device_map_check(v, err, sizeof err)) {
        fprintf(stderr, "kiln: %s\n", err);
        return 2;
      }
      o.device_map = v;
    }
    else if ((v = optval(argc, argv, &i, "--device"))) {
      bool gpu;
      int idx;
      if (!kc_device_split(v, &gpu, &idx) || !strchr(v, ':')) {
        fprintf(stderr, "kiln: bad --device '%s' (expected cpu:N or gpu:N)\n", v);
        return 2;
      }
      o.device = v;
    }
    else if ((v = optval(argc, argv, &i, "--input-shape")) || (v = optval(argc, argv, &i, "--input-value"))) {
      if (!add_input_spec(&imp, v, !strncmp(a, "--input-shape", 13))) return 2;
    }
    else if (!strcmp(a, "--fetch-all")) imp.fetch_all = true;
    else if ((v = optval(argc, argv, &i, "--max-loop-iterations"))) {
      char *end;
      long n = strtol(v, &end, 10);
      if (end == v || *end || n < 1 || n > 1000000) {
        fprintf(stderr, "kiln: --max-loop-iterations '%s': want a count from 1 to 1000000\n", v);
        return 2;
      }
      imp.max_loop_iterations = n;
    }
    else if ((v = optval(argc, argv, &i, "--feed")) || (v = optval(argc, argv, &i, "--fetch"))) {
      bool feed = !strncmp(a, "--feed", 6);
      int *count = feed ? &imp.n_feeds : &imp.n_fetches;
      const char **list = realloc((void *)(feed ? imp.feeds : imp.fetches), sizeof(char *) * (size_t)(*count + 1));
      if (!list) return 2;
      list[(*count)++] = v;
      if (feed) imp.feeds = list;
      else imp.fetches = list;
    }
    else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "kiln: unknown option '%s'\n%s", a, usage);
      return 2;
    } else if (o.input) {
      fprintf(stderr, "kiln: more than one input file ('%s' and '%s')\n", o.input, a);
      return 2;
    } else o.input = a;
  }
  if (!o.input) {
    fprintf(stderr, "kiln: no input file\n%s", usage);
    return 2;
  }
  if (lib && !emit_given) o.emit = KC_EMIT_LIB;
  if (o.weights_file && (!strcmp(cmd, "check") || o.emit == KC_EMIT_GRAPH || o.emit == KC_EMIT_OPT_GRAPH ||
                         o.emit == KC_EMIT_DOT || o.emit == KC_EMIT_PTX)) {
    fprintf(stderr, "kiln: --weights-file needs generated code: --emit=exe, lib or obj (llvm, opt-llvm and asm "
                    "show the code but write no weights file)\n");
    return 2;
  }
  kc_diag d = {0};
  bool ok;
  if (!strcmp(cmd, "check")) { /* everything but code generation */
    kg_module *m = kc_load(o.input, o.import, &d);
    kc_place_options po = kc_options_place(&o);
    ok = m && kc_run_passes_with(m, &po, o.print_after, stderr, &d) && kc_plan_module(m, &d);
    kc_module_free(m);
  } else {
    ok = kc_compile(&o, &d);
  }
  kc_diag_print(&d, stderr);
  kc_diag_clear(&d);
  free_import_options(&imp);
  return ok ? 0 : 1;
}
