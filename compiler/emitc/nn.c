/* nn.c — C renderings of the NHWC neural-network ops, beside ops/nn.c and
 * with its structure: the three conv2d ops are a loop over (image, output
 * row, filter tap) whose body is one GEMM over the output row (cblas with
 * beta 1, or plain loops with --blas generated); depthwise convolutions and
 * pooling walk the windows, visiting only the taps inside the input (the
 * ranges come from constant tables computed here, so no padding test is
 * ever emitted). */
#include "emitc/ke.h"
#include <math.h>

static int64_t *i64s(ke_ctx *E, int64_t n) { return kc_alloc(E->m->arena, sizeof(int64_t) * (size_t)(n ? n : 1)); }

/* Declares the typed pointer `name` to operand k, or to the result when k < 0. */
static void decl(ke_ctx *E, int node, const char *name, int k) {
  if (k < 0) ke_decl_out(E, name, node, 0);
  else ke_decl_in(E, name, node, k);
}

bool ke_render_conv2d(ke_ctx *E, int node) {
  const kg_type *rt = ke_out_type(E, node, 0);
  kiln_dtype dt = rt->dtype;
  ke_win g;
  int role;
  kg_shape xs, fs, ys;
  if (!ke_conv_geom(E, node, &g, &role, &xs, &fs, &ys)) return false;
  ke_memset0(E, ke_out_ptr(E, node, 0), kg_type_bytes(rt)); /* every role accumulates */
  if (kg_shape_numel(&xs) == 0 || kg_shape_numel(&fs) == 0 || kg_shape_numel(&ys) == 0) return true;
  if (!E->generated_blas && (g.sw * g.C > INT32_MAX || g.M > INT32_MAX || g.OW > INT32_MAX))
    return ke_node_error(E, node, "conv2d dimensions exceed BLAS's 32-bit int range");
  int64_t *khlo = i64s(E, g.OH), *khn = i64s(E, g.OH);
  ke_valid_ranges(g.OH, g.sh, g.KH, g.dh, g.pt, g.H, khlo, khn);
  int64_t *owlo = i64s(E, g.KW), *own = i64s(E, g.KW), *kwv = i64s(E, g.KW), nk = 0;
  ke_valid_ranges(g.KW, g.dw, g.OW, g.sw, g.pl, g.W, owlo, own);
  for (int64_t kw = 0; kw < g.KW; kw++)
    if (own[kw]) kwv[nk] = kw, owlo[nk] = owlo[kw], own[nk] = own[kw], nk++;
  if (nk == 0) return true;
  decl(E, node, "X", role == KE_ROLE_INPUT_GRAD ? -1 : 0);
  decl(E, node, "F", role == KE_ROLE_FWD ? 1 : role == KE_ROLE_INPUT_GRAD ? 0 : -1);
  decl(E, node, "Y", role == KE_ROLE_FWD ? -1 : 1);
  int64_t C = g.C, O = g.M;
  ke_open(E, "for (int64_t n = 0; n < %s; n++)", ke_i64(E, g.N));
  ke_open(E, "for (int64_t oh = 0; oh < %s; oh++)", ke_i64(E, g.OH));
  ke_open(E, "for (int64_t th = 0; th < %s; th++)", ke_table_at(E, khn, g.OH, "oh", "conv_khn"));
  ke_line(E, "int64_t kh = %s + th, ih = oh * %s - %s + kh * %s;", ke_table_at(E, khlo, g.OH, "oh", "conv_khlo"),
          ke_i64(E, g.sh), ke_i64(E, g.pt), ke_i64(E, g.dh));
  ke_open(E, "for (int64_t w = 0; w < %s; w++)", ke_i64(E, nk));
  ke_line(E, "int64_t kw = %s, ow0 = %s, rows = %s;", ke_table_at(E, kwv, nk, "w", "conv_kwv"),
          ke_table_at(E, owlo, nk, "w", "conv_owlo"), ke_table_at(E, own, nk, "w", "conv_own"));
  ke_line(E, "int64_t iw0 = ow0 * %s - %s + kw * %s;", ke_i64(E, g.sw), ke_i64(E, g.pl), ke_i64(E, g.dw));
  const char *xp = ke_str(E, "X + ((n * %s + ih) * %s + iw0) * %s", ke_i64(E, g.H), ke_i64(E, g.W), ke_i64(E, C));
  const char *yp = ke_str(E, "Y + ((n * %s + oh) * %s + ow0) * %s", ke_i64(E, g.OH), ke_i64(E, g.OW), ke_i64(E, O));
  const char *fp = ke_str(E, "F + (kh * %s + kw) * %s", ke_i64(E, g.KW), ke_i64(E, C * O));
  const char *vC = ke_i64(E, C), *vO = ke_i64(E, O);
  switch (role) {
  case KE_ROLE_FWD: ke_gemm_call(E, dt, false, false, "rows", vO, vC, xp, g.sw * C, fp, O, yp, O, true); break;
  case KE_ROLE_INPUT_GRAD: ke_gemm_call(E, dt, false, true, "rows", vC, vO, yp, O, fp, O, xp, g.sw * C, true); break;
  default: ke_gemm_call(E, dt, true, false, vC, vO, "rows", xp, g.sw * C, yp, O, fp, O, true); break;
  }
  for (int i = 0; i < 4; i++) ke_close(E);
  return true;
}

