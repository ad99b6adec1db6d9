/* dot.c — the graph as Graphviz: data edges solid, control edges dashed,
 * state (variables, queues) as boxes, GPU-placed nodes filled. */
#include "driver/outputs.h"
#include "ir/ops.h"

void kc_print_dot(const kg_module *m, FILE *f) {
  fprintf(f, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n", m->name);
  for (int v = 0; v < m->n_nodes; v++) {
    const kg_node *n = &m->nodes[v];
    if (n->dead) continue;
    char type[160] = "";
    if (n->n_out) kg_type_str(&n->out[0], type, sizeof type);
    bool state = n->op == KC_OP_VARIABLE || n->op == KC_OP_QUEUE;
    bool gpu = n->device && n->device[0] == 'g';
    fprintf(f, "  n%d [label=\"%s\\n%s %s\", shape=%s%s];\n", v, n->name, kc_ops[n->op].name, type,
            state ? "box" : "ellipse", gpu ? ", style=filled, fillcolor=\"#c8e6c9\"" : "");
    for (int k = 0; k < n->n_in; k++) fprintf(f, "  n%d -> n%d;\n", n->in[k].node, v);
    for (int k = 0; k < n->n_ctrl; k++) fprintf(f, "  n%d -> n%d [style=dashed];\n", n->ctrl[k], v);
  }
  fputs("}\n", f);
}
