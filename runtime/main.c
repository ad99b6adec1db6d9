/* main.c — the command line of a kiln binary: run the module's program, or
 * run one entry point on .npy feeds and print or save its fetches.
 *
 * Exit status: 0 success, 1 the run failed (initializer, entry, file I/O),
 * 2 the command line is wrong.  Everything is released on every path
 * because tests run binaries under LeakSanitizer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"
#include "summary_internal.h"

enum { EXIT_RUN = 1, EXIT_USAGE = 2 };

typedef struct {
  const char *name, *file; /* file NULL: print to stdout */
} binding;

typedef struct {
  const char *run;
  binding *feeds, *fetches;
  int n_feeds, n_fetches;
  long long repeat;
  int repeat_given;
  int help;
  int trace;
} options;

static const char *prog_name(int argc, char **argv) {
  if (argc > 0 && argv && argv[0] && argv[0][0]) {
    const char *s = strrchr(argv[0], '/');
    return s ? s + 1 : argv[0];
  }
  return "kiln-program";
}

static void put_tensor_sig(FILE *f, const kiln_tensor_desc *t) {
  char buf[256];
  kiln_fmt_type(buf, sizeof buf, t->dtype, t->rank, t->dims);
  fprintf(f, "%s %s", t->name ? t->name : "?", buf);
}

static void usage(FILE *f, const char *prog, const kiln_module_desc *desc) {
  fprintf(f,
          "usage: %s [--run ENTRY] [--feed NAME=FILE.npy]... [--fetch NAME[=FILE.npy]]... "
          "[--repeat N] [--trace]\n",
          prog);
  fprintf(f, "       %s --help | --list\n\n", prog);
  if (desc->program)
    fprintf(f, "Without --run, runs the program of module '%s'.\n",
            desc->name ? desc->name : "?");
  fprintf(f,
          "--feed reads an input from a .npy file; --fetch prints an output (or saves it as "
          ".npy);\nwithout --fetch every output is printed.  --repeat runs the entry N times.\n"
          "--trace records every node of every run and writes them at the end as a Chrome trace\n"
          "(trace-TAG.json, TAG the entry or 'program') and, when an event file is open, as RunMetadata.\n\n");
  fprintf(f, "entries of module '%s':\n", desc->name ? desc->name : "?");
  if (desc->n_entries <= 0 || !desc->entries) fprintf(f, "  (none)\n");
  for (int32_t i = 0; desc->entries && i < desc->n_entries; i++) {
    const kiln_entry_desc *e = &desc->entries[i];
    fprintf(f, "  %s\n", e->name ? e->name : "?");
    for (int32_t j = 0; e->in && j < e->n_in; j++) {
      fprintf(f, "    in  ");
      put_tensor_sig(f, &e->in[j]);
      fputc('\n', f);
    }
    for (int32_t j = 0; e->out && j < e->n_out; j++) {
      fprintf(f, "    out ");
      put_tensor_sig(f, &e->out[j]);
      fputc('\n', f);
    }
  }
}

static void entry_names(FILE *f, const kiln_module_desc *desc) {
  for (int32_t i = 0; desc->entries && i < desc->n_entries; i++)
    fprintf(f, "%s%s", i ? ", " : "", desc->entries[i].name ? desc->entries[i].name : "?");
  if (desc->n_entries <= 0) fputs("none", f);
}

/* Splits "NAME=FILE" (file may be absent when allow_bare); -1 when malformed. */
static int split_binding(const char *arg, int allow_bare, binding *b) {
  const char *eq = strchr(arg, '=');
  if (!eq) {
    if (!allow_bare || !arg[0]) return -1;
    b->name = arg, b->file = NULL;
    return 0;
  }
  if (eq == arg || !eq[1]) return -1;
  /* The name is copied so argv stays untouched. */
  char *name = strndup(arg, (size_t)(eq - arg));
  if (!name) return -1;
  b->name = name, b->file = eq + 1;
  return 0;
}

