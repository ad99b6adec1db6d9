/* test_main.c — kiln_main, the command line of every kiln binary, driven
 * with a hand-written module descriptor: exit codes, messages, feeds from
 * .npy, fetches to stdout and to .npy, --repeat, and program mode. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kilnrt.h"

typedef struct {
  int32_t x[2];
} km_in;
typedef struct {
  int32_t y[2];
  int32_t calls; /* counts runs through a variable, to observe --repeat */
} km_out;

/* y = x + 1, and calls = ++vars[0] so repeated runs are visible. */
static int km_inc(kiln_inst *inst, const void *in, void *out) {
  const km_in *i = in;
  km_out *o = out;
  int32_t *counter = (int32_t *)inst->vars;
  for (int k = 0; k < 2; k++) o->y[k] = i->x[k] + 1;
  o->calls = ++*counter;
  return KILN_OK;
}

static int km_fails(kiln_inst *inst, const void *in, void *out) {
  (void)in, (void)out;
  return kiln_fail(inst, KILN_OUT_OF_RANGE, "queue 'q' is closed and empty (OutOfRange)");
}

static int km_program(kiln_inst *inst) { return kiln_rt_print_text(inst, "program ran"); }
static int km_bad_init(kiln_inst *inst) { return kiln_fail(inst, KILN_ERROR, "init exploded"); }

static const int64_t km_dims2[1] = {2};
static const kiln_tensor_desc km_ins[1] = {{"x", KILN_I32, 1, km_dims2, offsetof(km_in, x), 8}};
static const kiln_tensor_desc km_outs[2] = {
    {"y", KILN_I32, 1, km_dims2, offsetof(km_out, y), 8},
    {"calls", KILN_I32, 0, NULL, offsetof(km_out, calls), 4},
};
static const kiln_entry_desc km_entries[2] = {
    {"inc", km_inc, 1, 2, km_ins, km_outs, sizeof(km_in), sizeof(km_out)},
    {"fails", km_fails, 0, 0, NULL, NULL, 0, 0},
};
static const kiln_module_desc km_one = {
    .name = "one", .vars_size = 4, .n_entries = 1, .entries = km_entries};
static const kiln_module_desc km_two = {
    .name = "two", .vars_size = 4, .n_entries = 2, .entries = km_entries};
static const kiln_module_desc km_prog = {
    .name = "prog", .vars_size = 4, .n_entries = 1, .entries = km_entries, .program = km_program};
static const kiln_module_desc km_badinit = {
    .name = "bad", .n_entries = 1, .entries = km_entries, .init = km_bad_init, .program = km_program};

static char km_dir[64];

static void km_setup(void) {
  strcpy(km_dir, "/tmp/kiln-main-XXXXXX");
  cr_assert_not_null(mkdtemp(km_dir));
  cr_redirect_stdout();
  cr_redirect_stderr();
}

static int km_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void km_teardown(void) { nftw(km_dir, km_rm, 8, FTW_DEPTH | FTW_PHYS); }

TestSuite(kmain, .init = km_setup, .fini = km_teardown);

