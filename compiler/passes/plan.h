/* plan.h — the schedule and the memory plan: where every tensor lives.
 *
 * For each entry point the scheduler picks the nodes its fetches need
 * (through data and control edges, stopping at fed placeholders) in a
 * deterministic topological order (lowest node index first among the ready
 * ones).  The planner then gives every node output a place: the variable
 * block (variables, and ops that yield a variable's new value), the entry's
 * input struct (fed placeholders), or the scratch arena, where offsets are
 * reused once a buffer's last reader has run (liveness-based, first fit, as
 * ggml-alloc does); a fetched result is computed directly into the output
 * struct when nothing else claims it.  Aliasing ops (reshape, expand_dims, squeeze) share their
 * operand's place.  Nothing is allocated at run time. */
#ifndef KILN_PLAN_H
#define KILN_PLAN_H

#include "ir/ir.h"

/* OUT: a fetched result computed straight into the entry's output struct,
 * so no copy is needed at the end of the run. */
typedef enum kc_place { KC_PLACE_NONE, KC_PLACE_ARENA, KC_PLACE_VAR, KC_PLACE_FEED, KC_PLACE_OUT } kc_place;

typedef struct kc_slot {
  kc_place place;
  int64_t offset; /* bytes from the base of that place */
} kc_slot;

typedef struct kc_entry_plan {
  int n_sched;
  int *sched;        /* node indices in execution order */
  kc_slot *slots;    /* per output slot (see kc_plan.out_base) */
  int64_t *in_offset, *out_offset; /* per feed / fetch: offset in the in/out struct */
  bool *fetch_direct;  /* per fetch: computed in place in the out struct (no copy) */
  int64_t in_size, out_size;
  int64_t arena_size;
} kc_entry_plan;

typedef struct kc_plan {
  int n_nodes;
  int *out_base;        /* per node: index of its output 0 in slots[] */
  int n_slots;
  int64_t *var_offset;  /* per node: offset of a variable in the var block, else -1 */
  int64_t vars_size;
  int *queue_id;        /* per node: queue index, else -1 */
  int n_queues;
  int *random_slot;     /* per node: counter index of a random op, else -1 */
  int n_random;
  int n_entries;
  kc_entry_plan *entries;
  int64_t arena_size;   /* max over entries */
} kc_plan;

/* Schedules and plans every entry of a verified module; the plan's memory
 * comes from the module's arena.  Returns NULL after reporting errors. */
kc_plan *kc_plan_module(kg_module *m, kc_diag *diag);
/* The variable node an output ultimately refers to (through assign and
 * aliases), or -1 when it is not a variable's storage. */
int kc_plan_var_root(const kg_module *m, kg_ref r);
/* Writes a readable summary of the plan (for --print-after=plan). */
void kc_plan_print(const kg_module *m, const kc_plan *p, FILE *f);

#endif
