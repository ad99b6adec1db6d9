/* testutil.h — helpers for tests that drive the kiln command and compiled
 * binaries: run a command, capture its output, compare outputs, list files,
 * read files. */
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

struct criterion_test_params;

typedef struct tu_result {
  int status;   /* exit status; 128+N when killed by signal N */
  char *out;    /* stdout (malloc'd, NUL-terminated) */
  char *err;    /* stderr */
} tu_result;

/* Runs argv (NULL-terminated) with a time limit in seconds; captures output. */
tu_result tu_run(char *const *argv, int timeout_s);
void tu_free(tu_result *r);
/* Reads a whole file (malloc'd) or NULL. */
char *tu_read_file(const char *path, size_t *len);
/* Writes text to dir/name; returns the path (malloc'd), NULL on failure. */
char *tu_write(const char *dir, const char *name, const char *text);
/* Files in dir whose names end in suffix, sorted; *n set; each malloc'd "dir/name". */
char **tu_list(const char *dir, const char *suffix, int *n);
/* The kiln binary under test ($KILN or build/kiln), and the build dir. */
const char *tu_kiln(void);
const char *tu_build_dir(void);
/* A fresh temporary directory (removed by tu_rmtree). */
char *tu_tmpdir(void);
/* "dir/name" in one of 8 static buffers used in turn (valid until 8 more calls). */
char *tu_path(const char *dir, const char *name);
void tu_rmtree(const char *dir);
/* A float32 .npy of the given shape at dir/name; the path (malloc'd) or NULL. */
char *tu_write_npy_f32(const char *dir, const char *name, const float *v, int rank, const long *dims);
/* The same for any dtype: `descr` is NumPy's ("|b1", "<i4"), elem its size. */
char *tu_write_npy(const char *dir, const char *name, const char *descr, size_t elem, const void *v, int rank,
                   const long *dims);
/* The values of a float32 .npy (malloc'd; *count set), or NULL. */
float *tu_read_npy_f32(const char *path, long *count);
/* tests/tf/graphs/NAME.pbtxt encoded as a binary GraphDef (protoc --encode with proto/graph.proto) at
 * dir/NAME.pb; the path (a tu_path buffer); fails the running test when protoc does. */
const char *tu_encode_graphdef(const char *dir, const char *name);
/* True when prog is an executable file in one of $PATH's directories. */
bool tu_have(const char *prog);
/* True when $KILN_LDFLAGS asks for a sanitizer (-fsanitize: make test-sanitize's pass). */
bool tu_sanitized(void);
/* Skips the running test, naming the package, unless TRIPLE-gcc and qemu-ARCH are on $PATH. */
void tu_need_cross_tools(const char *triple, const char *arch);
/* The free function for cr_make_param_array: cr_free's the parameter array. */
void tu_free_params(struct criterion_test_params *crp);
/* got == want, floats ('.', e, inf, nan) within atol + rtol*max(|a|,|b|); else false, differing lines in gl, wl. */
bool tu_same_output(const char *got, const char *want, double rtol, double atol, char *gl, char *wl, size_t cap);

#endif
