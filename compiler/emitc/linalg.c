/* linalg.c — matmul in C, beside ops/linalg.c: f32/f64 through
 * cblas_sgemm/dgemm once per batch element, or with `--blas generated`
 * through kiln's GEMM written in C (one static function per shape: op(B)
 * packed in cache blocks, four rows of C per pass, an inner loop over
 * contiguous columns that C compilers vectorize); integer dtypes, which
 * BLAS lacks, get an i-k-j triple loop.  Batch dimensions broadcast as in
 * NumPy (a table of operand offsets where they do). */
#include "emitc/ke.h"
#include <string.h>

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

static void declare_cblas(ke_ctx *E, kiln_dtype dt) {
  bool f32 = dt == KILN_F32;
  const char *T = f32 ? "float" : "double";
  ke_declare(E, f32 ? "cblas_sgemm" : "cblas_dgemm",
             ke_str(E,
                    "/* CBLAS (OpenBLAS): order, transA, transB as ints (101 row-major, 111 no, 112 transpose) */\n"
                    "void cblas_%cgemm(int order, int ta, int tb, int M, int N, int K, %s alpha, const %s *A, int lda, "
                    "const %s *B, int ldb, %s beta, %s *C, int ldc)",
                    f32 ? 's' : 'd', T, T, T, T, T));
}

void ke_gemm_call(ke_ctx *E, kiln_dtype dt, bool ta, bool tb, const char *M, const char *N, const char *K,
                  const char *A, int64_t lda, const char *B, int64_t ldb, const char *C, int64_t ldc,
                  bool accumulate) {
  const char *one = ke_const_f(E, dt, 1);
  if (!E->generated_blas) {
    declare_cblas(E, dt);
    ke_line(E, "cblas_%cgemm(%d, %d, %d, (int)(%s), (int)(%s), (int)(%s), %s, %s, %lld, %s, %lld, %s, %s, %lld);",
            dt == KILN_F32 ? 's' : 'd', CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS,
            tb ? CBLAS_TRANS : CBLAS_NO_TRANS, M, N, K, one, A, (long long)lda, B, (long long)ldb,
            accumulate ? one : ke_const_f(E, dt, 0), C, (long long)ldc);
    return;
  }
  /* no cblas: plain i-k-j loops accumulating into C (the row counts of
   * conv2d's products vary per tap, which a per-shape GEMM does not cover) */
  if (!accumulate) ke_line(E, "for (int64_t i = 0; i < (%s); i++) for (int64_t j = 0; j < (%s); j++) (%s)[i * %lld + j] = 0;", M, N, C, (long long)ldc);
  ke_open(E, "for (int64_t i = 0; i < (%s); i++)", M);
  ke_open(E, "for (int64_t k = 0; k < (%s); k++)", K);
  ke_line(E, "%s a = (%s)[%s];", ke_ctype(dt), A, ta ? ke_str(E, "k * %lld + i", (long long)lda) : ke_str(E, "i * %lld + k", (long long)lda));
  ke_line(E, "for (int64_t j = 0; j < (%s); j++) (%s)[i * %lld + j] += a * (%s)[%s];", N, C, (long long)ldc, B,
          tb ? ke_str(E, "j * %lld + k", (long long)ldb) : ke_str(E, "k * %lld + j", (long long)ldb));
  ke_close(E);
  ke_close(E);
}

/* kiln's GEMM in C for one static shape: C = op(A) op(B), op(A) M x K,
 * op(B) K x N, all row-major and dense.  Returns the function's name. */