/* ---- the window walk: for n, oh, ow [, c]: before; each tap inside the
 * input: tap; after.  Inside the tap, xoff is the offset of x[n, ih, iw, 0]
 * and tap = kh * KW + kw; yoff is that of y[n, oh, ow, 0]; count the number
 * of taps inside the input. */

typedef enum { W_BEFORE, W_TAP, W_AFTER } wstep;
typedef void (*wfn)(ke_ctx *E, const ke_win *g, int node, wstep step);

static void walk(ke_ctx *E, const ke_win *g, int node, int64_t ych, bool per_channel, wfn f) {
  int64_t *khlo = i64s(E, g->OH), *khn = i64s(E, g->OH), *kwlo = i64s(E, g->OW), *kwn = i64s(E, g->OW);
  ke_valid_ranges(g->OH, g->sh, g->KH, g->dh, g->pt, g->H, khlo, khn);
  ke_valid_ranges(g->OW, g->sw, g->KW, g->dw, g->pl, g->W, kwlo, kwn);
  ke_open(E, "for (int64_t n = 0; n < %s; n++)", ke_i64(E, g->N));
  ke_open(E, "for (int64_t oh = 0; oh < %s; oh++)", ke_i64(E, g->OH));
  ke_line(E, "int64_t h0 = %s, hn = %s;", ke_table_at(E, khlo, g->OH, "oh", "win_khlo"),
          ke_table_at(E, khn, g->OH, "oh", "win_khn"));
  ke_open(E, "for (int64_t ow = 0; ow < %s; ow++)", ke_i64(E, g->OW));
  ke_line(E, "int64_t w0 = %s, wn = %s;", ke_table_at(E, kwlo, g->OW, "ow", "win_kwlo"),
          ke_table_at(E, kwn, g->OW, "ow", "win_kwn"));
  ke_line(E, "int64_t yoff = ((n * %s + oh) * %s + ow) * %s, count = hn * wn;", ke_i64(E, g->OH), ke_i64(E, g->OW),
          ke_i64(E, ych));
  ke_line(E, "(void)count; (void)yoff;");
  if (per_channel) ke_open(E, "for (int64_t c = 0; c < %s; c++)", ke_i64(E, g->C));
  f(E, g, node, W_BEFORE);
  ke_open(E, "for (int64_t th = 0; th < hn; th++)");
  ke_line(E, "int64_t kh = h0 + th, ih = oh * %s - %s + kh * %s;", ke_i64(E, g->sh), ke_i64(E, g->pt), ke_i64(E, g->dh));
  ke_open(E, "for (int64_t tw = 0; tw < wn; tw++)");
  ke_line(E, "int64_t kw = w0 + tw, iw = ow * %s - %s + kw * %s;", ke_i64(E, g->sw), ke_i64(E, g->pl), ke_i64(E, g->dw));
  ke_line(E, "int64_t xoff = ((n * %s + ih) * %s + iw) * %s, tap = kh * %s + kw;", ke_i64(E, g->H), ke_i64(E, g->W),
          ke_i64(E, g->C), ke_i64(E, g->KW));
  ke_line(E, "(void)tap;");
  f(E, g, node, W_TAP);
  ke_close(E);
  ke_close(E);
  f(E, g, node, W_AFTER);
  if (per_channel) ke_close(E);
  ke_close(E);
  ke_close(E);
  ke_close(E);
}

/* depthwise: y[n,oh,ow,c*M+m] = sum over taps of x[n,ih,iw,c] * f[kh,kw,c,m];
 * the op accumulates into whichever of x, f, y it computes (P0, P1, P2) */
static int dw_acc;

static void dw_step(ke_ctx *E, const ke_win *g, int node, wstep step) {
  if (step != W_TAP) return;
  kiln_dtype dt = ke_out_type(E, node, 0)->dtype;
  ke_open(E, "for (int64_t c = 0; c < %s; c++)", ke_i64(E, g->C));
  ke_open(E, "for (int64_t m = 0; m < %s; m++)", ke_i64(E, g->M));
  const char *idx[3] = {"xoff + c", ke_str(E, "(tap * %s + c) * %s + m", ke_i64(E, g->C), ke_i64(E, g->M)),
                        ke_str(E, "yoff + c * %s + m", ke_i64(E, g->M))};
  const char *p[3] = {"P0", "P1", "P2"};
  int a = (dw_acc + 1) % 3, b = (dw_acc + 2) % 3;
  const char *at = ke_str(E, "%s[%s]", p[dw_acc], idx[dw_acc]);
  ke_line(E, "%s = %s;", at,
          ke_prim2(E, "add", dt, at, ke_prim2(E, "mul", dt, ke_str(E, "%s[%s]", p[a], idx[a]), ke_str(E, "%s[%s]", p[b], idx[b]))));
  ke_close(E);
  ke_close(E);
}

