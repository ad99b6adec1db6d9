/* test_checkpoint_e2e.c — `save` and `restore` in compiled programs: a
 * program trains and saves, another restores and prints the same values;
 * NumPy reads the checkpoint (tests/ref/ckpt_read.py) and finds those
 * values too; a restore into mismatched variables fails cleanly; and a
 * saver of a 16 MB variable killed with SIGKILL at random moments always
 * leaves a checkpoint that restores, and nothing half-written that passes
 * for one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"

/* Writes the program (a printf format, %1$s = dir) to dir/name.kg and builds dir/name. */
__attribute__((format(printf, 3, 4))) static void build(const char *dir, const char *name,
                                                       const char *fmt, ...) {
  char kg[512], exe[512];
  snprintf(kg, sizeof kg, "%s/%s.kg", dir, name);
  snprintf(exe, sizeof exe, "%s/%s", dir, name);
  FILE *f = fopen(kg, "w");
  cr_assert_not_null(f);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
  char *argv[] = {(char *)tu_kiln(), "build", kg, "-o", exe, NULL};
  tu_result r = tu_run(argv, 120);
  cr_assert_eq(r.status, 0, "kiln build %s failed:\n%s", kg, r.err);
  tu_free(&r);
}

static tu_result run_exe(const char *dir, const char *name) {
  char exe[512];
  snprintf(exe, sizeof exe, "%s/%s", dir, name);
  char *argv[] = {exe, NULL};
  return tu_run(argv, 120);
}

/* Same numbers and words, whatever the spacing: kiln prints `[0.5 -1.0]`
 * where NumPy prints `[ 0.5 -1. ]`. */
static int same_values(const char *a, const char *b) {
  const char *sep = " \t\n[]";
  char *x = strdup(a), *y = strdup(b), *sx, *sy;
  char *p = strtok_r(x, sep, &sx), *q = strtok_r(y, sep, &sy);
  int same = 1;
  for (; same && p && q; p = strtok_r(NULL, sep, &sx), q = strtok_r(NULL, sep, &sy)) {
    char *ep, *eq;
    double u = strtod(p, &ep), v = strtod(q, &eq);
    same = (*ep || *eq) ? strcmp(p, q) == 0 : u == v;
  }
  same = same && !p && !q;
  free(x), free(y);
  return same;
}

static const char *python(void) {
  const char *py = getenv("PYTHON");
  return py && *py ? py : "/usr/bin/python3";
}

/* Every dtype kiln has a literal for, changed by three training steps. */
static const char train_kg[] =
    "module train\n"
    "var global_step : i64[] = 0 {trainable=false}\n"
    "var w : f32[2,2] = [[1.0, 2.0], [3.0, 4.0]]\n"
    "var scale : f64[] = 0.5\n"
    "var flags : bool[3] = [true, false, true]\n"
    "var counts : i32[3] = [1, 2, 3]\n"
    "graph {\n"
    "  target = const<f32[2,2]>([[0.5, -1.0], [2.0, 0.25]])\n"
    "  d = sub(w, target)\n"
    "  g = gradients(sum(mul(d, d)), w)\n"
    "  step = apply_gradient_descent(w, const<f32[]>(0.25), g)\n"
    "  inc = assign_add(global_step, const<i64[]>(1)) after [step]\n"
    "  grow = assign(scale, mul(scale, const<f64[]>(3.0))) after [inc]\n"
    "  flip = assign(flags, logical_not(flags)) after [grow]\n"
    "  more = assign_add(counts, const<i32[3]>([10, 20, 30])) after [flip]\n"
    "  train = no_op() after [more]\n"
    "}\n"
    "program {\n"
    "  repeat 3 {\n"
    "    run train\n"
    "    save \"%1$s/ckpt/model\" step global_step keep 2\n"
    "  }\n"
    "  run w, scale, flags, counts, global_step\n"
    "  print w\n  print scale\n  print flags\n  print counts\n  print global_step\n"
    "}\n";

/* The same variables, other initial values; restores `%2$s`. */
static const char restore_kg[] =
    "module restored\n"
    "var global_step : i64[] = 0 {trainable=false}\n"
    "var w : f32[2,2] = zeros\n"
    "var scale : f64[] = 0.0\n"
    "var flags : bool[3] = [false, false, false]\n"
    "var counts : i32[3] = zeros\n"
    "graph { n = identity(global_step) }\n"
    "program {\n"
    "  restore \"%1$s/%2$s\"\n"
    "  run w, scale, flags, counts, global_step\n"
    "  print w\n  print scale\n  print flags\n  print counts\n  print global_step\n"
    "}\n";

static const char trained_out[] = "[[0.5625 -0.625]\n [2.125 0.71875]]\n13.5\n[False True False]\n[31 62 93]\n3\n";

