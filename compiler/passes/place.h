/* place.h — the placement pass: every node gets the device it runs on, as
 * TensorFlow's placer does (docs/gpu.md).
 *
 * `@gpu:N`, `@cpu:N` and `device NAME { }` are honoured; unplaced nodes run
 * on --device (as if the whole graph sat in `with tf.device(...)`), by
 * default the host CPU (cpu:0).  Ops that write a variable are colocated with it.
 * A GPU-placed node without a GPU kernel is an error naming the node, or,
 * with soft placement (TF's allow_soft_placement), moves to the CPU with a
 * note.  Where data crosses devices the pass inserts `device_copy` nodes on
 * the reading device, and a fetched GPU result gets a copy back to the host.
 *
 * Devices also decide concurrency: the nodes of each CPU device cpu:N form a
 * partition that runs on a thread of its own; GPU nodes are issued from the
 * cpu:0 partition (their kernels run asynchronously on the device). */
#ifndef KILN_PLACE_H
#define KILN_PLACE_H

#include "ir/ir.h"

typedef struct kc_place_options {
  bool soft;              /* --soft-placement */
  const char *device_map; /* --device-map: "gpu=cpu", "gpu:1=cpu:1,gpu:0=cpu:0", or NULL */
  const char *device;     /* --device: where nodes placed nowhere run ("gpu:0"), or NULL: the host CPU */
} kc_place_options;

/* The placement pass (runs last in the pass list). */
bool kc_pass_place(kg_module *m, const kc_place_options *o, kc_diag *d);

/* Checks a --device-map value; false (message in err) when malformed. */
bool kc_device_map_check(const char *map, char *err, size_t errlen);

/* A device string ("gpu:1", "cpu:0", NULL = the host CPU) as kind and index;
 * false when it is not one of those. */
bool kc_device_split(const char *dev, bool *gpu, int *index);
/* The GPU index a node runs on, or -1 for the CPU. */
int kc_node_gpu(const kg_node *n);
/* The CPU partition a node is issued from: N for cpu:N, 0 otherwise. */
int kc_node_partition(const kg_node *n);
/* The number of CPU partitions among an entry's scheduled nodes that do
 * work (1 when everything runs on the host thread). */
int kc_entry_partitions(const kg_module *m, const int *sched, int n_sched);
/* True for nodes with nothing to wait for: variables, placeholders,
 * constants and queues (no operands, no code in an entry). */
bool kc_node_is_inert(const kg_node *n);

#endif
