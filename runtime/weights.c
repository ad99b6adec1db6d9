/* weights.c — the weights file of a module built with `kiln build
 * --weights-file` (docs/runtime.md, "Weights files").  Such a module's
 * constants are zeroed buffers in the binary; the first instance of the
 * process finds the file, checks it and reads it into them, before any
 * variable initializer runs.  In short (integers little-endian):
 *
 *   preamble  48 bytes: "KILNWGTS", u32 version (1), u32 count,
 *             u64 header_size, u64 data_size, u64 total_size (the file's
 *             size: header_size + data_size), u32 crc32 of the data
 *             section, u32 reserved (0)
 *   table     per constant: u64 offset (into the data section, a multiple
 *             of 64), u64 size
 *   zeros     up to header_size - 4; header_size is the smallest multiple
 *             of 64 holding preamble, table and the next field
 *   u32       crc32 of the header's first header_size - 4 bytes
 *   data      data_size bytes (a multiple of 64): every constant at
 *             header_size + offset, zeros between and after them
 *
 * The checksum is zlib's CRC-32.  Nothing in the file is trusted: the
 * header's checksum is checked before its fields are used, the file's size
 * against the header, the header against what the binary expects (count,
 * sizes, total size, data checksum), and the data against its checksum. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rt_internal.h"

#define W_MAGIC "KILNWGTS"
#define W_VERSION 1u
#define W_PREAMBLE 48
#define W_ENTRY 16
#define W_ALIGN 64
/* More constants than any module has; bounds the table before it is read. */
#define W_MAX_COUNT (1 << 24)

/* Loading writes module globals shared by every instance: one at a time. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* Reads up to n bytes; the count read (short only at the end of the file),
 * or -1 with errno set. */
static int64_t read_full(int fd, void *buf, uint64_t n) {
  uint8_t *p = buf;
  uint64_t done = 0;
  while (done < n) {
    uint64_t want = n - done < (1u << 30) ? n - done : (1u << 30);
    ssize_t k = read(fd, p + done, (size_t)want);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) break;
    done += (uint64_t)k;
  }
  return (int64_t)done;
}

/* The file's path: `given`, else $KILN_WEIGHTS, each a file or a directory
 * holding w->file; else w->file in the executable's directory. */
static int resolve(kiln_inst *inst, const kiln_weights_desc *w, const char *given, char *path, size_t cap) {
  const char *where = given && *given ? given : getenv("KILN_WEIGHTS");
  int n;
  if (where && *where) {
    struct stat sb;
    if (stat(where, &sb) == 0 && S_ISDIR(sb.st_mode)) n = snprintf(path, cap, "%s/%s", where, w->file);
    else n = snprintf(path, cap, "%s", where);
  } else {
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) {
      n = snprintf(path, cap, "%s", w->file); /* no /proc: the working directory */
    } else {
      exe[k] = 0;
      char *slash = strrchr(exe, '/');
      if (slash) *slash = 0;
      n = snprintf(path, cap, "%s/%s", slash ? exe : ".", w->file);
    }
  }
  if (n < 0 || (size_t)n >= cap)
    return kiln_fail(inst, KILN_ERROR, "weights file '%s': path too long", w->file);
  return KILN_OK;
}

/* Checks the open file `fd` (`sz` bytes) and reads its constants into the
 * module's buffers. */
