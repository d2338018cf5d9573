/*
 * cmd_store.c - the store subcommands: push, pull, ls, verify, gc.
 * (Filled in by the engine issue [2/7].)
 */
#include "runner.h"

static int cmd_not_yet(struct opts *o)
{
	return log_fail(EX_USAGE, "'spotrun %s' is not yet implemented", o->cmd_name);
}

int cmd_push(struct opts *o) { return cmd_not_yet(o); }
int cmd_pull(struct opts *o) { return cmd_not_yet(o); }
int cmd_ls(struct opts *o) { return cmd_not_yet(o); }
int cmd_verify(struct opts *o) { return cmd_not_yet(o); }
int cmd_gc(struct opts *o) { return cmd_not_yet(o); }
