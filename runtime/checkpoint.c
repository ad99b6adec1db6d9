/* checkpoint.c — tf.train.Saver for kiln: kiln_rt_save and kiln_rt_restore.
 *
 * A checkpoint is one file, `<prefix>-<step>.kckpt` (`<prefix>.kckpt` when
 * the step is negative), holding every variable of the module; the format
 * is in docs/checkpoints.md and tests/ref/ckpt_read.py reads it with NumPy.
 * In short (all integers little-endian):
 *
 *   preamble  48 bytes: "KILNCKPT", u32 version (1), u32 n_vars,
 *             u64 header_size, u64 data_size, i64 step, u64 reserved (0)
 *   table     per variable: u32 name_len, name, char dtype[8] ("f32", NUL
 *             padded), u32 rank, u64 dims[rank], u64 offset (into the data
 *             section, a multiple of 64), u64 nbytes, u32 crc32 of the bytes
 *   zeros     up to header_size - 4 (header_size is a multiple of 64)
 *   u32       crc32 of the header's first header_size - 4 bytes
 *   data      data_size bytes; every variable at header_size + offset,
 *             zeros between and after them
 *
 * The checksum is zlib's CRC-32 (zlib.crc32 in Python).
 *
 * Saving is atomic: the file is written under a temporary name in the same
 * directory (`.<name>.tmp.<pid>.<n>`, which never ends in .kckpt), fsync'd,
 * renamed over the final name, and the directory fsync'd; the index
 * `<dir>/checkpoint` (TF's text format) is then rewritten the same way, and
 * only then are checkpoints beyond max_to_keep deleted.  A crash at any
 * moment leaves the previous checkpoint and an index that names it.
 *
 * Restoring trusts nothing in the file: every field is checked against the
 * file's size before it is used, every byte is covered by a checksum or must
 * be zero, and the variables change only after the whole file has been read
 * and checked and every variable of the module was found in it with its
 * dtype and shape.  Variables in the file that the module lacks are ignored
 * (as TF's Saver does). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rt_internal.h"

#define CK_EXT ".kckpt"
#define CK_INDEX "checkpoint"
#define CK_MAGIC "KILNCKPT"
#define CK_VERSION 1u
#define CK_PREAMBLE 48
#define CK_ALIGN 64
#define CK_DTYPE_LEN 8
/* The smallest table entry: a one-byte name and rank 0. */
#define CK_MIN_ENTRY (4 + 1 + CK_DTYPE_LEN + 4 + 8 + 8 + 4)
/* The index is a few lines per checkpoint; anything bigger is not ours. */
#define CK_MAX_INDEX (1 << 20)
/* Variables are staged through a buffer of this size while saving. */
#define CK_CHUNK (1 << 20)

/* ---- CRC-32 (zlib's: reflected polynomial 0xEDB88320), sliced by 8 ---- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_tab[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++)
      crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

/* crc32(previous, bytes): start with 0, as zlib.crc32(data, value). */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc_init);
  const uint8_t *p = data;
  crc = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
          crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
          crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
    p += 8;
    n -= 8;
  }
#endif
  while (n--) crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* For the rest of the runtime (weights.c). */
uint32_t kiln_crc32(uint32_t crc, const void *data, size_t n) { return crc32_update(crc, data, n); }

/* ---- little-endian fields ---- */

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static uint64_t round_up(uint64_t n) { return (n + CK_ALIGN - 1) / CK_ALIGN * CK_ALIGN; }

/* ---- strings and paths ---- */

__attribute__((format(printf, 1, 2))) static char *strf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Splits a path into its directory ("." when none) and its last component. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}
static const char *base_of(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* Does the checkpoint name `name` (a basename, with or without .kckpt)
 * belong to the prefix basename `base`: `base` itself or `base-<digits>`? */
static int in_family(const char *name, const char *base) {
  size_t n = strlen(name), b = strlen(base), e = strlen(CK_EXT);
  if (n >= e && memcmp(name + n - e, CK_EXT, e) == 0) n -= e;
  if (n < b || memcmp(name, base, b) != 0) return 0;
  if (n == b) return 1;
  if (name[b] != '-' || n == b + 1) return 0;
  for (size_t i = b + 1; i < n; i++)
    if (name[i] < '0' || name[i] > '9') return 0;
  return 1;
}

/* The file an index entry names: relative entries are relative to the
 * index's directory; `.kckpt` is added unless present. */
static char *entry_path(const char *dir, const char *entry) {
  const char *ext = ends_with(entry, CK_EXT) ? "" : CK_EXT;
  if (entry[0] == '/') return strf("%s%s", entry, ext);
  return strf("%s/%s%s", dir, entry, ext);
}

/* mkdir -p */
static int make_dirs(const char *dir) {
  char *p = strdup(dir);
  if (!p) return ENOMEM;
  int err = 0;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      err = errno;
      break;
    }
    *s = c;
    if (!c) break;
  }
  free(p);
  if (err) return err;
  struct stat st;
  if (stat(dir, &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = fsync(fd) != 0 ? errno : 0;
  close(fd);
  /* Some file systems cannot sync a directory; the rename is still done. */
  return err == EINVAL || err == EROFS ? 0 : err;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w, n -= (size_t)w, off += (uint64_t)w;
  }
  return 0;
}

