/* criterion.h (shim) — a minimal Criterion stand-in for the queue tests under
 * ThreadSanitizer: Criterion 2.4 cannot start under TSan (its boxfort arena
 * cannot map; Snaipe/Criterion#274), so the tests run in-process here. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
typedef void (*shim_fn)(void);
struct shim_test { const char *name; shim_fn fn; };
extern struct shim_test shim_tests[256]; extern int shim_n;
#define Test(s, n, ...) static void s##_##n(void); \
  __attribute__((constructor)) static void reg_##s##_##n(void){ shim_tests[shim_n].name=#s "::" #n; shim_tests[shim_n++].fn=s##_##n; } \
  static void s##_##n(void)
#define SHIM_FAIL(txt) do { fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, txt); abort(); } while (0)
#define cr_assert(c, ...) do { if (!(c)) SHIM_FAIL(#c); } while (0)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b))
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b))
#define cr_assert_not_null(a, ...) cr_assert((a) != NULL)
#define cr_assert_float_eq(a, b, e, ...) cr_assert(fabs((double)(a) - (double)(b)) <= (e))
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0)
