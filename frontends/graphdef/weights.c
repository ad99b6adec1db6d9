/* weights.c — the weights of a TF.js graph model: weightsManifest is a list
 * of groups, each a list of shard files (paths, beside model.json) whose
 * bytes, concatenated, hold the group's weights one after another.  Each
 * weight is decoded into a kiln literal at compile time: float32, int32 and
 * bool as stored; float16-quantized floats widened; uint8/uint16-quantized
 * values dequantized as v * scale + min (rounded for int32, as TF.js does).
 * The Const node of the same name takes the weight (ops_array.c). */
#include "frontends/graphdef/gd.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gd_tfjs_weights(gd_ctx *c, const cJSON *manifest, const char *dir);

/* The group's shards, concatenated (malloc'd); NULL after an error. */
static uint8_t *read_shards(gd_ctx *c, const cJSON *paths, int group, const char *dir, size_t *len) {
  kc_loc at = {c->path, 0, 0};
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return NULL;
  for (const cJSON *p = paths ? paths->child : NULL; p; p = p->next) {
    if (!cJSON_IsString(p)) {
      kc_error(c->d, at, "weightsManifest[%d].paths: a path is not a string", group);
      goto fail;
    }
    const char *rel = p->valuestring;
    if (rel[0] == '/' || strstr(rel, "..") || strstr(rel, "://")) {
      kc_error(c->d, at, "weightsManifest[%d]: shard '%s' must be a relative path inside the model's folder", group, rel);
      goto fail;
    }
    char *path = kc_sprintf(c->m->arena, "%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
      kc_error(c->d, at, "weightsManifest[%d]: cannot open weight shard '%s': %s", group, path, strerror(errno));
      goto fail;
    }
    for (size_t got; (got = fread(buf + n, 1, cap - n, f)) > 0;) {
      n += got;
      if (n == cap) {
        uint8_t *g = realloc(buf, cap *= 2);
        if (!g) {
          fclose(f);
          kc_error(c->d, at, "out of memory reading weight shard '%s'", path);
          goto fail;
        }
        buf = g;
      }
    }
    fclose(f);
  }
  *len = n;
  return buf;
fail:
  free(buf);
  return NULL;
}

static bool wfail(gd_ctx *c, const char *name, const char *msg) {
  return kc_error(c->d, (kc_loc){c->path, 0, 0}, "weight '%s': %s", name, msg);
}