static void free_options(options *o) {
  /* Names that came from "NAME=FILE" were strndup'ed; bare ones point into argv. */
  for (int i = 0; i < o->n_feeds; i++) free((char *)o->feeds[i].name);
  for (int i = 0; i < o->n_fetches; i++)
    if (o->fetches[i].file) free((char *)o->fetches[i].name);
  free(o->feeds);
  free(o->fetches);
}

/* Parses argv into o; returns 0, or an exit status after printing why. */
static int parse_args(int argc, char **argv, options *o) {
  o->repeat = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!a) break;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--list") == 0) {
      o->help = 1;
      continue;
    }
    if (strcmp(a, "--trace") == 0) {
      o->trace = 1;
      continue;
    }
    /* Both "--opt VALUE" and "--opt=VALUE". */
    static const char *const with_value[] = {"--run", "--feed", "--fetch", "--repeat"};
    const char *opt = NULL, *val = NULL;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) {
      size_t n = strlen(with_value[k]);
      if (strncmp(a, with_value[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
        opt = with_value[k];
        if (a[n] == '=') {
          val = a + n + 1;
        } else if (i + 1 < argc && argv[i + 1]) {
          val = argv[++i];
        } else {
          fprintf(stderr, "error: %s needs a value\n", opt);
          return EXIT_USAGE;
        }
        break;
      }
    }
    if (!opt) {
      fprintf(stderr, "error: unknown option '%s' (see --help)\n", a);
      return EXIT_USAGE;
    }
    if (strcmp(opt, "--run") == 0) {
      if (o->run) {
        fprintf(stderr, "error: --run given more than once\n");
        return EXIT_USAGE;
      }
      o->run = val;
    } else if (strcmp(opt, "--repeat") == 0) {
      char *end;
      errno = 0;
      long long n = strtoll(val, &end, 10);
      if (errno || end == val || *end || n < 1) {
        fprintf(stderr, "error: --repeat needs a positive integer, got '%s'\n", val);
        return EXIT_USAGE;
      }
      o->repeat = n;
      o->repeat_given = 1;
    } else {
      int feed = strcmp(opt, "--feed") == 0;
      binding **list = feed ? &o->feeds : &o->fetches;
      int *count = feed ? &o->n_feeds : &o->n_fetches;
      binding *grown = realloc(*list, (size_t)(*count + 1) * sizeof **list);
      if (!grown) {
        fprintf(stderr, "error: out of memory\n");
        return EXIT_RUN;
      }
      *list = grown;
      if (split_binding(val, !feed, &grown[*count]) != 0) {
        fprintf(stderr, "error: %s expects %s, got '%s'\n", opt,
                feed ? "NAME=FILE.npy" : "NAME or NAME=FILE.npy", val);
        return EXIT_USAGE;
      }
      (*count)++;
    }
  }
  return 0;
}

static const kiln_tensor_desc *find_tensor(const kiln_tensor_desc *t, int32_t n, const char *name) {
  for (int32_t i = 0; t && i < n; i++)
    if (t[i].name && strcmp(t[i].name, name) == 0) return &t[i];
  return NULL;
}

static void list_tensors(FILE *f, const kiln_tensor_desc *t, int32_t n) {
  for (int32_t i = 0; t && i < n; i++) fprintf(f, "%s%s", i ? ", " : "", t[i].name ? t[i].name : "?");
  if (!t || n <= 0) fputs("none", f);
}

/* A slot must lie inside its struct and agree with its own type, or reading a
 * feed into it would write out of bounds. */
static int slot_ok(const kiln_tensor_desc *t, int64_t struct_size) {
  int64_t numel;
  size_t es = kiln_dtype_size(t->dtype);
  if (!es || kiln_shape_numel(t->rank, t->dims, &numel) != 0) return 0;
  int64_t bytes = numel * (int64_t)es;
  return t->offset >= 0 && bytes <= t->nbytes && t->offset <= struct_size - bytes;
}

