/* ops_nn.c — ONNX nn ops (being written). */
#include "frontends/onnx/ox.h"

const ox_op ox_ops_nn[] = {
    {NULL, NULL},
};
