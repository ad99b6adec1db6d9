/* dce.c — dead code elimination: removes nodes that no entry point, run
 * statement or queue close can reach.  Variables and queues stay (they are
 * state, and the descriptor lists them). */
#include "passes/passes.h"
#include "ir/ops.h"
#include <stdlib.h>

bool kc_pass_dce(kg_module *m, kc_diag *d) {
  int N = m->n_nodes, sp = 0;
  char *live = calloc((size_t)N + 1, 1);
  int *stack = malloc(sizeof(int) * ((size_t)N + 1));
  if (!live || !stack) {
    free(live), free(stack);
    return kc_error(d, (kc_loc){0}, "out of memory");
  }
  for (int v = 0; v < N; v++)
    if (m->nodes[v].op == KC_OP_VARIABLE || m->nodes[v].op == KC_OP_QUEUE) live[stack[sp++] = v] = 1;
  for (int e = 0; e < m->n_entries; e++) {
    for (int i = 0; i < m->entries[e].n_fetches; i++) {
      int v = m->entries[e].fetches[i].node;
      if (!live[v]) live[stack[sp++] = v] = 1;
    }
    for (int i = 0; i < m->entries[e].n_feeds; i++) {
      int v = m->entries[e].feeds[i];
      if (!live[v]) live[stack[sp++] = v] = 1;
    }
  }
  while (sp) {
    const kg_node *n = &m->nodes[stack[--sp]];
    for (int k = 0; k < n->n_in + n->n_ctrl; k++) {
      int w = k < n->n_in ? n->in[k].node : n->ctrl[k - n->n_in];
      if (!live[w]) live[stack[sp++] = w] = 1;
    }
  }
  int removed = 0;
  for (int v = 0; v < N; v++)
    if (!live[v]) m->nodes[v].dead = true, removed++;
  free(live);
  free(stack);
  if (removed) kc_module_compact(m);
  return true;
}
