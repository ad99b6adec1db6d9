/* embed_main.c — calls the `predict` entry point of classify.kg from C.
 *   build/kiln build -c docs/tutorial/classify.kg     (gives classify.o and classify.h)
 *   cc -I. -Iruntime -o embed docs/tutorial/embed_main.c classify.o build/libkilnrt.a \
 *      -lopenblas -lpthread -lm */
#include <stdio.h>
#include "classify.h"

int main(void) {
  classify_t *m = classify_create(); /* variables initialized, queues empty */
  if (!m) {
    fprintf(stderr, "classify_create failed\n");
    return 1;
  }
  classify_predict_in in = {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}}};
  classify_predict_out out;
  if (classify_predict(m, &in, &out) != 0) {
    fprintf(stderr, "predict: %s\n", classify_error(m));
    classify_destroy(m);
    return 1;
  }
  for (int i = 0; i < 4; i++)
    printf("row %d: p = %.4f %.4f  label = %lld\n", i, out.probs[i][0], out.probs[i][1],
           (long long)out.label[i]);
  printf("variables %d bytes, arena %d bytes\n", CLASSIFY_VARS_SIZE, CLASSIFY_ARENA_SIZE);
  classify_destroy(m);
  return 0;
}
