/* fuzz_parser.c — libFuzzer target for the .kg front end.
 *
 * Each input is parsed; when it parses it is verified; when it verifies it
 * is printed and the printed text is parsed (and verified) again.  The
 * printer's output of a valid module must always parse and verify: if it
 * does not, that is a round-trip bug and the target aborts (the printed
 * text goes to stderr, so the crash report shows both forms).  Crashes,
 * sanitizer reports and leaks anywhere in the parser, verifier or printer
 * are found by the sanitizers.
 *
 * The input is handed to kc_parse exactly as libFuzzer gives it: `size`
 * bytes with nothing after them, so reading past the end (the parser is
 * given a length, not a C string) is an ASan report.  Building with
 * -DKILN_FUZZ_NUL_TERMINATED passes a NUL-terminated copy instead, to look
 * past such a bug for deeper ones.
 *
 * Built and run by `make fuzz` (clang-19 -fsanitize=fuzzer,address,undefined);
 * seeds are in tests/fuzz/seeds/.  UBSan reports are not fatal unless
 * UBSAN_OPTIONS=halt_on_error=1 is set. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ir/parse.h"
#include "ir/print.h"
#include "passes/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_module(const kg_module *m, size_t *len) {
  char *text = NULL;
  *len = 0;
  FILE *f = open_memstream(&text, len);
  if (!f) abort();
  kc_print_module(m, f);
  if (fclose(f) != 0) abort();
  return text;
}

static int check(const char *src, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *src = (const char *)data;
#ifdef KILN_FUZZ_NUL_TERMINATED
  char *copy = malloc(size + 1);
  if (!copy) abort();
  memcpy(copy, data, size);
  copy[size] = 0;
  src = copy;
#endif
  int rc = check(src, size);
#ifdef KILN_FUZZ_NUL_TERMINATED
  free(copy);
#endif
  return rc;
}

static int check(const char *src, size_t size) {
  kc_diag d = {0};
  kg_module *m = kc_parse("<fuzz>", src, size, &d);
  if (!m) {
    kc_diag_clear(&d);
    return 0;
  }
  if (!kc_verify(m, &d)) {
    kc_module_free(m);
    kc_diag_clear(&d);
    return 0;
  }
  size_t len;
  char *text = print_module(m, &len);
  kc_module_free(m);
  kc_diag_clear(&d);

  kc_diag d2 = {0};
  kg_module *m2 = kc_parse("<printed>", text, len, &d2);
  if (!m2) {
    fprintf(stderr,
            "round-trip bug: a verified module printed as text that does not parse\n"
            "---- diagnostics\n%s---- printed text\n%s---- end\n",
            d2.text ? d2.text : "(none)\n", text);
    abort();
  }
  if (!kc_verify(m2, &d2)) {
    fprintf(stderr,
            "round-trip bug: a verified module printed as text that does not verify\n"
            "---- diagnostics\n%s---- printed text\n%s---- end\n",
            d2.text ? d2.text : "(none)\n", text);
    abort();
  }
  kc_module_free(m2);
  kc_diag_clear(&d2);
  free(text);
  return 0;
}
