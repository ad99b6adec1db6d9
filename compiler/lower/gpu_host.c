/* gpu_host.c — the host side of GPU-placed nodes (docs/gpu.md).
 *
 * A host module with GPU work embeds the PTX of its kernels (nvptx.c) and
 * describes, per entry, every kernel launch and device copy with the
 * buffers the memory plan gave them: a GPU buffer lives at its planned
 * offset in the device's copy of the arena or the variable block.  Each
 * GPU-placed node is lowered twice, behind one branch:
 *
 *     if (kiln_rt_gpu_active(inst)) status = kiln_rt_gpu_launch(inst, K);
 *     else                          <the node's CPU code>
 *
 * so the same binary runs on a GPU, or (no driver, no GPU, soft placement)
 * computes everything on the CPU, where a device_copy is a memcpy.  Modules
 * built for a --target and modules without GPU work get the CPU code only. */
#include "lower/lower.h"
#include "lower/nvptx.h"
#include "passes/place.h"
#include "kilnrt.h" /* the descriptor's argument spaces */
#include <stdlib.h>
#include <string.h>

typedef struct kl_gpu_host {
  bool enabled;
  char *ptx;
  int n_devices;
  LLVMTypeRef t_arg, t_kernel, t_copy, t_var, t_desc, t_gemm;
  LLVMValueRef *kernels, *copies;
  int n_kernels, n_copies, cap_kernels, cap_copies;
  bool entry_used; /* the entry being lowered queued GPU work */
  bool emulate;    /* KILN_GPU_EMULATE: the CPU path runs the kernels' bodies in a loop */
} kl_gpu_host;

static bool gpu_work(const kg_module *m) {
  for (int v = 0; v < m->n_nodes; v++) {
    const kg_node *n = &m->nodes[v];
    if (n->dead) continue;
    if (kc_node_gpu(n) >= 0 && (kc_gpu_is_kernel(m, v) || n->op == KC_OP_VARIABLE)) return true;
    if (n->op == KC_OP_DEVICE_COPY && (kc_node_gpu(n) >= 0 || kc_node_gpu(&m->nodes[n->in[0].node]) >= 0)) return true;
  }
  return false;
}

bool kl_gpu_host_begin(kl_ctx *L) {
  L->gpu_host = NULL;
  if (!L->target->is_host || !gpu_work(L->m)) return true;
  kl_gpu_host *G = calloc(1, sizeof *G);
  if (!G) return kc_error(L->diag, (kc_loc){0}, "out of memory");
  L->gpu_host = G;
  int kernels = 0;
  G->ptx = kc_emit_ptx_string(L->m, L->plan, L->target->gpu_arch, L->target->opt_level, &kernels, L->diag);
  if (!G->ptx) return false;
  G->enabled = true;
  const char *emu = getenv("KILN_GPU_EMULATE");
  G->emulate = emu && *emu && strcmp(emu, "0");
  for (int v = 0; v < L->m->n_nodes; v++) {
    const kg_node *n = &L->m->nodes[v];
    if (!n->dead && kc_node_gpu(n) + 1 > G->n_devices) G->n_devices = kc_node_gpu(n) + 1;
  }
  LLVMContextRef C = L->C;
  G->t_arg = LLVMStructCreateNamed(C, "kiln_gpu_arg");
  LLVMTypeRef fa[] = {L->t_i32, L->t_i32, L->t_i64};
  LLVMStructSetBody(G->t_arg, fa, 3, 0);
  G->t_kernel = LLVMStructCreateNamed(C, "kiln_gpu_kernel");
  LLVMTypeRef fk[] = {L->t_ptr, L->t_ptr, L->t_i32, L->t_i32, L->t_ptr, L->t_i64, L->t_i32, L->t_i32, L->t_ptr};
  LLVMStructSetBody(G->t_kernel, fk, 9, 0);
  G->t_gemm = LLVMStructCreateNamed(C, "kiln_gpu_gemm");
  LLVMTypeRef fg[] = {L->t_i32, L->t_i32, L->t_i32, L->t_i32, L->t_i64, L->t_i64, L->t_i64, L->t_i64, L->t_i64, L->t_i64};
  LLVMStructSetBody(G->t_gemm, fg, 10, 0);
  G->t_copy = LLVMStructCreateNamed(C, "kiln_gpu_copy");
  LLVMTypeRef fc[] = {L->t_ptr, L->t_i32, L->t_i32, G->t_arg, G->t_arg, L->t_i64};
  LLVMStructSetBody(G->t_copy, fc, 6, 0);
  G->t_var = LLVMStructCreateNamed(C, "kiln_gpu_var");
  LLVMTypeRef fv[] = {L->t_ptr, L->t_i32, L->t_i32, L->t_i64, L->t_i64};
  LLVMStructSetBody(G->t_var, fv, 5, 0);
  G->t_desc = LLVMStructCreateNamed(C, "kiln_gpu_desc");
  LLVMTypeRef fd[] = {L->t_ptr, L->t_ptr, L->t_i32, L->t_i32, L->t_i32, L->t_i32,
                      L->t_i32, L->t_i32, L->t_ptr, L->t_ptr, L->t_ptr};
  LLVMStructSetBody(G->t_desc, fd, 11, 0);
  return true;
}