static int load_fd(kiln_inst *inst, const kiln_weights_desc *w, const char *path, int fd, int64_t sz) {
  uint8_t pre[W_PREAMBLE];
  int64_t got = read_full(fd, pre, W_PREAMBLE);
  if (got < 0) return kiln_fail(inst, KILN_ERROR, "weights file '%s': cannot read: %s", path, strerror(errno));
  if (got < W_PREAMBLE)
    return kiln_fail(inst, KILN_ERROR, "weights file '%s': truncated: %lld bytes, expected %lld", path,
                     (long long)sz, (long long)w->total_size);
  if (memcmp(pre, W_MAGIC, 8) != 0)
    return kiln_fail(inst, KILN_ERROR, "weights file '%s': not a kiln weights file (bad magic)", path);
  uint32_t version = get_u32(pre + 8), count = get_u32(pre + 12);
  if (version != W_VERSION)
    return kiln_fail(inst, KILN_ERROR, "weights file '%s': format version %u, this runtime reads version %u",
                     path, version, W_VERSION);
  uint64_t header_size = get_u64(pre + 16);
  uint64_t want_header = ((uint64_t)W_PREAMBLE + (uint64_t)count * W_ENTRY + 4 + W_ALIGN - 1) / W_ALIGN * W_ALIGN;
  if (count > W_MAX_COUNT || header_size != want_header)
    return kiln_fail(inst, KILN_ERROR, "weights file '%s': corrupt header (count %u, header size %llu)", path,
                     count, (unsigned long long)header_size);
  if ((uint64_t)sz < header_size)
    return kiln_fail(inst, KILN_ERROR, "weights file '%s': truncated: %lld bytes, expected %lld", path,
                     (long long)sz, (long long)w->total_size);
  uint8_t *hdr = malloc((size_t)header_size);
  if (!hdr) return kiln_fail(inst, KILN_ERROR, "weights file '%s': out of memory", path);
  memcpy(hdr, pre, W_PREAMBLE);
  got = read_full(fd, hdr + W_PREAMBLE, header_size - W_PREAMBLE);
  int st = KILN_OK;
  if (got != (int64_t)(header_size - W_PREAMBLE))
    st = kiln_fail(inst, KILN_ERROR, "weights file '%s': cannot read its header: %s", path,
                   got < 0 ? strerror(errno) : "short read");
  else if (kiln_crc32(0, hdr, (size_t)header_size - 4) != get_u32(hdr + header_size - 4))
    st = kiln_fail(inst, KILN_ERROR, "weights file '%s': header checksum mismatch (the file is corrupt)", path);
  if (st != KILN_OK) {
    free(hdr);
    return st;
  }
  uint64_t data_size = get_u64(hdr + 24), total = get_u64(hdr + 32);
  uint32_t data_crc = get_u32(hdr + 40);
  if (total != header_size + data_size || data_size % W_ALIGN)
    st = kiln_fail(inst, KILN_ERROR, "weights file '%s': corrupt header (sizes %llu + %llu != %llu)", path,
                   (unsigned long long)header_size, (unsigned long long)data_size, (unsigned long long)total);
  else if ((uint64_t)sz < total)
    st = kiln_fail(inst, KILN_ERROR, "weights file '%s': truncated: %lld bytes, expected %llu", path,
                   (long long)sz, (unsigned long long)total);
  else if ((uint64_t)sz > total)
    st = kiln_fail(inst, KILN_ERROR, "weights file '%s': %lld bytes, its header says %llu (bytes after the data)",
                   path, (long long)sz, (unsigned long long)total);
  else if (count != (uint32_t)w->n_blobs || total != (uint64_t)w->total_size || data_crc != w->data_crc)
    st = kiln_fail(inst, KILN_ERROR,
                   "weights file '%s': not the weights of this binary (%u constants, %llu bytes, data CRC-32 "
                   "%08x; the binary expects %d, %lld, %08x)",
                   path, count, (unsigned long long)total, data_crc, (int)w->n_blobs, (long long)w->total_size,
                   w->data_crc);
  /* the table: ascending, aligned, inside the data, the sizes the binary has */
  uint64_t end = 0;
  for (uint32_t i = 0; st == KILN_OK && i < count; i++) {
    uint64_t off = get_u64(hdr + W_PREAMBLE + (size_t)i * W_ENTRY), size = get_u64(hdr + W_PREAMBLE + (size_t)i * W_ENTRY + 8);
    if (size != (uint64_t)w->sizes[i])
      st = kiln_fail(inst, KILN_ERROR, "weights file '%s': constant %u has %llu bytes, the binary expects %lld",
                     path, i, (unsigned long long)size, (long long)w->sizes[i]);
    else if (off % W_ALIGN || off < end || off > data_size || size > data_size - off)
      st = kiln_fail(inst, KILN_ERROR, "weights file '%s': corrupt table (constant %u at %llu)", path, i,
                     (unsigned long long)off);
    else
      end = off + size;
  }
  /* the data, straight into the buffers; the gaps through a scratch block */
  uint32_t crc = 0;
  uint64_t at = 0;
  uint8_t gap[4096];
  for (uint32_t i = 0; st == KILN_OK && i <= count; i++) {
    uint64_t off = i < count ? get_u64(hdr + W_PREAMBLE + (size_t)i * W_ENTRY) : data_size;
    while (st == KILN_OK && at < off) {
      uint64_t k = off - at < sizeof gap ? off - at : sizeof gap;
      if (read_full(fd, gap, k) != (int64_t)k)
        st = kiln_fail(inst, KILN_ERROR, "weights file '%s': cannot read: %s", path, strerror(errno));
      crc = kiln_crc32(crc, gap, (size_t)k);
      at += k;
    }
    if (st != KILN_OK || i == count) break;
    uint64_t size = (uint64_t)w->sizes[i];
    if (size && read_full(fd, w->blobs[i], size) != (int64_t)size)
      st = kiln_fail(inst, KILN_ERROR, "weights file '%s': cannot read: %s", path, strerror(errno));
    crc = kiln_crc32(crc, w->blobs[i], (size_t)size);
    at += size;
  }
  if (st == KILN_OK && crc != data_crc)
    st = kiln_fail(inst, KILN_ERROR, "weights file '%s': data checksum mismatch (CRC-32 %08x, expected %08x; the file is corrupt)",
                   path, crc, data_crc);
  free(hdr);
  return st;
}

int kiln_weights_load(kiln_inst *inst, const char *given) {
  const kiln_module_desc *d = inst->desc;
  const kiln_weights_desc *w = d->weights;
  const char *mn = d->name ? d->name : "?";
  if (!w->file || !*w->file || strchr(w->file, '/') || w->n_blobs < 0 || w->total_size < 0 || !w->loaded ||
      (w->n_blobs > 0 && (!w->blobs || !w->sizes)))
    return kiln_fail(inst, KILN_ERROR, "module '%s': malformed descriptor (weights)", mn);
  for (int32_t i = 0; i < w->n_blobs; i++)
    if (w->sizes[i] < 0 || (w->sizes[i] > 0 && !w->blobs[i]))
      return kiln_fail(inst, KILN_ERROR, "module '%s': malformed descriptor (weight %d)", mn, (int)i);
  pthread_mutex_lock(&load_lock);
  int st = KILN_OK;
  if (!*w->loaded) {
    char path[PATH_MAX + 256];
    st = resolve(inst, w, given, path, sizeof path);
    int fd = st == KILN_OK ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat sb;
    if (st != KILN_OK) {
    } else if (fd < 0) {
      st = kiln_fail(inst, KILN_ERROR,
                     "weights file '%s': cannot open: %s (module '%s' was built with --weights-file: "
                     "put %s next to the executable, or name it with $KILN_WEIGHTS)",
                     path, strerror(errno), mn, w->file);
    } else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
      st = kiln_fail(inst, KILN_ERROR, "weights file '%s': not a regular file", path);
    } else {
      st = load_fd(inst, w, path, fd, (int64_t)sb.st_size);
    }
    if (fd >= 0) close(fd);
    if (st == KILN_OK) *w->loaded = 1;
  }
  pthread_mutex_unlock(&load_lock);
  return st;
}