/* Checks options against the entry; returns 0 or an exit status. */
static int check_bindings(const options *o, const kiln_entry_desc *e) {
  const char *en = e->name ? e->name : "?";
  for (int i = 0; i < o->n_feeds; i++) {
    if (!find_tensor(e->in, e->n_in, o->feeds[i].name)) {
      fprintf(stderr, "error: entry '%s' has no input '%s' (inputs: ", en, o->feeds[i].name);
      list_tensors(stderr, e->in, e->n_in);
      fputs(")\n", stderr);
      return EXIT_USAGE;
    }
    for (int j = 0; j < i; j++)
      if (strcmp(o->feeds[j].name, o->feeds[i].name) == 0) {
        fprintf(stderr, "error: feed '%s' given more than once\n", o->feeds[i].name);
        return EXIT_USAGE;
      }
  }
  for (int32_t j = 0; e->in && j < e->n_in; j++) {
    const char *in = e->in[j].name ? e->in[j].name : "?";
    int fed = 0;
    for (int i = 0; i < o->n_feeds && !fed; i++) fed = strcmp(o->feeds[i].name, in) == 0;
    if (!fed) {
      fprintf(stderr, "error: missing feed '%s' for entry '%s' (give --feed %s=FILE.npy)\n", in,
              en, in);
      return EXIT_USAGE;
    }
  }
  for (int i = 0; i < o->n_fetches; i++)
    if (!find_tensor(e->out, e->n_out, o->fetches[i].name)) {
      fprintf(stderr, "error: entry '%s' has no output '%s' (outputs: ", en, o->fetches[i].name);
      list_tensors(stderr, e->out, e->n_out);
      fputs(")\n", stderr);
      return EXIT_USAGE;
    }
  return 0;
}

static const kiln_entry_desc *pick_entry(const options *o, const kiln_module_desc *desc) {
  if (o->run) {
    for (int32_t i = 0; desc->entries && i < desc->n_entries; i++)
      if (desc->entries[i].name && strcmp(desc->entries[i].name, o->run) == 0)
        return &desc->entries[i];
    fprintf(stderr, "error: no entry '%s' (entries: ", o->run);
    entry_names(stderr, desc);
    fputs(")\n", stderr);
    return NULL;
  }
  if (desc->n_entries == 1 && desc->entries) return &desc->entries[0];
  if (desc->n_entries <= 0 || !desc->entries)
    fprintf(stderr, "error: module '%s' has no entry points\n", desc->name ? desc->name : "?");
  else {
    fprintf(stderr, "error: several entries; choose one with --run ENTRY (entries: ");
    entry_names(stderr, desc);
    fputs(")\n", stderr);
  }
  return NULL;
}

/* Prints the stdout fetches (all outputs when none were named). */
static int print_fetches(kiln_inst *inst, const options *o, const kiln_entry_desc *e,
                         const uint8_t *out) {
  if (o->n_fetches == 0) {
    for (int32_t j = 0; e->out && j < e->n_out; j++) {
      const kiln_tensor_desc *t = &e->out[j];
      int st = kiln_rt_print(inst, t->dtype, t->rank, t->dims, out + t->offset);
      if (st != KILN_OK) return st;
    }
    return KILN_OK;
  }
  for (int i = 0; i < o->n_fetches; i++) {
    if (o->fetches[i].file) continue;
    const kiln_tensor_desc *t = find_tensor(e->out, e->n_out, o->fetches[i].name);
    int st = kiln_rt_print(inst, t->dtype, t->rank, t->dims, out + t->offset);
    if (st != KILN_OK) return st;
  }
  return KILN_OK;
}

