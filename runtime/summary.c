/* summary.c — placeholder: the functions of kilnrt.h's "summary" section report that
 * they are not implemented yet, so programs using them fail clearly. */
#include "kilnrt.h"

static int unimplemented(kiln_inst *inst) {
  return kiln_fail(inst, KILN_ERROR, "summaries are not implemented yet");
}

int kiln_rt_summary_scalar(kiln_inst *inst, const char *tag, int32_t dtype, const void *value) {
  (void)tag, (void)dtype, (void)value;
  return unimplemented(inst);
}
int kiln_rt_summary_histogram(kiln_inst *inst, const char *tag, int32_t dtype, int64_t n, const void *data) {
  (void)tag, (void)dtype, (void)n, (void)data;
  return unimplemented(inst);
}
int kiln_rt_summary_text(kiln_inst *inst, const char *tag, const char *text) {
  (void)tag, (void)text;
  return unimplemented(inst);
}
int kiln_rt_summary_open(kiln_inst *inst, const char *logdir) { (void)logdir; return unimplemented(inst); }
int kiln_rt_summary_write(kiln_inst *inst, int64_t step) { (void)step; return unimplemented(inst); }
int kiln_rt_summary_graph(kiln_inst *inst, const void *g, int64_t n) { (void)g, (void)n; return unimplemented(inst); }
int kiln_rt_summary_close(kiln_inst *inst) { (void)inst; return KILN_OK; }