Test(checkpoint_e2e, train_save_restore) {
  char *dir = tu_tmpdir();
  build(dir, "train", train_kg, dir);
  build(dir, "latest", restore_kg, dir, "ckpt/model");
  build(dir, "second", restore_kg, dir, "ckpt/model-2");
  build(dir, "first", restore_kg, dir, "ckpt/model-1");

  tu_result t = run_exe(dir, "train");
  cr_assert_eq(t.status, 0, "train failed:\n%s", t.err);
  cr_assert_str_eq(t.out, trained_out);

  tu_result r = run_exe(dir, "latest");
  cr_assert_eq(r.status, 0, "restore failed:\n%s", r.err);
  cr_assert_str_eq(r.out, t.out);
  tu_free(&r);

  r = run_exe(dir, "second"); /* two steps: global_step 2, scale 4.5 */
  cr_assert_eq(r.status, 0, "restore of model-2 failed:\n%s", r.err);
  cr_assert(strstr(r.out, "4.5\n[True False True]\n[21 42 63]\n2\n"), "model-2 restored:\n%s", r.out);
  tu_free(&r);

  r = run_exe(dir, "first"); /* keep 2 deleted it */
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "error: restore ") && strstr(r.err, "names none of prefix 'model-1'"), "%s", r.err);
  cr_assert_str_eq(r.out, "");
  tu_free(&r);

  char path[600];
  snprintf(path, sizeof path, "%s/ckpt/checkpoint", dir);
  char *ix = tu_read_file(path, NULL);
  cr_assert_str_eq(ix, "model_checkpoint_path: \"model-3\"\n"
                       "all_model_checkpoint_paths: \"model-2\"\n"
                       "all_model_checkpoint_paths: \"model-3\"\n");
  free(ix);
  tu_free(&t);
  tu_rmtree(dir);
  free(dir);
}

Test(checkpoint_e2e, numpy_reads_the_checkpoint) {
  char *dir = tu_tmpdir();
  build(dir, "train", train_kg, dir);
  tu_result t = run_exe(dir, "train");
  cr_assert_eq(t.status, 0, "train failed:\n%s", t.err);

  char file[600];
  snprintf(file, sizeof file, "%s/ckpt/model-3.kckpt", dir);
  char *list[] = {(char *)python(), "tests/ref/ckpt_read.py", file, NULL};
  tu_result r = tu_run(list, 120);
  cr_assert_eq(r.status, 0, "ckpt_read.py failed:\n%s", r.err);
  cr_assert_str_eq(r.out, "step 3\nglobal_step i64[]\nw f32[2,2]\nscale f64[]\nflags bool[3]\ncounts i32[3]\n");
  tu_free(&r);

  char *vals[] = {(char *)python(), "tests/ref/ckpt_read.py", file, "w", "scale", "flags", "counts",
                  "global_step", NULL};
  r = tu_run(vals, 120);
  cr_assert_eq(r.status, 0, "ckpt_read.py failed:\n%s", r.err);
  cr_assert(same_values(r.out, t.out), "NumPy read:\n%s\nthe program printed:\n%s", r.out, t.out);
  tu_free(&r);

  /* The reader checks the checksums too. */
  size_t len;
  char *b = tu_read_file(file, &len);
  uint64_t hs = 0;
  for (int i = 7; i >= 0; i--) hs = hs << 8 | (unsigned char)b[16 + i];
  cr_assert_lt(hs, len);
  b[hs] ^= 1; /* the first byte of the first variable */
  FILE *f = fopen(file, "wb");
  fwrite(b, 1, len, f);
  fclose(f);
  free(b);
  r = tu_run(list, 120);
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "checksum mismatch"), "%s", r.err);
  tu_free(&r);
  tu_free(&t);
  tu_rmtree(dir);
  free(dir);
}

Test(checkpoint_e2e, mismatched_program_refused) {
  char *dir = tu_tmpdir();
  build(dir, "train", train_kg, dir);
  build(dir, "wrong",
        "module wrong\n"
        "var w : f32[4] = zeros\n"
        "graph { n = identity(w) }\n"
        "program {\n  restore \"%s/ckpt/model\"\n  run n\n  print n\n}\n",
        dir);
  build(dir, "lacking",
        "module lacking\n"
        "var w : f32[2,2] = zeros\n"
        "var bias : f32[2] = zeros\n"
        "graph { n = identity(w) }\n"
        "program {\n  restore \"%s/ckpt/model\"\n  run n\n  print n\n}\n",
        dir);
  tu_result t = run_exe(dir, "train");
  cr_assert_eq(t.status, 0, "train failed:\n%s", t.err);
  tu_result r = run_exe(dir, "wrong");
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "model-3.kckpt: variable 'w': expected f32[4], found f32[2,2]"), "%s", r.err);
  tu_free(&r);
  r = run_exe(dir, "lacking");
  cr_assert_eq(r.status, 1);
  cr_assert(strstr(r.err, "model-3.kckpt: variable 'bias' not found in the checkpoint"), "%s", r.err);
  tu_free(&r);
  tu_free(&t);
  tu_rmtree(dir);
  free(dir);
}

/* ---- killed while saving ---- */