/* ---- temporary files: `.<target>.tmp.<pid>.<n>` beside the target ---- */

static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned tmp_counter;

/* Creates a fresh temporary file for `target` (a basename) in dir. */
static int open_tmp(const char *dir, const char *target, char **tmp_path) {
  for (int tries = 0; tries < 100; tries++) {
    char *p = strf("%s/.%s.tmp.%ld.%u", dir, target, (long)getpid(), tmp_counter++);
    if (!p) return -ENOMEM;
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      *tmp_path = p;
      return fd;
    }
    int err = errno;
    free(p);
    if (err != EEXIST) return -err;
  }
  return -EEXIST;
}

/* Removes the temporary files that processes which no longer exist left in
 * dir (a save killed half-way).  Files of live processes are left alone. */
static void remove_stale_tmps(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *n = e->d_name;
    if (n[0] != '.') continue;
    const char *t = NULL;
    for (const char *s = strstr(n, ".tmp."); s; s = strstr(s + 1, ".tmp.")) t = s;
    if (!t || t < n + 2) continue;
    size_t tl = (size_t)(t - n - 1); /* the target, between '.' and ".tmp." */
    int ours = (tl == strlen(CK_INDEX) && memcmp(n + 1, CK_INDEX, tl) == 0) ||
               (tl > strlen(CK_EXT) && memcmp(n + 1 + tl - strlen(CK_EXT), CK_EXT, strlen(CK_EXT)) == 0);
    if (!ours) continue;
    char *end;
    errno = 0;
    long pid = strtol(t + 5, &end, 10);
    if (errno || end == t + 5 || *end != '.' || pid <= 0 || pid == (long)getpid()) continue;
    const char *c = end + 1;
    if (!*c) continue;
    while (*c >= '0' && *c <= '9') c++;
    if (*c) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char *p = strf("%s/%s", dir, n);
    if (p) unlink(p);
    free(p);
  }
  closedir(d);
}

/* Writes `len` bytes as `dir/target` atomically: temporary file, fsync,
 * rename, fsync of the directory.  Returns 0 or an errno; *what says which
 * step failed. */
static int write_atomic(const char *dir, const char *target, const void *data, size_t len,
                        const char **what) {
  char *tmp = NULL;
  int fd = open_tmp(dir, target, &tmp);
  if (fd < 0) {
    *what = "cannot create a temporary file";
    return -fd;
  }
  int err = pwrite_all(fd, data, len, 0);
  *what = "write failed";
  if (!err && fsync(fd) != 0) err = errno, *what = "fsync failed";
  if (close(fd) != 0 && !err) err = errno, *what = "close failed";
  char *final = strf("%s/%s", dir, target);
  if (!err && !final) err = ENOMEM, *what = "out of memory";
  if (!err && rename(tmp, final) != 0) err = errno, *what = "rename failed";
  if (err) unlink(tmp);
  if (!err && (err = fsync_dir(dir)) != 0) *what = "fsync of the directory failed";
  free(final);
  free(tmp);
  return err;
}

/* ---- the index: `<dir>/checkpoint`, TF's CheckpointState in text form ---- */

typedef struct {
  char *latest;   /* model_checkpoint_path, or NULL */
  char **all;     /* all_model_checkpoint_paths, oldest first */
  int n, cap;
} ck_index;

static void index_free(ck_index *ix) {
  free(ix->latest);
  for (int i = 0; i < ix->n; i++) free(ix->all[i]);
  free(ix->all);
  memset(ix, 0, sizeof *ix);
}

static int index_add(ck_index *ix, char *s) {
  if (!s) return -1;
  if (ix->n == ix->cap) {
    int cap = ix->cap ? ix->cap * 2 : 8;
    char **a = realloc(ix->all, sizeof *a * (size_t)cap);
    if (!a) {
      free(s);
      return -1;
    }
    ix->all = a, ix->cap = cap;
  }
  ix->all[ix->n++] = s;
  return 0;
}

/* The quoted value of `key: "value"` with C escapes undone, or NULL when
 * the line is not of that form (or the value would hold a NUL). */
static char *index_value(const char *line, const char *end, const char *key) {
  size_t k = strlen(key);
  while (line < end && (*line == ' ' || *line == '\t')) line++;
  if ((size_t)(end - line) < k + 1 || memcmp(line, key, k) != 0) return NULL;
  line += k;
  while (line < end && (*line == ' ' || *line == '\t')) line++;
  if (line >= end || *line++ != ':') return NULL;
  while (line < end && (*line == ' ' || *line == '\t')) line++;
  if (line >= end || *line != '"') return NULL;
  line++;
  char *out = malloc((size_t)(end - line) + 1);
  if (!out) return NULL;
  size_t n = 0;
  while (line < end && *line != '"') {
    unsigned c = (unsigned char)*line++;
    if (c == '\\') {
      if (line >= end) break;
      c = (unsigned char)*line++;
      switch (c) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case '\\': case '"': case '\'': break;
      default:
        if (c >= '0' && c <= '7') {
          unsigned v = c - '0';
          for (int i = 0; i < 2 && line < end && *line >= '0' && *line <= '7'; i++)
            v = v * 8 + (unsigned)(*line++ - '0');
          c = v & 0xff;
        } else {
          free(out);
          return NULL;
        }
      }
    }
    if (c == 0) {
      free(out);
      return NULL;
    }
    out[n++] = (char)c;
  }
  if (line >= end || n == 0) { /* no closing quote, or an empty name */
    free(out);
    return NULL;
  }
  out[n] = '\0';
  return out;
}

