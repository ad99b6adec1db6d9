/* main.c — a C program that embeds a kiln-compiled graph: build with
 *   kiln build -c model.kg -o model.o
 *   cc -I. -I<kiln>/include/kiln main.c model.o libkilnrt.a -lopenblas -lpthread -lm
 * The header gives typed structs per entry point and create/destroy. */
#include <stdio.h>
#include "model.h"

int main(void) {
  model_t *m = model_create();
  if (!m) {
    fprintf(stderr, "model_create failed\n");
    return 1;
  }
  model_predict_in in = {{{1, 2, 3}, {-1, 0, 4}}};
  model_predict_out out;
  if (model_predict(m, &in, &out)) {
    fprintf(stderr, "predict: %s\n", model_error(m));
    return 1;
  }
  for (int i = 0; i < 2; i++) printf("y[%d] = %g %g %g\n", i, out.y[i][0], out.y[i][1], out.y[i][2]);

  model_accumulate_in ain = {{{1, 1, 1}, {2, 0, 0}}};
  model_accumulate_out aout;
  for (int k = 0; k < 2; k++) {
    if (model_accumulate(m, &ain, &aout)) {
      fprintf(stderr, "accumulate: %s\n", model_error(m));
      return 1;
    }
    printf("acc = %g %g %g\n", aout.upd[0], aout.upd[1], aout.upd[2]);
  }
  printf("vars %d bytes, arena %d bytes\n", MODEL_VARS_SIZE, MODEL_ARENA_SIZE);
  model_destroy(m);
  return 0;
}
