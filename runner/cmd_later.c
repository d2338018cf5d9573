/*
 * cmd_later.c - subcommands whose issues have not landed yet: they answer
 * "not yet implemented" with exit 64 (usage), as the foundation issue allows.
 */
#include "runner.h"

static int cmd_not_yet(struct opts *o)
{
	return log_fail(EX_USAGE, "'spotrun %s' is not yet implemented", o->cmd_name);
}

int cmd_plan(struct opts *o) { return cmd_not_yet(o); }
int cmd_migrate(struct opts *o) { return cmd_not_yet(o); }
