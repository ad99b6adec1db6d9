/* gemm.c — matrix products generated through LLVM (`--blas generated`).
 *
 * kl_emit_gemm() emits one internal function per shape,
 * kiln_gemm_<dt>_<M>x<N>x<K>_<nn|tn|nt|tt>_..., called once per batch
 * element.  It follows the Goto/BLIS scheme with every size known at
 * compile time:
 *
 *   for jc in N step NC:                    B block: KC x NC, packed, in L2
 *     for pc in K step KC:
 *       pack op(B)[pc:pc+kc, jc:jc+nc] into NR-wide column panels (Bp)
 *       for ir in M step MR:                A micro-panel: MR x kc, in L1
 *         (A^T: copy the micro-panel into Ap)
 *         for jr in nc step NR:
 *           micro-kernel: C[ir:ir+mr, jc+jr:+nr] (+)= A panel * B panel
 *
 * The micro-kernel (kiln_gemm_<s|d>[fma]_k<MR>x<NV>x<W>_...) keeps an
 * MR x NR tile of C in MR * NV LLVM vector values (NR = NV * W lanes, W the
 * target's natural vector width for the dtype): each step over k loads NV
 * vectors of the B panel, broadcasts MR elements of A and does MR * NV
 * multiply-adds (llvm.fma where the target has FMA, fmul + fadd otherwise),
 * unrolled by 4 over k.  It first prefetches the tile's lines of C; at the
 * end it stores the tile (C = tile for the first K block, C += tile after
 * it, or always with `accumulate`).  Edges are static: a tail row block has
 * fewer rows, a tail column panel fewer vectors and a masked last vector
 * (llvm.masked.load/store; the packed panel is zero-padded), a tail K block
 * a shorter loop, each its own specialized kernel function.
 *
 * The micro-tile (pick()):  32 vector registers (AVX-512, NEON, RISC-V):
 * 12 x 2 vectors; 16 registers (SSE, AVX/AVX2): 6 x 2 vectors with FMA,
 * 4 x 3 without; scalar FP registers only (RISC-V without V): 4 x 4.
 * W: 512 bits with AVX-512 (<16 x float>, <8 x double>), 256 with
 * AVX/AVX2, 128 otherwise (SSE, NEON, RISC-V V), one lane without vectors.  KC = 256; NC
 * such that the packed B block is 256 KB (256 columns of f32, 128 of f64).
 *
 * Packing: op(B) is packed when it is transposed (a W x W in-register
 * transpose per block of W columns and W steps) or used by more than two row
 * panels (a vector copy); with fewer rows the kernel reads B's rows in
 * place.  A's rows are read in place (MR row streams; packing them measured
 * no faster).  A^T's micro-panel, kc rows of MR elements lda apart, is
 * copied to a contiguous MR x kc buffer when kc > 16 and more than one
 * column panel reads it.
 *
 * Few rows times B^T (M <= 2 MR, !ta, tb, K >= 4 W): packing B would cost
 * as much as the product, so each element of C is instead a dot product of
 * a row of A and a row of B, both contiguous (kiln_gemm_*_dot: 4 x 4 (2 x 4
 * with 16 registers) vector accumulators along k, reduced at the end).
 *
 * Scratch: the packing buffers are allocas in the entry block of the
 * kiln_gemm_* function, sized for the call's shape: at most KC * NC * size
 * (256 KB) for B plus KC * MR * size (under 25 KB) for A.  The stack, unlike
 * a static buffer, keeps entries reentrant: two instances of a module may
 * run on two threads at once today (docs/runtime.md), and entries may run
 * concurrently in future.  The cost is that much stack on the calling
 * thread (glibc's default thread stack is 8 MB; musl's 128 KB would be too
 * small). */
#include "lower/gemm.h"
#include <stdio.h>
#include <string.h>

/* ---- choosing the blocking for a target ---- */

typedef struct gcfg {
  int es;         /* element size, bytes */
  int vbits;      /* vector width, bits */
  int W;          /* lanes per vector */
  int MR, NV, NR; /* micro-tile: MR rows x NV vectors = NR columns */
  int DI, DJ;     /* dot-product tile: DI rows of A x DJ rows of B */
  int64_t KC, NC; /* cache blocks along K and N */
  int regs;       /* vector (or FP) registers */
  bool fma;
} gcfg;

/* +1 / -1 where the LLVM feature list ("+a,-b,...") turns `name` on / off
 * (the last mention wins), else 0. */
static int feature(const char *features, const char *name) {
  int r = 0;
  size_t n = strlen(name);
  for (const char *p = features; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n + 1 && (p[0] == '+' || p[0] == '-') && !strncmp(p + 1, name, n)) r = p[0] == '+' ? 1 : -1;
    p += len + (e != NULL);
  }
  return r;
}

static bool listed(const char *cpu, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(cpu, *list)) return true;
  return false;
}

/* x86 CPUs by the widest float vectors LLVM gives them (the rest: SSE). */
static const char *const x86_avx512[] = {
    "x86-64-v4", "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
    "icelake-server", "rocketlake", "tigerlake", "sapphirerapids", "emeraldrapids", "graniterapids",
    "graniterapids-d", "diamondrapids", "znver4", "znver5", "knl", "knm", NULL};
static const char *const x86_avx2_fma[] = {
    "x86-64-v3", "haswell", "core-avx2", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake",
    "arrowlake", "arrowlake-s", "lunarlake", "pantherlake", "gracemont", "sierraforest", "grandridge",
    "clearwaterforest", "znver1", "znver2", "znver3", "bdver2", "bdver3", "bdver4", NULL};
static const char *const x86_avx[] = {"sandybridge", "corei7-avx", "ivybridge", "core-avx-i", "btver2", "bdver1",
                                      NULL};