/* Reads dir/checkpoint.  Returns 0 (ix filled), ENOENT when there is no
 * index, or another errno.  Lines it does not understand are skipped. */
static int index_read(const char *dir, ck_index *ix) {
  memset(ix, 0, sizeof *ix);
  char *path = strf("%s/%s", dir, CK_INDEX);
  if (!path) return ENOMEM;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  free(path);
  if (fd < 0) return errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CK_MAX_INDEX) {
    close(fd);
    return EINVAL;
  }
  char *text = malloc((size_t)st.st_size + 1);
  size_t len = 0;
  while (text && len < (size_t)st.st_size) {
    ssize_t r = read(fd, text + len, (size_t)st.st_size - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  if (!text) return ENOMEM;
  for (const char *line = text, *end; line < text + len; line = end + 1) {
    end = memchr(line, '\n', (size_t)(text + len - line));
    if (!end) end = text + len;
    char *v;
    if ((v = index_value(line, end, "model_checkpoint_path"))) {
      free(ix->latest);
      ix->latest = v;
    } else if ((v = index_value(line, end, "all_model_checkpoint_paths"))) {
      if (index_add(ix, v) != 0) {
        free(text);
        index_free(ix);
        return ENOMEM;
      }
    }
  }
  free(text);
  return 0;
}

static void put_quoted(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\%03o", *p);
    else fputc(*p, f);
  }
  fputs("\"\n", f);
}

/* ---- saving ---- */

/* A module variable the descriptor describes consistently, or a message. */
static const char *check_var(const kiln_module_desc *d, const kiln_tensor_desc *v) {
  int64_t numel;
  size_t es = kiln_dtype_size(v->dtype);
  if (!v->name || !v->name[0]) return "a variable without a name";
  if (!es || kiln_shape_numel(v->rank, v->dims, &numel) != 0) return "an invalid type";
  if (v->nbytes != numel * (int64_t)es || v->offset < 0 || v->offset > d->vars_size ||
      v->nbytes > d->vars_size - v->offset)
    return "an invalid size or offset";
  return NULL;
}

/* Table entry size of a variable. */
static uint64_t entry_size(const kiln_tensor_desc *v) {
  return 4 + strlen(v->name) + CK_DTYPE_LEN + 4 + 8 * (uint64_t)v->rank + 8 + 8 + 4;
}

