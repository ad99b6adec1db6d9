/* place.c — the placement pass (see place.h and docs/gpu.md).
 *
 * In order: --device places what is placed nowhere; the --device-map
 * renames devices; constants and placeholders
 * stay on the host (their memory is host memory); ops writing a variable
 * join its device; GPU-placed nodes without a GPU kernel are an error or,
 * with soft placement, move to the CPU (a variable moves with every op that
 * writes it); then every operand read on another device than it was made on
 * gets a `device_copy` on the reading device (one per value and device), and
 * every fetched GPU result one back to the host. */
#include "passes/place.h"
#include "passes/passes.h"
#include "passes/verify.h"
#include "ir/ops.h"
#include "lower/nvptx.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool kc_device_split(const char *dev, bool *gpu, int *index) {
  *gpu = false;
  *index = 0;
  if (!dev) return true;
  int used = 0;
  if (!strncmp(dev, "gpu:", 4)) *gpu = true;
  else if (strncmp(dev, "cpu:", 4)) return false;
  return sscanf(dev + 4, "%d%n", index, &used) == 1 && !dev[4 + used] && *index >= 0;
}

int kc_node_gpu(const kg_node *n) {
  bool gpu;
  int idx;
  return kc_device_split(n->device, &gpu, &idx) && gpu ? idx : -1;
}

int kc_node_partition(const kg_node *n) {
  bool gpu;
  int idx;
  return kc_device_split(n->device, &gpu, &idx) && !gpu ? idx : 0;
}

bool kc_node_is_inert(const kg_node *n) {
  return n->op == KC_OP_VARIABLE || n->op == KC_OP_PLACEHOLDER || n->op == KC_OP_CONST || n->op == KC_OP_QUEUE;
}

int kc_entry_partitions(const kg_module *m, const int *sched, int n_sched) {
  int seen[64] = {0}, count = 0;
  for (int i = 0; i < n_sched; i++) {
    const kg_node *n = &m->nodes[sched[i]];
    if (kc_node_is_inert(n)) continue;
    int p = kc_node_partition(n);
    if (p < 64 && !seen[p]) seen[p] = 1, count++;
  }
  return count ? count : 1;
}

/* Same device, with "no device" meaning cpu:0. */
static bool same_device(const char *a, const char *b) {
  bool ga, gb;
  int ia, ib;
  if (!kc_device_split(a, &ga, &ia) || !kc_device_split(b, &gb, &ib)) return a == b || (a && b && !strcmp(a, b));
  return ga == gb && ia == ib;
}

/* ---- --device-map ---- */

/* gpu=cpu maps gpu:N to cpu:N, gpu=cpu:0 every GPU to cpu:0, gpu:1=cpu:0
 * one device; the first item that matches a device applies. */
typedef struct map_item {
  bool from_gpu, to_gpu;
  int from_idx, to_idx; /* -1: any / keep the index */
} map_item;

static bool parse_side(const char *s, size_t n, bool *gpu, int *idx) {
  if (n < 3 || (strncmp(s, "gpu", 3) && strncmp(s, "cpu", 3))) return false;
  *gpu = s[0] == 'g';
  *idx = -1;
  if (n == 3) return true;
  if (s[3] != ':' || n == 4) return false;
  int v = 0;
  for (size_t i = 4; i < n; i++) {
    if (s[i] < '0' || s[i] > '9' || v > 100000) return false;
    v = v * 10 + (s[i] - '0');
  }
  *idx = v;
  return true;
}

static int parse_map(const char *map, map_item *items, int cap, char *err, size_t errlen) {
  int n = 0;
  for (const char *s = map; s && *s;) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    const char *eq = memchr(s, '=', len);
    map_item it;
    if (!eq || !parse_side(s, (size_t)(eq - s), &it.from_gpu, &it.from_idx) ||
        !parse_side(eq + 1, len - (size_t)(eq - s) - 1, &it.to_gpu, &it.to_idx)) {
      snprintf(err, errlen, "bad --device-map item '%.*s' (FROM=TO with devices gpu:N / cpu:N, or kinds: gpu=cpu)",
               (int)len, s);
      return -1;
    }
    if (n == cap) {
      snprintf(err, errlen, "too many --device-map items (at most %d)", cap);
      return -1;
    }
    items[n++] = it;
    s = comma ? comma + 1 : s + len;
  }
  return n;
}

bool kc_device_map_check(const char *map, char *err, size_t errlen) {
  map_item items[32];
  return parse_map(map, items, 32, err, errlen) >= 0;
}

