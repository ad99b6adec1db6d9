/* plan.c — scheduling and memory planning (see plan.h for the model). */
#include "passes/plan.h"
#include "passes/place.h"
#include "ir/ops.h"
#include <stdlib.h>
#include <string.h>

#define ALIGN 64
static int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

int kc_plan_var_root(const kg_module *m, kg_ref r) {
  for (;;) {
    const kg_node *n = &m->nodes[r.node];
    if (n->op == KC_OP_VARIABLE) return r.node;
    if (n->op == KC_OP_ASSIGN || n->op == KC_OP_ASSIGN_ADD || n->op == KC_OP_ASSIGN_SUB || n->op == KC_OP_ASSIGN_MAP ||
        (kc_ops[n->op].flags & KC_OP_ALIAS))
      r = n->in[0];
    else
      return -1;
  }
}

/* ---- a min-heap of node indices: the ready set of the scheduler ---- */

typedef struct heap {
  int *v;
  int n;
} heap;

static void heap_push(heap *h, int x) {
  int i = h->n++;
  h->v[i] = x;
  while (i && h->v[(i - 1) / 2] > h->v[i]) {
    int p = (i - 1) / 2, t = h->v[p];
    h->v[p] = h->v[i];
    h->v[i] = t;
    i = p;
  }
}

static int heap_pop(heap *h) {
  int top = h->v[0];
  h->v[0] = h->v[--h->n];
  for (int i = 0;;) {
    int l = 2 * i + 1, r = l + 1, s = i;
    if (l < h->n && h->v[l] < h->v[s]) s = l;
    if (r < h->n && h->v[r] < h->v[s]) s = r;
    if (s == i) break;
    int t = h->v[s];
    h->v[s] = h->v[i];
    h->v[i] = t;
    i = s;
  }
  return top;
}

/* ---- scheduling ---- */

static bool is_fed(const kg_entry *e, int node) {
  for (int i = 0; i < e->n_feeds; i++)
    if (e->feeds[i] == node) return true;
  return false;
}

/* Marks what the fetches need; fed placeholders end the walk. */
static bool mark_needed(const kg_module *m, const kg_entry *e, char *need, int *stack, kc_diag *d) {
  int sp = 0;
  bool ok = true;
  for (int i = 0; i < e->n_fetches; i++)
    if (!need[e->fetches[i].node]) need[stack[sp++] = e->fetches[i].node] = 1;
  for (int i = 0; i < e->n_feeds; i++)
    if (!need[e->feeds[i]]) need[stack[sp++] = e->feeds[i]] = 1;
  while (sp) {
    int v = stack[--sp];
    const kg_node *n = &m->nodes[v];
    if (n->op == KC_OP_PLACEHOLDER && !is_fed(e, v)) {
      if (e->synthesized)
        ok = kc_error(d, e->loc, "this run needs placeholder '%s', which a program cannot feed (use an entry point)",
                      n->name);
      else
        ok = kc_error(d, e->loc, "entry '%s' needs placeholder '%s', which it does not feed", e->name, n->name);
      continue;
    }
    if (n->op == KC_OP_PLACEHOLDER) continue;
    for (int k = 0; k < n->n_in + n->n_ctrl; k++) {
      int w = k < n->n_in ? n->in[k].node : n->ctrl[k - n->n_in];
      if (!need[w]) need[stack[sp++] = w] = 1;
    }
  }
  return ok;
}

static bool schedule(kg_module *m, const kg_entry *e, kc_entry_plan *ep, kc_diag *d) {
  int N = m->n_nodes;
  char *need = calloc((size_t)N + 1, 1);
  int *stack = malloc(sizeof(int) * (size_t)(N + e->n_fetches + e->n_feeds + 1));
  int *pending = calloc((size_t)N + 1, sizeof(int));
  int *users_start = calloc((size_t)N + 2, sizeof(int)), *users = NULL;
  heap h = {malloc(sizeof(int) * ((size_t)N + 1)), 0};
  bool ok = need && stack && pending && users_start && h.v && mark_needed(m, e, need, stack, d);
  if (ok) {
    /* users lists (within the needed set), for Kahn's algorithm */
    for (int v = 0; v < N; v++) {
      if (!need[v] || (m->nodes[v].op == KC_OP_PLACEHOLDER)) continue;
      const kg_node *n = &m->nodes[v];
      for (int k = 0; k < n->n_in + n->n_ctrl; k++) {
        int w = k < n->n_in ? n->in[k].node : n->ctrl[k - n->n_in];
        users_start[w + 1]++;
        pending[v]++;
      }
    }
    for (int v = 0; v < N; v++) users_start[v + 1] += users_start[v];
    users = malloc(sizeof(int) * ((size_t)users_start[N] + 1));
    int *fill = calloc((size_t)N + 1, sizeof(int));
    ok = users && fill;
    for (int v = 0; ok && v < N; v++) {
      if (!need[v] || (m->nodes[v].op == KC_OP_PLACEHOLDER)) continue;
      const kg_node *n = &m->nodes[v];
      for (int k = 0; k < n->n_in + n->n_ctrl; k++) {
        int w = k < n->n_in ? n->in[k].node : n->ctrl[k - n->n_in];
        users[users_start[w] + fill[w]++] = v;
      }
    }
    free(fill);
    ep->sched = kc_alloc(m->arena, sizeof(int) * ((size_t)N + 1));
    for (int v = 0; ok && v < N; v++)
      if (need[v] && !pending[v]) heap_push(&h, v);
    while (ok && h.n) {
      int v = heap_pop(&h);
      ep->sched[ep->n_sched++] = v;
      for (int k = users_start[v]; k < users_start[v + 1]; k++)
        if (--pending[users[k]] == 0) heap_push(&h, users[k]);
    }
  }
  if (!need || !stack || !pending || !users_start || !h.v) kc_error(d, e->loc, "out of memory");
  free(need);
  free(stack);
  free(pending);
  free(users_start);
  free(users);
  free(h.v);
  return ok;
}

