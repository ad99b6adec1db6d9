/* testutil.c — see testutil.h. */

#include "testutil.h"
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

tu_result tu_run(char *const *argv, int timeout_s) {
  tu_result r = {0};
  int po[2], pe[2];
  if (pipe(po) || pipe(pe)) {
    r.status = -1;
    return r;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  buf bo = {0}, be = {0};
  buf_add(&bo, "", 0);
  buf_add(&be, "", 0);
  struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  time_t end = time(NULL) + timeout_s;
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    int left = (int)(end - time(NULL));
    if (left <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (poll(fds, 2, left * 1000) <= 0) continue;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char tmp[4096];
      ssize_t k = read(fds[i].fd, tmp, sizeof tmp);
      if (k <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      } else {
        buf_add(i ? &be : &bo, tmp, (size_t)k);
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0) close(fds[i].fd);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = killed ? 124 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = bo.p;
  r.err = be.p;
  return r;
}

void tu_free(tu_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  buf b = {0};
  buf_add(&b, "", 0);
  char tmp[8192];
  size_t k;
  while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(&b, tmp, k);
  fclose(f);
  if (len) *len = b.n;
  return b.p;
}

char *tu_write(const char *dir, const char *name, const char *text) {
  char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, name) < 0) return NULL;
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    free(path);
    return NULL;
  }
  return path;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **tu_list(const char *dir, const char *suffix, int *n) {
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return NULL;
  char **v = NULL;
  int cap = 0;
  struct dirent *e;
  size_t sl = strlen(suffix);
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < sl || strcmp(e->d_name + l - sl, suffix)) continue;
    if (*n == cap) v = realloc(v, sizeof(char *) * (size_t)(cap = cap ? cap * 2 : 32));
    if (asprintf(&v[*n], "%s/%s", dir, e->d_name) < 0) break;
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(v, (size_t)*n, sizeof *v, cmp);
  return v;
}

const char *tu_kiln(void) {
  const char *k = getenv("KILN");
  return k && *k ? k : "build/kiln";
}

const char *tu_build_dir(void) {
  const char *b = getenv("KILN_BUILD");
  return b && *b ? b : "build";
}

char *tu_tmpdir(void) {
  char *t = strdup("/tmp/kiln-test-XXXXXX");
  return mkdtemp(t) ? t : NULL;
}

void tu_rmtree(const char *dir) {
  if (!dir) return;
  char *argv[] = {"rm", "-rf", (char *)dir, NULL};
  tu_result r = tu_run(argv, 30);
  tu_free(&r);
}

char *tu_write_npy_f32(const char *dir, const char *name, const float *v, int rank, const long *dims) {
  return tu_write_npy(dir, name, "<f4", sizeof(float), v, rank, dims);
}