static void apply_map(kg_module *m, const map_item *items, int n_items) {
  for (int v = 0; v < m->n_nodes; v++) {
    kg_node *n = &m->nodes[v];
    bool gpu;
    int idx;
    if (!kc_device_split(n->device, &gpu, &idx)) continue;
    for (int i = 0; i < n_items; i++) {
      const map_item *it = &items[i];
      if (it->from_gpu != gpu || (it->from_idx >= 0 && it->from_idx != idx)) continue;
      n->device = kc_sprintf(m->arena, "%s:%d", it->to_gpu ? "gpu" : "cpu", it->to_idx >= 0 ? it->to_idx : idx);
      break;
    }
  }
}

/* ---- GPU kernels and soft placement ---- */

static bool writes_var(const kg_node *n) { return !strncmp(kc_ops[n->op].operands, "ref:", 4); }

typedef struct placer {
  kg_module *m;
  const kc_place_options *o;
  kc_diag *d;
  int moved; /* soft-placement notes written */
} placer;

static void note_moved(placer *P, const kg_node *n, const char *why) {
  if (P->moved < 8)
    kc_note(P->d, n->loc, "'%s' (%s) %s: placed on the CPU instead of %s (--soft-placement)", n->name,
            kc_ops[n->op].name, why, n->device);
  else if (P->moved == 8)
    kc_note(P->d, n->loc, "more nodes were moved to the CPU (--soft-placement)");
  P->moved++;
}

static bool no_kernel(placer *P, const kg_node *n) {
  return kc_error(P->d, n->loc,
                  "'%s' (%s) has no GPU kernel yet; place it on the CPU, or build with --soft-placement to let "
                  "kiln move it there",
                  n->name, kc_ops[n->op].name);
}

/* Decides the device of every GPU-placed node. */
static bool check_kernels(placer *P) {
  kg_module *m = P->m;
  bool ok = true;
  /* variables first: a variable stays on its GPU only if every op that
   * writes it has a GPU kernel (they are colocated, as in TF) */
  for (int v = 0; v < m->n_nodes; v++) {
    kg_node *var = &m->nodes[v];
    if (var->dead || var->op != KC_OP_VARIABLE || kc_node_gpu(var) < 0) continue;
    for (int w = 0; w < m->n_nodes; w++) {
      kg_node *n = &m->nodes[w];
      if (n->dead || !writes_var(n) || n->in[0].node != v || kc_gpu_kind_of(m, w) != KC_GPU_NONE) continue;
      if (!P->o->soft) {
        ok = kc_error(P->d, n->loc,
                      "'%s' (%s) writes variable '%s' on %s but has no GPU kernel; place the variable on the CPU, "
                      "or build with --soft-placement",
                      n->name, kc_ops[n->op].name, var->name, var->device);
        break;
      }
      note_moved(P, var, kc_sprintf(m->arena, "is written by '%s' (%s), which has no GPU kernel", n->name,
                                    kc_ops[n->op].name));
      var->device = NULL;
      break;
    }
  }
  /* writers follow their variable */
  for (int w = 0; w < m->n_nodes; w++) {
    kg_node *n = &m->nodes[w];
    if (!n->dead && writes_var(n) && n->n_in) n->device = m->nodes[n->in[0].node].device;
  }
  for (int v = 0; v < m->n_nodes; v++) {
    kg_node *n = &m->nodes[v];
    if (n->dead || kc_node_gpu(n) < 0 || writes_var(n) || n->op == KC_OP_VARIABLE) continue;
    if (n->op == KC_OP_CONST || n->op == KC_OP_PLACEHOLDER || n->op == KC_OP_QUEUE) {
      n->device = NULL; /* host memory; GPU readers get a copy */
      continue;
    }
    if (kc_gpu_kind_of(m, v) != KC_GPU_NONE) continue;
    if (!P->o->soft) ok = no_kernel(P, n);
    else {
      note_moved(P, n, "has no GPU kernel");
      n->device = NULL;
    }
  }
  return ok;
}

/* ---- copies ---- */

typedef struct copy_key {
  kg_ref from;
  const char *to;
  int node;
} copy_key;

typedef struct copies {
  copy_key *k;
  int n, cap;
} copies;

static const char *dev_tag(kg_module *m, const char *dev) {
  bool gpu;
  int idx;
  if (!kc_device_split(dev, &gpu, &idx)) return "dev";
  return kc_sprintf(m->arena, "%s%d", gpu ? "gpu" : "cpu", idx);
}

