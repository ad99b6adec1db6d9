/* json.c — the TF.js graph model (model.json) read with cJSON (Debian's
 * libcjson-dev): modelTopology is a GraphDef in proto3's JSON mapping
 * (lowerCamelCase or original field names, bytes in base64, 64-bit integers
 * as strings, enums by name), built here into the same protobuf-c structs a
 * binary GraphDef unpacks to, in the module's arena; the signature's outputs
 * become the default fetches; weightsManifest goes to weights.c. */
#include "frontends/graphdef/gd.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool gd_tfjs_weights(gd_ctx *c, const cJSON *manifest, const char *dir);

typedef struct jctx {
  gd_ctx *c;
  const char *where; /* what is being read, for messages */
  bool failed;
} jctx;

static bool jfail(jctx *j, const char *what) {
  if (!j->failed) kc_error(j->c->d, (kc_loc){j->c->path, 0, 0}, "%s: %s", j->where, what);
  j->failed = true;
  return false;
}

static void *alloc(jctx *j, size_t n) { return kc_alloc(j->c->m->arena, n ? n : 1); }

/* A field by its JSON name or its proto name. */
static const cJSON *field(const cJSON *o, const char *camel, const char *snake) {
  if (!cJSON_IsObject(o)) return NULL;
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, camel);
  return f ? f : snake ? cJSON_GetObjectItemCaseSensitive(o, snake) : NULL;
}

static const char *jstr(jctx *j, const cJSON *v) {
  if (!v) return NULL;
  if (!cJSON_IsString(v)) {
    jfail(j, "expected a string");
    return NULL;
  }
  return kc_strdup(j->c->m->arena, v->valuestring);
}

static int64_t jint(jctx *j, const cJSON *v) {
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble; /* out of int64's range the conversion is undefined: refuse it */
    if (d >= -9.2e18 && d <= 9.2e18) return (int64_t)d;
    jfail(j, "integer out of range");
    return 0;
  }
  if (cJSON_IsString(v)) {
    char *end;
    long long x = strtoll(v->valuestring, &end, 10);
    if (end != v->valuestring && !*end) return x;
  }
  jfail(j, "expected an integer");
  return 0;
}

static double jfloat(jctx *j, const cJSON *v) {
  if (cJSON_IsNumber(v)) return v->valuedouble;
  if (cJSON_IsString(v)) {
    if (!strcmp(v->valuestring, "NaN")) return NAN;
    if (!strcmp(v->valuestring, "Infinity")) return INFINITY;
    if (!strcmp(v->valuestring, "-Infinity")) return -INFINITY;
    char *end;
    double x = strtod(v->valuestring, &end);
    if (end != v->valuestring && !*end) return x;
  }
  jfail(j, "expected a number");
  return 0;
}

static int jdtype(jctx *j, const cJSON *v) {
  if (cJSON_IsNumber(v)) return v->valuedouble >= 0 && v->valuedouble < 1000 ? (int)v->valuedouble : 0; /* 0: invalid */
  if (cJSON_IsString(v)) {
    int t = gd_dtype_parse(v->valuestring);
    if (t >= 0) return t;
    /* a type kiln has no row for still has a name: keep it invalid, the
     * converter that needs it says so */
    return 0;
  }
  jfail(j, "expected a DataType");
  return 0;
}

static int b64(int ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+' || ch == '-') return 62;
  if (ch == '/' || ch == '_') return 63;
  return -1;
}

static ProtobufCBinaryData jbytes(jctx *j, const cJSON *v) {
  ProtobufCBinaryData r = {0, NULL};
  if (!v) return r;
  if (!cJSON_IsString(v)) {
    jfail(j, "expected base64 bytes");
    return r;
  }
  const char *s = v->valuestring;
  size_t n = strlen(s);
  r.data = alloc(j, n * 3 / 4 + 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '=') break;
    int d = b64((unsigned char)s[i]);
    if (d < 0) {
      jfail(j, "malformed base64");
      return (ProtobufCBinaryData){0, NULL};
    }
    acc = (acc << 6) | (uint32_t)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      r.data[r.len++] = (uint8_t)(acc >> bits);
    }
  }
  return r;
}

/* A repeated field as an array (NULL: absent). */
static const cJSON *jarray(jctx *j, const cJSON *v) {
  if (v && !cJSON_IsArray(v)) {
    jfail(j, "expected an array");
    return NULL;
  }
  return v;
}

