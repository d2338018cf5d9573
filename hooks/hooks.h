/*
 * hooks.h - user hooks: executables run on the events of a run (start,
 * notice, checkpoint-committed, push-failed, resume, migration,
 * hardware-change, exit).
 *
 * Where hooks come from: `--hook EVENT=PATH` (repeatable, in the order
 * given), then DIR/EVENT and DIR/EVENT.d/ entries (name order) of `--hooks-dir`.
 * PATH is executed directly with execve: no shell unless the user wrote one.
 * A hook gets the event JSON on stdin (a temp file, so writing it never
 * blocks), SPOTRUN_EVENT, SPOTRUN_EVENT_FILE (the same JSON), SPOTRUN_HOOK,
 * SPOTRUN_RECORD_FILE (see hook_config.recorded) and the caller's extra
 * variables; stdout and stderr come back line by
 * line into the log, prefixed with the hook's name.
 *
 * Ownership and invariants: a hook_set belongs to one thread (the supervise
 * loop).  Nothing here blocks except hook_drain(): hook_fire() forks and
 * returns, the loop polls hook_pollfds(), calls hook_service() after every
 * wake-up and hands every reaped pid to hook_reaped() (hooks are the
 * caller's children).  Hooks run one at a time in fire order (a queue), each
 * in its own process group, so that the caller can spare them when it takes
 * its command's tree down (hook_pgids()).  A hook running longer than the
 * timeout gets SIGTERM, then SIGKILL 2 s later.  Failures are counted and
 * logged, never fatal here: the caller decides (--hook-strict).
 */
#ifndef SPOTRUN_HOOKS_H
#define SPOTRUN_HOOKS_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define HOOK_MAX_FDS 1		/* output pipes polled at once (one hook runs) */
#define HOOK_QUEUE_MAX 64	/* fired but not started; beyond this, dropped */

/* The events hooks can be attached to, NULL-terminated. */
extern const char *const hook_events[];

/* 1 when name is one of hook_events. */
int hook_event_ok(const char *name);

/* Splits "EVENT=PATH": 0 ok (event copied, *path points into spec), -1 bad
 * syntax or unknown event (err says why). */
int hook_spec_parse(const char *spec, char *event, size_t eventlen, const char **path, char *err,
		    size_t errlen);

struct hook_config {
	char **specs;		/* EVENT=PATH items, NULL-terminated, may be NULL */
	const char *dir;	/* --hooks-dir or NULL */
	double timeout;		/* seconds; <= 0 means 30 */
	const char *tmpdir;	/* where the event files go */
	const sigset_t *mask;	/* signal mask a hook starts with */
	/* Called when a hook ended (ok: exit 0 in time) whose record file
	 * (SPOTRUN_RECORD_FILE: where a hook may leave a JSON object for the
	 * event record) exists; the file is removed after the call. */
	void (*recorded)(void *arg, const char *event, const char *hook, int ok, const char *file);
	void *arg;
};

struct hook_set;

/* Validates the specs (EX_USAGE, logged, on a bad one) and creates the set.
 * A set without hooks is valid and cheap. */
int hook_set_new(const struct hook_config *cfg, struct hook_set **out);
/* Kills hooks still running (SIGKILL to their groups), reaps them, frees.
 * Accepts NULL. */
void hook_set_free(struct hook_set *h);

/* Number of hooks configured for event (0 when none). */
int hook_count(const struct hook_set *h, const char *event);

/* Queues every hook of event with json (the event document) and env (extra
 * NAME=VALUE items, NULL-terminated, may be NULL; copied).  Starts the
 * first if nothing runs.  Returns the number queued. */
int hook_fire(struct hook_set *h, const char *event, const char *json, char *const *env);

/* The earliest deadline (CLOCK_MONOTONIC seconds, as sv_mono()), or a huge
 * value when no hook runs. */
double hook_deadline(const struct hook_set *h);
/* Fills up to HOOK_MAX_FDS pollfds (fd -1 when unused); returns the count. */
int hook_pollfds(const struct hook_set *h, struct pollfd *pfd);
/* After a wake-up: reads output, enforces timeouts, starts the next hook. */
void hook_service(struct hook_set *h, const struct pollfd *pfd, int n);
/* The caller reaped pid: 1 when it was a hook (its status is taken), else 0. */
int hook_reaped(struct hook_set *h, pid_t pid, int status);
/* Process groups of running hooks (to spare): count written to out. */
int hook_pgids(const struct hook_set *h, pid_t *out, int max);
/* 1 while a hook runs or waits in the queue. */
int hook_busy(const struct hook_set *h);
/* Runs the queue to the end (each hook within its timeout), reaping with
 * waitpid() on the hooks' own pids only.  Blocks: for after the loop. */
void hook_drain(struct hook_set *h);
/* How many hooks failed so far (non-zero exit, signal, timeout, no exec). */
int hook_failures(const struct hook_set *h);

#endif
