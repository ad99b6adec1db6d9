/* test_agree.c — kiln's training agrees with a reference trainer: the loss of
 * the first 20 steps of a 64-32-10 MLP, from the same initial weights (.npy
 * files read by the `npy` initializer) and the same batches, matches PyTorch
 * within 1e-4 relative for plain SGD, momentum and Adam
 * (tests/ref/train/agree_torch.py).  Skipped when python3-torch is missing. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static const char *python(void) {
  const char *py = getenv("PYTHON");
  return py && *py ? py : "/usr/bin/python3";
}

static void agree(const char *opt) {
  char *probe[] = {(char *)python(), "-c", "import torch", NULL};
  tu_result p = tu_run(probe, 120);
  int have_torch = p.status == 0;
  tu_free(&p);
  if (!have_torch) cr_skip_test("python3-torch not installed (%s -c 'import torch' fails)", python());

  char *argv[] = {(char *)python(), "tests/ref/train/agree_torch.py", "--kiln", (char *)tu_kiln(), (char *)opt, NULL};
  tu_result r = tu_run(argv, 600);
  if (r.status == 3) {
    tu_free(&r);
    cr_skip_test("python3-torch not importable by agree_torch.py");
  }
  cr_assert_eq(r.status, 0, "agree_torch.py %s (status %d):\n%s%s", opt, r.status, r.out, r.err);
  cr_assert(strstr(r.out, "all agree"), "agree_torch.py %s printed no summary:\n%s%s", opt, r.out, r.err);
  tu_free(&r);
}

Test(agree, sgd_matches_torch, .timeout = 600) { agree("sgd"); }
Test(agree, momentum_matches_torch, .timeout = 600) { agree("momentum"); }
Test(agree, adam_matches_torch, .timeout = 600) { agree("adam"); }
