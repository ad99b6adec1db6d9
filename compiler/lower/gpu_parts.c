/* gpu_parts.c — entries whose nodes sit on several CPU devices (virtual
 * devices cpu:0, cpu:1, ...; docs/gpu.md).
 *
 * Such an entry becomes one function per device,
 *     i32 <entry>__cpuN(ptr inst, ptr in, ptr out, ptr sync)
 * that runs the device's nodes in the entry's schedule order, and the entry
 * itself calls kiln_rt_run_parts, which runs them concurrently (runtime/
 * devices.c).  A node made on one device and read (or waited for through
 * `after`) on another gets an event: its device signals it once the node
 * is done, the reader waits for it first.  GPU-placed nodes are issued from
 * the cpu:0 partition.  The memory plan does not reuse arena space within
 * such an entry (plan.c), so concurrent nodes never share a buffer.
 * Traced runs do not time the nodes of a partitioned entry. */
#include "lower/lower.h"
#include "passes/place.h"
#include <stdlib.h>
#include <string.h>

static void begin_part(kl_ctx *L, LLVMValueRef fn) {
  L->fn = fn;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(L->C, fn, "entry");
  L->exit_bb = LLVMAppendBasicBlockInContext(L->C, fn, "exit");
  LLVMPositionBuilderAtEnd(L->B, entry);
  L->inst = LLVMGetParam(fn, 0);
  L->in_struct = LLVMGetParam(fn, 1);
  L->out_struct = LLVMGetParam(fn, 2);
  L->status_slot = LLVMBuildAlloca(L->B, L->t_i32, "status");
  LLVMBuildStore(L->B, kl_i32(L, 0), L->status_slot);
  LLVMTypeRef it = kl_inst_type(L);
  L->vars = LLVMBuildLoad2(L->B, L->t_ptr, LLVMBuildStructGEP2(L->B, it, L->inst, 0, ""), "vars");
  L->arena = LLVMBuildLoad2(L->B, L->t_ptr, LLVMBuildStructGEP2(L->B, it, L->inst, 1, ""), "arena");
}

static void end_part(kl_ctx *L) {
  LLVMBuildBr(L->B, L->exit_bb);
  LLVMPositionBuilderAtEnd(L->B, L->exit_bb);
  LLVMBuildRet(L->B, LLVMBuildLoad2(L->B, L->t_i32, L->status_slot, ""));
}

static int dep_of(const kg_node *n, int k) { return k < n->n_in ? n->in[k].node : n->ctrl[k - n->n_in]; }