void kl_gpu_host_end(kl_ctx *L) {
  kl_gpu_host *G = L->gpu_host;
  if (!G) return;
  free(G->ptx);
  free(G->kernels);
  free(G->copies);
  free(G);
  L->gpu_host = NULL;
}

/* The device side of a planned buffer. */
static bool dev_arg(kl_ctx *L, int node, kg_ref r, LLVMValueRef *out) {
  const kc_slot *s = &L->ep->slots[L->plan->out_base[r.node] + r.index];
  if (s->place != KC_PLACE_ARENA && s->place != KC_PLACE_VAR)
    return kc_error(L->diag, L->m->nodes[node].loc,
                    "internal: '%s' reads or writes '%s' on a GPU, but the plan put it outside device memory",
                    L->m->nodes[node].name, L->m->nodes[r.node].name);
  LLVMValueRef f[] = {kl_i32(L, s->place == KC_PLACE_VAR ? KILN_GPU_VARS : KILN_GPU_ARENA), kl_i32(L, 0),
                      kl_i64(L, s->offset)};
  *out = LLVMConstNamedStruct(L->gpu_host->t_arg, f, 3);
  return true;
}

static int push(LLVMValueRef **arr, int *n, int *cap, LLVMValueRef v) {
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 16;
    LLVMValueRef *a = realloc(*arr, sizeof *a * (size_t)*cap);
    if (!a) return -1;
    *arr = a;
  }
  (*arr)[*n] = v;
  return (*n)++;
}

/* if (kiln_rt_gpu_active(inst)) { gpu } else { cpu }: returns the blocks,
 * the builder left in the GPU one. */
static void branch_active(kl_ctx *L, LLVMBasicBlockRef *cpu, LLVMBasicBlockRef *cont) {
  LLVMValueRef act = kl_call(L, "kiln_rt_gpu_active", L->t_i32, &L->inst, 1);
  LLVMBasicBlockRef gpu = LLVMAppendBasicBlockInContext(L->C, L->fn, "on_gpu");
  *cpu = LLVMAppendBasicBlockInContext(L->C, L->fn, "on_cpu");
  *cont = LLVMAppendBasicBlockInContext(L->C, L->fn, "gpu_done");
  LLVMBuildCondBr(L->B, LLVMBuildICmp(L->B, LLVMIntNE, act, kl_i32(L, 0), ""), gpu, *cpu);
  LLVMPositionBuilderAtEnd(L->B, gpu);
}

