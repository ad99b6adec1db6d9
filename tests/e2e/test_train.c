/* test_train.c — the training ops that keep state across runs, step by step
 * against NumPy (tests/ref/train/check_train.py): every optimizer's update
 * and slot variables, moving averages, schedules over a moving global step,
 * and examples/train_step.kg against a NumPy replica of its training run;
 * plus `kiln inspect --vars` on that example. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static void check(const char *part) {
  const char *py = getenv("PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  char *argv[] = {(char *)py, "tests/ref/train/check_train.py", "--kiln", (char *)tu_kiln(), (char *)part, NULL};
  tu_result r = tu_run(argv, 600);
  cr_assert_eq(r.status, 0, "check_train.py %s:\n%s%s", part, r.out, r.err);
  cr_assert(strstr(r.out, " passed, 0 failed"), "check_train.py %s printed no summary:\n%s", part, r.out);
  tu_free(&r);
}

Test(train, optimizers_match_numpy, .timeout = 600) { check("optimizers"); }
Test(train, ema_matches_numpy, .timeout = 600) { check("ema"); }
Test(train, schedules_match_numpy, .timeout = 600) { check("schedules"); }
Test(train, example_matches_numpy_replica, .timeout = 600) { check("example"); }

Test(train, inspect_vars) {
  char *argv[] = {(char *)tu_kiln(), "inspect", "--vars", "examples/train_step.kg", NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "kiln inspect failed:\n%s", r.err);
  static const char *const want[] = {
      "VARIABLE                   TYPE        TRAINABLE  COLLECTIONS\n",
      "global_step                i64[]       no         global_variables\n",
      "data/x                     f32[128,2]  no         global_variables\n",
      "hidden/w                   f32[2,16]   yes        global_variables, trainable_variables\n",
      "hidden/b                   f32[16]     yes        global_variables, trainable_variables\n",
      "softmax_linear/w           f32[16,3]   yes        global_variables, trainable_variables\n",
      "softmax_linear/b           f32[3]      yes        global_variables, trainable_variables\n",
      "hidden/w/Momentum          f32[2,16]   no         global_variables\n",
      "hidden/b/Momentum          f32[16]     no         global_variables\n",
      "softmax_linear/w/Momentum  f32[16,3]   no         global_variables\n",
      "softmax_linear/b/Momentum  f32[3]      no         global_variables\n",
  };
  char expected[2048] = "";
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) strcat(expected, want[i]);
  cr_assert_str_eq(r.out, expected);
  tu_free(&r);
}

/* moving_average_variables, Adam's slots, scopes at the top level */
Test(train, inspect_vars_collections) {
  char *dir = tu_tmpdir();
  char kg[512];
  snprintf(kg, sizeof kg, "%s/m.kg", dir);
  FILE *f = fopen(kg, "w");
  fputs("module m\n"
        "var step : i64[] = 0 {trainable=false}\n"
        "scope layer { var w : f32[2] = ones }\n"
        "var v : f64[] = 1.5\n"
        "graph {\n"
        "  g = gradients(sum(mul(layer/w, layer/w)), layer/w)\n"
        "  u = apply_adam(layer/w, const<f32[]>(0.1), g)\n"
        "  e = ema_apply(layer/w, v, step) {decay=0.99, num_updates=true} after [u]\n"
        "}\n"
        "entry f() -> (e)\n",
        f);
  fclose(f);
  char *argv[] = {(char *)tu_kiln(), "inspect", "--vars", kg, NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 0, "kiln inspect failed:\n%s", r.err);
  cr_assert_str_eq(r.out,
                   "VARIABLE                          TYPE    TRAINABLE  COLLECTIONS\n"
                   "step                              i64[]   no         global_variables\n"
                   "layer/w                           f32[2]  yes        global_variables, trainable_variables, moving_average_variables\n"
                   "v                                 f64[]   yes        global_variables, trainable_variables, moving_average_variables\n"
                   "layer/w/Adam                      f32[2]  no         global_variables\n"
                   "layer/w/Adam_1                    f32[2]  no         global_variables\n"
                   "layer/w/beta1_power               f32[]   no         global_variables\n"
                   "layer/w/beta2_power               f32[]   no         global_variables\n"
                   "layer/w/ExponentialMovingAverage  f32[2]  no         global_variables\n"
                   "v/ExponentialMovingAverage        f64[]   no         global_variables\n");
  tu_free(&r);
  tu_rmtree(dir);
  free(dir);
}

Test(train, inspect_needs_vars) {
  char *argv[] = {(char *)tu_kiln(), "inspect", "examples/train_step.kg", NULL};
  tu_result r = tu_run(argv, 60);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "--vars"), "%s", r.err);
  tu_free(&r);
}