/* ---- memory ---- */

typedef struct block {
  int64_t off, size;
} block;

typedef struct freelist {
  block *b;
  int n, cap;
  int64_t top;
} freelist;

static int64_t fl_alloc(freelist *fl, int64_t size) {
  size = align_up(size ? size : 1, ALIGN);
  for (int i = 0; i < fl->n; i++)
    if (fl->b[i].size >= size) {
      int64_t off = fl->b[i].off;
      fl->b[i].off += size;
      fl->b[i].size -= size;
      if (!fl->b[i].size) memmove(&fl->b[i], &fl->b[i + 1], sizeof(block) * (size_t)(--fl->n - i));
      return off;
    }
  /* grow the arena, absorbing a free block that ends at the top */
  if (fl->n && fl->b[fl->n - 1].off + fl->b[fl->n - 1].size == fl->top) {
    int64_t off = fl->b[--fl->n].off;
    fl->top = off + size;
    return off;
  }
  int64_t off = fl->top;
  fl->top += size;
  return off;
}

static void fl_free(freelist *fl, int64_t off, int64_t size) {
  size = align_up(size ? size : 1, ALIGN);
  if (fl->n == fl->cap) {
    fl->cap = fl->cap ? fl->cap * 2 : 16;
    fl->b = realloc(fl->b, sizeof(block) * (size_t)fl->cap);
  }
  int i = 0;
  while (i < fl->n && fl->b[i].off < off) i++;
  memmove(&fl->b[i + 1], &fl->b[i], sizeof(block) * (size_t)(fl->n - i));
  fl->b[i] = (block){off, size};
  fl->n++;
  if (i + 1 < fl->n && fl->b[i].off + fl->b[i].size == fl->b[i + 1].off) {
    fl->b[i].size += fl->b[i + 1].size;
    memmove(&fl->b[i + 1], &fl->b[i + 2], sizeof(block) * (size_t)(fl->n - i - 2));
    fl->n--;
  }
  if (i > 0 && fl->b[i - 1].off + fl->b[i - 1].size == fl->b[i].off) {
    fl->b[i - 1].size += fl->b[i].size;
    memmove(&fl->b[i], &fl->b[i + 1], sizeof(block) * (size_t)(fl->n - i - 1));
    fl->n--;
  }
}

/* Bytes of the tensor in slot s (slots are numbered in node order). */
static int64_t slot_bytes(const kg_module *m, const kc_plan *p, int s) {
  int lo = 0, hi = m->n_nodes - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (p->out_base[mid] <= s) lo = mid;
    else hi = mid - 1;
  }
  while (lo > 0 && p->out_base[lo] == p->out_base[lo - 1] && m->nodes[lo].n_out == 0) lo--;
  /* the node owning s is the last one whose base <= s that has outputs */
  int v = lo;
  while (v >= 0 && (p->out_base[v] > s || p->out_base[v] + m->nodes[v].n_out <= s)) v--;
  return v >= 0 ? kg_type_bytes(&m->nodes[v].out[s - p->out_base[v]]) : 0;
}

/* C struct layout of the in/out structs: each field aligned to its element. */
static int64_t field(int64_t *size, const kg_type *t, int64_t *max_align) {
  int64_t a = (int64_t)kg_dtype_size(t->dtype);
  if (a > *max_align) *max_align = a;
  int64_t off = align_up(*size, a);
  *size = off + kg_type_bytes(t);
  return off;
}