static void pick(const kc_target *t, kiln_dtype dt, gcfg *c) {
  const char *tr = t->triple ? t->triple : "", *cpu = t->cpu ? t->cpu : "", *f = t->features;
  int bits = 128, regs = 16;
  bool fma = false;
  if (!strncmp(tr, "x86_64", 6) || (tr[0] == 'i' && strstr(tr, "86-"))) {
    if (listed(cpu, x86_avx512)) bits = 512, fma = true;
    else if (listed(cpu, x86_avx2_fma)) bits = 256, fma = true;
    else if (listed(cpu, x86_avx)) bits = 256;
    if (feature(f, "avx") > 0 || feature(f, "avx2") > 0) bits = bits < 256 ? 256 : bits;
    if (feature(f, "avx512f") > 0) bits = 512, fma = true;
    if (feature(f, "avx512f") < 0 && bits == 512) bits = 256;
    if (feature(f, "evex512") < 0 && bits == 512) bits = 256; /* AVX10/256 */
    if (feature(f, "avx") < 0) bits = 128;
    if (feature(f, "fma") != 0) fma = feature(f, "fma") > 0;
    regs = bits == 512 ? 32 : 16;
  } else if (!strncmp(tr, "aarch64", 7) || !strncmp(tr, "arm64", 5)) {
    fma = feature(f, "neon") >= 0 && feature(f, "fp-armv8") >= 0;
    regs = 32;
  } else if (!strncmp(tr, "riscv", 5)) {
    fma = feature(f, dt == KILN_F32 ? "f" : "d") > 0; /* fmadd.s / fmadd.d */
    regs = 32;
    if (feature(f, "v") <= 0) bits = dt == KILN_F32 ? 32 : 64; /* no vectors: one lane */
  }
  c->es = dt == KILN_F32 ? 4 : 8;
  c->vbits = bits;
  c->W = bits / (8 * c->es);
  c->fma = fma;
  c->regs = regs;
  /* accumulators + B vectors + a broadcast (+ a product without FMA) fit
   * the registers */
  c->MR = c->W == 1 ? 4 : regs >= 32 ? 12 : fma ? 6 : 4;
  c->NV = c->W == 1 ? 4 : regs >= 32 || fma ? 2 : 3;
  c->DI = regs >= 32 ? 4 : 2;
  c->DJ = 4;
  c->NR = c->NV * c->W;
  c->KC = 256;
  c->NC = (256 * 1024) / (c->KC * c->es) / c->NR * c->NR;
  if (c->NC < c->NR) c->NC = c->NR;
}

/* ---- emission state ---- */

typedef struct gem {
  kl_ctx *L;
  LLVMBuilderRef B;
  const kl_gemm *g;
  gcfg c;
  kl_vec v;                /* c's vector shape, with its LLVM types */
  LLVMTypeRef ft, vt;
  LLVMValueRef A, Bm, C;   /* the function's arguments */
  LLVMValueRef Ap, Bp;     /* packing scratch */
  bool packB;
  int64_t lda, ldb, ldc;
  /* the blocks being emitted (emission-time state of the nested loops) */
  LLVMValueRef jc, pc, ir, accum, apanel;
  int64_t nc, kc, mr, a_rs, a_ps;
} gem;

static LLVMValueRef c64(gem *e, int64_t v) { return kl_i64(e->L, v); }
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* a * k + b (b may be NULL) */
static LLVMValueRef madd(gem *e, LLVMValueRef a, int64_t k, LLVMValueRef b) {
  LLVMValueRef p = k == 1 ? a : LLVMBuildNSWMul(e->B, a, c64(e, k), "");
  return b ? LLVMBuildNSWAdd(e->B, p, b, "") : p;
}

static LLVMValueRef addc(gem *e, LLVMValueRef a, int64_t k) {
  return k ? LLVMBuildNSWAdd(e->B, a, c64(e, k), "") : a;
}

static LLVMValueRef elem(gem *e, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(e->B, e->ft, base, &idx, 1, "");
}

static LLVMValueRef elemc(gem *e, LLVMValueRef base, int64_t idx) { return idx ? elem(e, base, c64(e, idx)) : base; }

/* ---- vectors (shared with the convolutions through gemm.h) ---- */

void kl_vec_init(kl_ctx *L, kiln_dtype dt, kl_vec *v) {
  gcfg c;
  pick(L->target, dt, &c);
  v->es = c.es, v->W = c.W, v->vbits = c.vbits, v->regs = c.regs, v->fma = c.fma;
  v->ft = dt == KILN_F32 ? L->t_f32 : L->t_f64;
  v->vt = LLVMVectorType(v->ft, (unsigned)c.W);
}

static LLVMValueRef lane_mask(kl_ctx *L, const kl_vec *v, int n) {
  LLVMValueRef m[64];
  for (int l = 0; l < v->W; l++) m[l] = LLVMConstInt(L->t_i1, l < n, 0);
  return LLVMConstVector(m, (unsigned)v->W);
}

static LLVMValueRef masked_call(kl_ctx *L, const kl_vec *v, const char *name, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef tys[2] = {v->vt, L->t_ptr};
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(L->M, id, tys, 2);
  return LLVMBuildCall2(L->B, LLVMIntrinsicGetType(L->C, id, tys, 2), fn, args, (unsigned)n, "");
}

LLVMValueRef kl_vec_load(kl_ctx *L, const kl_vec *v, LLVMValueRef p, int n) {
  if (n >= v->W) {
    LLVMValueRef r = LLVMBuildLoad2(L->B, v->vt, p, "");
    LLVMSetAlignment(r, (unsigned)v->es);
    return r;
  }
  LLVMValueRef args[4] = {p, kl_i32(L, v->es), lane_mask(L, v, n), LLVMConstNull(v->vt)};
  return masked_call(L, v, "llvm.masked.load", args, 4);
}

void kl_vec_store(kl_ctx *L, const kl_vec *v, LLVMValueRef val, LLVMValueRef p, int n) {
  if (n >= v->W) {
    LLVMSetAlignment(LLVMBuildStore(L->B, val, p), (unsigned)v->es);
    return;
  }
  LLVMValueRef args[4] = {val, p, kl_i32(L, v->es), lane_mask(L, v, n)};
  masked_call(L, v, "llvm.masked.store", args, 4);
}

LLVMValueRef kl_vec_splat(kl_ctx *L, const kl_vec *v, LLVMValueRef s) {
  LLVMValueRef r = LLVMBuildInsertElement(L->B, LLVMGetPoison(v->vt), s, kl_i32(L, 0), "");
  return LLVMBuildShuffleVector(L->B, r, LLVMGetPoison(v->vt),
                                LLVMConstNull(LLVMVectorType(L->t_i32, (unsigned)v->W)), "");
}

LLVMValueRef kl_vec_mac(kl_ctx *L, const kl_vec *v, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  if (v->fma) {
    LLVMValueRef args[3] = {a, b, acc};
    return kl_intrinsic(L, "llvm.fma", args, 3);
  }
  return LLVMBuildFAdd(L->B, acc, LLVMBuildFMul(L->B, a, b, ""), "");
}

