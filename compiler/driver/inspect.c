/* inspect.c — `kiln inspect --vars FILE.kg`: the module's variables after
 * the expand pass (so the optimizers' slot variables and the moving-average
 * shadows are there), one per line, like TF's tf.global_variables() /
 * tf.trainable_variables() listings:
 *
 *   VARIABLE          TYPE       TRAINABLE  COLLECTIONS
 *   global_step       i64[]      no         global_variables
 *   w                 f32[2,3]   yes        global_variables, trainable_variables, moving_average_variables
 *   w/Momentum        f32[2,3]   no         global_variables
 *
 * Every variable is in global_variables; trainable ones (the default; `var
 * ... {trainable=false}` opts out) in trainable_variables; a variable with
 * an ExponentialMovingAverage shadow (`<v>/ExponentialMovingAverage`, made
 * by ema_apply) in moving_average_variables.  Order: declaration order,
 * then the variables the expansions made, in the order they made them. */
#include "driver/pipeline.h"
#include "ir/ops.h"
#include "passes/passes.h"
#include "passes/verify.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kc_inspect_main(int argc, char **argv);

static bool has_shadow(const kg_module *m, const kg_node *v) {
  const char *name = kc_sprintf(m->arena, "%s/ExponentialMovingAverage", v->name);
  int k = kc_module_find(m, name, strlen(name));
  return k >= 0 && m->nodes[k].op == KC_OP_VARIABLE;
}

static void list_vars(const kg_module *m, FILE *f) {
  int wn = (int)strlen("VARIABLE"), wt = (int)strlen("TYPE");
  char buf[160];
  for (int i = 0; i < m->n_nodes; i++) {
    const kg_node *n = &m->nodes[i];
    if (n->dead || n->op != KC_OP_VARIABLE) continue;
    int l = (int)strlen(n->name), t = (int)strlen(kg_type_str(&n->out[0], buf, sizeof buf));
    if (l > wn) wn = l;
    if (t > wt) wt = t;
  }
  fprintf(f, "%-*s  %-*s  %-9s  %s\n", wn, "VARIABLE", wt, "TYPE", "TRAINABLE", "COLLECTIONS");
  for (int i = 0; i < m->n_nodes; i++) {
    const kg_node *n = &m->nodes[i];
    if (n->dead || n->op != KC_OP_VARIABLE) continue;
    bool trainable = kg_attr_bool(n, "trainable", true);
    fprintf(f, "%-*s  %-*s  %-9s  global_variables%s%s\n", wn, n->name, wt, kg_type_str(&n->out[0], buf, sizeof buf),
            trainable ? "yes" : "no", trainable ? ", trainable_variables" : "",
            has_shadow(m, n) ? ", moving_average_variables" : "");
  }
}

static const char usage[] = "usage: kiln inspect --vars FILE.kg\n"
                            "  --vars   list the variables after the expand pass (slots and EMA shadows included):\n"
                            "           name, type, trainable, collections\n";

/* argv: what follows `inspect` */
int kc_inspect_main(int argc, char **argv) {
  const char *input = NULL;
  bool vars = false;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--vars")) vars = true;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "kiln inspect: unknown option '%s'\n%s", argv[i], usage);
      return 2;
    } else if (input) {
      fprintf(stderr, "kiln inspect: more than one input file ('%s' and '%s')\n", input, argv[i]);
      return 2;
    } else input = argv[i];
  }
  if (!vars || !input) {
    fprintf(stderr, "kiln inspect: %s\n%s", !vars ? "say what to list (--vars)" : "no input file", usage);
    return 2;
  }
  kc_diag d = {0};
  kg_module *m = kc_load(input, NULL, &d);
  bool ok = m && kc_pass_expand(m, &d) && kc_verify(m, &d);
  if (ok) list_vars(m, stdout);
  kc_module_free(m);
  kc_diag_print(&d, stderr);
  kc_diag_clear(&d);
  return ok ? 0 : 1;
}