/* One weight at buf[*off]; advances *off.  False after an error. */
static bool decode(gd_ctx *c, const cJSON *w, const uint8_t *buf, size_t len, size_t *off, int group) {
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(w, "name"), *shape = cJSON_GetObjectItemCaseSensitive(w, "shape"),
              *dt = cJSON_GetObjectItemCaseSensitive(w, "dtype"), *q = cJSON_GetObjectItemCaseSensitive(w, "quantization");
  const char *name = cJSON_IsString(nm) ? nm->valuestring : "?";
  if (!cJSON_IsString(nm) || !cJSON_IsArray(shape) || !cJSON_IsString(dt))
    return wfail(c, name, "a weightsManifest entry needs name, shape and dtype");
  kg_tensor t = {0};
  const char *dtype = dt->valuestring;
  if (!strcmp(dtype, "float32")) t.type.dtype = KILN_F32;
  else if (!strcmp(dtype, "int32")) t.type.dtype = KILN_I32;
  else if (!strcmp(dtype, "bool")) t.type.dtype = KILN_BOOL;
  else if (strcmp(dtype, "string") && strcmp(dtype, "complex64"))
    return wfail(c, name, kc_sprintf(c->m->arena, "unknown dtype '%s' (TF.js has float32, int32, bool, string, "
                                                  "complex64)", dtype));
  int rank = cJSON_GetArraySize(shape);
  if (rank > KILN_MAX_RANK) return wfail(c, name, "rank is above kiln's limit");
  int64_t numel = 1;
  t.type.shape.rank = rank;
  int d = 0;
  for (const cJSON *s = shape->child; s; s = s->next, d++) {
    if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > (double)(INT64_C(1) << 32) ||
        (s->valuedouble && numel > (INT64_C(1) << 32) / (int64_t)s->valuedouble))
      return wfail(c, name, "the shape is not a list of sizes");
    t.type.shape.dim[d] = (int64_t)s->valuedouble;
    numel *= t.type.shape.dim[d];
  }
  size_t avail = len - *off;
  const uint8_t *p = buf + *off;
  char msg[200];
  if (!strcmp(dtype, "string")) { /* each: a uint32 length, then the bytes; kiln has no strings: skipped */
    for (int64_t i = 0; i < numel; i++) {
      uint32_t l;
      if (avail < 4) goto short_read;
      memcpy(&l, p, 4);
      if (avail - 4 < l) goto short_read;
      p += 4 + l, avail -= 4 + l, *off += 4 + l;
    }
    return true;
  }
  if (!strcmp(dtype, "complex64")) {
    if ((uint64_t)numel * 8 > avail) goto short_read;
    *off += (size_t)numel * 8;
    return true;
  }
  t.data = kc_alloc(c->m->arena, (size_t)kg_type_bytes(&t.type) + 1);
  if (q && !cJSON_IsNull(q)) {
    const cJSON *qd = cJSON_GetObjectItemCaseSensitive(q, "dtype"), *mn = cJSON_GetObjectItemCaseSensitive(q, "min"),
                *sc = cJSON_GetObjectItemCaseSensitive(q, "scale");
    const char *qt = cJSON_IsString(qd) ? qd->valuestring : "";
    bool f16 = !strcmp(qt, "float16"), u8 = !strcmp(qt, "uint8"), u16 = !strcmp(qt, "uint16");
    if (!f16 && !u8 && !u16)
      return wfail(c, name, kc_sprintf(c->m->arena, "unknown quantization dtype '%s' (TF.js has uint8, uint16, "
                                                    "float16)", qt));
    if ((u8 || u16) && (!cJSON_IsNumber(sc) || !cJSON_IsNumber(mn)))
      return wfail(c, name, kc_sprintf(c->m->arena, "quantization %s without %s: it needs both min and scale", qt,
                                       !cJSON_IsNumber(sc) ? "scale" : "min"));
    if (f16 && t.type.dtype != KILN_F32) return wfail(c, name, "float16 quantization applies to float32 weights only");
    if (t.type.dtype == KILN_BOOL) return wfail(c, name, "a bool weight cannot be quantized");
    size_t w = u8 ? 1 : 2;
    if ((uint64_t)numel * w > avail) goto short_read;
    for (int64_t i = 0; i < numel; i++) {
      uint16_t v;
      if (u8) v = p[i];
      else memcpy(&v, p + 2 * i, 2);
      if (f16) ((float *)t.data)[i] = gd_half_to_float(v);
      else if (t.type.dtype == KILN_F32) ((float *)t.data)[i] = (float)(v * sc->valuedouble + mn->valuedouble);
      else ((int32_t *)t.data)[i] = (int32_t)floor(v * sc->valuedouble + mn->valuedouble + 0.5); /* Math.round */
    }
    *off += (size_t)numel * w;
  } else {
    size_t bytes = (size_t)kg_type_bytes(&t.type);
    if (bytes > avail) goto short_read;
    memcpy(t.data, p, bytes);
    *off += bytes;
  }
  c->weights[c->n_weights++] = (gd_weight){kc_strdup(c->m->arena, name), t};
  return true;
short_read:
  snprintf(msg, sizeof msg, "weightsManifest[%d]: the shards end inside this weight (%zu bytes are left at byte %zu): "
                            "a weight shard of the wrong size, or a wrong manifest", group, avail, *off);
  return wfail(c, name, msg);
}

bool gd_tfjs_weights(gd_ctx *c, const cJSON *manifest, const char *dir) {
  kc_loc at = {c->path, 0, 0};
  if (!cJSON_IsArray(manifest)) return kc_error(c->d, at, "weightsManifest must be a list of groups");
  int total = 0;
  for (const cJSON *g = manifest->child; g; g = g->next) total += cJSON_GetArraySize(cJSON_GetObjectItem(g, "weights"));
  c->weights = kc_alloc(c->m->arena, sizeof(gd_weight) * (size_t)(total + 1));
  int group = 0;
  for (const cJSON *g = manifest->child; g; g = g->next, group++) {
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(g, "paths"), *ws = cJSON_GetObjectItemCaseSensitive(g, "weights");
    if (!cJSON_IsArray(paths) || !cJSON_IsArray(ws))
      return kc_error(c->d, at, "weightsManifest[%d] needs 'paths' and 'weights' lists", group);
    size_t len = 0, off = 0;
    uint8_t *buf = read_shards(c, paths, group, dir, &len);
    if (!buf) return false;
    bool ok = true;
    for (const cJSON *w = ws->child; w && ok; w = w->next) ok = decode(c, w, buf, len, &off, group);
    free(buf);
    if (!ok) return false;
    if (off != len)
      return kc_error(c->d, at, "weightsManifest[%d]: the shards hold %zu bytes, but the weights listed need %zu: a "
                                "weight shard of the wrong size, or a wrong manifest", group, len, off);
  }
  return true;
}
