/* test_compiler.c — unit tests of libkilnc's stages on small inputs:
 * parser structure and positions, verifier inference, the schedule, the
 * memory plan's reuse, fusion, and scalar expressions. */
#include <criterion/criterion.h>
#include <string.h>
#include "ir/expr.h"
#include "ir/ops.h"
#include "ir/parse.h"
#include "passes/passes.h"
#include "passes/plan.h"
#include "passes/verify.h"

static kg_module *load(const char *src, kc_diag *d) {
  kg_module *m = kc_parse("t.kg", src, strlen(src), d);
  cr_assert(m, "parse failed: %s", d->text ? d->text : "");
  cr_assert(kc_verify(m, d), "verify failed: %s", d->text ? d->text : "");
  return m;
}

Test(parser, nested_calls_become_named_nodes) {
  kc_diag d = {0};
  kg_module *m = load("graph {\n  x = placeholder() : f32[2]\n  y = add(x, mul(x, const<f32[]>(2.0)))\n}\n", &d);
  cr_assert_eq(m->n_nodes, 4);
  cr_assert_geq(kc_module_find(m, "y/mul", 5), 0);
  cr_assert_geq(kc_module_find(m, "y/mul/const", 11), 0);
  int y = kc_module_find(m, "y", 1);
  cr_assert_eq(m->nodes[y].op, KC_OP_ADD);
  cr_assert_eq(m->nodes[y].out[0].shape.dim[0], 2);
  kc_module_free(m);
  kc_diag_clear(&d);
}

Test(parser, error_positions) {
  kc_diag d = {0};
  const char *src = "graph {\n  x = placeholder() : f32[2]\n  y = frobnicate(x)\n}\n";
  kg_module *m = kc_parse("t.kg", src, strlen(src), &d);
  cr_assert_null(m);
  cr_assert(strstr(d.text, "t.kg:3:7: error: unknown op 'frobnicate'"), "%s", d.text);
  kc_diag_clear(&d);
}

Test(parser, forward_references_and_control_deps) {
  kc_diag d = {0};
  kg_module *m = load("var v : i32[] = 5\ngraph {\n  b = no_op() after [a]\n  a = assign_add(v, c)\n"
                      "  c = const<i32[]>(1)\n}\nentry step() -> (b)\n", &d);
  int b = kc_module_find(m, "b", 1), a = kc_module_find(m, "a", 1);
  cr_assert_eq(m->nodes[b].n_ctrl, 1);
  cr_assert_eq(m->nodes[b].ctrl[0], a);
  kc_plan *p = kc_plan_module(m, &d);
  cr_assert(p);
  /* the schedule runs c, then a, then b (v is state) */
  const kc_entry_plan *ep = &p->entries[0];
  int pos_a = -1, pos_b = -1, pos_c = -1;
  for (int i = 0; i < ep->n_sched; i++) {
    if (ep->sched[i] == a) pos_a = i;
    if (ep->sched[i] == b) pos_b = i;
    if (ep->sched[i] == kc_module_find(m, "c", 1)) pos_c = i;
  }
  cr_assert(pos_c < pos_a && pos_a < pos_b);
  kc_module_free(m);
  kc_diag_clear(&d);
}

Test(verifier, cycle_is_reported_with_its_path) {
  kc_diag d = {0};
  const char *src = "graph {\n  a = neg(b) : f32[]\n  b = neg(a) : f32[]\n}\n";
  kg_module *m = kc_parse("t.kg", src, strlen(src), &d);
  cr_assert(m);
  cr_assert_not(kc_verify(m, &d));
  cr_assert(strstr(d.text, "cycle") && strstr(d.text, "'a'") && strstr(d.text, "'b'"), "%s", d.text);
  kc_module_free(m);
  kc_diag_clear(&d);
}

Test(plan, arena_reuses_dead_buffers) {
  kc_diag d = {0};
  /* a chain of 6 non-fusable steps of 4 KiB each: with reuse the arena
   * holds about two of them, not six */
  kg_module *m = load("graph {\n  x = placeholder() : f32[1024]\n  a = softmax(x)\n  b = softmax(a)\n"
                      "  c = softmax(b)\n  e = softmax(c)\n  f = softmax(e)\n  g = softmax(f)\n}\n"
                      "entry run(x) -> (g)\n", &d);
  kc_plan *p = kc_plan_module(m, &d);
  cr_assert(p);
  cr_assert_leq(p->arena_size, 2 * 4096, "arena %lld bytes", (long long)p->arena_size);
  cr_assert(p->entries[0].fetch_direct[0], "the fetched result should be computed in the out struct");
  kc_module_free(m);
  kc_diag_clear(&d);
}

