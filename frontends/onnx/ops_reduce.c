/* ops_reduce.c — ONNX reduce ops (being written). */
#include "frontends/onnx/ox.h"

const ox_op ox_ops_reduce[] = {
    {NULL, NULL},
};