static const char *gemm_function(ke_ctx *E, kiln_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  const char *T = ke_ctype(dt);
  const char *name = ke_str(E, "kiln_gemm_%s_%lldx%lldx%lld_%c%c", kg_dtype_name(dt), (long long)M, (long long)N,
                            (long long)K, ta ? 't' : 'n', tb ? 't' : 'n');
  int64_t lda = ta ? M : K, ldb = tb ? K : N;
  int64_t KC = 256, NC = dt == KILN_F32 ? 256 : 128;
  int64_t kc = K < KC ? K : KC, nc = N < NC ? N : NC;
  const char *a_at = ta ? "A[(pc + k) * %lld + i + %d]" : "A[(i + %d) * %lld + pc + k]";
  char a_rows[4][96];
  for (int r = 0; r < 4; r++) {
    if (ta) snprintf(a_rows[r], sizeof a_rows[r], "A[(pc + k) * %lld + i + %d]", (long long)lda, r);
    else snprintf(a_rows[r], sizeof a_rows[r], "A[(i + %d) * %lld + pc + k]", r, (long long)lda);
  }
  (void)a_at;
  ke_helper(E, name,
            "/* kiln's GEMM in C (--blas generated): C = op(A) op(B), op(A) %lld x %lld%s, op(B) %lld x %lld%s.\n"
            " * op(B) is packed in blocks of %lld x %lld (Bp); each pass updates four rows of C over\n"
            " * contiguous columns, a loop C compilers vectorize. */\n"
            "static void %s(const %s *A, const %s *B, %s *restrict C) {\n"
            "  %s Bp[%lld];\n"
            "  int64_t i, j, k, jc, pc;\n"
            "  for (i = 0; i < %lld; i++) C[i] = 0;\n"
            "  for (jc = 0; jc < %lld; jc += %lld) {\n"
            "    int64_t nc = %lld - jc < %lld ? %lld - jc : %lld;\n"
            "    for (pc = 0; pc < %lld; pc += %lld) {\n"
            "      int64_t kc = %lld - pc < %lld ? %lld - pc : %lld;\n"
            "      for (k = 0; k < kc; k++)\n"
            "        for (j = 0; j < nc; j++) Bp[k * nc + j] = B[%s];\n"
            "      for (i = 0; i + 4 <= %lld; i += 4) {\n"
            "        %s *c0 = C + i * %lld + jc, *c1 = c0 + %lld, *c2 = c1 + %lld, *c3 = c2 + %lld;\n"
            "        for (k = 0; k < kc; k++) {\n"
            "          const %s a0 = %s, a1 = %s, a2 = %s, a3 = %s;\n"
            "          const %s *b = Bp + k * nc;\n"
            "          for (j = 0; j < nc; j++) {\n"
            "            c0[j] += a0 * b[j];\n"
            "            c1[j] += a1 * b[j];\n"
            "            c2[j] += a2 * b[j];\n"
            "            c3[j] += a3 * b[j];\n"
            "          }\n"
            "        }\n"
            "      }\n"
            "      for (; i < %lld; i++) {\n"
            "        %s *c0 = C + i * %lld + jc;\n"
            "        for (k = 0; k < kc; k++) {\n"
            "          const %s a0 = %s;\n"
            "          const %s *b = Bp + k * nc;\n"
            "          for (j = 0; j < nc; j++) c0[j] += a0 * b[j];\n"
            "        }\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            (long long)M, (long long)K, ta ? " (A transposed)" : "", (long long)K, (long long)N, tb ? " (B transposed)" : "",
            (long long)kc, (long long)nc, name, T, T, T, T, (long long)(kc * nc), (long long)(M * N), (long long)N,
            (long long)NC, (long long)N, (long long)NC, (long long)N, (long long)NC, (long long)K, (long long)KC,
            (long long)K, (long long)KC, (long long)K, (long long)KC,
            tb ? ke_str(E, "(jc + j) * %lld + pc + k", (long long)ldb) : ke_str(E, "(pc + k) * %lld + jc + j", (long long)ldb),
            (long long)M, T, (long long)N, (long long)N, (long long)N, (long long)N, T, a_rows[0], a_rows[1], a_rows[2],
            a_rows[3], T, (long long)M, T, (long long)N, T, a_rows[0], T);
  return name;
}

/* The operand's batch element for output batch index `bi` (a C
 * expression): operand batch dims align right and broadcast where 1. */