static bool lower_copy(kl_ctx *L, int v) {
  kl_gpu_host *G = L->gpu_host;
  const kg_node *n = &L->m->nodes[v];
  int sd = kc_node_gpu(&L->m->nodes[n->in[0].node]), dd = kc_node_gpu(n);
  LLVMValueRef zero[] = {kl_i32(L, 0), kl_i32(L, 0), kl_i64(L, 0)};
  LLVMValueRef src = LLVMConstNamedStruct(G->t_arg, zero, 3), dst = src;
  if (sd >= 0 && !dev_arg(L, v, n->in[0], &src)) return false;
  if (dd >= 0 && !dev_arg(L, v, (kg_ref){v, 0}, &dst)) return false;
  LLVMValueRef f[] = {kl_const_string(L, n->name, "gpu_str"), kl_i32(L, sd), kl_i32(L, dd), src, dst,
                      kl_i64(L, kg_type_bytes(&n->out[0]))};
  int id = push(&G->copies, &G->n_copies, &G->cap_copies, LLVMConstNamedStruct(G->t_copy, f, 6));
  if (id < 0) return kc_error(L->diag, n->loc, "out of memory");
  G->entry_used = true;
  LLVMBasicBlockRef cpu, cont;
  LLVMValueRef hs = kl_in(L, v, 0), hd = kl_out(L, v, 0);
  branch_active(L, &cpu, &cont);
  LLVMValueRef args[] = {L->inst, kl_i32(L, id), hs, hd};
  kl_check(L, kl_call(L, "kiln_rt_gpu_copy", L->t_i32, args, 4));
  LLVMBuildBr(L->B, cont);
  LLVMPositionBuilderAtEnd(L->B, cpu);
  bool ok = kc_ops[n->op].lower(L, v);
  LLVMBuildBr(L->B, cont);
  LLVMPositionBuilderAtEnd(L->B, cont);
  return ok;
}

/* KILN_GPU_EMULATE: the kernel's own code run on the CPU for every thread
 * (block kernels phase by phase between barriers), both as the CPU path of
 * the node and as an exported function
 *     void kiln_emu_<kernel>(void **params)
 * taking cuLaunchKernel's parameter array, through which
 * tests/gpu/fakecuda.c executes launches (binaries linked with -rdynamic). */
static bool emulate(kl_ctx *L, int v, int64_t n) {
  const kg_node *n0 = &L->m->nodes[v];
  int na = n0->n_in + n0->n_out;
  LLVMValueRef args[65], counter = NULL;
  for (int k = 0; k < n0->n_in; k++) args[k] = kl_in(L, v, k);
  for (int k = 0; k < n0->n_out; k++) args[n0->n_in + k] = kl_out(L, v, k);
  if (kc_gpu_counter_params(L->m, v)) { /* the instance's counter, advanced as a launch does */
    counter = kl_random_counter(L, v);
    args[na] = LLVMBuildLoad2(L->B, L->t_i64, counter, "counter");
  }
  bool ok = kl_gpu_emit_kernel(L, v, args, kl_i64(L, n), true);
  if (counter && n > 0)
    LLVMBuildStore(L->B, LLVMBuildAdd(L->B, args[na], kl_i64(L, kc_gpu_random_blocks(L->m, v)), ""), counter);
  return ok;
}

static bool export_emulation(kl_ctx *L, int v) {
  const kg_node *nd = &L->m->nodes[v];
  const char *name = kc_sprintf(L->m->arena, "kiln_emu_%s", kc_gpu_kernel_symbol(L->m, v));
  if (LLVMGetNamedFunction(L->M, name)) return true; /* lowered in another entry */
  LLVMValueRef fn = LLVMAddFunction(L->M, name, LLVMFunctionType(L->t_void, &L->t_ptr, 1, 0));
  LLVMValueRef saved_fn = L->fn;
  LLVMBasicBlockRef saved_bb = LLVMGetInsertBlock(L->B);
  L->fn = fn;
  LLVMPositionBuilderAtEnd(L->B, LLVMAppendBasicBlockInContext(L->C, fn, "entry"));
  int na = nd->n_in + nd->n_out, nc = kc_gpu_counter_params(L->m, v);
  LLVMValueRef p[68], args[66], params = LLVMGetParam(fn, 0);
  for (int k = 0; k <= na + nc; k++) { /* as the kernel's: pointers, [u32 counter low, high,] i64 n */
    LLVMValueRef idx = kl_i64(L, k);
    LLVMValueRef pp = LLVMBuildLoad2(L->B, L->t_ptr, LLVMBuildGEP2(L->B, L->t_ptr, params, &idx, 1, ""), "");
    p[k] = LLVMBuildLoad2(L->B, k < na ? L->t_ptr : k < na + nc ? L->t_i32 : L->t_i64, pp, "");
  }
  for (int k = 0; k < na; k++) args[k] = p[k];
  if (nc) args[na] = kl_gpu_join_counter(L, p[na], p[na + 1]);
  bool ok = kl_gpu_emit_kernel(L, v, args, p[na + nc], true);
  LLVMBuildRetVoid(L->B);
  L->fn = saved_fn;
  LLVMPositionBuilderAtEnd(L->B, saved_bb);
  return ok;
}