static int run_entry(kiln_inst *inst, const options *o, const kiln_entry_desc *e) {
  const char *en = e->name ? e->name : "?";
  if (!e->fn || e->in_size < 0 || e->out_size < 0)
    return kiln_fail(inst, KILN_ERROR, "entry '%s': malformed descriptor", en);
  for (int32_t j = 0; e->in && j < e->n_in; j++)
    if (!slot_ok(&e->in[j], e->in_size))
      return kiln_fail(inst, KILN_ERROR, "entry '%s': malformed descriptor for input '%s'", en,
                       e->in[j].name ? e->in[j].name : "?");
  for (int32_t j = 0; e->out && j < e->n_out; j++)
    if (!slot_ok(&e->out[j], e->out_size))
      return kiln_fail(inst, KILN_ERROR, "entry '%s': malformed descriptor for output '%s'", en,
                       e->out[j].name ? e->out[j].name : "?");

  uint8_t *in = kiln_aligned_zalloc(e->in_size), *out = kiln_aligned_zalloc(e->out_size);
  int st = KILN_OK;
  if (!in || !out) st = kiln_fail(inst, KILN_ERROR, "out of memory allocating feeds/fetches");
  for (int i = 0; st == KILN_OK && i < o->n_feeds; i++) {
    const kiln_tensor_desc *t = find_tensor(e->in, e->n_in, o->feeds[i].name);
    st = kiln_npy_read(inst, o->feeds[i].file, t->dtype, t->rank, t->dims, in + t->offset);
  }
  for (long long r = 0; st == KILN_OK && r < o->repeat; r++) {
    st = e->fn(inst, in, out);
    if (st == KILN_OK) st = print_fetches(inst, o, e, out);
  }
  for (int i = 0; st == KILN_OK && i < o->n_fetches; i++) {
    if (!o->fetches[i].file) continue;
    const kiln_tensor_desc *t = find_tensor(e->out, e->n_out, o->fetches[i].name);
    st = kiln_npy_write(inst, o->fetches[i].file, t->dtype, t->rank, t->dims, out + t->offset);
  }
  free(in);
  free(out);
  return st;
}

int kiln_main(int argc, char **argv, const kiln_module_desc *desc) {
  const char *prog = prog_name(argc, argv);
  if (!desc) {
    fprintf(stderr, "error: no module descriptor\n");
    return EXIT_RUN;
  }
  options o = {0};
  int rc = parse_args(argc, argv, &o);
  if (rc == 0 && o.help) {
    usage(stdout, prog, desc);
    free_options(&o);
    return fflush(stdout) == 0 ? 0 : EXIT_RUN;
  }
  int program_mode = rc == 0 && desc->program && !o.run;
  if (program_mode && (o.n_feeds || o.n_fetches || o.repeat_given)) {
    fprintf(stderr, "error: --feed, --fetch and --repeat need --run ENTRY (see --help)\n");
    rc = EXIT_USAGE;
  }
  const kiln_entry_desc *e = NULL;
  if (rc == 0 && !program_mode) {
    e = pick_entry(&o, desc);
    rc = e ? check_bindings(&o, e) : EXIT_USAGE;
  }
  if (rc != 0) {
    free_options(&o);
    return rc;
  }

  int st;
  kiln_inst *inst = kiln_inst_create(desc, &st);
  if (!inst) {
    fprintf(stderr, "error: out of memory creating the instance\n");
    free_options(&o);
    return EXIT_RUN;
  }
  if (st == KILN_OK && o.trace) st = kiln_trace_all_begin(inst);
  if (st == KILN_OK) st = program_mode ? desc->program(inst) : run_entry(inst, &o, e);
  if (o.trace) { /* written even when the run failed: that is when it helps */
    char why[sizeof inst->error];
    memcpy(why, inst->error, sizeof why);
    int ts = kiln_trace_all_end(inst, program_mode ? "program" : e->name);
    if (st == KILN_OK) st = ts;
    else memcpy(inst->error, why, sizeof why); /* the run's failure matters more */
  }
  if (st != KILN_OK) kiln_rt_report(inst, st);
  kiln_inst_destroy(inst);
  free_options(&o);
  /* Output that cannot be written (full disk, closed pipe) is a failed run. */
  if (fflush(stdout) != 0) {
    if (st == KILN_OK) fprintf(stderr, "error: writing standard output: %s\n", strerror(errno));
    return EXIT_RUN;
  }
  return st == KILN_OK ? 0 : EXIT_RUN;
}