/* The kernels' own spellings of the above, on their emission state. */
static LLVMValueRef vload(gem *e, LLVMValueRef p, int n) { return kl_vec_load(e->L, &e->v, p, n); }
static void vstore(gem *e, LLVMValueRef v, LLVMValueRef p, int n) { kl_vec_store(e->L, &e->v, v, p, n); }
static LLVMValueRef splat(gem *e, LLVMValueRef s) { return kl_vec_splat(e->L, &e->v, s); }
static LLVMValueRef mac(gem *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  return kl_vec_mac(e->L, &e->v, a, b, acc);
}

/* Builds into a new function: the builder and L->fn point at it until leave(). */
typedef struct saved {
  LLVMBuilderRef B;
  LLVMValueRef fn;
} saved;

static saved enter_fn(kl_ctx *L, LLVMValueRef fn) {
  saved s = {L->B, L->fn};
  L->B = LLVMCreateBuilderInContext(L->C);
  LLVMPositionBuilderAtEnd(L->B, LLVMAppendBasicBlockInContext(L->C, fn, "entry"));
  L->fn = fn;
  return s;
}

static void leave_fn(kl_ctx *L, saved s) {
  LLVMDisposeBuilder(L->B);
  L->B = s.B;
  L->fn = s.fn;
}

static saved enter(gem *e, LLVMValueRef fn) {
  saved s = enter_fn(e->L, fn);
  e->B = e->L->B;
  return s;
}

static void leave(gem *e, saved s) {
  leave_fn(e->L, s);
  e->B = e->L->B;
}

static void fn_attr(kl_ctx *L, LLVMValueRef fn, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(L->C, kind, 0));
}

static LLVMValueRef new_fn_bits(kl_ctx *L, int vbits, const char *name, LLVMTypeRef *params, int n) {
  LLVMValueRef fn = LLVMAddFunction(L->M, name, LLVMFunctionType(L->t_void, params, (unsigned)n, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  fn_attr(L, fn, "nounwind");
  /* explicit wide vectors stay wide (x86 CPUs that prefer 256-bit vectors
   * would otherwise split 512-bit ones) */
  char w[16];
  snprintf(w, sizeof w, "%d", vbits);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(L->C, "min-legal-vector-width", 22, w, (unsigned)strlen(w)));
  if (L->target->fn_cpu) /* a --cpu-dispatch variant: its own subtarget */
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(L->C, "target-cpu", 10, L->target->fn_cpu,
                                                      (unsigned)strlen(L->target->fn_cpu)));
  return fn;
}

/* The function `name` (with the variant's suffix appended in place) where
 * the module has it, else NULL. */
static LLVMValueRef named_fn(kl_ctx *L, char *name, size_t size) {
  const char *suffix = L->target->fn_suffix ? L->target->fn_suffix : "";
  size_t n = strlen(name);
  snprintf(name + n, size - n, "%s", suffix);
  return LLVMGetNamedFunction(L->M, name);
}

/* ---- variants (--cpu-dispatch) ---- */

void kl_variants_begin(kl_ctx *L, kl_variants *vs) {
  memset(vs, 0, sizeof *vs);
  vs->base = L->target;
  vs->i = -1;
  /* a variant's own code (a GEMM inside a convolution kernel) does not choose again */
  vs->n = L->target->fn_suffix ? 1 : 1 + L->target->n_variants;
}

bool kl_variants_next(kl_ctx *L, kl_variants *vs) {
  if (++vs->i >= vs->n) {
    L->target = vs->base;
    return false;
  }
  if (vs->n == 1) return true; /* no variants: the target as it is */
  vs->t = *vs->base;
  vs->t.n_variants = 0;
  vs->t.fn_cpu = NULL;
  vs->t.fn_suffix = "";
  vs->level[vs->i] = 0;
  if (vs->i > 0) {
    const struct kc_variant *v = &vs->base->variant[vs->i - 1];
    vs->t.cpu = v->cpu;
    vs->t.features = "";
    vs->t.fn_cpu = v->cpu;
    snprintf(vs->suffix, sizeof vs->suffix, "_l%d", v->level);
    vs->t.fn_suffix = vs->suffix;
    vs->level[vs->i] = v->level;
  }
  L->target = &vs->t;
  return true;
}

void kl_variants_set(kl_variants *vs, LLVMValueRef fn) { vs->fn[vs->i] = fn; }

LLVMValueRef kl_variants_pick(kl_ctx *L, const kl_variants *vs) {
  if (vs->n == 1) return vs->fn[0];
  LLVMValueRef g = LLVMGetNamedGlobal(L->M, "kiln_cpu_level");
  if (!g) {
    g = LLVMAddGlobal(L->M, L->t_i32, "kiln_cpu_level"); /* runtime/cpu.c */
    LLVMSetLinkage(g, LLVMExternalLinkage);
  }
  LLVMValueRef level = LLVMBuildLoad2(L->B, L->t_i32, g, "cpu_level"), fn = vs->fn[0];
  for (int i = 1; i < vs->n; i++) /* levels ascend: the last one the machine reaches wins */
    fn = LLVMBuildSelect(L->B, LLVMBuildICmp(L->B, LLVMIntSGE, level, kl_i32(L, vs->level[i]), ""), vs->fn[i], fn, "");
  return fn;
}

static LLVMValueRef new_fn(gem *e, const char *name, LLVMTypeRef *params, int n) {
  return new_fn_bits(e->L, e->c.vbits, name, params, n);
}

bool kl_kernel_variant(kl_ctx *L, kl_kernel *k) {
  if (k->vs.i == 0 && !k->vs.base) kl_variants_begin(L, &k->vs);
  return kl_variants_next(L, &k->vs);
}

bool kl_kernel_begin(kl_ctx *L, const kl_vec *v, const char *base_name, int nptr, kl_kernel *k) {
  LLVMTypeRef params[KL_KERNEL_MAX_PARAMS];
  for (int i = 0; i < nptr; i++) params[i] = L->t_ptr;
  k->nptr = nptr;
  k->ty = LLVMFunctionType(L->t_void, params, (unsigned)nptr, 0);
  char name[300];
  snprintf(name, sizeof name, "%s", base_name);
  k->fn = named_fn(L, name, sizeof name);
  k->built = !k->fn;
  if (k->built) {
    k->fn = new_fn_bits(L, v->vbits, name, params, nptr);
    fn_attr(L, k->fn, "noinline");
    saved s = enter_fn(L, k->fn);
    k->caller_B = s.B, k->caller_fn = s.fn;
  }
  return k->built;
}

