/* graphproto.h — the module's graph as a serialized TensorFlow GraphDef,
 * for `summary graph` (TensorBoard's graph view). */
#ifndef KILN_GRAPHPROTO_H
#define KILN_GRAPHPROTO_H

#include <stddef.h>
#include "ir/ir.h"

/* Serialized GraphDef bytes in the module's arena (*len set), or NULL with
 * *len 0 when the graph cannot be serialized. */
const void *kc_graph_proto(kg_module *m, size_t *len);

#endif