/* Writes the checkpoint file itself (under a temporary name, then renamed). */
static int write_checkpoint(kiln_inst *inst, const char *dir, const char *target,
                            const char *final, int64_t step) {
  const kiln_module_desc *d = inst->desc;
  uint64_t table = 0;
  for (int32_t i = 0; i < d->n_vars; i++) table += entry_size(&d->vars[i]);
  uint64_t header_size = round_up(CK_PREAMBLE + table + 4);
  uint64_t *offs = calloc(d->n_vars > 0 ? (size_t)d->n_vars : 1, sizeof *offs);
  uint8_t *hdr = calloc(1, (size_t)header_size);
  uint8_t *chunk = malloc(CK_CHUNK);
  if (!offs || !hdr || !chunk) {
    free(offs), free(hdr), free(chunk);
    return kiln_fail(inst, KILN_ERROR, "save %s: out of memory", final);
  }
  uint64_t data_size = 0;
  for (int32_t i = 0; i < d->n_vars; i++) {
    offs[i] = data_size;
    data_size = round_up(data_size + (uint64_t)d->vars[i].nbytes);
  }

  char *tmp = NULL;
  int fd = open_tmp(dir, target, &tmp);
  if (fd < 0) {
    free(offs), free(hdr), free(chunk);
    return kiln_fail(inst, KILN_ERROR, "save %s: cannot create a temporary file in %s: %s", final,
                     dir, strerror(-fd));
  }

  /* The data first, staged through `chunk` so that each checksum is of
   * exactly the bytes written (another thread may be changing variables). */
  static const uint8_t zeros[CK_ALIGN];
  int err = 0;
  uint8_t *p = hdr;
  memcpy(p, CK_MAGIC, 8);
  put_u32(p + 8, CK_VERSION);
  put_u32(p + 12, (uint32_t)d->n_vars);
  put_u64(p + 16, header_size);
  put_u64(p + 24, data_size);
  put_u64(p + 32, (uint64_t)step);
  p += CK_PREAMBLE;
  for (int32_t i = 0; i < d->n_vars && !err; i++) {
    const kiln_tensor_desc *v = &d->vars[i];
    uint32_t crc = 0;
    uint64_t at = header_size + offs[i];
    for (int64_t done = 0; done < v->nbytes && !err; done += CK_CHUNK) {
      size_t n = (size_t)(v->nbytes - done < CK_CHUNK ? v->nbytes - done : CK_CHUNK);
      memcpy(chunk, inst->vars + v->offset + done, n);
      crc = crc32_update(crc, chunk, n);
      err = pwrite_all(fd, chunk, n, at + (uint64_t)done);
    }
    uint64_t end = (uint64_t)v->nbytes + offs[i], pad = round_up(end) - end;
    if (!err && pad) err = pwrite_all(fd, zeros, (size_t)pad, header_size + end);

    size_t nl = strlen(v->name);
    put_u32(p, (uint32_t)nl);
    memcpy(p + 4, v->name, nl);
    p += 4 + nl;
    memcpy(p, kiln_dtype_name(v->dtype), strlen(kiln_dtype_name(v->dtype))); /* NUL padded */
    p += CK_DTYPE_LEN;
    put_u32(p, (uint32_t)v->rank);
    p += 4;
    for (int32_t k = 0; k < v->rank; k++, p += 8) put_u64(p, (uint64_t)v->dims[k]);
    put_u64(p, offs[i]);
    put_u64(p + 8, (uint64_t)v->nbytes);
    put_u32(p + 16, crc);
    p += 20;
  }
  put_u32(hdr + header_size - 4, crc32_update(0, hdr, (size_t)header_size - 4));
  const char *what = "write failed";
  if (!err) err = pwrite_all(fd, hdr, (size_t)header_size, 0);
  if (!err && fsync(fd) != 0) err = errno, what = "fsync failed";
  if (close(fd) != 0 && !err) err = errno, what = "close failed";
  if (!err && rename(tmp, final) != 0) err = errno, what = "cannot rename the temporary file";
  if (err) unlink(tmp);
  if (!err && (err = fsync_dir(dir)) != 0) what = "fsync of the directory failed";
  free(tmp), free(offs), free(hdr), free(chunk);
  if (err) return kiln_fail(inst, KILN_ERROR, "save %s: %s: %s", final, what, strerror(err));
  return KILN_OK;
}

/* Records `name` (the new checkpoint, a basename without .kckpt) as the
 * latest in dir/checkpoint, then deletes this prefix's checkpoints beyond
 * max_to_keep, oldest first.  Entries of other prefixes stay listed;
 * entries whose file is gone are dropped. */
static int update_index(kiln_inst *inst, const char *dir, const char *base, const char *name,
                        int32_t max_to_keep) {
  ck_index ix, keep = {0};
  int rc = index_read(dir, &ix);
  if (rc == ENOMEM) return kiln_fail(inst, KILN_ERROR, "save %s/%s: out of memory", dir, name);
  if (rc != 0) memset(&ix, 0, sizeof ix); /* none, or not ours: it is rewritten */
  char *new_path = entry_path(dir, name);
  int oom = !new_path;
  for (int i = 0; i < ix.n && !oom; i++) {
    char *p = entry_path(dir, ix.all[i]);
    struct stat st;
    int drop = !p || strcmp(p, new_path) == 0 || stat(p, &st) != 0;
    oom = !p;
    free(p);
    if (drop) continue;
    oom = index_add(&keep, ix.all[i]) != 0;
    ix.all[i] = NULL;
  }
  if (!oom) oom = index_add(&keep, strdup(name)) != 0;

  /* This prefix's oldest entries beyond max_to_keep go. */
  char **doomed = calloc((size_t)keep.n + 1, sizeof *doomed);
  int n_doomed = 0;
  oom = oom || !doomed;
  if (!oom && max_to_keep > 0) {
    int mine = 0;
    for (int i = 0; i < keep.n; i++) mine += in_family(base_of(keep.all[i]), base);
    int j = 0;
    for (int i = 0; i < keep.n; i++) {
      if (mine > max_to_keep && in_family(base_of(keep.all[i]), base)) {
        doomed[n_doomed++] = keep.all[i];
        mine--;
      } else {
        keep.all[j++] = keep.all[i];
      }
    }
    keep.n = j;
  }

  char *text = NULL;
  size_t len = 0;
  FILE *f = oom ? NULL : open_memstream(&text, &len);
  if (f) {
    fputs("model_checkpoint_path: ", f);
    put_quoted(f, name);
    for (int i = 0; i < keep.n; i++) {
      fputs("all_model_checkpoint_paths: ", f);
      put_quoted(f, keep.all[i]);
    }
    oom = fclose(f) != 0;
  } else {
    oom = 1;
  }
  int status = KILN_OK;
  if (oom) {
    status = kiln_fail(inst, KILN_ERROR, "save %s/%s: out of memory", dir, name);
  } else {
    const char *what;
    int err = write_atomic(dir, CK_INDEX, text, len, &what);
    if (err)
      status = kiln_fail(inst, KILN_ERROR, "save %s/%s: cannot update the index %s/%s: %s: %s",
                         dir, name, dir, CK_INDEX, what, strerror(err));
  }
  /* Delete only once the index no longer names them. */
  for (int i = 0; i < n_doomed; i++) {
    if (status == KILN_OK) {
      char *p = entry_path(dir, doomed[i]);
      if (p) unlink(p);
      free(p);
    }
    free(doomed[i]);
  }
  free(doomed);
  free(text);
  free(new_path);
  index_free(&keep);
  index_free(&ix);
  return status;
}