void kl_kernel_end(kl_ctx *L, kl_kernel *k) {
  if (k->built) {
    LLVMBuildRetVoid(L->B);
    leave_fn(L, (saved){k->caller_B, k->caller_fn});
    k->built = false;
  }
  kl_variants_set(&k->vs, k->fn);
}

void kl_kernel_call(kl_ctx *L, kl_kernel *k, LLVMValueRef *args) {
  LLVMBuildCall2(L->B, k->ty, kl_variants_pick(L, &k->vs), args, (unsigned)k->nptr, "");
}

/* Emits `for (i = 0; i < total / block; i++) f(i * block, block)` and then
 * `f(tail offset, total % block)` for a tail: every size f sees is static. */
typedef void (*block_fn)(gem *e, LLVMValueRef off, int64_t size);

static void blocks(gem *e, int64_t total, int64_t block, const char *name, block_fn f) {
  int64_t full = total / block, tail = total % block;
  if (full == 1) f(e, c64(e, 0), block);
  else if (full > 1) {
    kl_loop lp = kl_for(e->L, c64(e, full), name);
    f(e, madd(e, lp.index, block, NULL), block);
    kl_for_end(e->L, &lp);
  }
  if (tail) f(e, c64(e, full * block), tail);
}

/* dst[0..n) = src[0..n): vectors, then a masked tail. */
static void copy_run(gem *e, LLVMValueRef dst, LLVMValueRef src, int64_t n) {
  int W = e->c.W;
  int64_t nvec = n / W;
  if (nvec == 1) vstore(e, vload(e, src, W), dst, W);
  else if (nvec > 1) {
    kl_loop lp = kl_for(e->L, c64(e, nvec), "gemm_copy");
    LLVMValueRef o = madd(e, lp.index, W, NULL);
    vstore(e, vload(e, elem(e, src, o), W), elem(e, dst, o), W);
    kl_for_end(e->L, &lp);
  }
  if (n % W) vstore(e, vload(e, elemc(e, src, nvec * W), (int)(n % W)), elemc(e, dst, nvec * W), (int)(n % W));
}

/* ---- loops that carry accumulators ---- */

enum {
  UNROLL = 4,       /* k steps per trip of the micro-kernel's loop */
  /* A B packed at compile time is read straight from memory by the first
   * row panel: the kernel prefetches it this many k steps ahead (measured
   * on a 64 x 4096 x 4096 product: 8 steps 7% faster, 32 13%, 64 no better) */
  PREFETCH_B_STEPS = 32,
  PACK_A_MIN_K = 16 /* A^T micro-panels with more k steps than this are copied */
};

/* One step of a loop body at k index p, updating acc[0..n). */
typedef void (*step_fn)(gem *e, const void *key, LLVMValueRef p, LLVMValueRef *acc);

/* for (p = 0; p < steps * stride; p += stride) f(p): a do-while of `unroll`
 * steps per trip with the accumulators in phis, then the remainder steps
 * straight-line.  acc[] holds the initial values and receives the results. */
static void acc_loop(gem *e, int64_t steps, int unroll, int64_t stride, step_fn f, const void *key,
                     LLVMValueRef *acc, int n) {
  kl_ctx *L = e->L;
  int64_t main_steps = steps / unroll * unroll;
  if (main_steps > 0) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->B);
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(L->C, L->fn, "k");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(L->C, L->fn, "k_done");
    LLVMBuildBr(e->B, loop);
    LLVMPositionBuilderAtEnd(e->B, loop);
    LLVMValueRef p = LLVMBuildPhi(e->B, L->t_i64, "p"), zero = c64(e, 0);
    LLVMAddIncoming(p, &zero, &pre, 1);
    LLVMValueRef phis[64];
    for (int i = 0; i < n; i++) {
      phis[i] = LLVMBuildPhi(e->B, LLVMTypeOf(acc[i]), "acc");
      LLVMAddIncoming(phis[i], &acc[i], &pre, 1);
      acc[i] = phis[i];
    }
    for (int u = 0; u < unroll; u++) f(e, key, addc(e, p, u * stride), acc);
    LLVMValueRef next = LLVMBuildNSWAdd(e->B, p, c64(e, unroll * stride), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->B);
    LLVMAddIncoming(p, &next, &latch, 1);
    for (int i = 0; i < n; i++) LLVMAddIncoming(phis[i], &acc[i], &latch, 1);
    LLVMBuildCondBr(e->B, LLVMBuildICmp(e->B, LLVMIntSLT, next, c64(e, main_steps * stride), ""), loop, after);
    LLVMPositionBuilderAtEnd(e->B, after);
  }
  for (int64_t q = main_steps; q < steps; q++) f(e, key, c64(e, q * stride), acc);
}

/* Branches on `accum` into two copies of `emit(add)`: C += tile / C = tile. */
typedef void (*store_fn)(gem *e, const void *key, LLVMValueRef C, LLVMValueRef *acc, bool add);

static void store_tile(gem *e, LLVMValueRef accum, store_fn emit, const void *key, LLVMValueRef C, LLVMValueRef *acc) {
  kl_ctx *L = e->L;
  LLVMBasicBlockRef add = LLVMAppendBasicBlockInContext(L->C, L->fn, "c_add");
  LLVMBasicBlockRef set = LLVMAppendBasicBlockInContext(L->C, L->fn, "c_set");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(L->C, L->fn, "c_done");
  LLVMBuildCondBr(e->B, accum, add, set);
  for (int pass = 0; pass < 2; pass++) {
    LLVMPositionBuilderAtEnd(e->B, pass ? set : add);
    emit(e, key, C, acc, !pass);
    LLVMBuildBr(e->B, done);
  }
  LLVMPositionBuilderAtEnd(e->B, done);
}

/* A prefetch of the line at p (rw 1: for a write), kept in all cache levels. */
static void prefetch(gem *e, LLVMValueRef p, int rw) {
  unsigned id = LLVMLookupIntrinsicID("llvm.prefetch", 13);
  LLVMTypeRef pt = e->L->t_ptr;
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->L->M, id, &pt, 1);
  LLVMValueRef args[4] = {p, kl_i32(e->L, rw), kl_i32(e->L, 3), kl_i32(e->L, 1)};
  LLVMBuildCall2(e->B, LLVMIntrinsicGetType(e->L->C, id, &pt, 1), fn, args, 4, "");
}

/* Asks for the cache lines of an rows x cols block of C at the start of a
 * kernel, so that its stores at the end find them in L1 (this matters when
 * k is short: then storing C is most of the work). */