static Tensorflow__TensorShapeProto *jshape(jctx *j, const cJSON *o) {
  Tensorflow__TensorShapeProto *s = alloc(j, sizeof *s);
  if (!cJSON_IsObject(o)) {
    jfail(j, "expected a TensorShapeProto object");
    return s;
  }
  const cJSON *u = field(o, "unknownRank", "unknown_rank");
  s->unknown_rank = cJSON_IsTrue(u);
  const cJSON *dims = jarray(j, field(o, "dim", NULL));
  s->n_dim = (size_t)cJSON_GetArraySize(dims);
  s->dim = alloc(j, sizeof(*s->dim) * s->n_dim);
  size_t i = 0;
  for (const cJSON *d = dims ? dims->child : NULL; d; d = d->next, i++) {
    Tensorflow__TensorShapeProto__Dim *dim = alloc(j, sizeof *dim);
    const cJSON *sz = field(d, "size", NULL);
    dim->size = sz ? jint(j, sz) : 0;
    s->dim[i] = dim;
  }
  return s;
}

#define REPEATED(count, ptr, json, ty, conv)                       \
  do {                                                             \
    const cJSON *a_ = jarray(j, json);                             \
    count = (size_t)cJSON_GetArraySize(a_);                        \
    ptr = alloc(j, sizeof(ty) * (count));                          \
    size_t i_ = 0;                                                 \
    for (const cJSON *e_ = a_ ? a_->child : NULL; e_; e_ = e_->next) \
      (ptr)[i_++] = (ty)(conv);                                    \
  } while (0)

static Tensorflow__TensorProto *jtensor(jctx *j, const cJSON *o) {
  Tensorflow__TensorProto *t = alloc(j, sizeof *t);
  if (!cJSON_IsObject(o)) {
    jfail(j, "expected a TensorProto object");
    return t;
  }
  t->dtype = jdtype(j, field(o, "dtype", NULL));
  const cJSON *sh = field(o, "tensorShape", "tensor_shape");
  if (sh) t->tensor_shape = jshape(j, sh);
  t->tensor_content = jbytes(j, field(o, "tensorContent", "tensor_content"));
  REPEATED(t->n_float_val, t->float_val, field(o, "floatVal", "float_val"), float, jfloat(j, e_));
  REPEATED(t->n_double_val, t->double_val, field(o, "doubleVal", "double_val"), double, jfloat(j, e_));
  REPEATED(t->n_int_val, t->int_val, field(o, "intVal", "int_val"), int32_t, jint(j, e_));
  REPEATED(t->n_int64_val, t->int64_val, field(o, "int64Val", "int64_val"), int64_t, jint(j, e_));
  REPEATED(t->n_bool_val, t->bool_val, field(o, "boolVal", "bool_val"), protobuf_c_boolean, cJSON_IsTrue(e_));
  REPEATED(t->n_half_val, t->half_val, field(o, "halfVal", "half_val"), int32_t, jint(j, e_));
  return t;
}

