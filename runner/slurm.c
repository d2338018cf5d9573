/*
 * slurm.c - spotrun inside a Slurm job.  Notices need nothing here: Slurm
 * delivers `--signal=B:USR1@N` and preemption's GraceTime SIGTERM to the
 * batch script (spotrun, when the script execs it), and both are notices
 * with the --signal-grace budget.  What is here: the job id (SLURM_JOB_NAME,
 * with the array task), SLURM_RESTART_COUNT feeding SPOTRUN_RESTARTS, and
 * `scontrol requeue` after an interrupted run's checkpoint is committed,
 * when the job was submitted with --requeue (asked with `scontrol show job`)
 * or --slurm-requeue says so.  scontrol runs with execvp (no shell) under a
 * timeout; it is called before and after the loop, never from it.
 */
#include "sv.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int sv_slurm_job_name(char *out, size_t n)
{
	const char *name = getenv("SLURM_JOB_NAME"), *task = getenv("SLURM_ARRAY_TASK_ID");
	char buf[256], *dot;

	if (!getenv("SLURM_JOB_ID") || !name || !*name || !strcmp(name, "spotrun"))
		return 0;
	snprintf(buf, sizeof(buf), "%s", name);
	dot = strrchr(buf, '.');
	if (dot && dot != buf && strlen(dot) <= 4) /* job.sh -> job */
		*dot = 0;
	if (task && *task)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "_%s", task);
	run_job_sanitize(buf);
	if (!buf[0])
		return 0;
	snprintf(out, n, "%s", buf);
	return 1;
}

/* Runs scontrol with args, output into out (NUL-terminated), within
 * timeout seconds.  Returns its exit status, or -1 (logged). */
static int sv_scontrol(const struct sv *sv, char *const *argv, char *out, size_t cap, double timeout)
{
	int pfd[2], status = -1;
	size_t len = 0;
	double end = sv_mono() + timeout;
	pid_t pid;

	out[0] = 0;
	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	if ((pid = fork()) == 0) {
		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &sv->orig_mask, NULL);
		if (dup2(pfd[1], 1) >= 0 && dup2(pfd[1], 2) >= 0)
			execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		double left = end - sv_mono();
		ssize_t r;
		if (left <= 0) {
			log_warn("'%s %s' did not answer within %.0f s", argv[0], argv[1], timeout);
			kill(-pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		r = read(pfd[0], out + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		out[len] = 0;
		if (len + 1 >= cap)
			break;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* 1 when `scontrol show job` says Requeue=1. */
static int sv_slurm_requeueable(const struct sv *sv)
{
	char *argv[] = { "scontrol", "show", "job", (char *)sv->slurm_job, NULL };
	char out[16384];
	int rc = sv_scontrol(sv, argv, out, sizeof(out), 5);

	if (rc != 0) {
		log_warn("cannot ask Slurm about job %s (scontrol exit %d): no requeue after an "
			 "interruption unless --slurm-requeue", sv->slurm_job, rc);
		return 0;
	}
	for (char *t = strtok(out, " \t\n"); t; t = strtok(NULL, " \t\n"))
		if (!strcmp(t, "Requeue=1"))
			return 1;
	return 0;
}

void sv_slurm_setup(struct sv *sv)
{
	const char *id = getenv("SLURM_JOB_ID"), *arr = getenv("SLURM_ARRAY_JOB_ID");
	const char *task = getenv("SLURM_ARRAY_TASK_ID"), *rc = getenv("SLURM_RESTART_COUNT");

	sv->slurm_restarts = -1;
	if (!id || !*id)
		return;
	if (arr && *arr && task && *task)
		snprintf(sv->slurm_job, sizeof(sv->slurm_job), "%s_%s", arr, task);
	else
		snprintf(sv->slurm_job, sizeof(sv->slurm_job), "%s", id);
	if (rc && *rc) {
		sv->slurm_restarts = atoi(rc);
		if (sv->slurm_restarts > sv->starts_before) /* a requeue on another node */
			sv->starts_before = sv->slurm_restarts;
	}
	sv->slurm_requeue = opt_flag(sv->o, OPT_SLURM_REQUEUE) || sv_slurm_requeueable(sv);
	log_info("slurm job %s%s, restart count %d", sv->slurm_job,
		 sv->slurm_requeue ? " (requeued after an interruption)" : "",
		 sv->slurm_restarts < 0 ? 0 : sv->slurm_restarts);
}

void sv_slurm_requeue(struct sv *sv)
{
	char *argv[] = { "scontrol", "requeue", sv->slurm_job, NULL };
	char out[4096];
	int rc;

	if (!sv->slurm_job[0] || !sv->slurm_requeue || sv->next != NEXT_INTERRUPTED)
		return;
	rc = sv_scontrol(sv, argv, out, sizeof(out), 10);
	out[strcspn(out, "\n")] = 0;
	if (rc == 0)
		log_note("requeued Slurm job %s: it restarts from the committed checkpoint", sv->slurm_job);
	else
		log_error("'scontrol requeue %s' failed (exit %d)%s%s", sv->slurm_job, rc, out[0] ? ": " : "", out);
	sv_event(sv, "requeue", json_pack("{s:s, s:b, s:i}", "slurm_job", sv->slurm_job, "ok", rc == 0,
					  "scontrol_exit", rc));
}
