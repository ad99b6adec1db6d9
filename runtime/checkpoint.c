/* checkpoint.c — placeholder: the functions of kilnrt.h's "checkpoint" section report that
 * they are not implemented yet, so programs using them fail clearly. */
#include "kilnrt.h"

int kiln_rt_save(kiln_inst *inst, const char *prefix, int64_t step, int32_t max_to_keep) {
  (void)step, (void)max_to_keep;
  return kiln_fail(inst, KILN_ERROR, "save %s: checkpoints are not implemented yet", prefix);
}

int kiln_rt_restore(kiln_inst *inst, const char *prefix) {
  return kiln_fail(inst, KILN_ERROR, "restore %s: checkpoints are not implemented yet", prefix);
}