static void prefetch_rows(gem *e, LLVMValueRef C, int rows, int64_t cols, int64_t ldc) {
  unsigned id = LLVMLookupIntrinsicID("llvm.prefetch", 13);
  LLVMTypeRef pt = e->L->t_ptr;
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->L->M, id, &pt, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(e->L->C, id, &pt, 1);
  int64_t bytes = cols * e->c.es;
  for (int i = 0; i < rows; i++)
    for (int64_t b = 0; b < bytes; b += 64) {
      int64_t at = b + 64 < bytes ? b : bytes - 1; /* the row's last line: its last byte */
      LLVMValueRef args[4] = {elemc(e, C, i * ldc + at / e->c.es), kl_i32(e->L, 1), kl_i32(e->L, 3),
                              kl_i32(e->L, 1)}; /* write, keep, data */
      LLVMBuildCall2(e->B, fty, fn, args, 4, "");
    }
}

/* ---- the micro-kernel: an outer product per k step ---- */

typedef struct kkey {
  int mr, nv, nrv;         /* rows, vectors, valid columns (<= nv * W) */
  int64_t kc;              /* steps over k */
  int64_t a_rs, a_ps;      /* A element (i, p) at A[i * a_rs + p * a_ps] */
  int64_t b_ps;            /* B vector v of step p at B[p * b_ps + v * W] */
  bool b_mask;             /* B read in place: mask the partial last vector */
  int64_t b_pf;            /* prefetch B this many elements ahead (0: none) */
  int64_t ldc;
  LLVMValueRef A, B;       /* the kernel's arguments, while it is emitted */
} kkey;

static void outer_step(gem *e, const void *key, LLVMValueRef p, LLVMValueRef *acc) {
  const kkey *k = key;
  int W = e->c.W;
  LLVMValueRef b[8];
  LLVMValueRef brow = elem(e, k->B, madd(e, p, k->b_ps, NULL));
  for (int v = 0; v < k->nv; v++)
    b[v] = vload(e, elemc(e, brow, (int64_t)v * W), k->b_mask && v == k->nv - 1 ? k->nrv - v * W : W);
  if (k->b_pf)
    for (int v = 0; v < k->nv; v += 64 / (W * e->c.es) > 0 ? 64 / (W * e->c.es) : 1) prefetch(e, elemc(e, brow, k->b_pf + (int64_t)v * W), 0);
  LLVMValueRef acol = elem(e, k->A, madd(e, p, k->a_ps, NULL));
  for (int i = 0; i < k->mr; i++) {
    LLVMValueRef a = LLVMBuildLoad2(e->B, e->ft, elemc(e, acol, i * k->a_rs), "");
    LLVMSetAlignment(a, (unsigned)e->c.es);
    LLVMValueRef s = splat(e, a);
    for (int v = 0; v < k->nv; v++) acc[i * k->nv + v] = mac(e, s, b[v], acc[i * k->nv + v]);
  }
}

static void outer_store(gem *e, const void *key, LLVMValueRef C, LLVMValueRef *acc, bool add) {
  const kkey *k = key;
  int W = e->c.W;
  for (int i = 0; i < k->mr; i++)
    for (int v = 0; v < k->nv; v++) {
      int lanes = v == k->nv - 1 ? k->nrv - v * W : W;
      LLVMValueRef cp = elemc(e, C, i * k->ldc + (int64_t)v * W), val = acc[i * k->nv + v];
      if (add) val = LLVMBuildFAdd(e->B, vload(e, cp, lanes), val, "");
      vstore(e, val, cp, lanes);
    }
}

/* void kernel(ptr A, ptr B, ptr C, i1 accumulate): the mr x nrv tile of C
 * (+)= sum over kc steps of A column (x) B row. */
static LLVMValueRef kernel(gem *e, const kkey *key) {
  kl_ctx *L = e->L;
  kkey k = *key;
  char name[256];
  snprintf(name, sizeof name, "kiln_gemm_%s%s_k%dx%dx%d_n%d_kc%lld_a%lld_%lld_b%lld%s_c%lld_pf%lld", e->c.es == 4 ? "s" : "d",
           e->c.fma ? "fma" : "", k.mr, k.nv, e->c.W, k.nrv, (long long)k.kc, (long long)k.a_rs, (long long)k.a_ps,
           (long long)k.b_ps, k.b_mask ? "m" : "", (long long)k.ldc, (long long)k.b_pf);
  LLVMValueRef fn = named_fn(L, name, sizeof name);
  if (fn) return fn;
  LLVMTypeRef params[4] = {L->t_ptr, L->t_ptr, L->t_ptr, L->t_i1};
  fn = new_fn(e, name, params, 4);
  saved sv = enter(e, fn);
  k.A = LLVMGetParam(fn, 0), k.B = LLVMGetParam(fn, 1);
  LLVMValueRef C = LLVMGetParam(fn, 2);
  prefetch_rows(e, C, k.mr, k.nrv, k.ldc);
  LLVMValueRef acc[64];
  for (int i = 0; i < k.mr * k.nv; i++) acc[i] = LLVMConstNull(e->vt);
  acc_loop(e, k.kc, UNROLL, 1, outer_step, &k, acc, k.mr * k.nv);
  store_tile(e, LLVMGetParam(fn, 3), outer_store, &k, C, acc);
  LLVMBuildRetVoid(e->B);
  leave(e, sv);
  return fn;
}

/* ---- few rows of A times B^T: dot products along k ---- */

/* With op(B) = B^T and few rows, packing B (a transpose) would cost as much
 * as the product: instead each C element is a dot product of a row of A and
 * a row of B, both contiguous, over vectors along k, reduced at the end. */
typedef struct dkey {
  int mi, nj;              /* rows of A, rows of B (columns of C) */
  int64_t K, lda, ldb, ldc;
  LLVMValueRef A, B;
} dkey;

static void dot_step(gem *e, const void *key, LLVMValueRef p, LLVMValueRef *acc) {
  const dkey *k = key;
  int64_t rem = k->K % e->c.W;
  /* a constant p past the whole vectors is the masked tail */
  int lanes = LLVMIsConstant(p) && LLVMConstIntGetSExtValue(p) == k->K - rem && rem ? (int)rem : e->c.W;
  LLVMValueRef a[8], b[8];
  for (int i = 0; i < k->mi; i++) a[i] = vload(e, elem(e, k->A, madd(e, c64(e, i), k->lda, p)), lanes);
  for (int j = 0; j < k->nj; j++) b[j] = vload(e, elem(e, k->B, madd(e, c64(e, j), k->ldb, p)), lanes);
  for (int i = 0; i < k->mi; i++)
    for (int j = 0; j < k->nj; j++) acc[i * k->nj + j] = mac(e, a[i], b[j], acc[i * k->nj + j]);
}

