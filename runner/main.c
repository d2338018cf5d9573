/*
 * main.c - spotrun's entry point: picks the subcommand (default: run),
 * parses its options and calls it.  The only place that exits: every
 * subcommand returns its exit code here.
 */
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct run_cmd_info run_cmds[] = {
	{ "run", CMD_RUN, "spotrun [run] [OPTIONS] -- COMMAND [ARG...]",
	  "Supervise COMMAND: checkpoint on an interruption notice, exit 75 to be retried,\n"
	  "resume from the newest committed checkpoint on the next start.", cmd_run },
	{ "push", CMD_PUSH, "spotrun push DIR [--job J --store URL --step N]",
	  "Upload one checkpoint folder to the store and commit it.", cmd_push },
	{ "pull", CMD_PULL, "spotrun pull [DIR] [--job J --store URL --step N]",
	  "Restore a committed checkpoint (default: the newest) into DIR.", cmd_pull },
	{ "ls", CMD_LS, "spotrun ls [--job J] [--store URL] [--json]",
	  "List jobs, or a job's checkpoints and history, in a store.", cmd_ls },
	{ "verify", CMD_VERIFY, "spotrun verify [--job J --store URL --step N]",
	  "Check every part's hash of a committed checkpoint.", cmd_verify },
	{ "gc", CMD_GC, "spotrun gc --keep N [--job J --store URL]",
	  "Delete old checkpoints and leftovers of failed pushes; never the newest committed.", cmd_gc },
	{ "detect", CMD_DETECT, "spotrun detect [--json]",
	  "Show which provider, region, instance type and GPUs this machine has.", cmd_detect },
	{ "watch", CMD_WATCH, "spotrun watch [--json]",
	  "Print interruption notices as they arrive.", cmd_watch },
	{ "plan", CMD_PLAN, "spotrun plan --job J [--targets LIST]",
	  "Rank resume targets by total cost (catalog prices + checkpoint size).", cmd_plan },
	{ "migrate", CMD_MIGRATE, "spotrun migrate --job J --to URL [--dry-run]",
	  "Copy a job's checkpoints to another store, verified and recorded.", cmd_migrate },
	{ "commit", CMD_COMMIT, "spotrun commit [DIR] [--step N]",
	  "From inside the child: DIR (default: the current folder) is a finished checkpoint.",
	  cmd_commit },
};
#define RUN_NCMDS (sizeof(run_cmds) / sizeof(run_cmds[0]))

static void main_usage(FILE *f)
{
	fprintf(f, "usage: spotrun [run] [OPTIONS] -- COMMAND [ARG...]\n"
		   "       spotrun SUBCOMMAND [OPTIONS]\n\n"
		   "A checkpoint-aware spot and failover job runner.\n\nsubcommands:\n");
	for (size_t i = 0; i < RUN_NCMDS; i++)
		fprintf(f, "  %-8s %s\n", run_cmds[i].name, strtok(strdupa(run_cmds[i].summary), "\n"));
	fprintf(f, "\n'spotrun SUBCOMMAND --help' shows its options.  Exit codes: child's own;\n"
		   "75 interrupted (retry); 64 usage; 65 data error; 69 store unreachable; 78 config.\n");
}

int main(int argc, char **argv)
{
	const struct run_cmd_info *ci = &run_cmds[0];
	struct opts o;
	int done = 0, matched = 0, rc;

	log_setup(1, LOG_FMT_HUMAN);
	if (argc < 2) {
		main_usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(argv[1], "help") || (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))) {
		main_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < RUN_NCMDS; i++) {
		if (!strcmp(argv[1], run_cmds[i].name)) {
			ci = &run_cmds[i];
			argc--, argv++;
			matched = 1;
			break;
		}
	}
	if (!matched && argv[1][0] != '-') {
		/* a bare word that is no subcommand: most likely a typo */
		log_error("unknown subcommand '%s'; to supervise a command: spotrun -- %s ...",
			  argv[1], argv[1]);
		return EX_USAGE;
	}
	rc = opts_parse(&o, ci, argc, argv, &done);
	if (rc || done)
		goto out;
	rc = ci->fn(&o);
out:
	opts_free(&o);
	return rc;
}