/* The copy of `from` on device `to`, made on first use. */
static int copy_of(placer *P, copies *C, kg_ref from, const char *to) {
  kg_module *m = P->m;
  for (int i = 0; i < C->n; i++)
    if (C->k[i].from.node == from.node && C->k[i].from.index == from.index && same_device(C->k[i].to, to))
      return C->k[i].node;
  const kg_node *src = &m->nodes[from.node];
  kg_node n = {0};
  const char *base = from.index ? kc_sprintf(m->arena, "%s/to_%s_%d", src->name, dev_tag(m, to), from.index)
                                : kc_sprintf(m->arena, "%s/to_%s", src->name, dev_tag(m, to));
  n.name = base;
  for (int k = 1; kc_module_find(m, n.name, strlen(n.name)) >= 0; k++) n.name = kc_sprintf(m->arena, "%s_%d", base, k);
  n.op = KC_OP_DEVICE_COPY;
  n.loc = src->loc;
  n.n_in = 1;
  n.in = kc_alloc(m->arena, sizeof(kg_ref));
  n.in[0] = from;
  n.attrs = kc_alloc(m->arena, sizeof(kg_attr));
  n.device = to;
  int idx = kc_module_add_node(m, &n);
  if (!kc_verify_node(m, idx, P->d)) return -1;
  if (C->n == C->cap) {
    C->cap = C->cap ? 2 * C->cap : 16;
    copy_key *k = realloc(C->k, sizeof *k * (size_t)C->cap);
    if (!k) return -1;
    C->k = k;
  }
  C->k[C->n++] = (copy_key){from, to, idx};
  return idx;
}

static bool insert_copies(placer *P) {
  kg_module *m = P->m;
  copies C = {0};
  bool ok = true;
  int N = m->n_nodes; /* copies are appended; they need none themselves */
  for (int v = 0; ok && v < N; v++) {
    if (m->nodes[v].dead) continue;
    for (int k = 0; ok && k < m->nodes[v].n_in; k++) {
      kg_ref r = m->nodes[v].in[k];
      const kg_node *src = &m->nodes[r.node];
      if (src->op == KC_OP_QUEUE || (k == 0 && writes_var(&m->nodes[v]))) continue;
      if (same_device(src->device, m->nodes[v].device)) continue;
      int c = copy_of(P, &C, r, m->nodes[v].device);
      if (c < 0) ok = false;
      else m->nodes[v].in[k] = (kg_ref){c, 0};
    }
  }
  /* fetched GPU results come back to the host */
  for (int e = 0; ok && e < m->n_entries; e++) {
    kg_entry *en = &m->entries[e];
    for (int i = 0; ok && i < en->n_fetches; i++) {
      kg_ref r = en->fetches[i];
      const kg_node *src = &m->nodes[r.node];
      if (!src->n_out || kc_node_gpu(src) < 0) continue;
      int c = copy_of(P, &C, r, NULL);
      if (c < 0) ok = false;
      else {
        if (!en->fetch_names) en->fetch_names = kc_alloc(m->arena, sizeof(char *) * (size_t)en->n_fetches);
        if (!en->fetch_names[i]) en->fetch_names[i] = kc_fetch_name(m, en, i);
        en->fetches[i] = (kg_ref){c, 0};
      }
    }
  }
  free(C.k);
  return ok || kc_error(P->d, (kc_loc){m->file, 0, 0}, "placement: cannot insert a device copy");
}

bool kc_pass_place(kg_module *m, const kc_place_options *o, kc_diag *d) {
  static const kc_place_options dflt = {0};
  placer P = {m, o ? o : &dflt, d, 0};
  if (P.o->device) /* the outermost device scope: before --device-map, which renames it too */
    for (int v = 0; v < m->n_nodes; v++)
      if (!m->nodes[v].device) m->nodes[v].device = P.o->device;
  if (P.o->device_map) {
    map_item items[32];
    char err[200];
    int n = parse_map(P.o->device_map, items, 32, err, sizeof err);
    if (n < 0) return kc_error(d, (kc_loc){m->file, 0, 0}, "%s", err);
    apply_map(m, items, n);
  }
  for (int v = 0; v < m->n_nodes; v++) {
    bool gpu;
    int idx;
    if (!m->nodes[v].dead && !kc_device_split(m->nodes[v].device, &gpu, &idx))
      return kc_error(d, m->nodes[v].loc, "unknown device '%s' on '%s' (expected cpu:N or gpu:N)", m->nodes[v].device,
                      m->nodes[v].name);
  }
  return check_kernels(&P) && insert_copies(&P);
}
