/* ops_nn.h — what the ONNX nn family's two files share: small builders
 * over kiln's shape and reduction ops (ops_nn.c) and the recurrent
 * converters (ops_rnn.c), whose table entries live in ops_nn.c. */
#ifndef KILN_OX_OPS_NN_H
#define KILN_OX_OPS_NN_H

#include "frontends/onnx/ox.h"

/* x[..., begin:begin+size, ...] along one axis. */
kg_ref nn_slice_axis(ox_ctx *c, kg_ref x, int axis, int64_t begin, int64_t size);
/* Joins n values along axis (the value itself when n == 1). */
kg_ref nn_concat(ox_ctx *c, const kg_ref *v, int n, int axis);
/* sum/mean/max of x over axes (keepdims as asked). */
kg_ref nn_reduce(ox_ctx *c, int op, kg_ref x, const int64_t *axes, int n_axes, bool keep);

bool ox_cv_rnn(ox_ctx *c, ox_node *n);
bool ox_cv_gru(ox_ctx *c, ox_node *n);
bool ox_cv_lstm(ox_ctx *c, ox_node *n);

#endif
