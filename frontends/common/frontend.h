/* frontend.h — what the model importers share (frontends/onnx for ONNX,
 * frontends/graphdef for TensorFlow GraphDef and TF.js): turning foreign
 * names into kiln identifiers, and the small builders their converters use
 * on top of the kb_* builders of passes/autodiff.h.  Errors go to the
 * builder context's diagnostics at g->loc (the model file). */
#ifndef KILN_FRONTEND_H
#define KILN_FRONTEND_H

#include "passes/autodiff.h"

/* A kiln identifier ([A-Za-z_][A-Za-z0-9_/]*) for a foreign name: other
 * characters become '_', an empty name or one starting with a digit gets a
 * 'v' in front, a keyword a "v_".  keep_scopes keeps inner '/' (TensorFlow's
 * scopes); otherwise '/' becomes '_' too. */
const char *kc_fe_sanitize(kc_arena *a, const char *name, bool keep_scopes);
/* kc_fe_sanitize's name, made unique among m's nodes with _1, _2, ... */
const char *kc_fe_fresh_name(kg_module *m, const char *name, bool keep_scopes);
/* FNV-1a of s[0..n): the importers' name tables. */
uint64_t kc_fe_hash(const char *s, size_t n);

/* A constant node holding a copy of t. */
kg_ref kc_fe_tensor_const(kc_grad_ctx *g, const kg_tensor *t);
/* A constant of dtype dt and shape s (rank may be 0) from doubles. */
kg_ref kc_fe_const_from(kc_grad_ctx *g, kiln_dtype dt, const kg_shape *s, const double *v);
/* An elementwise node computing `expr` (ir/expr.h syntax over x0, x1, ...)
 * over operands in, broadcast together, with result dtype dt. */
kg_ref kc_fe_expr(kc_grad_ctx *g, const char *expr, const kg_ref *in, int n_in, kiln_dtype dt);
/* transpose(x, perm); x itself for the identity permutation. */
kg_ref kc_fe_transpose(kc_grad_ctx *g, kg_ref x, const int64_t *perm, int rank);
/* cast(x, to); x itself when it has that dtype already. */
kg_ref kc_fe_cast(kc_grad_ctx *g, kg_ref x, kiln_dtype to);
/* A conditional's result when its condition is known only at run time:
 * both branches are computed and select(cond, a, b) picks one; cond holds
 * one element (reshaped to a scalar, which select broadcasts).  a and b
 * must have one type (the callers check it, naming their node). */
kg_ref kc_fe_select(kc_grad_ctx *g, kg_ref cond, kg_ref a, kg_ref b);

#endif
