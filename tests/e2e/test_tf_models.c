/* test_tf_models.c — kiln agrees with TensorFlow.js on TensorFlow graphs
 * nobody here wrote: the TF.js graph models liveness, emotion, antispoof,
 * iris, blazeface and facemesh of @vladmandic/human 3.3.6 (float32 and
 * float16-quantized weights; _FusedConv2D with BiasAdd/Relu/Prelu,
 * DepthwiseConv2dNative, _FusedMatMul, pooling, Pad, ConcatV2, ...).  Each is
 * built with `kiln build MODEL.json`, its binary run on fixed inputs, and
 * every output compared with TF.js's (tfjs-core + tfjs-backend-cpu +
 * tfjs-converter 4.22.0 in node) within rtol 1e-4 by tests/tf/agree.js.
 *
 * tf_pb: the same graphs as frozen binary GraphDefs (tests/tf/to_pb.js writes
 * protobuf text, `protoc --encode=tensorflow.GraphDef` with proto/graph.proto
 * encodes it): `kiln import` prints the same graph as for the model.json, the
 * binary is byte-identical, and it agrees with TF.js.
 *
 * `make test` fetches TF.js and the models first (make tf-ref:
 * bench/tf/fetch.sh into build/npm-cache/tfjs).  Without node, or when they
 * could not be fetched (no network), the tests skip and say why. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static void agree(const char *model, const char *mode) {
  char *argv[] = {"/usr/bin/env", "node", "tests/tf/agree.js", "--kiln", (char *)tu_kiln(), (char *)model, (char *)mode,
                  NULL};
  tu_result r = tu_run(argv, 1200);
  if (r.status == 3 || r.status == 127) {
    char why[512];
    snprintf(why, sizeof why, "%s", r.status == 127 ? "node is not installed" : r.err ? r.err : "");
    char *nl = strchr(why, '\n');
    if (nl) *nl = 0;
    tu_free(&r);
    cr_skip_test("%s", why);
  }
  cr_assert_eq(r.status, 0, "agree.js %s (status %d):\n%s%s", model, r.status, r.out, r.err);
  cr_assert(strstr(r.out, "all agree"), "agree.js %s printed no summary:\n%s%s", model, r.out, r.err);
  tu_free(&r);
}

Test(tf_models, liveness, .timeout = 1200) { agree("liveness", NULL); }
Test(tf_models, emotion, .timeout = 1200) { agree("emotion", NULL); }
Test(tf_models, antispoof_float16_weights, .timeout = 1200) { agree("antispoof", NULL); }
Test(tf_models, iris, .timeout = 1200) { agree("iris", NULL); }
Test(tf_models, blazeface, .timeout = 1200) { agree("blazeface", NULL); }
Test(tf_models, facemesh_float16_weights, .timeout = 1200) { agree("facemesh", NULL); }

Test(tf_pb, liveness_emotion_antispoof, .timeout = 1200) { agree("liveness", "--pb"), agree("emotion", "--pb"), agree("antispoof", "--pb"); }
Test(tf_pb, iris_blazeface_facemesh, .timeout = 1200) { agree("iris", "--pb"), agree("blazeface", "--pb"), agree("facemesh", "--pb"); }