static bool lower_kernel(kl_ctx *L, int v) {
  kl_gpu_host *G = L->gpu_host;
  const kg_node *n = &L->m->nodes[v];
  int na = n->n_in + n->n_out;
  LLVMValueRef args[65];
  if (na > 64) return kc_error(L->diag, n->loc, "'%s' has too many operands for a GPU kernel", n->name);
  for (int k = 0; k < n->n_in; k++)
    if (!dev_arg(L, v, n->in[k], &args[k])) return false;
  for (int k = 0; k < n->n_out; k++)
    if (!dev_arg(L, v, (kg_ref){v, k}, &args[n->n_in + k])) return false;
  if (kc_gpu_counter_params(L->m, v)) {
    LLVMValueRef f[] = {kl_i32(L, KILN_GPU_COUNTER), kl_i32(L, L->plan->random_slot[v]),
                        kl_i64(L, kc_gpu_random_blocks(L->m, v))};
    args[na++] = LLVMConstNamedStruct(G->t_arg, f, 3);
  }
  kc_gpu_geom geo = kc_gpu_geometry(L->m, v);
  int64_t threads = geo.n;
  int block = geo.block;
  int64_t grid = geo.grid > 0 ? geo.grid : 1;
  if (grid > 2147483647) return kc_error(L->diag, n->loc, "'%s' is too large for one GPU launch", n->name);
  kc_gpu_gemm gm;
  LLVMValueRef gemm = LLVMConstNull(L->t_ptr);
  if (kc_gpu_gemm_of(L->m, v, &gm)) {
    LLVMValueRef gf[] = {kl_i32(L, gm.dtype), kl_i32(L, gm.trans_a), kl_i32(L, gm.trans_b), kl_i32(L, gm.batch),
                         kl_i64(L, gm.m), kl_i64(L, gm.n), kl_i64(L, gm.k), kl_i64(L, gm.stride_a),
                         kl_i64(L, gm.stride_b), kl_i64(L, gm.stride_c)};
    LLVMValueRef c = LLVMConstNamedStruct(G->t_gemm, gf, 10);
    gemm = LLVMAddGlobal(L->M, G->t_gemm, "gpu_gemm");
    LLVMSetInitializer(gemm, c);
    LLVMSetGlobalConstant(gemm, 1);
    LLVMSetLinkage(gemm, LLVMPrivateLinkage);
  }
  LLVMValueRef f[] = {kl_const_string(L, n->name, "gpu_str"),
                      kl_const_string(L, kc_gpu_kernel_symbol(L->m, v), "gpu_str"),
                      kl_i32(L, kc_node_gpu(n)),
                      kl_i32(L, na),
                      kl_const_array(L, G->t_arg, args, na, "gpu_args"),
                      kl_i64(L, threads),
                      kl_i32(L, block),
                      kl_i32(L, grid),
                      gemm};
  int id = push(&G->kernels, &G->n_kernels, &G->cap_kernels, LLVMConstNamedStruct(G->t_kernel, f, 9));
  if (id < 0) return kc_error(L->diag, n->loc, "out of memory");
  G->entry_used = true;
  LLVMBasicBlockRef cpu, cont;
  branch_active(L, &cpu, &cont);
  LLVMValueRef la[] = {L->inst, kl_i32(L, id)};
  kl_check(L, kl_call(L, "kiln_rt_gpu_launch", L->t_i32, la, 2));
  LLVMBuildBr(L->B, cont);
  LLVMPositionBuilderAtEnd(L->B, cpu);
  bool ok = G->emulate ? emulate(L, v, threads) && export_emulation(L, v) : kc_ops[n->op].lower(L, v);
  LLVMBuildBr(L->B, cont);
  LLVMPositionBuilderAtEnd(L->B, cont);
  return ok;
}