bool kl_lower_partitioned_entry(kl_ctx *L, int ei, LLVMValueRef fn, bool *ok) {
  const kg_module *m = L->m;
  const kg_entry *e = &m->entries[ei];
  const kc_entry_plan *ep = &L->plan->entries[ei];
  if (kc_entry_partitions(m, ep->sched, ep->n_sched) <= 1) return false;
  *ok = true;
  int N = m->n_nodes;
  int *part = malloc(sizeof(int) * (size_t)(N + 1));   /* per node: dense partition, -1 not scheduled */
  int *event = malloc(sizeof(int) * (size_t)(N + 1));  /* per node: its event, -1 none */
  int *seen = calloc((size_t)N + 1, sizeof(int));      /* waits already emitted in this partition */
  int dev_of_part[64], n_parts = 0, n_events = 0;
  if (!part || !event || !seen) {
    free(part), free(event), free(seen);
    *ok = kc_error(L->diag, e->loc, "out of memory");
    return true;
  }
  for (int v = 0; v < N; v++) part[v] = -1, event[v] = -1;
  /* dense partition numbers in device order: the lowest (cpu:0) runs on the caller's thread */
  for (int dev = 0; dev < 64; dev++)
    for (int i = 0; i < ep->n_sched; i++) {
      const kg_node *n = &m->nodes[ep->sched[i]];
      if (!kc_node_is_inert(n) && kc_node_partition(n) == dev) {
        dev_of_part[n_parts++] = dev;
        break;
      }
    }
  for (int i = 0; i < ep->n_sched; i++) {
    int v = ep->sched[i], dev = kc_node_partition(&m->nodes[v]);
    part[v] = 0;
    for (int p = 0; p < n_parts; p++)
      if (dev_of_part[p] == dev) part[v] = p;
  }
  for (int i = 0; i < ep->n_sched; i++) {
    const kg_node *n = &m->nodes[ep->sched[i]];
    for (int k = 0; k < n->n_in + n->n_ctrl; k++) {
      int u = dep_of(n, k);
      if (part[u] >= 0 && part[u] != part[ep->sched[i]] && !kc_node_is_inert(&m->nodes[u]) && event[u] < 0)
        event[u] = n_events++;
    }
  }
  L->entry = e;
  L->ep = ep;
  LLVMValueRef parts[64];
  LLVMTypeRef pp[] = {L->t_ptr, L->t_ptr, L->t_ptr, L->t_ptr};
  LLVMTypeRef pty = LLVMFunctionType(L->t_i32, pp, 4, 0);
  size_t len;
  const char *base = LLVMGetValueName2(fn, &len);
  for (int p = 0; *ok && p < n_parts; p++) {
    parts[p] = LLVMAddFunction(L->M, kc_sprintf(m->arena, "%.*s__cpu%d", (int)len, base, dev_of_part[p]), pty);
    LLVMSetLinkage(parts[p], LLVMInternalLinkage);
    begin_part(L, parts[p]);
    LLVMValueRef sync = LLVMGetParam(parts[p], 3);
    memset(seen, 0, sizeof(int) * (size_t)(N + 1));
    for (int i = 0; *ok && i < ep->n_sched; i++) {
      int v = ep->sched[i];
      const kg_node *n = &m->nodes[v];
      if (part[v] != p) continue;
      for (int k = 0; k < n->n_in + n->n_ctrl; k++) {
        int u = dep_of(n, k);
        if (event[u] < 0 || part[u] == p || seen[u]) continue;
        seen[u] = 1;
        LLVMValueRef wa[] = {sync, kl_i32(L, event[u])};
        kl_check(L, kl_call(L, "kiln_rt_part_wait", L->t_i32, wa, 2));
      }
      *ok = kl_lower_node(L, v);
      if (event[v] >= 0) {
        LLVMValueRef sa[] = {sync, kl_i32(L, event[v])};
        kl_call(L, "kiln_rt_part_signal", L->t_void, sa, 2);
      }
    }
    end_part(L);
  }
  if (*ok) {
    /* the entry: run the partitions, then copy the fetches not made in place */
    LLVMTypeRef ept = LLVMPointerTypeInContext(L->C, 0);
    LLVMValueRef arr = LLVMConstArray2(ept, parts, (uint64_t)n_parts);
    LLVMValueRef g = LLVMAddGlobal(L->M, LLVMTypeOf(arr), "parts");
    LLVMSetInitializer(g, arr);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    begin_part(L, fn);
    LLVMValueRef ra[] = {L->inst, L->in_struct, L->out_struct, kl_i32(L, n_parts), g, kl_i32(L, n_events)};
    kl_check(L, kl_call(L, "kiln_rt_run_parts", L->t_i32, ra, 6));
    for (int i = 0; i < e->n_fetches; i++) {
      if (ep->out_offset[i] < 0 || ep->fetch_direct[i]) continue;
      LLVMValueRef idx = kl_i64(L, ep->out_offset[i]);
      LLVMValueRef dst = LLVMBuildGEP2(L->B, L->t_i8, L->out_struct, &idx, 1, "");
      kl_memcpy(L, dst, kl_ref_ptr(L, e->fetches[i]), kg_type_bytes(kg_ref_type(m, e->fetches[i])));
    }
    kl_gpu_entry_end(L);
    end_part(L);
  }
  L->ep = NULL;
  L->entry = NULL;
  free(part), free(event), free(seen);
  return true;
}