static Tensorflow__AttrValue *jattr(jctx *j, const cJSON *o) {
  Tensorflow__AttrValue *a = alloc(j, sizeof *a);
  const cJSON *v;
  if (!cJSON_IsObject(o)) jfail(j, "expected an AttrValue object");
  else if ((v = field(o, "list", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_LIST;
    Tensorflow__AttrValue__ListValue *l = a->list = alloc(j, sizeof *l);
    REPEATED(l->n_s, l->s, field(v, "s", NULL), ProtobufCBinaryData, jbytes(j, e_));
    REPEATED(l->n_i, l->i, field(v, "i", NULL), int64_t, jint(j, e_));
    REPEATED(l->n_f, l->f, field(v, "f", NULL), float, jfloat(j, e_));
    REPEATED(l->n_b, l->b, field(v, "b", NULL), protobuf_c_boolean, cJSON_IsTrue(e_));
    REPEATED(l->n_type, l->type, field(v, "type", NULL), Tensorflow__DataType, jdtype(j, e_));
    REPEATED(l->n_shape, l->shape, field(v, "shape", NULL), Tensorflow__TensorShapeProto *, jshape(j, e_));
    REPEATED(l->n_tensor, l->tensor, field(v, "tensor", NULL), Tensorflow__TensorProto *, jtensor(j, e_));
  } else if ((v = field(o, "s", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_S;
    a->s = jbytes(j, v);
  } else if ((v = field(o, "i", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_I;
    a->i = jint(j, v);
  } else if ((v = field(o, "f", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_F;
    a->f = (float)jfloat(j, v);
  } else if ((v = field(o, "b", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_B;
    a->b = cJSON_IsTrue(v);
  } else if ((v = field(o, "type", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_TYPE;
    a->type = jdtype(j, v);
  } else if ((v = field(o, "shape", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_SHAPE;
    a->shape = jshape(j, v);
  } else if ((v = field(o, "tensor", NULL))) {
    a->value_case = TENSORFLOW__ATTR_VALUE__VALUE_TENSOR;
    a->tensor = jtensor(j, v);
  } /* func, placeholder: not read (no converter uses them) */
  return a;
}

static Tensorflow__NodeDef *jnode(jctx *j, const cJSON *o, size_t k) {
  Tensorflow__NodeDef *n = alloc(j, sizeof *n);
  j->where = kc_sprintf(j->c->m->arena, "modelTopology.node[%zu]", k);
  if (!cJSON_IsObject(o)) {
    jfail(j, "expected a NodeDef object");
    return n;
  }
  n->name = (char *)jstr(j, field(o, "name", NULL));
  n->op = (char *)jstr(j, field(o, "op", NULL));
  n->device = (char *)jstr(j, field(o, "device", NULL));
  if (n->name) j->where = kc_sprintf(j->c->m->arena, "node '%s' (%s)", n->name, n->op ? n->op : "");
  REPEATED(n->n_input, n->input, field(o, "input", NULL), char *, jstr(j, e_) ? e_->valuestring : "");
  for (size_t i = 0; i < n->n_input; i++) n->input[i] = kc_strdup(j->c->m->arena, n->input[i]);
  const cJSON *attrs = field(o, "attr", NULL);
  if (attrs && !cJSON_IsObject(attrs)) jfail(j, "attr must be an object");
  n->n_attr = (size_t)(cJSON_IsObject(attrs) ? cJSON_GetArraySize(attrs) : 0);
  n->attr = alloc(j, sizeof(*n->attr) * n->n_attr);
  size_t i = 0;
  for (const cJSON *a = n->n_attr ? attrs->child : NULL; a; a = a->next, i++) {
    Tensorflow__NodeDef__AttrEntry *e = alloc(j, sizeof *e);
    e->key = kc_strdup(j->c->m->arena, a->string ? a->string : "");
    e->value = jattr(j, a);
    n->attr[i] = e;
  }
  return n;
}

bool gd_tfjs_parse(gd_ctx *c, const char *json, size_t len, const char *dir) {
  kc_loc at = {c->path, 0, 0};
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) return kc_error(c->d, at, "not valid JSON (near byte %zu)", (size_t)(cJSON_GetErrorPtr() ?
                             cJSON_GetErrorPtr() - json : 0));
  jctx j = {.c = c, .where = "model.json"};
  const cJSON *topo = field(root, "modelTopology", "model_topology");
  if (!topo && field(root, "node", NULL)) topo = root; /* a bare GraphDef in JSON */
  const cJSON *nodes = topo ? field(topo, "node", NULL) : NULL;
  bool ok = true;
  if (!cJSON_IsObject(topo) || !cJSON_IsArray(nodes)) {
    const cJSON *fmt = field(root, "format", NULL);
    ok = kc_error(c->d, at, "not a TensorFlow.js graph model: no modelTopology.node list%s",
                  cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "layers-model")
                      ? " (this is a Keras layers-model; kiln reads graph models: convert with "
                        "tensorflowjs_converter --output_format=tfjs_graph_model)" : "");
  }
  Tensorflow__GraphDef *g = kc_alloc(c->m->arena, sizeof *g);
  if (ok) {
    g->n_node = (size_t)cJSON_GetArraySize(nodes);
    g->node = kc_alloc(c->m->arena, sizeof(*g->node) * (g->n_node + 1));
    size_t k = 0;
    for (const cJSON *n = nodes->child; n && !j.failed; n = n->next, k++) g->node[k] = jnode(&j, n, k);
    ok = !j.failed;
  }
  /* the signature's outputs, in the file's order */
  const cJSON *sig = field(root, "signature", NULL), *outs = sig ? field(sig, "outputs", NULL) : NULL;
  if (ok && cJSON_IsObject(outs)) {
    c->sig_outputs = kc_alloc(c->m->arena, sizeof(char *) * (size_t)(cJSON_GetArraySize(outs) + 1));
    for (const cJSON *o = outs->child; o; o = o->next) {
      const cJSON *nm = field(o, "name", NULL);
      if (cJSON_IsString(nm)) c->sig_outputs[c->n_sig_outputs++] = kc_strdup(c->m->arena, nm->valuestring);
    }
  }
  c->gdef = g;
  const cJSON *wm = field(root, "weightsManifest", "weights_manifest");
  if (ok && wm) ok = gd_tfjs_weights(c, wm, dir);
  cJSON_Delete(root);
  return ok;
}