static const char *batch_offset(ke_ctx *E, const char *bi, const kg_shape *opb, const kg_shape *ob, int64_t mat) {
  int64_t nb = kg_shape_numel(ob), nop = kg_shape_numel(opb);
  if (nop == 1) return "0";
  if (nop == nb) return ke_madd(E, bi, mat, NULL);
  int64_t *tab = kc_alloc(E->m->arena, (size_t)nb * sizeof *tab);
  for (int64_t i = 0; i < nb; i++) {
    int64_t rem = i, off = 0, stride = mat;
    for (int d = ob->rank - 1, e = opb->rank - 1; d >= 0; d--, e--) {
      int64_t idx = rem % ob->dim[d];
      rem /= ob->dim[d];
      if (e >= 0) {
        if (opb->dim[e] != 1) off += idx * stride;
        stride *= opb->dim[e];
      }
    }
    tab[i] = off;
  }
  return ke_str(E, "%s[%s]", ke_table(E, tab, nb, "mm_off"), bi);
}

bool ke_render_matmul(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *at = ke_in_type(E, node, 0), *bt = ke_in_type(E, node, 1), *ct = ke_out_type(E, node, 0);
  kiln_dtype dt = ct->dtype;
  bool ta = kg_attr_bool(n, "transpose_a", false), tb = kg_attr_bool(n, "transpose_b", false);
  const kg_shape *a = &at->shape, *b = &bt->shape;
  int64_t M = ta ? a->dim[a->rank - 1] : a->dim[a->rank - 2], K = ta ? a->dim[a->rank - 2] : a->dim[a->rank - 1];
  int64_t N = tb ? b->dim[b->rank - 2] : b->dim[b->rank - 1];
  kg_shape abatch = *a, bbatch = *b, ob = ct->shape;
  abatch.rank -= 2, bbatch.rank -= 2, ob.rank -= 2;
  int64_t nb = kg_shape_numel(&ob);
  if (nb * M * N == 0) return true;
  bool blas = dt == KILN_F32 || dt == KILN_F64;
  if (blas && !E->generated_blas && (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX))
    return ke_node_error(E, node, "matmul dimensions exceed BLAS's 32-bit int range");
  const char *T = ke_ctype(dt);
  ke_decl_in(E, "a", node, 0);
  ke_decl_in(E, "b", node, 1);
  ke_decl_out(E, "c", node, 0);
  if (K == 0 || !blas) ke_memset0(E, "c", kg_type_bytes(ct));
  if (K == 0) return true;
  const char *bi = "0";
  if (nb > 1) {
    ke_open(E, "for (int64_t bi = 0; bi < %s; bi++)", ke_i64(E, nb));
    bi = "bi";
  }
  ke_line(E, "const %s *A = a + %s;", T, batch_offset(E, bi, &abatch, &ob, M * K));
  ke_line(E, "const %s *B = b + %s;", T, batch_offset(E, bi, &bbatch, &ob, K * N));
  ke_line(E, "%s *C = c + %s;", T, ke_madd(E, bi, M * N, NULL));
  if (blas && E->generated_blas) {
    ke_line(E, "%s(A, B, C);", gemm_function(E, dt, ta, tb, M, N, K));
  } else if (blas) {
    ke_gemm_call(E, dt, ta, tb, ke_i64(E, M), ke_i64(E, N), ke_i64(E, K), "A", ta ? M : K, "B", tb ? K : N, "C", N, false);
  } else { /* integers: C += op(A) op(B), i-k-j so the inner loop is contiguous */
    ke_open(E, "for (int64_t i = 0; i < %s; i++)", ke_i64(E, M));
    ke_open(E, "for (int64_t k = 0; k < %s; k++)", ke_i64(E, K));
    ke_line(E, "%s aik = A[%s];", T, ta ? ke_madd(E, "k", M, "i") : ke_madd(E, "i", K, "k"));
    ke_open(E, "for (int64_t j = 0; j < %s; j++)", ke_i64(E, N));
    const char *ci = ke_madd(E, "i", N, "j");
    const char *prod = ke_prim2(E, "mul", dt, "aik", ke_str(E, "B[%s]", tb ? ke_madd(E, "j", K, "k") : ke_madd(E, "k", N, "j")));
    ke_line(E, "C[%s] = %s;", ci, ke_prim2(E, "add", dt, ke_str(E, "C[%s]", ci), prod));
    ke_close(E);
    ke_close(E);
    ke_close(E);
  }
  if (nb > 1) ke_close(E);
  return true;
}