static bool plan_entry(kg_module *m, kc_plan *p, const kg_entry *e, kc_entry_plan *ep, kc_diag *d) {
  if (!schedule(m, e, ep, d)) return false;
  /* nodes on several CPU devices run concurrently (place.h), so the
   * schedule's order of last reads does not hold: no arena reuse there */
  bool concurrent = kc_entry_partitions(m, ep->sched, ep->n_sched) > 1;
  ep->slots = kc_alloc(m->arena, sizeof(kc_slot) * ((size_t)p->n_slots + 1));
  /* the in/out structs */
  int64_t size = 0, al = 1;
  ep->in_offset = kc_alloc(m->arena, sizeof(int64_t) * ((size_t)e->n_feeds + 1));
  for (int i = 0; i < e->n_feeds; i++) {
    ep->in_offset[i] = field(&size, &m->nodes[e->feeds[i]].out[0], &al);
    ep->slots[p->out_base[e->feeds[i]]] = (kc_slot){KC_PLACE_FEED, ep->in_offset[i]};
  }
  ep->in_size = align_up(size, al);
  size = 0, al = 1;
  ep->out_offset = kc_alloc(m->arena, sizeof(int64_t) * ((size_t)e->n_fetches + 1));
  for (int i = 0; i < e->n_fetches; i++) {
    const kg_type *t = kg_ref_type(m, e->fetches[i]);
    ep->out_offset[i] = t ? field(&size, t, &al) : -1;
  }
  ep->out_size = align_up(size, al);

  /* liveness: the last schedule position reading each root slot */
  int *root = malloc(sizeof(int) * ((size_t)p->n_slots + 1));
  int *last = malloc(sizeof(int) * ((size_t)p->n_slots + 1));
  int *pos = malloc(sizeof(int) * ((size_t)m->n_nodes + 1));
  freelist fl = {0};
  if (!root || !last || !pos) {
    free(root), free(last), free(pos);
    return kc_error(d, e->loc, "out of memory");
  }
  for (int s = 0; s < p->n_slots; s++) root[s] = s, last[s] = -1;
  for (int i = 0; i < ep->n_sched; i++) {
    int v = ep->sched[i];
    const kg_node *n = &m->nodes[v];
    pos[v] = i;
    if ((kc_ops[n->op].flags & KC_OP_ALIAS) && n->n_out)
      root[p->out_base[v]] = root[p->out_base[n->in[0].node] + n->in[0].index];
    for (int k = 0; k < n->n_in; k++)
      if (m->nodes[n->in[k].node].n_out) {
        int s = root[p->out_base[n->in[k].node] + n->in[k].index];
        if (last[s] < i) last[s] = i;
      }
  }
  for (int i = 0; i < e->n_fetches; i++)
    if (kg_ref_type(m, e->fetches[i])) last[root[p->out_base[e->fetches[i].node] + e->fetches[i].index]] = ep->n_sched;
  /* the first fetch of each computed root slot lives in the out struct */
  int *direct = malloc(sizeof(int) * ((size_t)p->n_slots + 1));
  ep->fetch_direct = kc_alloc(m->arena, sizeof(bool) * ((size_t)e->n_fetches + 1));
  for (int s = 0; direct && s < p->n_slots; s++) direct[s] = -1;
  for (int i = 0; direct && i < e->n_fetches; i++) {
    kg_ref r = e->fetches[i];
    if (!kg_ref_type(m, r) || kc_plan_var_root(m, r) >= 0) continue;
    int op = m->nodes[r.node].op;
    int s = p->out_base[r.node] + r.index;
    if (op == KC_OP_CONST || op == KC_OP_PLACEHOLDER || root[s] != s || direct[s] >= 0) continue;
    direct[s] = i;
    ep->fetch_direct[i] = true;
  }

  for (int i = 0; i < ep->n_sched; i++) {
    int v = ep->sched[i];
    const kg_node *n = &m->nodes[v];
    int var = n->n_out ? kc_plan_var_root(m, (kg_ref){v, 0}) : -1;
    for (int k = 0; k < n->n_out; k++) {
      int s = p->out_base[v] + k;
      if (var >= 0) ep->slots[s] = (kc_slot){KC_PLACE_VAR, p->var_offset[var]};
      else if (n->op == KC_OP_CONST) ep->slots[s] = (kc_slot){KC_PLACE_NONE, 0};
      else if (n->op == KC_OP_PLACEHOLDER) continue; /* fed: set above */
      else if (root[s] != s) ep->slots[s] = ep->slots[root[s]];
      else if (direct && direct[s] >= 0) ep->slots[s] = (kc_slot){KC_PLACE_OUT, ep->out_offset[direct[s]]};
      else {
        int64_t bytes = kg_type_bytes(&n->out[k]);
        ep->slots[s] = (kc_slot){KC_PLACE_ARENA, fl_alloc(&fl, bytes)};
        if (last[s] < 0) last[s] = i; /* unused result: free right after */
      }
    }
    /* free what this node was the last reader of (its own unused results too) */
    for (int k = 0; k < n->n_in + n->n_out; k++) {
      int s = k < n->n_in ? (m->nodes[n->in[k].node].n_out ? root[p->out_base[n->in[k].node] + n->in[k].index] : -1)
                          : p->out_base[v] + (k - n->n_in);
      if (s < 0 || root[s] != s || last[s] != i || ep->slots[s].place != KC_PLACE_ARENA) continue;
      bool dup = false; /* the same operand twice: free once */
      for (int j = 0; j < k && !dup; j++) {
        int sj = j < n->n_in ? (m->nodes[n->in[j].node].n_out ? root[p->out_base[n->in[j].node] + n->in[j].index] : -1)
                             : p->out_base[v] + (j - n->n_in);
        dup = sj == s;
      }
      if (!dup && !concurrent) fl_free(&fl, ep->slots[s].offset, slot_bytes(m, p, s));
    }
  }
  ep->arena_size = fl.top;
  free(direct);
  free(fl.b);
  free(root);
  free(last);
  free(pos);
  return true;
}