/* kiln_main with argv = {"prog", args..., NULL}; the list ends with NULL. */
static int km_run(const kiln_module_desc *desc, ...) {
  char *argv[16] = {"prog"};
  int argc = 1;
  va_list ap;
  va_start(ap, desc);
  for (char *a; argc < 15 && (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
  va_end(ap);
  return kiln_main(argc, argv, desc);
}
#define KM_RUN(...) km_run(__VA_ARGS__, (char *)NULL)

/* "--feed" "x=<dir>/x.npy" with x = {10, 20}. */
static char *km_write_feed(void) {
  static char arg[128];
  char path[96];
  snprintf(path, sizeof path, "%s/x.npy", km_dir);
  int32_t x[2] = {10, 20};
  cr_assert_eq(kiln_npy_write(NULL, path, KILN_I32, 1, km_dims2, x), KILN_OK);
  snprintf(arg, sizeof arg, "x=%s", path);
  return arg;
}

static void km_flush(void) {
  fflush(stdout);
  fflush(stderr);
}

Test(kmain, help_lists_entries) {
  cr_assert_eq(KM_RUN(&km_two, "--help"), 0);
  km_flush();
  cr_assert_stdout_eq_str(
      "usage: prog [--run ENTRY] [--feed NAME=FILE.npy]... [--fetch NAME[=FILE.npy]]... "
      "[--repeat N] [--trace]\n"
      "       prog --help | --list\n\n"
      "--feed reads an input from a .npy file; --fetch prints an output (or saves it as .npy);\n"
      "without --fetch every output is printed.  --repeat runs the entry N times.\n"
      "--trace records every node of every run and writes them at the end as a Chrome trace\n"
      "(trace-TAG.json, TAG the entry or 'program') and, when an event file is open, as RunMetadata.\n\n"
      "entries of module 'two':\n"
      "  inc\n"
      "    in  x i32[2]\n"
      "    out y i32[2]\n"
      "    out calls i32[]\n"
      "  fails\n");
}

Test(kmain, list_exits_zero) { cr_assert_eq(KM_RUN(&km_one, "--list"), 0); }

Test(kmain, missing_feed) {
  cr_assert_eq(KM_RUN(&km_one, "--run", "inc"), 2);
  km_flush();
  cr_assert_stderr_eq_str("error: missing feed 'x' for entry 'inc' (give --feed x=FILE.npy)\n");
}

Test(kmain, unknown_option) {
  cr_assert_eq(KM_RUN(&km_one, "--frobnicate"), 2);
  km_flush();
  cr_assert_stderr_eq_str("error: unknown option '--frobnicate' (see --help)\n");
}

Test(kmain, unknown_feed_and_fetch_names) {
  char *feed = km_write_feed();
  cr_assert_eq(KM_RUN(&km_one, "--feed", feed, "--feed", "z=a.npy"), 2);
  cr_assert_eq(KM_RUN(&km_one, "--feed", feed, "--fetch", "nope"), 2);
  km_flush();
  cr_assert_stderr_eq_str("error: entry 'inc' has no input 'z' (inputs: x)\n"
                          "error: entry 'inc' has no output 'nope' (outputs: y, calls)\n");
}

Test(kmain, bad_repeat_and_missing_values) {
  cr_assert_eq(KM_RUN(&km_one, "--repeat", "0"), 2);
  cr_assert_eq(KM_RUN(&km_one, "--repeat", "3x"), 2);
  cr_assert_eq(KM_RUN(&km_one, "--repeat"), 2);
  cr_assert_eq(KM_RUN(&km_one, "--feed", "x"), 2);
  km_flush();
  cr_assert_stderr_eq_str("error: --repeat needs a positive integer, got '0'\n"
                          "error: --repeat needs a positive integer, got '3x'\n"
                          "error: --repeat needs a value\n"
                          "error: --feed expects NAME=FILE.npy, got 'x'\n");
}

Test(kmain, entry_choice) {
  cr_assert_eq(KM_RUN(&km_two, "--fetch", "y"), 2);
  cr_assert_eq(KM_RUN(&km_two, "--run", "missing"), 2);
  km_flush();
  cr_assert_stderr_eq_str(
      "error: several entries; choose one with --run ENTRY (entries: inc, fails)\n"
      "error: no entry 'missing' (entries: inc, fails)\n");
}

Test(kmain, good_run_fetch_to_npy) {
  char *feed = km_write_feed();
  char fetch[128], out_path[96];
  snprintf(out_path, sizeof out_path, "%s/out.npy", km_dir);
  snprintf(fetch, sizeof fetch, "y=%s", out_path);
  cr_assert_eq(KM_RUN(&km_one, "--run", "inc", "--feed", feed, "--fetch", fetch), 0);
  int32_t y[2] = {0, 0};
  cr_assert_eq(kiln_npy_read(NULL, out_path, KILN_I32, 1, km_dims2, y), KILN_OK);
  cr_assert_eq(y[0], 11);
  cr_assert_eq(y[1], 21);
  km_flush();
  cr_assert_stdout_eq_str("");
}

Test(kmain, prints_all_outputs_by_default) {
  char *feed = km_write_feed();
  cr_assert_eq(KM_RUN(&km_one, "--feed", feed), 0);
  km_flush();
  cr_assert_stdout_eq_str("[11 21]\n1\n");
}

Test(kmain, repeat_prints_every_run) {
  char *feed = km_write_feed();
  cr_assert_eq(KM_RUN(&km_one, "--feed", feed, "--fetch", "calls", "--repeat=3"), 0);
  km_flush();
  cr_assert_stdout_eq_str("1\n2\n3\n");
}

Test(kmain, wrong_feed_file_is_runtime_error) {
  char path[96], arg[128];
  snprintf(path, sizeof path, "%s/f.npy", km_dir);
  int64_t d3[1] = {3};
  float x[3] = {0};
  cr_assert_eq(kiln_npy_write(NULL, path, KILN_F32, 1, d3, x), KILN_OK);
  snprintf(arg, sizeof arg, "x=%s", path);
  cr_assert_eq(KM_RUN(&km_one, "--feed", arg), 1);
  km_flush();
  char want[256];
  snprintf(want, sizeof want, "error: %s: expected i32[2], found f32[3]\n", path);
  cr_assert_stderr_eq_str(want);
}

Test(kmain, failing_entry_exits_one) {
  cr_assert_eq(KM_RUN(&km_two, "--run", "fails"), 1);
  km_flush();
  cr_assert_stderr_eq_str("error: queue 'q' is closed and empty (OutOfRange)\n");
}

Test(kmain, program_mode) {
  cr_assert_eq(KM_RUN(&km_prog), 0);
  cr_assert_eq(kiln_main(0, NULL, &km_prog), 0); /* exec with an empty argv */
  cr_assert_eq(KM_RUN(&km_prog, "--feed", "x=a.npy"), 2);
  km_flush();
  cr_assert_stdout_eq_str("program ran\nprogram ran\n");
}

Test(kmain, init_failure_exits_one) {
  cr_assert_eq(KM_RUN(&km_badinit), 1);
  km_flush();
  cr_assert_stderr_eq_str("error: init exploded\n");
}