char *tu_write_npy(const char *dir, const char *name, const char *descr, size_t elem, const void *v, int rank,
                   const long *dims) {
  char hdr[256], shape[160] = "";
  long count = 1;
  for (int d = 0, k = 0; d < rank; d++) {
    k += snprintf(shape + k, sizeof shape - (size_t)k, "%ld%s", dims[d], rank == 1 || d + 1 < rank ? ", " : "");
    count *= dims[d];
  }
  int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape);
  while ((10 + len + 1) % 64) hdr[len++] = ' ';
  hdr[len++] = '\n';
  char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, name) < 0) return NULL;
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(path);
    return NULL;
  }
  unsigned char hl[2] = {(unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fwrite(hl, 1, 2, f);
  fwrite(hdr, 1, (size_t)len, f);
  fwrite(v, elem, (size_t)count, f);
  return fclose(f) == 0 ? path : (free(path), NULL);
}

float *tu_read_npy_f32(const char *path, long *count) {
  size_t len;
  char *s = tu_read_file(path, &len);
  *count = 0;
  if (!s || len < 10 || memcmp(s, "\x93NUMPY", 6) || !strstr(s + 10, "'<f4'")) {
    free(s);
    return NULL;
  }
  size_t hl = s[6] == 1 ? 10 + ((unsigned char)s[8] | (size_t)(unsigned char)s[9] << 8) : 0;
  if (!hl || hl > len || (len - hl) % 4) {
    free(s);
    return NULL;
  }
  *count = (long)((len - hl) / 4);
  float *v = malloc(len - hl + 4);
  if (v) memcpy(v, s + hl, len - hl);
  free(s);
  return v;
}

const char *tu_encode_graphdef(const char *dir, const char *name) {
  char *cmd = NULL, file[200];
  snprintf(file, sizeof file, "%s.pb", name);
  const char *out = tu_path(dir, file);
  int status = -1;
  if (asprintf(&cmd, "protoc --encode=tensorflow.GraphDef -Iproto proto/graph.proto < tests/tf/graphs/%s.pbtxt > %s",
               name, out) >= 0) {
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    tu_result r = tu_run(argv, 60);
    if ((status = r.status)) fprintf(stderr, "protoc --encode %s failed:\n%s", name, r.err ? r.err : "");
    tu_free(&r);
    free(cmd);
  }
  cr_assert(status == 0, "protoc --encode %s failed", name);
  return out;
}

char *tu_path(const char *dir, const char *name) {
  static char buf[8][600];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

bool tu_have(const char *prog) {
  const char *path = getenv("PATH");
  char file[1024];
  for (const char *s = path ? path : ""; *s;) {
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    snprintf(file, sizeof file, "%.*s/%s", (int)n, s, prog);
    if (access(file, X_OK) == 0) return true;
    if (!colon) break;
    s = colon + 1;
  }
  return false;
}

bool tu_sanitized(void) {
  const char *f = getenv("KILN_LDFLAGS");
  return f && strstr(f, "-fsanitize");
}

void tu_need_cross_tools(const char *triple, const char *arch) {
  char cc[64], qemu[64];
  snprintf(cc, sizeof cc, "%s-gcc", triple);
  snprintf(qemu, sizeof qemu, "qemu-%s", arch);
  if (!tu_have(cc)) cr_skip_test("%s is not installed (make deps installs gcc-%s)", cc, triple);
  if (!tu_have(qemu)) cr_skip_test("%s is not installed (make deps installs qemu-user)", qemu);
}

void tu_free_params(struct criterion_test_params *crp) { cr_free(crp->params); }

/* ---- tu_same_output: number-tolerant comparison of printed output ---- */

static bool starts_token(const char *s, const char *begin) { return s == begin || strchr(" \t\n[](,=:", s[-1]); }

static bool ends_token(const char *e) { return !*e || strchr(" \t\n[](),:", *e); }

/* A float as the runtime prints it: %.6g with ".0" added to integral values,
 * so it has a '.', an exponent, or is inf/nan; integers have none. */
static bool looks_float(const char *s, const char *e) {
  for (const char *c = s; c < e; c++)
    if (*c == '.' || *c == 'e' || *c == 'E' || *c == 'n' || *c == 'N') return true;
  return false;
}

bool tu_same_output(const char *got, const char *want, double rtol, double atol, char *gl, char *wl, size_t cap) {
  const char *g = got, *w = want;
  while (*g || *w) {
    if (starts_token(g, got) && starts_token(w, want)) {
      char *ge, *we;
      double a = strtod(g, &ge), b = strtod(w, &we);
      if (ge > g && we > w && ends_token(ge) && ends_token(we) && looks_float(g, ge) && looks_float(w, we)) {
        bool eq = (isnan(a) && isnan(b)) || a == b || fabs(a - b) <= atol + rtol * fmax(fabs(a), fabs(b));
        if (!eq) goto differ;
        g = ge, w = we;
        continue;
      }
    }
    if (*g != *w) goto differ;
    g++, w++;
  }
  return true;
differ:;
  const char *gs = g, *ws = w;
  while (gs > got && gs[-1] != '\n') gs--;
  while (ws > want && ws[-1] != '\n') ws--;
  snprintf(gl, cap, "%.*s", (int)strcspn(gs, "\n"), gs);
  snprintf(wl, cap, "%.*s", (int)strcspn(ws, "\n"), ws);
  return false;
}
