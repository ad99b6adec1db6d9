/* test_digits.c — the training examples on real data (sklearn's load_digits,
 * written by tests/data/digits_to_npy.py into build/digits/ by `make test`):
 * examples/train_digits.kg (an MLP) and examples/train_digits_cnn.kg (a small
 * CNN) build, run from the repository root, and reach at least 95% held-out
 * accuracy in a bounded number of steps.  This checks the requirement on its
 * own, apart from the exact snapshot that examples::run compares.  And a
 * binary started where its .npy data is missing, incomplete or of the wrong
 * shape exits non-zero with a message that names the file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

#define DIGITS "build/digits"
#define FINAL "held-out accuracy after "

static void need_data(void) {
  static const char *const files[] = {DIGITS "/train_x.npy", DIGITS "/train_y.npy", DIGITS "/test_x.npy",
                                      DIGITS "/test_y.npy"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++)
    cr_assert(access(files[i], R_OK) == 0,
              "%s is missing: `make test` writes it (rule build/digits/.stamp, tests/data/digits_to_npy.py)",
              files[i]);
}

/* Builds examples/NAME.kg into DIR/prog; returns the executable's path. */
static char *build_example(const char *dir, const char *name) {
  char kg[256], *exe;
  snprintf(kg, sizeof kg, "examples/%s.kg", name);
  cr_assert(asprintf(&exe, "%s/prog", dir) > 0);
  char *argv[] = {(char *)tu_kiln(), "build", kg, "-o", exe, NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "kiln build %s failed:\n%s", kg, r.err);
  tu_free(&r);
  return exe;
}

/* Runs exe with the working directory cwd. */
static tu_result run_in(const char *cwd, const char *exe) {
  char *argv[] = {"/bin/sh", "-c", "cd \"$1\" && exec \"$2\"", "sh", (char *)cwd, (char *)exe, NULL};
  return tu_run(argv, 60);
}

/* One report line "[step loss lr accuracy]"; false if the line is not one. */
static bool parse_report(const char *line, double v[4]) {
  if (*line != '[') return false;
  const char *p = line + 1;
  for (int i = 0; i < 4; i++) {
    char *end;
    v[i] = strtod(p, &end);
    if (end == p) return false;
    p = end;
  }
  return *p == ']';
}

static void reaches_95_percent(const char *name) {
  need_data();
  char *dir = tu_tmpdir();
  char *exe = build_example(dir, name);
  tu_result r = run_in(".", exe); /* the repository root: the .kg paths are relative to it */
  cr_assert_eq(r.status, 0, "%s exited %d:\n%s", name, r.status, r.err);

  /* the reports: steps go up, the loss comes down */
  double first[4] = {0}, last[4] = {0};
  int reports = 0;
  for (const char *line = r.out; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    double v[4];
    if (!parse_report(line, v)) continue;
    if (reports) cr_assert_gt(v[0], last[0], "%s: the step did not advance:\n%s", name, r.out);
    if (!reports) memcpy(first, v, sizeof v);
    memcpy(last, v, sizeof v);
    reports++;
  }
  cr_assert_geq(reports, 2, "%s printed fewer than two [step loss lr accuracy] reports:\n%s", name, r.out);
  cr_assert_eq(first[0], 0, "%s: the first report is not at step 0:\n%s", name, r.out);
  cr_assert_lt(last[1], first[1] / 10, "%s: the loss did not come down tenfold:\n%s", name, r.out);

  /* the final held-out accuracy, after a bounded number of steps */
  const char *fin = strstr(r.out, FINAL);
  cr_assert(fin, "%s printed no '" FINAL "N steps' line:\n%s", name, r.out);
  char *end;
  long steps = strtol(fin + strlen(FINAL), &end, 10);
  cr_assert(end != fin + strlen(FINAL) && !strncmp(end, " steps\n", 7), "%s: bad final line:\n%s", name, fin);
  cr_assert(steps > 0 && steps <= 1000, "%s trained %ld steps (at most 1000 allowed)", name, steps);
  cr_assert_eq((double)steps, last[0], "%s: the last report is at step %g, not %ld", name, last[0], steps);
  const char *val = end + 7;
  double acc = strtod(val, &end);
  cr_assert(end != val && *end == '\n', "%s: no accuracy after the final line:\n%s", name, fin);
  cr_assert_eq(acc, last[3], "%s: final accuracy %g differs from the last report's %g", name, acc, last[3]);
  cr_assert_geq(acc, 0.95, "%s: held-out accuracy %g after %ld steps is below 0.95:\n%s", name, acc, steps, r.out);

  tu_free(&r);
  free(exe);
  tu_rmtree(dir);
  free(dir);
}

Test(digits, mlp_reaches_95_percent) { reaches_95_percent("train_digits"); }
Test(digits, cnn_reaches_95_percent) { reaches_95_percent("train_digits_cnn"); }

/* copies build/digits/FROM into DIR/build/digits/TO */
static void copy_data(const char *dir, const char *from, const char *to) {
  char src[256], dst[512], cmd[1024];
  snprintf(src, sizeof src, DIGITS "/%s", from);
  snprintf(dst, sizeof dst, "%s/" DIGITS "/%s", dir, to);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/" DIGITS "' && cp '%s' '%s'", dir, src, dst);
  cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

/* runs the example from a directory holding only the given data files and
 * expects a failure whose message contains want */
static void fails_with(const char *name, const char *const *copies, size_t ncopies, const char *want) {
  if (ncopies) need_data();
  char *dir = tu_tmpdir();
  char *exe = build_example(dir, name);
  char *cwd;
  cr_assert(asprintf(&cwd, "%s/cwd", dir) > 0);
  char mk[600];
  snprintf(mk, sizeof mk, "mkdir -p '%s'", cwd);
  cr_assert_eq(system(mk), 0);
  for (size_t i = 0; i < ncopies; i += 2) copy_data(cwd, copies[i], copies[i + 1]);
  tu_result r = run_in(cwd, exe);
  cr_assert_neq(r.status, 0, "%s ran without its data:\n%s", name, r.out);
  cr_assert_lt(r.status, 128, "%s crashed (status %d) instead of failing cleanly:\n%s", name, r.status, r.err);
  cr_assert(strstr(r.err, "error:"), "%s: the message does not say 'error:':\n%s", name, r.err);
  cr_assert(strstr(r.err, want), "%s: expected a message containing\n  %s\ngot:\n%s", name, want, r.err);
  cr_assert(!strstr(r.out, "accuracy"), "%s printed output before failing:\n%s", name, r.out);
  tu_free(&r);
  free(cwd);
  free(exe);
  tu_rmtree(dir);
  free(dir);
}

Test(digits, missing_data_dir) {
  fails_with("train_digits", NULL, 0, DIGITS "/train_x.npy: cannot open: No such file or directory");
}

Test(digits, missing_data_dir_cnn) {
  fails_with("train_digits_cnn", NULL, 0, DIGITS "/train_x.npy: cannot open: No such file or directory");
}

/* the first file is there, the second is not: the message names the second */
Test(digits, missing_one_file) {
  static const char *const copies[] = {"train_x.npy", "train_x.npy"};
  fails_with("train_digits", copies, 2, DIGITS "/train_y.npy: cannot open");
}

/* the held-out images where the training images belong */
Test(digits, wrong_shape) {
  static const char *const copies[] = {"test_x.npy", "train_x.npy"};
  fails_with("train_digits", copies, 2, DIGITS "/train_x.npy: expected f32[1437,64], found f32[360,64]");
}