static int count_tmps(const char *dir) {
  int n = 0, k;
  char **files = tu_list(dir, "", &k);
  for (int i = 0; i < k; i++) {
    if (strstr(files[i], ".tmp.")) n++;
    free(files[i]);
  }
  free(files);
  return n;
}

/* Runs a checker; returns the restored step, asserting that every element
 * of big equals it. */
static long check_restores(const char *dir, const char *exe, const char *what) {
  tu_result r = run_exe(dir, exe);
  cr_assert_eq(r.status, 0, "%s: restore failed (exit %d):\n%s", what, r.status, r.err);
  long step;
  double lo, hi;
  cr_assert_eq(sscanf(r.out, "%ld %lf %lf", &step, &lo, &hi), 3, "%s printed:\n%s", what, r.out);
  cr_assert(step >= 1 && lo == (double)step && hi == (double)step,
            "%s: inconsistent checkpoint: step %ld, big in [%g, %g]", what, step, lo, hi);
  tu_free(&r);
  return step;
}

Test(checkpoint_e2e, killed_while_saving) {
  char *dir = tu_tmpdir();
  /* step and big (16 MB) always hold the same number; the saver saves
   * after every increment until it is killed. */
  build(dir, "saver",
        "module saver\n"
        "var step : i64[] = 0 {trainable=false}\n"
        "var big : f32[4000000] = zeros\n"
        "graph {\n"
        "  inc = assign_add(step, const<i64[]>(1))\n"
        "  grow = assign(big, add(big, const<f32[]>(1.0))) after [inc]\n"
        "}\n"
        "program {\n  repeat 1000000 {\n    run grow\n"
        "    save \"%s/ckpt/model\" step step keep 2\n  }\n}\n",
        dir);
  static const char checker[] =
      "module checker\n"
      "var step : i64[] = 0 {trainable=false}\n"
      "var big : f32[4000000] = zeros\n"
      "graph {\n  lo = min(big)\n  hi = max(big)\n}\n"
      "program {\n  restore \"%s/ckpt/%s\"\n  run step, lo, hi\n"
      "  print step\n  print lo\n  print hi\n}\n";
  build(dir, "latest", checker, dir, "model"); /* by prefix, through the index */
  build(dir, "one", checker, dir, "one");      /* ckpt/one.kckpt: a link to each file in turn */

  char ckdir[600], exe[600], errpath[600], link[600];
  snprintf(ckdir, sizeof ckdir, "%s/ckpt", dir);
  snprintf(exe, sizeof exe, "%s/saver", dir);
  snprintf(errpath, sizeof errpath, "%s/saver.err", dir);
  snprintf(link, sizeof link, "%s/ckpt/one.kckpt", dir);
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  cr_log_info("kill test seed %u", seed);
  int kills = 0, mid_write = 0, restored = 0, files_checked = 0;
  for (int round = 0; round < 20; round++) {
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
      int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int nul = open("/dev/null", O_WRONLY);
      if (fd >= 0) dup2(fd, 2);
      if (nul >= 0) dup2(nul, 1);
      execl(exe, exe, (char *)NULL);
      _exit(127);
    }
    /* 5 ms to 250 ms: before the first save, and anywhere in later ones */
    struct timespec ts = {0, (long)(5 + rand_r(&seed) % 246) * 1000000L};
    nanosleep(&ts, NULL);
    int st;
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    char *err = tu_read_file(errpath, NULL);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the saver ended by itself (status %d):\n%s", st,
              err ? err : "");
    free(err);
    kills++;

    char pidtmp[64];
    snprintf(pidtmp, sizeof pidtmp, ".tmp.%ld.", (long)pid);
    int k;
    char **files = tu_list(ckdir, "", &k);
    for (int i = 0; i < k; i++) {
      if (strstr(files[i], pidtmp)) mid_write++;
      free(files[i]);
    }
    free(files);
    /* Stale temporary files are removed by the next save: never many. */
    cr_assert_leq(count_tmps(ckdir), 2, "round %d: temporary files pile up", round);

    char ix[700];
    snprintf(ix, sizeof ix, "%s/checkpoint", ckdir);
    struct stat sb;
    if (stat(ix, &sb) != 0) continue; /* killed before the very first save finished */
    check_restores(dir, "latest", "the latest checkpoint");
    restored++;
    /* Every file that looks like a checkpoint is a whole one. */
    files = tu_list(ckdir, ".kckpt", &k);
    for (int i = 0; i < k; i++) {
      if (strcmp(files[i], link) != 0) {
        unlink(link);
        cr_assert_eq(symlink(files[i], link), 0, "symlink: %s", strerror(errno));
        check_restores(dir, "one", files[i]);
        files_checked++;
      }
      free(files[i]);
    }
    free(files);
    unlink(link);
  }
  cr_log_info("kill test: %d kills, %d while a temporary file was being written, %d restores of the "
              "latest, %d checkpoint files checked",
              kills, mid_write, restored, files_checked);
  cr_assert_geq(restored, 15, "too few rounds got to save at all");
  tu_rmtree(dir);
  free(dir);
}