kc_plan *kc_plan_module(kg_module *m, kc_diag *d) {
  kc_plan *p = kc_alloc(m->arena, sizeof *p);
  int N = m->n_nodes;
  p->n_nodes = N;
  p->out_base = kc_alloc(m->arena, sizeof(int) * ((size_t)N + 1));
  p->var_offset = kc_alloc(m->arena, sizeof(int64_t) * ((size_t)N + 1));
  p->queue_id = kc_alloc(m->arena, sizeof(int) * ((size_t)N + 1));
  p->random_slot = kc_alloc(m->arena, sizeof(int) * ((size_t)N + 1));
  for (int v = 0; v < N; v++) {
    const kg_node *n = &m->nodes[v];
    p->out_base[v] = p->n_slots;
    p->n_slots += n->n_out;
    p->var_offset[v] = -1;
    p->queue_id[v] = -1;
    p->random_slot[v] = -1;
    if (n->op == KC_OP_VARIABLE) {
      p->var_offset[v] = p->vars_size;
      p->vars_size = align_up(p->vars_size + kg_type_bytes(&n->out[0]), ALIGN);
    }
    if (n->op == KC_OP_QUEUE) p->queue_id[v] = p->n_queues++;
    if (kc_ops[n->op].flags & KC_OP_RANDOM) p->random_slot[v] = p->n_random++;
    if (n->op == KC_OP_VARIABLE && strncmp(kg_attr_str(n, "init", "zeros"), "random", 6) == 0)
      p->random_slot[v] = p->n_random++;
    if (n->op == KC_OP_VARIABLE && (!strcmp(kg_attr_str(n, "init", ""), "glorot_uniform") ||
                                    !strcmp(kg_attr_str(n, "init", ""), "truncated_normal")))
      p->random_slot[v] = p->n_random++;
  }
  p->n_entries = m->n_entries;
  p->entries = kc_alloc(m->arena, sizeof(kc_entry_plan) * ((size_t)m->n_entries + 1));
  bool ok = true;
  for (int i = 0; i < m->n_entries; i++) {
    if (!plan_entry(m, p, &m->entries[i], &p->entries[i], d)) ok = false;
    else if (p->entries[i].arena_size > p->arena_size) p->arena_size = p->entries[i].arena_size;
  }
  return ok ? p : NULL;
}

void kc_plan_print(const kg_module *m, const kc_plan *p, FILE *f) {
  static const char *place[] = {"-", "arena", "var", "feed", "out"};
  fprintf(f, "# plan: vars %lld bytes, arena %lld bytes, %d queues, %d random streams\n",
          (long long)p->vars_size, (long long)p->arena_size, p->n_queues, p->n_random);
  for (int e = 0; e < p->n_entries; e++) {
    const kc_entry_plan *ep = &p->entries[e];
    fprintf(f, "# entry %s: %d nodes, arena %lld bytes, in %lld bytes, out %lld bytes\n",
            m->entries[e].name, ep->n_sched, (long long)ep->arena_size, (long long)ep->in_size,
            (long long)ep->out_size);
    for (int i = 0; i < ep->n_sched; i++) {
      const kg_node *n = &m->nodes[ep->sched[i]];
      fprintf(f, "#   %4d %-24s %-14s", i, n->name, kc_ops[n->op].name);
      for (int k = 0; k < n->n_out; k++) {
        const kc_slot *s = &ep->slots[p->out_base[ep->sched[i]] + k];
        fprintf(f, " %s@%lld", place[s->place], (long long)s->offset);
      }
      fputc('\n', f);
    }
  }
}