bool kl_lower_node(kl_ctx *L, int v) {
  kl_gpu_host *G = L->gpu_host;
  const kg_node *n = &L->m->nodes[v];
  if (G && G->enabled && L->ep) {
    if (n->op == KC_OP_DEVICE_COPY && (kc_node_gpu(n) >= 0 || kc_node_gpu(&L->m->nodes[n->in[0].node]) >= 0))
      return lower_copy(L, v);
    if (kc_gpu_is_kernel(L->m, v)) return lower_kernel(L, v);
  }
  return kc_ops[n->op].lower(L, v);
}

void kl_gpu_entry_end(kl_ctx *L) {
  kl_gpu_host *G = L->gpu_host;
  if (!G || !G->entry_used) return;
  kl_check(L, kl_call(L, "kiln_rt_gpu_sync", L->t_i32, &L->inst, 1));
  G->entry_used = false;
}

LLVMValueRef kl_gpu_descriptor(kl_ctx *L) {
  kl_gpu_host *G = L->gpu_host;
  if (!G || !G->enabled) return LLVMConstNull(L->t_ptr);
  const kg_module *m = L->m;
  LLVMValueRef *vars = calloc((size_t)m->n_nodes + 1, sizeof *vars);
  int nv = 0;
  for (int v = 0; vars && v < m->n_nodes; v++) {
    const kg_node *n = &m->nodes[v];
    if (n->dead || n->op != KC_OP_VARIABLE || kc_node_gpu(n) < 0) continue;
    LLVMValueRef f[] = {kl_const_string(L, n->name, "gpu_str"), kl_i32(L, kc_node_gpu(n)), kl_i32(L, 0), kl_i64(L, L->plan->var_offset[v]),
                        kl_i64(L, kg_type_bytes(&n->out[0]))};
    vars[nv++] = LLVMConstNamedStruct(G->t_var, f, 5);
  }
  LLVMValueRef ptx = LLVMConstStringInContext(L->C, G->ptx, (unsigned)strlen(G->ptx), 0);
  LLVMValueRef pg = LLVMAddGlobal(L->M, LLVMTypeOf(ptx), "kiln_ptx");
  LLVMSetInitializer(pg, ptx);
  LLVMSetGlobalConstant(pg, 1);
  LLVMSetLinkage(pg, LLVMPrivateLinkage);
  LLVMValueRef f[] = {pg,
                      kl_const_string(L, L->target->gpu_arch ? L->target->gpu_arch : "sm_80", "gpu_str"),
                      kl_i32(L, L->target->soft_placement),
                      kl_i32(L, G->n_devices > 0 ? G->n_devices : 1),
                      kl_i32(L, G->n_kernels),
                      kl_i32(L, G->n_copies),
                      kl_i32(L, nv),
                      kl_i32(L, 0),
                      kl_const_array(L, G->t_kernel, G->kernels, G->n_kernels, "gpu_kernels"),
                      kl_const_array(L, G->t_copy, G->copies, G->n_copies, "gpu_copies"),
                      kl_const_array(L, G->t_var, vars, nv, "gpu_vars")};
  free(vars);
  LLVMValueRef desc = LLVMAddGlobal(L->M, G->t_desc, "kiln_gpu_desc");
  LLVMSetInitializer(desc, LLVMConstNamedStruct(G->t_desc, f, 11));
  LLVMSetGlobalConstant(desc, 1);
  LLVMSetLinkage(desc, LLVMPrivateLinkage);
  return desc;
}
