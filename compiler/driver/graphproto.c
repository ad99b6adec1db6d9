/* graphproto.c — placeholder until the GraphDef encoder lands: no bytes, so
 * `summary graph` writes nothing. */
#include "driver/graphproto.h"

const void *kc_graph_proto(kg_module *m, size_t *len) {
  (void)m;
  *len = 0;
  return NULL;
}
