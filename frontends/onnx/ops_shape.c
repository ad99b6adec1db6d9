/* ops_shape.c — ONNX shape ops (being written). */
#include "frontends/onnx/ox.h"

const ox_op ox_ops_shape[] = {
    {NULL, NULL},
};
