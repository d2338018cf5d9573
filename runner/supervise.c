/* supervise.c - placeholder */
#include "runner.h"
int cmd_run(struct opts *o) { return 0; }
int cmd_commit(struct opts *o) { return 0; }