static LLVMValueRef hsum(gem *e, LLVMValueRef v) {
  unsigned id = LLVMLookupIntrinsicID("llvm.vector.reduce.fadd", 23);
  LLVMTypeRef t = e->vt;
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->L->M, id, &t, 1);
  LLVMValueRef args[2] = {LLVMConstReal(e->ft, -0.0), v};
  LLVMValueRef r = LLVMBuildCall2(e->B, LLVMIntrinsicGetType(e->L->C, id, &t, 1), fn, args, 2, "");
  LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc); /* a tree, not lane by lane */
  return r;
}

static void dot_store(gem *e, const void *key, LLVMValueRef C, LLVMValueRef *acc, bool add) {
  const dkey *k = key;
  for (int i = 0; i < k->mi; i++)
    for (int j = 0; j < k->nj; j++) {
      LLVMValueRef cp = elemc(e, C, i * k->ldc + j), s = hsum(e, acc[i * k->nj + j]);
      if (add) s = LLVMBuildFAdd(e->B, LLVMBuildLoad2(e->B, e->ft, cp, ""), s, "");
      LLVMBuildStore(e->B, s, cp);
    }
}

/* void dot(ptr A, ptr B, ptr C, i1 accumulate): C[i, j] (+)= A row i . B row j */
static LLVMValueRef dot_kernel(gem *e, const dkey *key) {
  kl_ctx *L = e->L;
  dkey k = *key;
  char name[256];
  snprintf(name, sizeof name, "kiln_gemm_%s%s_dot%dx%dx%d_k%lld_a%lld_b%lld_c%lld", e->c.es == 4 ? "s" : "d",
           e->c.fma ? "fma" : "", k.mi, k.nj, e->c.W, (long long)k.K, (long long)k.lda, (long long)k.ldb,
           (long long)k.ldc);
  LLVMValueRef fn = named_fn(L, name, sizeof name);
  if (fn) return fn;
  LLVMTypeRef params[4] = {L->t_ptr, L->t_ptr, L->t_ptr, L->t_i1};
  fn = new_fn(e, name, params, 4);
  saved sv = enter(e, fn);
  k.A = LLVMGetParam(fn, 0), k.B = LLVMGetParam(fn, 1);
  LLVMValueRef acc[64];
  for (int i = 0; i < k.mi * k.nj; i++) acc[i] = LLVMConstNull(e->vt);
  acc_loop(e, k.K / e->c.W, 2, e->c.W, dot_step, &k, acc, k.mi * k.nj);
  if (k.K % e->c.W) dot_step(e, &k, c64(e, k.K - k.K % e->c.W), acc);
  store_tile(e, LLVMGetParam(fn, 3), dot_store, &k, LLVMGetParam(fn, 2), acc);
  LLVMBuildRetVoid(e->B);
  leave(e, sv);
  return fn;
}

/* ---- packing ---- */

/* op(B)[pc + p, jc + j] as an element pointer (tb: B is stored N x K). */
static LLVMValueRef b_at(gem *e, LLVMValueRef p, LLVMValueRef j) {
  LLVMValueRef row = e->g->tb ? j : p, col = e->g->tb ? p : j;
  return elem(e, e->Bm, madd(e, row, e->ldb, col));
}

/* Transposes W vectors in place (rows <-> lanes): log2(W) rounds of
 * two-input shuffles that swap s x s blocks. */
static void transpose(gem *e, LLVMValueRef *v) {
  int W = e->c.W;
  LLVMValueRef ma[64], mb[64];
  for (int s = 1; s < W; s *= 2) {
    for (int l = 0; l < W; l++) {
      ma[l] = kl_i32(e->L, (l & s) ? W + l - s : l);
      mb[l] = kl_i32(e->L, (l & s) ? W + l : l + s);
    }
    LLVMValueRef mask_a = LLVMConstVector(ma, (unsigned)W), mask_b = LLVMConstVector(mb, (unsigned)W);
    for (int r = 0; r < W; r++) {
      if (r & s) continue;
      LLVMValueRef x = v[r], y = v[r + s];
      v[r] = LLVMBuildShuffleVector(e->B, x, y, mask_a, "");
      v[r + s] = LLVMBuildShuffleVector(e->B, x, y, mask_b, "");
    }
  }
}

/* The column panel at `off` (nr columns, zero-padded to whole vectors) of
 * the B block: Bp[off * kc + p * nrs + j] = op(B)[pc + p, jc + off + j]. */
static void pack_b_panel(gem *e, LLVMValueRef off, int64_t nr) {
  int W = e->c.W;
  int nv = (int)((nr + W - 1) / W);
  int64_t nrs = (int64_t)nv * W, kc = e->kc;
  LLVMValueRef dst = elem(e, e->Bp, madd(e, off, kc, NULL));
  LLVMValueRef j0 = LLVMBuildNSWAdd(e->B, e->jc, off, "");
  if (!e->g->tb) { /* rows of op(B) are rows of B: vector copies */
    kl_loop lp = kl_for(e->L, c64(e, kc), "gemm_packb");
    LLVMValueRef src = b_at(e, LLVMBuildNSWAdd(e->B, e->pc, lp.index, ""), j0);
    LLVMValueRef d = elem(e, dst, madd(e, lp.index, nrs, NULL));
    for (int v = 0; v < nv; v++) {
      int lanes = nr - (int64_t)v * W < W ? (int)(nr - (int64_t)v * W) : W;
      vstore(e, vload(e, elemc(e, src, (int64_t)v * W), lanes), elemc(e, d, (int64_t)v * W), W);
    }
    kl_for_end(e->L, &lp);
    return;
  }
  /* op(B) = B^T: W x W blocks of B (W columns j, W steps p) transposed */
  int64_t pfull = kc / W, prem = kc % W;
  for (int pass = 0; pass < 2; pass++) {
    int plen = pass ? (int)prem : W;
    if (!plen || (!pass && !pfull)) continue;
    kl_loop lp = {0};
    LLVMValueRef p0 = c64(e, pfull * W);
    if (!pass) {
      if (pfull > 1) lp = kl_for(e->L, c64(e, pfull), "gemm_packbt");
      p0 = pfull > 1 ? madd(e, lp.index, W, NULL) : c64(e, 0);
    }
    LLVMValueRef pp = LLVMBuildNSWAdd(e->B, e->pc, p0, "");
    for (int v = 0; v < nv; v++) {
      LLVMValueRef rows[64];
      for (int r = 0; r < W; r++)
        rows[r] = (int64_t)v * W + r < nr ? vload(e, b_at(e, pp, addc(e, j0, (int64_t)v * W + r)), plen)
                                          : LLVMConstNull(e->vt);
      transpose(e, rows);
      for (int q = 0; q < plen; q++)
        vstore(e, rows[q], elem(e, dst, madd(e, addc(e, p0, q), nrs, c64(e, (int64_t)v * W))), W);
    }
    if (!pass && pfull > 1) kl_for_end(e->L, &lp);
  }
}

