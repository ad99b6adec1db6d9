/* test_onnx_conformance.c — the ONNX backend conformance suite of Debian's
 * libonnx-testdata: tests/onnx/run_conformance.py --check compiles every
 * case with kiln, runs it on the recorded inputs and compares with the
 * recorded outputs; it fails when a case listed in tests/onnx/passing.txt
 * does not pass (docs/onnx-conformance.md).  The runner's table (pass / fail /
 * unsupported per suite) is printed to stderr.  Skipped only when the test
 * data is not installed (`make deps` installs it).  No Criterion timeout
 * (they leak under LeakSanitizer): tu_run bounds the runner. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

#define ONNX_TESTDATA "/usr/share/libonnx-testdata/data"

static const char *python(void) {
  const char *py = getenv("PYTHON");
  return py && *py ? py : "/usr/bin/python3";
}

Test(onnx, conformance) {
  if (access(ONNX_TESTDATA "/node", R_OK) != 0)
    cr_skip_test("%s is missing (install libonnx-testdata: make deps)", ONNX_TESTDATA);
  char work[512];
  snprintf(work, sizeof work, "%s/onnx-conf", tu_build_dir());
  char *argv[] = {(char *)python(), "tests/onnx/run_conformance.py", "--kiln", (char *)tu_kiln(),
                  "--build", work, "--data", ONNX_TESTDATA, "--jobs", "2", "--check", NULL};
  tu_result r = tu_run(argv, 1800);
  fprintf(stderr, "%s%s", r.out, r.err);
  cr_assert_eq(r.status, 0,
               "tests/onnx/run_conformance.py --check exited %d (a case of tests/onnx/passing.txt "
               "no longer passes, see above; status 124: it ran past 1800 s)",
               r.status);
  tu_free(&r);
}