int kiln_rt_save(kiln_inst *inst, const char *prefix, int64_t step, int32_t max_to_keep) {
  if (!inst || !inst->desc) return kiln_fail(inst, KILN_ERROR, "save: no module instance");
  if (!prefix || !prefix[0]) return kiln_fail(inst, KILN_ERROR, "save: empty checkpoint path");
  const char *base = base_of(prefix);
  if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    return kiln_fail(inst, KILN_ERROR, "save %s: the path must end in a file name prefix", prefix);
  const kiln_module_desc *d = inst->desc;
  if (d->n_vars > 0 && !d->vars)
    return kiln_fail(inst, KILN_ERROR, "save %s: malformed module descriptor", prefix);
  for (int32_t i = 0; i < d->n_vars; i++) {
    const char *why = check_var(d, &d->vars[i]);
    if (why)
      return kiln_fail(inst, KILN_ERROR, "save %s: variable %d ('%s') of the descriptor has %s",
                       prefix, (int)i, d->vars[i].name ? d->vars[i].name : "?", why);
  }

  /* GPU-resident variables: the host copy is stale until downloaded */
  if (kiln_gpu_sync_vars) {
    int gst = kiln_gpu_sync_vars(inst, 1);
    if (gst) return gst;
  }
  char *name = step >= 0 ? strf("%s-%lld", base, (long long)step) : strdup(base);
  char *dir = dir_of(prefix);
  char *target = name ? strf("%s%s", name, CK_EXT) : NULL;
  char *final = dir && target ? strf("%s/%s", dir, target) : NULL;
  if (!final) {
    free(name), free(dir), free(target);
    return kiln_fail(inst, KILN_ERROR, "save %s: out of memory", prefix);
  }
  int status;
  int err = make_dirs(dir);
  if (err) {
    status = kiln_fail(inst, KILN_ERROR, "save %s: cannot create directory %s: %s", final, dir,
                       strerror(err));
  } else {
    pthread_mutex_lock(&save_lock);
    remove_stale_tmps(dir);
    status = write_checkpoint(inst, dir, target, final, step);
    if (status == KILN_OK) status = update_index(inst, dir, base, name, max_to_keep);
    pthread_mutex_unlock(&save_lock);
  }
  free(name), free(dir), free(target), free(final);
  return status;
}

/* ---- restoring ---- */

typedef struct {
  const uint8_t *name;
  uint32_t name_len;
  int32_t dtype, rank;
  int64_t dims[KILN_MAX_RANK];
  uint64_t offset, nbytes;
} ck_entry;

/* A file's variable name for a message: at most 80 bytes, unprintable
 * bytes as '?'. */