bool ke_render_depthwise(ke_ctx *E, int node) {
  const kg_type *rt = ke_out_type(E, node, 0);
  ke_win g;
  int role;
  kg_shape xs, fs, ys;
  if (!ke_conv_geom(E, node, &g, &role, &xs, &fs, &ys)) return false;
  ke_memset0(E, ke_out_ptr(E, node, 0), kg_type_bytes(rt));
  if (kg_shape_numel(&xs) == 0 || kg_shape_numel(&fs) == 0 || kg_shape_numel(&ys) == 0) return true;
  dw_acc = role == KE_ROLE_FWD ? 2 : role == KE_ROLE_INPUT_GRAD ? 0 : 1;
  decl(E, node, "P0", role == KE_ROLE_INPUT_GRAD ? -1 : 0);
  decl(E, node, "P1", role == KE_ROLE_FWD ? 1 : role == KE_ROLE_INPUT_GRAD ? 0 : -1);
  decl(E, node, "P2", role == KE_ROLE_FWD ? -1 : 1);
  walk(E, &g, node, g.C * g.M, false, dw_step);
  return !E->failed;
}

/* pooling:
 *   max_pool       y = max over the window (from -inf)
 *   avg_pool       y = sum over the window / the taps inside the input
 *   avg_pool_grad  dx += dy / the taps inside, at every tap
 *   max_pool_grad  per channel, dx at the window's first maximum += dy */
static void pool_step(ke_ctx *E, const ke_win *g, int node, wstep step) {
  int op = E->m->nodes[node].op;
  kiln_dtype dt = ke_out_type(E, node, 0)->dtype;
  const char *count = ke_convert(E, "count", KILN_I64, dt);
  if (op == KC_OP_MAX_POOL_GRAD) {
    if (step == W_BEFORE) {
      ke_line(E, "%s best = %s;", ke_ctype(dt), ke_const_f(E, dt, -INFINITY));
      ke_line(E, "int64_t bidx = -1;");
    } else if (step == W_TAP) {
      /* strictly greater, so the first maximum in window order wins; the
       * first tap is always taken (a window of NaN or -inf still has one) */
      ke_line(E, "%s v = x[xoff + c];", ke_ctype(dt));
      ke_line(E, "if (%s || bidx < 0) best = v, bidx = xoff + c;", ke_prim(E, "gt", dt, KILN_BOOL, (const char *[]){"v", "best"}, 2));
    } else {
      ke_line(E, "y[bidx] = %s;", ke_prim2(E, "add", dt, "y[bidx]", "dy[yoff + c]"));
    }
    return;
  }
  bool max = op == KC_OP_MAX_POOL;
  if (step == W_BEFORE && !max) return;
  if (step == W_AFTER && op != KC_OP_AVG_POOL) return;
  ke_open(E, "for (int64_t c = 0; c < %s; c++)", ke_i64(E, g->C));
  if (step == W_BEFORE) ke_line(E, "y[yoff + c] = %s;", ke_const_f(E, dt, -INFINITY));
  else if (step == W_AFTER) ke_line(E, "y[yoff + c] = %s;", ke_prim2(E, "div", dt, "y[yoff + c]", count));
  else if (op == KC_OP_AVG_POOL_GRAD)
    ke_line(E, "y[xoff + c] = %s;", ke_prim2(E, "add", dt, "y[xoff + c]", ke_prim2(E, "div", dt, "dy[yoff + c]", count)));
  else ke_line(E, "y[yoff + c] = %s;", ke_prim2(E, max ? "max" : "add", dt, "y[yoff + c]", "x[xoff + c]"));
  ke_close(E);
}

bool ke_render_pool(ke_ctx *E, int node) {
  const kg_node *n = &E->m->nodes[node];
  const kg_type *rt = ke_out_type(E, node, 0);
  ke_win g;
  kg_shape xs, ys;
  if (!ke_pool_geom(E, node, &g, &xs, &ys)) return false;
  ke_decl_out(E, "y", node, 0);
  if (n->op != KC_OP_MAX_POOL) ke_memset0(E, "y", kg_type_bytes(rt));
  if (kg_shape_numel(&ys) == 0) return true;
  if (n->op == KC_OP_AVG_POOL_GRAD) ke_decl_in(E, "dy", node, 0);
  else ke_decl_in(E, "x", node, 0);
  if (n->op == KC_OP_MAX_POOL_GRAD) ke_decl_in(E, "dy", node, 1);
  walk(E, &g, node, g.C, n->op == KC_OP_MAX_POOL_GRAD, pool_step);
  return !E->failed;
}