/* ---- the loop nest ---- */

static void call4(gem *e, LLVMValueRef fn, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c, LLVMValueRef accum) {
  LLVMValueRef args[4] = {a, b, c, accum};
  LLVMTypeRef params[4] = {e->L->t_ptr, e->L->t_ptr, e->L->t_ptr, e->L->t_i1};
  LLVMBuildCall2(e->B, LLVMFunctionType(e->L->t_void, params, 4, 0), fn, args, 4, "");
}

static void jr_body(gem *e, LLVMValueRef off, int64_t nr) {
  int W = e->c.W;
  kkey k = {.mr = (int)e->mr, .nv = (int)((nr + W - 1) / W), .nrv = (int)nr, .kc = e->kc, .a_rs = e->a_rs,
            .a_ps = e->a_ps, .ldc = e->ldc};
  LLVMValueRef col = LLVMBuildNSWAdd(e->B, e->jc, off, ""), bp;
  if (e->packB) {
    k.b_ps = (int64_t)k.nv * W;
    if (e->g->b_packed) k.b_pf = PREFETCH_B_STEPS * k.b_ps;
    bp = elem(e, e->Bp, madd(e, off, e->kc, NULL));
  } else {
    k.b_ps = e->ldb;
    k.b_mask = nr % W != 0;
    bp = b_at(e, e->pc, col);
  }
  call4(e, kernel(e, &k), e->apanel, bp, elem(e, e->C, madd(e, e->ir, e->ldc, col)), e->accum);
}

static void ir_body(gem *e, LLVMValueRef off, int64_t mr) {
  e->ir = off;
  e->mr = mr;
  const kl_gemm *g = e->g;
  /* op(A)[ir, pc]: A^T's micro-panel is kc rows of A, mr elements each, lda
   * apart; it is copied together when kc is long enough for that to matter
   * (cache sets and TLB entries) and more than one column panel reads it;
   * A's rows are read in place */
  LLVMValueRef a0 = g->ta ? elem(e, e->A, madd(e, e->pc, e->lda, off)) : elem(e, e->A, madd(e, off, e->lda, e->pc));
  if (g->ta && e->kc > PACK_A_MIN_K && e->nc > e->c.NR) {
    kl_loop lp = kl_for(e->L, c64(e, e->kc), "gemm_packa");
    copy_run(e, elem(e, e->Ap, madd(e, lp.index, e->c.MR, NULL)), elem(e, a0, madd(e, lp.index, e->lda, NULL)), mr);
    kl_for_end(e->L, &lp);
    e->apanel = e->Ap, e->a_rs = 1, e->a_ps = e->c.MR;
  } else {
    e->apanel = a0;
    e->a_rs = g->ta ? 1 : e->lda;
    e->a_ps = g->ta ? e->lda : 1;
  }
  blocks(e, e->nc, e->c.NR, "gemm_jr", jr_body);
}

static void pc_body(gem *e, LLVMValueRef off, int64_t kc) {
  e->pc = off;
  e->kc = kc;
  e->accum = e->g->accumulate ? LLVMConstInt(e->L->t_i1, 1, 0) : LLVMBuildICmp(e->B, LLVMIntNE, off, c64(e, 0), "");
  if (e->g->b_packed) /* the block packed at compile time (pack_b's layout) */
    e->Bp = elem(e, e->Bm, madd(e, e->jc, e->g->K, madd(e, off, round_up(e->nc, e->c.W), NULL)));
  else if (e->packB) blocks(e, e->nc, e->c.NR, "gemm_packb_jr", pack_b_panel);
  blocks(e, e->g->M, e->c.MR, "gemm_ir", ir_body);
}

static void jc_body(gem *e, LLVMValueRef off, int64_t nc) {
  e->jc = off;
  e->nc = nc;
  blocks(e, e->g->K, e->c.KC, "gemm_pc", pc_body);
}

/* the dot-product form: rows of C in blocks of DI, columns in blocks of DJ */
static void dot_i(gem *e, LLVMValueRef off, int64_t mi) {
  dkey k = {.mi = (int)mi, .nj = (int)e->nc, .K = e->g->K, .lda = e->lda, .ldb = e->ldb, .ldc = e->ldc};
  LLVMValueRef accum = LLVMConstInt(e->L->t_i1, e->g->accumulate, 0);
  call4(e, dot_kernel(e, &k), elem(e, e->A, madd(e, off, e->lda, NULL)), elem(e, e->Bm, madd(e, e->jc, e->ldb, NULL)),
        elem(e, e->C, madd(e, off, e->ldc, e->jc)), accum);
}

static void dot_j(gem *e, LLVMValueRef off, int64_t nj) {
  e->jc = off;
  e->nc = nj;
  blocks(e, e->g->M, e->c.DI, "gemm_dot_i", dot_i);
}

static LLVMValueRef scratch(gem *e, int64_t n, const char *name) {
  LLVMValueRef a = LLVMBuildAlloca(e->B, LLVMArrayType2(e->ft, (uint64_t)n), name);
  LLVMSetAlignment(a, 64);
  return a;
}

bool kl_gemm_supports(kiln_dtype dt) { return dt == KILN_F32 || dt == KILN_F64; }

/* Few rows times B^T: the dot-product form, nothing packed. */
static bool dot_form(const kl_gemm *g, const gcfg *c) {
  return g->tb && !g->ta && g->M <= 2 * c->MR && g->K >= 4 * c->W;
}

/* Whether the blocked form packs op(B) at run time: when transposed, or
 * read by more than two row panels. */
static bool packs_b(const kl_gemm *g, const gcfg *c) { return !dot_form(g, c) && (g->tb || g->M > 2 * c->MR); }