Test(plan, reshape_aliases_its_operand) {
  kc_diag d = {0};
  kg_module *m = load("graph {\n  x = placeholder() : f32[2,3]\n  y = neg(x)\n  r = reshape(y) {shape=[6]}\n"
                      "  z = softmax(r)\n}\nentry run(x) -> (z)\n", &d);
  kc_plan *p = kc_plan_module(m, &d);
  cr_assert(p);
  int y = kc_module_find(m, "y", 1), r = kc_module_find(m, "r", 1);
  const kc_entry_plan *ep = &p->entries[0];
  cr_assert_eq(ep->slots[p->out_base[y]].place, ep->slots[p->out_base[r]].place);
  cr_assert_eq(ep->slots[p->out_base[y]].offset, ep->slots[p->out_base[r]].offset);
  kc_module_free(m);
  kc_diag_clear(&d);
}

Test(fuse, chain_becomes_one_node_unless_fetched) {
  kc_diag d = {0};
  kg_module *m = load("graph {\n  x = placeholder() : f32[8]\n  a = exp(x)\n  b = mul(a, x)\n  c = relu(b)\n"
                      "  k = neg(x)\n  s = add(c, k)\n}\nentry run(x) -> (s, k)\n", &d);
  cr_assert(kc_pass_fuse(m, &d) && kc_verify(m, &d), "%s", d.text ? d.text : "");
  int s = kc_module_find(m, "s", 1);
  cr_assert_eq(m->nodes[s].op, KC_OP_FUSED);
  cr_assert_lt(kc_module_find(m, "a", 1), 0, "a should have been merged");
  cr_assert_geq(kc_module_find(m, "k", 1), 0, "k is fetched and must stay");
  /* the merged expression reads x once (deduplicated operands): x and k */
  cr_assert_eq(m->nodes[s].n_in, 2);
  kc_module_free(m);
  kc_diag_clear(&d);
}

Test(expr, print_parse_round_trip) {
  kc_arena *a = kc_arena_new();
  char err[128];
  kc_expr *e = kc_expr_parse(a, "select(gt(x0, 0), cast.f32(x1), as.i32(div(x0, 2)))", "x0,x1", err, sizeof err);
  cr_assert(e, "%s", err);
  const char *s = kc_expr_print(a, e);
  kc_expr *f = kc_expr_parse(a, s, "x0,x1", err, sizeof err);
  cr_assert(f, "%s: %s", s, err);
  cr_assert_str_eq(kc_expr_print(a, f), s);
  cr_assert_null(kc_expr_parse(a, "frob(x0)", "x0", err, sizeof err));
  cr_assert(strstr(err, "unknown primitive"));
  kc_arena_free(a);
}

Test(ops, every_elementwise_expression_parses) {
  for (int op = 0; op < KC_OP_COUNT; op++)
    if (kc_ops[op].expr) cr_assert(kc_op_expr(op), "op %s: bad expression '%s'", kc_ops[op].name, kc_ops[op].expr);
}

Test(cse, identical_pure_nodes_merge_but_random_ones_do_not) {
  kc_diag d = {0};
  kg_module *m = load("graph {\n  x = placeholder() : f32[4]\n  a = exp(x)\n  b = exp(x)\n"
                      "  r1 = random_uniform<f32[4]>() {seed=1}\n  r2 = random_uniform<f32[4]>() {seed=1}\n"
                      "  s = add(add(a, b), add(r1, r2))\n}\nentry run(x) -> (s)\n", &d);
  cr_assert(kc_pass_cse(m, &d) && kc_verify(m, &d), "%s", d.text ? d.text : "");
  int s = kc_module_find(m, "s/add", 5);
  cr_assert_geq(s, 0);
  /* add(a, b) became add(a, a) */
  cr_assert_eq(m->nodes[s].in[0].node, m->nodes[s].in[1].node);
  cr_assert_lt(kc_module_find(m, "b", 1), 0, "b should have been merged into a");
  cr_assert_geq(kc_module_find(m, "r2", 2), 0, "random ops must not be merged");
  kc_module_free(m);
  kc_diag_clear(&d);
}
