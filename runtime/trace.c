/* trace.c — placeholder: the functions of kilnrt.h's "trace" section report that
 * they are not implemented yet, so programs using them fail clearly. */
#include "kilnrt.h"

int kiln_rt_trace_start(kiln_inst *inst) {
  return kiln_fail(inst, KILN_ERROR, "traced runs are not implemented yet");
}
void kiln_rt_trace_begin(kiln_inst *inst) { (void)inst; }
void kiln_rt_trace_end(kiln_inst *inst, const char *node, const char *op, int64_t bytes) {
  (void)inst, (void)node, (void)op, (void)bytes;
}
int kiln_rt_trace_finish(kiln_inst *inst, const char *tag) {
  (void)tag;
  inst->tracing = 0;
  return KILN_OK;
}