static void show_name(char *buf, size_t cap, const uint8_t *s, uint32_t n) {
  size_t k = 0;
  for (uint32_t i = 0; i < n && k + 4 < cap && i < 80; i++) buf[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
  if (n > 80 && k + 4 < cap) memcpy(buf + k, "...", 3), k += 3;
  buf[k] = '\0';
}

static int cmp_name(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? c : (an > bn) - (an < bn);
}

static int cmp_entry(const void *x, const void *y) {
  const ck_entry *a = *(const ck_entry *const *)x, *b = *(const ck_entry *const *)y;
  return cmp_name(a->name, a->name_len, b->name, b->name_len);
}

static int all_zero(const uint8_t *p, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* Reads `path` whole.  On success *buf (malloc'd) holds *size bytes. */
static int read_file(kiln_inst *inst, const char *path, uint8_t **buf, uint64_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kiln_fail(inst, KILN_ERROR, "restore %s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return kiln_fail(inst, KILN_ERROR, "restore %s: not a regular file", path);
  }
  uint64_t n = (uint64_t)st.st_size;
  /* Before reading everything: is this a checkpoint whose header agrees
   * with the file's size?  (Never read gigabytes of something else.) */
  uint8_t pre[CK_PREAMBLE];
  size_t got = 0;
  while (got < sizeof pre) {
    ssize_t r = pread(fd, pre + got, sizeof pre - got, (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  const char *bad = NULL;
  char why[200];
  if (memcmp(pre, CK_MAGIC, got < 8 ? got : 8) != 0) {
    bad = "not a kiln checkpoint (bad magic)";
  } else if (got < 12) {
    snprintf(why, sizeof why, "truncated: %llu bytes, shorter than the header", (unsigned long long)n);
    bad = why;
  } else if (get_u32(pre + 8) != CK_VERSION) {
    snprintf(why, sizeof why, "unsupported checkpoint format version %u (this runtime reads version %u)",
             get_u32(pre + 8), CK_VERSION);
    bad = why;
  } else if (got < CK_PREAMBLE) {
    snprintf(why, sizeof why, "truncated: %llu bytes, shorter than the header", (unsigned long long)n);
    bad = why;
  } else {
    uint64_t hs = get_u64(pre + 16), ds = get_u64(pre + 24);
    if (hs < round_up(CK_PREAMBLE + 4) || hs % CK_ALIGN || ds % CK_ALIGN) {
      snprintf(why, sizeof why, "corrupt header (header size %llu, data size %llu)",
               (unsigned long long)hs, (unsigned long long)ds);
      bad = why;
    } else if (hs > n || ds > n - hs) {
      snprintf(why, sizeof why, "truncated: the header says %llu + %llu bytes, the file has %llu",
               (unsigned long long)hs, (unsigned long long)ds, (unsigned long long)n);
      bad = why;
    } else if (hs + ds != n) {
      snprintf(why, sizeof why, "%llu unexpected bytes after the %llu the header describes",
               (unsigned long long)(n - hs - ds), (unsigned long long)(hs + ds));
      bad = why;
    }
  }
  if (bad) {
    close(fd);
    return kiln_fail(inst, KILN_ERROR, "restore %s: %s", path, bad);
  }
  uint8_t *b = n <= SIZE_MAX ? malloc((size_t)n) : NULL;
  if (!b) {
    close(fd);
    return kiln_fail(inst, KILN_ERROR, "restore %s: out of memory reading %llu bytes", path,
                     (unsigned long long)n);
  }
  got = 0;
  while (got < n) {
    ssize_t r = pread(fd, b + got, (size_t)(n - got), (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got < n) {
    free(b);
    return kiln_fail(inst, KILN_ERROR, "restore %s: truncated while reading (%llu of %llu bytes)",
                     path, (unsigned long long)got, (unsigned long long)n);
  }
  *buf = b;
  *size = n;
  return KILN_OK;
}

/* Parses and checks everything in the file (sizes, checksums, padding);
 * *entries (malloc'd, in file order) on success. */
static int parse_checkpoint(kiln_inst *inst, const char *path, const uint8_t *b, uint64_t size,
                            ck_entry **entries, uint32_t *n_entries) {
  (void)size; /* read_file checked header_size + data_size == size */
  uint64_t hs = get_u64(b + 16), ds = get_u64(b + 24);
  const uint8_t *data = b + hs;
  uint32_t stored = get_u32(b + hs - 4);
  if (crc32_update(0, b, (size_t)hs - 4) != stored)
    return kiln_fail(inst, KILN_ERROR, "restore %s: header checksum mismatch (the file is corrupt)", path);
  uint32_t n = get_u32(b + 12);
  uint64_t table_end = hs - 4;
  if (n > (table_end - CK_PREAMBLE) / CK_MIN_ENTRY)
    return kiln_fail(inst, KILN_ERROR, "restore %s: corrupt header (%u variables cannot fit in %llu bytes)",
                     path, n, (unsigned long long)hs);
  ck_entry *es = calloc(n ? n : 1, sizeof *es);
  if (!es) return kiln_fail(inst, KILN_ERROR, "restore %s: out of memory", path);

  uint64_t at = CK_PREAMBLE, prev_end = 0;
  char nm[100], why[300];
  const char *bad = NULL;
  for (uint32_t i = 0; i < n && !bad; i++) {
    ck_entry *e = &es[i];
    snprintf(why, sizeof why, "corrupt header (entry %u runs past the header)", i);
#define NEED(k) \
  if ((uint64_t)(k) > table_end - at) { bad = why; break; }
    NEED(4);
    e->name_len = get_u32(b + at);
    at += 4;
    NEED(e->name_len);
    e->name = b + at;
    at += e->name_len;
    NEED(CK_DTYPE_LEN + 4);
    char dt[CK_DTYPE_LEN + 1];
    memcpy(dt, b + at, CK_DTYPE_LEN);
    dt[CK_DTYPE_LEN] = '\0';
    size_t dl = strlen(dt);
    e->dtype = -1;
    for (int32_t k = 0; k < KILN_DTYPE_COUNT; k++)
      if (strcmp(dt, kiln_dtype_name(k)) == 0 && all_zero(b + at + dl, CK_DTYPE_LEN - dl)) e->dtype = k;
    at += CK_DTYPE_LEN;
    uint32_t rank = get_u32(b + at);
    at += 4;
    show_name(nm, sizeof nm, e->name, e->name_len);
    if (e->name_len == 0 || memchr(e->name, 0, e->name_len)) {
      snprintf(why, sizeof why, "corrupt header (entry %u has an invalid name)", i);
      bad = why;
      break;
    }
    if (e->dtype < 0) {
      char shown[CK_DTYPE_LEN + 4];
      show_name(shown, sizeof shown, (const uint8_t *)dt, (uint32_t)dl);
      snprintf(why, sizeof why, "variable '%s' has an unknown dtype '%s'", nm, shown);
      bad = why;
      break;
    }
    if (rank > KILN_MAX_RANK) {
      snprintf(why, sizeof why, "variable '%s' has rank %u (at most %d)", nm, rank, KILN_MAX_RANK);
      bad = why;
      break;
    }
    e->rank = (int32_t)rank;
    NEED(8 * (uint64_t)rank + 20);
    int dims_ok = 1;
    for (uint32_t k = 0; k < rank; k++, at += 8) {
      uint64_t v = get_u64(b + at);
      dims_ok &= v <= (uint64_t)INT64_MAX;
      e->dims[k] = (int64_t)(v & (uint64_t)INT64_MAX);
    }
    e->offset = get_u64(b + at);
    e->nbytes = get_u64(b + at + 8);
    uint32_t crc = get_u32(b + at + 16);
    at += 20;
#undef NEED
    int64_t numel;
    if (!dims_ok || kiln_shape_numel(e->rank, e->dims, &numel) != 0 ||
        e->nbytes != (uint64_t)numel * kiln_dtype_size(e->dtype)) {
      snprintf(why, sizeof why, "variable '%s': its shape and byte count (%llu) disagree", nm,
               (unsigned long long)e->nbytes);
      bad = why;
      break;
    }
    if (e->offset % CK_ALIGN || e->offset < prev_end || e->offset > ds || e->nbytes > ds - e->offset) {
      snprintf(why, sizeof why, "variable '%s': data at %llu+%llu lies outside the data section (%llu bytes) "
               "or overlaps the previous variable", nm, (unsigned long long)e->offset,
               (unsigned long long)e->nbytes, (unsigned long long)ds);
      bad = why;
      break;
    }
    if (!all_zero(data + prev_end, e->offset - prev_end)) {
      snprintf(why, sizeof why, "non-zero padding before variable '%s' (the file is corrupt)", nm);
      bad = why;
      break;
    }
    if (crc32_update(0, data + e->offset, (size_t)e->nbytes) != crc) {
      snprintf(why, sizeof why, "checksum mismatch in variable '%s' (the file is corrupt)", nm);
      bad = why;
      break;
    }
    prev_end = e->offset + e->nbytes;
  }
  if (!bad && !all_zero(b + at, table_end - at)) bad = "corrupt header (non-zero bytes after the table)";
  if (!bad && !all_zero(data + prev_end, ds - prev_end)) bad = "non-zero padding after the last variable (the file is corrupt)";
  if (bad) {
    free(es);
    return kiln_fail(inst, KILN_ERROR, "restore %s: %s", path, bad);
  }
  *entries = es;
  *n_entries = n;
  return KILN_OK;
}

/* Loads the checkpoint file `path` into the instance's variables, or
 * changes nothing and fails. */
static int load(kiln_inst *inst, const char *path) {
  const kiln_module_desc *d = inst->desc;
  for (int32_t i = 0; i < d->n_vars; i++) {
    const char *why = check_var(d, &d->vars[i]);
    if (why)
      return kiln_fail(inst, KILN_ERROR, "restore %s: variable %d ('%s') of the descriptor has %s",
                       path, (int)i, d->vars[i].name ? d->vars[i].name : "?", why);
  }
  uint8_t *b = NULL;
  uint64_t size = 0;
  int st = read_file(inst, path, &b, &size);
  if (st != KILN_OK) return st;
  ck_entry *es = NULL;
  uint32_t n = 0;
  st = parse_checkpoint(inst, path, b, size, &es, &n);
  if (st != KILN_OK) {
    free(b);
    return st;
  }
  const ck_entry **sorted = calloc(n ? n : 1, sizeof *sorted);
  const ck_entry **found = calloc(d->n_vars > 0 ? (size_t)d->n_vars : 1, sizeof *found);
  if (!sorted || !found) {
    st = kiln_fail(inst, KILN_ERROR, "restore %s: out of memory", path);
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) sorted[i] = &es[i];
  qsort(sorted, n, sizeof *sorted, cmp_entry);
  for (uint32_t i = 1; i < n; i++) {
    if (cmp_entry(&sorted[i - 1], &sorted[i]) == 0) {
      char nm[100];
      show_name(nm, sizeof nm, sorted[i]->name, sorted[i]->name_len);
      st = kiln_fail(inst, KILN_ERROR, "restore %s: variable '%s' appears twice (the file is corrupt)",
                     path, nm);
      goto done;
    }
  }

  /* Every variable of the module, with its type; extra ones are ignored. */
  char missing[600] = "";
  int n_missing = 0;
  for (int32_t i = 0; i < d->n_vars; i++) {
    const kiln_tensor_desc *v = &d->vars[i];
    size_t vl = strlen(v->name);
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      int c = cmp_name(sorted[mid]->name, sorted[mid]->name_len, (const uint8_t *)v->name,
                       vl > UINT32_MAX ? UINT32_MAX : (uint32_t)vl);
      if (c == 0) {
        found[i] = sorted[mid];
        break;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    if (!found[i]) {
      size_t ml = strlen(missing);
      if (ml < sizeof missing - 1)
        snprintf(missing + ml, sizeof missing - ml, "%s'%s'", n_missing ? ", " : "", v->name);
      n_missing++;
      continue;
    }
    const ck_entry *e = found[i];
    int same = e->dtype == v->dtype && e->rank == v->rank;
    for (int32_t k = 0; same && k < v->rank; k++) same = e->dims[k] == v->dims[k];
    if (!same && !n_missing) {
      char want[256], have[256];
      kiln_fmt_type(want, sizeof want, v->dtype, v->rank, v->dims);
      kiln_fmt_type(have, sizeof have, e->dtype, e->rank, e->dims);
      st = kiln_fail(inst, KILN_ERROR, "restore %s: variable '%s': expected %s, found %s", path,
                     v->name, want, have);
      goto done;
    }
  }
  if (n_missing) {
    st = kiln_fail(inst, KILN_ERROR, "restore %s: %s %s not found in the checkpoint", path,
                   n_missing == 1 ? "variable" : "variables", missing);
    goto done;
  }

  /* Everything checked: now, and only now, the variables change. */
  for (int32_t i = 0; i < d->n_vars; i++) {
    const kiln_tensor_desc *v = &d->vars[i];
    if (v->nbytes == 0) continue;
    memcpy(inst->vars + v->offset, b + get_u64(b + 16) + found[i]->offset, (size_t)v->nbytes);
    if (v->dtype == KILN_BOOL) /* a _Bool must hold 0 or 1 */
      for (int64_t k = 0; k < v->nbytes; k++) inst->vars[v->offset + k] = inst->vars[v->offset + k] != 0;
  }
  /* GPU-resident variables: the device copy is what the kernels read */
  st = kiln_gpu_sync_vars ? kiln_gpu_sync_vars(inst, 0) : KILN_OK;
done:
  free(found);
  free(sorted);
  free(es);
  free(b);
  return st;
}

int kiln_rt_restore(kiln_inst *inst, const char *prefix) {
  if (!inst || !inst->desc) return kiln_fail(inst, KILN_ERROR, "restore: no module instance");
  if (!prefix || !prefix[0]) return kiln_fail(inst, KILN_ERROR, "restore: empty checkpoint path");
  if (inst->desc->n_vars > 0 && !inst->desc->vars)
    return kiln_fail(inst, KILN_ERROR, "restore %s: malformed module descriptor", prefix);
  struct stat st;
  /* 1. The path of a checkpoint file, with or without its extension. */
  if (ends_with(prefix, CK_EXT)) return load(inst, prefix);
  char *file = strf("%s%s", prefix, CK_EXT);
  if (!file) return kiln_fail(inst, KILN_ERROR, "restore %s: out of memory", prefix);
  if (stat(file, &st) == 0) {
    int rc = load(inst, file);
    free(file);
    return rc;
  }
  free(file);

  /* 2. A directory: the latest checkpoint its index names (TF's
   *    latest_checkpoint(dir)).  3. A save prefix: the latest checkpoint of
   *    that prefix in the index of its directory. */
  int is_dir = stat(prefix, &st) == 0 && S_ISDIR(st.st_mode);
  char *dir = is_dir ? strdup(prefix) : dir_of(prefix);
  const char *base = is_dir ? NULL : base_of(prefix);
  if (!dir) return kiln_fail(inst, KILN_ERROR, "restore %s: out of memory", prefix);
  ck_index ix;
  int err = index_read(dir, &ix);
  int rc;
  if (err == ENOENT) {
    rc = is_dir ? kiln_fail(inst, KILN_ERROR, "restore %s: no checkpoint index %s/%s", prefix, dir, CK_INDEX)
                : kiln_fail(inst, KILN_ERROR, "restore %s: no checkpoint %s%s and no index %s/%s", prefix,
                            prefix, CK_EXT, dir, CK_INDEX);
  } else if (err) {
    rc = kiln_fail(inst, KILN_ERROR, "restore %s: cannot read the index %s/%s: %s", prefix, dir,
                   CK_INDEX, err == EINVAL ? "not a checkpoint index" : strerror(err));
  } else {
    const char *pick = NULL;
    if (ix.latest && (!base || in_family(base_of(ix.latest), base))) pick = ix.latest;
    for (int i = ix.n - 1; i >= 0 && !pick; i--)
      if (!base || in_family(base_of(ix.all[i]), base)) pick = ix.all[i];
    char *path = pick ? entry_path(dir, pick) : NULL;
    if (!pick)
      rc = base ? kiln_fail(inst, KILN_ERROR,
                            "restore %s: no checkpoint %s%s, and the index %s/%s names none of prefix '%s'",
                            prefix, prefix, CK_EXT, dir, CK_INDEX, base)
                : kiln_fail(inst, KILN_ERROR, "restore %s: the index %s/%s names no checkpoint", prefix,
                            dir, CK_INDEX);
    else if (!path)
      rc = kiln_fail(inst, KILN_ERROR, "restore %s: out of memory", prefix);
    else
      rc = load(inst, path);
    free(path);
  }
  index_free(&ix);
  free(dir);
  return rc;
}
