/* expand.c — the expand pass: composite ops (those whose op-table entry
 * names an expansion) are rewritten into primitive ops before autodiff, so
 * they need no lowering or gradient rule of their own: batch norm, dropout,
 * the losses, the optimizers' updates, learning-rate schedules. */
#include "passes/autodiff.h"
#include "passes/passes.h"
#include <stdlib.h>
#include <string.h>

bool kc_expand_none(kc_grad_ctx *g, int node, kg_ref *out) { return true; }

bool kc_pass_expand(kg_module *m, kc_diag *d) {
  bool any = false;
  /* expansions may build composite nodes themselves: keep going until none */
  for (int v = 0; v < m->n_nodes; v++) {
    const kg_node *n = &m->nodes[v];
    if (n->dead || kc_ops[n->op].expand == kc_expand_none) continue;
    kg_ref out[256];
    int n_out = n->n_out;
    for (int k = 0; k < 256; k++) out[k] = KG_NOREF;
    kc_grad_ctx g = {m, d, n->name, n->loc, false};
    int first_new = m->n_nodes;
    if (!kc_ops[n->op].expand(&g, v, out) || g.failed) return false;
    n = &m->nodes[v];
    /* what runs in place of the composite: a no_op after every node it
     * built, so `after [composite]` and run targets keep their meaning */
    int last = m->n_nodes;
    kg_node done = {0};
    done.name = kc_sprintf(m->arena, "%s/done", n->name);
    done.op = KC_OP_NO_OP;
    done.loc = n->loc;
    done.device = n->device;
    done.n_ctrl = last - first_new;
    done.ctrl = kc_alloc(m->arena, sizeof(int) * (size_t)(done.n_ctrl + 1));
    for (int i = 0; i < done.n_ctrl; i++) done.ctrl[i] = first_new + i;
    done.in = kc_alloc(m->arena, sizeof(kg_ref));
    int done_idx = kc_module_add_node(m, &done);
    for (int k = 0; k < n_out; k++) {
      kg_ref by = out[k];
      if (by.node < 0) return kc_error(d, m->nodes[v].loc, "internal: expansion of '%s' left output %d unset", m->nodes[v].name, k);
      kc_module_redirect(m, (kg_ref){v, k}, by);
    }
    if (n_out == 0) { /* a target: entries that ran it now run its no_op */
      for (int e = 0; e < m->n_entries; e++)
        for (int k = 0; k < m->entries[e].n_fetches; k++)
          if (m->entries[e].fetches[k].node == v) m->entries[e].fetches[k] = (kg_ref){done_idx, 0};
    }
    kc_module_redirect_ctrl(m, v, done_idx);
    /* the replacement inherits the composite's own control dependencies */
    const kg_node *orig = &m->nodes[v];
    for (int i = first_new; i < last; i++) {
      kg_node *nn = &m->nodes[i];
      if (!orig->n_ctrl) break;
      if (nn->op == KC_OP_VARIABLE) continue; /* state has no "run": fetching a slot must not run the step */
      int *c = kc_alloc(m->arena, sizeof(int) * (size_t)(nn->n_ctrl + orig->n_ctrl));
      if (nn->n_ctrl) memcpy(c, nn->ctrl, sizeof(int) * (size_t)nn->n_ctrl);
      memcpy(c + nn->n_ctrl, orig->ctrl, sizeof(int) * (size_t)orig->n_ctrl);
      nn->ctrl = c;
      nn->n_ctrl += orig->n_ctrl;
    }
    for (int i = first_new; i < last; i++)
      if (!m->nodes[i].device) m->nodes[i].device = m->nodes[v].device;
    m->nodes[v].dead = true;
    any = true;
  }
  if (any) kc_module_compact(m);
  return true;
}