/* The layout pc_body and jr_body read: for each block of NC columns (jc)
 * and KC steps (pc), at jc * K + pc * round_up(nc, W), its panels of NR
 * columns in order, each kc rows of round_up(nr, W) elements, zero-padded:
 * what pack_b_panel builds at run time, for the whole of op(B) at once. */
static void pack_b(const kl_gemm *g, const gcfg *cfg, const void *B, void *out) {
  gcfg c = *cfg;
  int64_t ldb = g->ldb ? g->ldb : g->tb ? g->K : g->N, es = c.es;
  char *dst = out;
  const char *src = B;
  for (int64_t jc = 0; jc < g->N; jc += c.NC) {
    int64_t nc = min64(c.NC, g->N - jc);
    for (int64_t pc = 0; pc < g->K; pc += c.KC) {
      int64_t kc = min64(c.KC, g->K - pc);
      for (int64_t off = 0; off < nc; off += c.NR) {
        int64_t nr = min64(c.NR, nc - off), nrs = round_up(nr, c.W);
        for (int64_t p = 0; p < kc; p++)
          for (int64_t j = 0; j < nrs; j++, dst += es) {
            int64_t row = pc + p, col = jc + off + j;
            if (j >= nr) memset(dst, 0, (size_t)es);
            else memcpy(dst, src + es * (g->tb ? col * ldb + row : row * ldb + col), (size_t)es);
          }
      }
    }
  }
}


/* A constant B (inference weights) that the generated GEMM would pack on
 * every run is packed once, at compile time, into the panels its kernels
 * read (MLP 1024-4096-4096-1024 at batch 64: 15-20% faster).  One packed
 * copy per call site; the original literal is still emitted when something
 * else reads it. */
LLVMValueRef kl_gemm_constant_b(kl_ctx *L, kl_gemm *g, kg_ref b, LLVMValueRef B, const char *name) {
  gcfg c;
  pick(L->target, g->dt, &c);
  const void *lit = kl_ref_literal(L, b);
  /* under --cpu-dispatch each variant has its own panel layout: packed at run time */
  bool variants = L->target->n_variants || L->target->fn_suffix;
  if (!lit || L->gpu || variants || !kl_gemm_supports(g->dt) || !packs_b(g, &c)) return B;
  g->b_packed = true;
  int64_t bytes = g->K * round_up(g->N, c.W) * c.es;
  void *packed = kc_alloc(L->m->arena, (size_t)bytes);
  pack_b(g, &c, lit, packed);
  char sym[300];
  snprintf(sym, sizeof sym, "%s.packed_b", name);
  return kl_const_data(L, packed, bytes, sym);
}

/* The function computing g's product for L's target (one per shape and variant). */
static LLVMValueRef gemm_fn(kl_ctx *L, const kl_gemm *g) {
  gem e = {.L = L, .g = g};
  pick(L->target, g->dt, &e.c);
  kl_vec_init(L, g->dt, &e.v);
  e.ft = e.v.ft;
  e.vt = e.v.vt;
  e.lda = g->lda ? g->lda : g->ta ? g->M : g->K;
  e.ldb = g->ldb ? g->ldb : g->tb ? g->K : g->N;
  e.ldc = g->ldc ? g->ldc : g->N;
  char name[200];
  snprintf(name, sizeof name, "kiln_gemm_%s_%lldx%lldx%lld_%c%c_l%lld_%lld_%lld%s%s", g->dt == KILN_F32 ? "f32" : "f64",
           (long long)g->M, (long long)g->N, (long long)g->K, g->ta ? 't' : 'n', g->b_packed ? 'p' : g->tb ? 't' : 'n',
           (long long)e.lda, (long long)e.ldb, (long long)e.ldc, g->accumulate ? "_acc" : "",
           g->b_packed ? "_packed" : "");
  LLVMTypeRef params[3] = {L->t_ptr, L->t_ptr, L->t_ptr};
  LLVMValueRef fn = named_fn(L, name, sizeof name);
  if (!fn) {
    fn = new_fn(&e, name, params, 3);
    fn_attr(L, fn, "noinline");
    LLVMAddAttributeAtIndex(fn, 3, LLVMCreateEnumAttribute(L->C, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    saved sv = enter(&e, fn);
    e.A = LLVMGetParam(fn, 0), e.Bm = LLVMGetParam(fn, 1), e.C = LLVMGetParam(fn, 2);
    if (!g->b_packed && dot_form(g, &e.c)) {
      /* few rows times B^T: dot products, nothing packed */
      blocks(&e, g->N, e.c.DJ, "gemm_dot_j", dot_j);
    } else {
      /* B is packed when transposed or used by more than two row panels */
      int64_t kcmax = min64(e.c.KC, g->K), ncmax = min64(e.c.NC, g->N);
      e.packB = g->b_packed || packs_b(g, &e.c);
      if (e.packB && !g->b_packed) e.Bp = scratch(&e, kcmax * round_up(ncmax, e.c.NR), "gemm_bp");
      if (g->ta && g->K > PACK_A_MIN_K && g->N > e.c.NR) e.Ap = scratch(&e, kcmax * e.c.MR, "gemm_ap");
      blocks(&e, g->N, e.c.NC, "gemm_jc", jc_body);
    }
    LLVMBuildRetVoid(e.B);
    leave(&e, sv);
  }
  return fn;
}

bool kl_emit_gemm(kl_ctx *L, const kl_gemm *g, LLVMValueRef A, LLVMValueRef B, LLVMValueRef C) {
  if (!kl_gemm_supports(g->dt) || g->M <= 0 || g->N <= 0 || g->K <= 0)
    return kc_error(L->diag, (kc_loc){0}, "internal: generated GEMM for an unsupported dtype or an empty shape");
  if (g->b_packed && (L->target->n_variants || L->target->fn_suffix))
    return kc_error(L->diag, (kc_loc){0}, "internal: a B packed at compile time under --cpu-dispatch");
  kl_variants vs;
  kl_variants_begin(L, &vs);
  while (kl_variants_next(L, &vs)) kl_variants_set(&vs, gemm_fn(L, g));
  LLVMValueRef args[3] = {A, B, C};
  LLVMTypeRef params[3] = {L->t_ptr, L->t_ptr, L->t_ptr};
  LLVMBuildCall2(L->B, LLVMFunctionType(L->t_void, params, 3, 0), kl_variants_pick(L, &vs), args, 3, "");
  return true;
}
