/* module.c — module construction, lookup and compaction. */
#include "ir/ir.h"
#include <stdlib.h>
#include <string.h>

kg_module *kc_module_new(const char *name) {
  kc_arena *a = kc_arena_new();
  if (!a) return NULL;
  kg_module *m = kc_alloc(a, sizeof *m);
  m->arena = a;
  m->name = kc_strdup(a, name ? name : "module");
  return m;
}

void kc_module_free(kg_module *m) {
  if (m) kc_arena_free(m->arena);
}

/* Arrays grow inside the arena: the old block is simply abandoned. */
static void *grow(kc_arena *a, void *old, int n, int *cap, size_t elem) {
  if (n < *cap) return old;
  int nc = *cap ? *cap * 2 : 16;
  void *p = kc_alloc(a, (size_t)nc * elem);
  if (old) memcpy(p, old, (size_t)n * elem);
  *cap = nc;
  return p;
}

int kc_module_add_node(kg_module *m, const kg_node *n) {
  m->nodes = grow(m->arena, m->nodes, m->n_nodes, &m->cap_nodes, sizeof(kg_node));
  m->nodes[m->n_nodes] = *n;
  return m->n_nodes++;
}

int kc_module_find(const kg_module *m, const char *name, size_t len) {
  for (int i = 0; i < m->n_nodes; i++) {
    const kg_node *n = &m->nodes[i];
    if (!n->dead && strlen(n->name) == len && !memcmp(n->name, name, len)) return i;
  }
  return -1;
}

int kc_module_add_entry(kg_module *m, const kg_entry *e) {
  m->entries = grow(m->arena, m->entries, m->n_entries, &m->cap_entries, sizeof(kg_entry));
  m->entries[m->n_entries] = *e;
  return m->n_entries++;
}

int kc_module_find_entry(const kg_module *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (!strcmp(m->entries[i].name, name)) return i;
  return -1;
}

const kg_attr *kg_node_attr(const kg_node *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
  return NULL;
}

int64_t kg_attr_int(const kg_node *n, const char *name, int64_t dflt) {
  const kg_attr *a = kg_node_attr(n, name);
  if (!a) return dflt;
  if (a->kind == KG_ATTR_INT) return a->i;
  if (a->kind == KG_ATTR_BOOL) return a->b;
  if (a->kind == KG_ATTR_FLOAT) return (int64_t)a->f;
  return dflt;
}

double kg_attr_float(const kg_node *n, const char *name, double dflt) {
  const kg_attr *a = kg_node_attr(n, name);
  if (!a) return dflt;
  if (a->kind == KG_ATTR_FLOAT) return a->f;
  if (a->kind == KG_ATTR_INT) return (double)a->i;
  return dflt;
}

bool kg_attr_bool(const kg_node *n, const char *name, bool dflt) {
  const kg_attr *a = kg_node_attr(n, name);
  return a && a->kind == KG_ATTR_BOOL ? a->b : dflt;
}

const char *kg_attr_str(const kg_node *n, const char *name, const char *dflt) {
  const kg_attr *a = kg_node_attr(n, name);
  return a && a->kind == KG_ATTR_STRING ? a->s : dflt;
}

const kg_type *kg_ref_type(const kg_module *m, kg_ref r) {
  const kg_node *n = &m->nodes[r.node];
  return r.index < n->n_out ? &n->out[r.index] : NULL;
}

static void renumber_stmts(kg_stmt **s, int n, const int *map) {
  for (int i = 0; i < n; i++) {
    if (s[i]->kind == KG_STMT_PRINT) s[i]->ref.node = map[s[i]->ref.node];
    if (s[i]->node >= 0 && (s[i]->kind == KG_STMT_CLOSE || s[i]->kind == KG_STMT_SAVE || s[i]->kind == KG_STMT_SPAWN ||
                            s[i]->kind == KG_STMT_SUMMARY_WRITE))
      s[i]->node = map[s[i]->node];
    renumber_stmts(s[i]->body, s[i]->n_body, map);
  }
}

void kc_module_compact(kg_module *m) {
  int *map = malloc(sizeof(int) * (size_t)(m->n_nodes + 1));
  if (!map) return;
  int k = 0;
  for (int i = 0; i < m->n_nodes; i++) map[i] = m->nodes[i].dead ? -1 : k++;
  for (int i = 0, j = 0; i < m->n_nodes; i++) {
    if (m->nodes[i].dead) continue;
    kg_node *n = &m->nodes[j++];
    *n = m->nodes[i];
    for (int a = 0; a < n->n_in; a++) n->in[a].node = map[n->in[a].node];
    int c = 0;
    for (int a = 0; a < n->n_ctrl; a++)
      if (map[n->ctrl[a]] >= 0) n->ctrl[c++] = map[n->ctrl[a]];
    n->n_ctrl = c;
  }
  m->n_nodes = k;
  for (int e = 0; e < m->n_entries; e++) {
    kg_entry *en = &m->entries[e];
    for (int i = 0; i < en->n_feeds; i++) en->feeds[i] = map[en->feeds[i]];
    for (int i = 0; i < en->n_fetches; i++) en->fetches[i].node = map[en->fetches[i].node];
  }
  renumber_stmts(m->program, m->n_program, map);
  free(map);
}

const char *kc_fetch_name(const kg_module *m, const kg_entry *e, int i) {
  if (e->fetch_names && e->fetch_names[i]) return e->fetch_names[i];
  const kg_node *n = &m->nodes[e->fetches[i].node];
  return e->fetches[i].index ? kc_sprintf(m->arena, "%s.%d", n->name, e->fetches[i].index) : n->name;
}

/* Without an explicit seed each random op gets its own stream, derived from
 * its name, as TF gives each op a distinct seed: reproducible across builds
 * and different between ops. */
uint64_t kc_node_seed(const kg_node *n) {
  const kg_attr *a = kg_node_attr(n, "seed");
  if (a && a->kind == KG_ATTR_INT) return (uint64_t)a->i;
  uint64_t h = 1469598103934665603ull;
  for (const char *p = n->name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

static void redirect_stmts(kg_stmt **s, int n, kg_ref from, kg_ref to) {
  for (int i = 0; i < n; i++) {
    if (s[i]->kind == KG_STMT_PRINT && s[i]->ref.node == from.node && s[i]->ref.index == from.index) s[i]->ref = to;
    redirect_stmts(s[i]->body, s[i]->n_body, from, to);
  }
}

void kc_module_redirect(kg_module *m, kg_ref from, kg_ref to) {
  for (int v = 0; v < m->n_nodes; v++)
    for (int k = 0; k < m->nodes[v].n_in; k++)
      if (m->nodes[v].in[k].node == from.node && m->nodes[v].in[k].index == from.index) m->nodes[v].in[k] = to;
  for (int e = 0; e < m->n_entries; e++)
    for (int k = 0; k < m->entries[e].n_fetches; k++)
      if (m->entries[e].fetches[k].node == from.node && m->entries[e].fetches[k].index == from.index)
        m->entries[e].fetches[k] = to;
  redirect_stmts(m->program, m->n_program, from, to);
}

void kc_module_redirect_ctrl(kg_module *m, int from, int to) {
  for (int v = 0; v < m->n_nodes; v++)
    for (int k = 0; k < m->nodes[v].n_ctrl; k++)
      if (m->nodes[v].ctrl[k] == from) m->nodes[v].ctrl[k] = to;
}
