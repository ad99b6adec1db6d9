/* coord.c — placeholder: the functions of kilnrt.h's "coord" section report that
 * they are not implemented yet, so programs using them fail clearly. */
#include "kilnrt.h"

int kiln_rt_spawn(kiln_inst *inst, int32_t count, int32_t entry, int32_t close_queue) {
  (void)count, (void)entry, (void)close_queue;
  return kiln_fail(inst, KILN_ERROR, "spawn: threads are not implemented yet");
}

int kiln_rt_request_stop(kiln_inst *inst) { (void)inst; return KILN_OK; }
int32_t kiln_rt_should_stop(kiln_inst *inst) { (void)inst; return 0; }
int kiln_rt_join(kiln_inst *inst, int64_t grace_ms) { (void)inst, (void)grace_ms; return KILN_OK; }
