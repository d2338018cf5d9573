/*
 * sv_run.c - `spotrun run` set-up and tear-down around the supervise loop
 * (supervise.c): settings, the checkpoint and runtime folders, signal
 * blocking and the signalfd, the child subreaper, provider watching, the
 * commit socket's clients, the notice file and the local start counter.
 */
#include "sv.h"
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- job id and folders -------------------------------------------- */

static int sv_is_interpreter(const char *base)
{
	static const char *const names[] = { "python", "python3", "bash", "sh", "node", "torchrun",
					      "accelerate", "deepspeed", "env", "srun", "uv", NULL };
	for (int i = 0; names[i]; i++)
		if (!strncmp(base, names[i], strlen(names[i])))
			return 1;
	return 0;
}

/* --job, else the Slurm job's name, else the script's name:
 * "python train.py" -> "train". */
static int sv_default_job(struct sv *sv)
{
	const char *j = opt_str(sv->o, OPT_JOB);
	char buf[256];

	if (j && *j) {
		if (!ckpt_job_ok(j) || strlen(j) >= sizeof(sv->job))
			return log_fail(EX_USAGE, "invalid job id '%s': use letters, digits, '.', '_' "
						  "and '-', not starting with '.'", j);
		snprintf(sv->job, sizeof(sv->job), "%s", j);
		return 0;
	}
	if (sv_slurm_job_name(sv->job, sizeof(sv->job)))
		return 0;
	j = "job";
	for (char **a = sv->argv; *a; a++) {
		const char *b = strrchr(*a, '/') ? strrchr(*a, '/') + 1 : *a;
		if (**a == '-' || (a == sv->argv && sv_is_interpreter(b) && a[1]))
			continue;
		j = b;
		break;
	}
	snprintf(buf, sizeof(buf), "%s", j);
	char *dot = strrchr(buf, '.');
	if (dot && dot != buf)
		*dot = 0;
	run_job_sanitize(buf); /* a job id is a key component in the store */
	snprintf(sv->job, sizeof(sv->job), "%s", buf);
	return 0;
}

static int sv_abs_path(const char *in, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (in[0] == '/')
		return snprintf(out, len, "%s", in) >= (int)len ? -1 : 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	return snprintf(out, len, "%s/%s", cwd, in) >= (int)len ? -1 : 0;
}

static int sv_folders(struct sv *sv)
{
	const char *dir = opt_str(sv->o, OPT_CKPT_DIR);
	const char *tmp = getenv("TMPDIR");
	char def[PATH_MAX];
	int rc;

	if (!dir) {
		snprintf(def, sizeof(def), "spotrun-ckpt/%s", sv->job);
		dir = def;
	}
	if (sv_abs_path(dir, sv->ckpt_dir, sizeof(sv->ckpt_dir)))
		return log_fail(EX_USAGE, "checkpoint folder path too long: '%s'", dir);
	if ((rc = run_mkdirs(sv->ckpt_dir)))
		return rc;
	snprintf(sv->state_file, sizeof(sv->state_file), "%s/.spotrun-state.json", sv->ckpt_dir);
	/* the socket path must fit sun_path (108 bytes) */
	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(sv->rundir, sizeof(sv->rundir), "%s/spotrun-%d-XXXXXX", tmp, (int)getpid());
	if (!mkdtemp(sv->rundir))
		return log_fail(EX_CANTCREAT, "cannot create a folder in '%s': %s", tmp, strerror(errno));
	snprintf(sv->socket_path, sizeof(sv->socket_path), "%s/sock", sv->rundir);
	snprintf(sv->notice_file, sizeof(sv->notice_file), "%s/notice.json", sv->rundir);
	sv->listen_fd = sv_sock_listen(sv->socket_path);
	if (sv->listen_fd < 0)
		return log_fail(EX_OSERR, "cannot listen on '%s': %s", sv->socket_path, strerror(errno));
	return 0;
}

/* ---- the start counter ------------------------------------------------ */

static void sv_state_load(struct sv *sv)
{
	json_t *o = json_load_file(sv->state_file, 0, NULL);
	json_t *n = o ? json_object_get(o, "starts") : NULL;
	json_t *rate = o ? json_object_get(o, "push_bytes_per_sec") : NULL;
	json_t *raw = o ? json_object_get(o, "push_last_raw_bytes") : NULL;

	sv->starts_before = json_is_integer(n) && json_integer_value(n) > 0 ? (int)json_integer_value(n) : 0;
	sv->starts_saved = sv->starts_before;
	if (json_is_number(rate) && json_number_value(rate) > 0)
		sv->push.bytes_per_sec = json_number_value(rate);
	if (json_is_integer(raw) && json_integer_value(raw) > 0)
		sv->push.last_raw_bytes = (uint64_t)json_integer_value(raw);
	json_decref(o);
}

/* Saves the start counter (starts >= 0) and the measured push rate, so the
 * next run's grace budget starts from a measurement, not a guess. */
void sv_state_save(struct sv *sv, int starts)
{
	char tmp[PATH_MAX + 48];
	json_t *o;

	if (starts >= 0)
		sv->starts_saved = starts;
	o = json_pack("{s:i, s:s, s:f, s:I}", "starts", sv->starts_saved, "job", sv->job,
		      "push_bytes_per_sec", sv->push.bytes_per_sec, "push_last_raw_bytes",
		      (json_int_t)sv->push.last_raw_bytes);
	snprintf(tmp, sizeof(tmp), "%s.tmp", sv->state_file);
	if (!o || json_dump_file(o, tmp, JSON_COMPACT) || rename(tmp, sv->state_file))
		log_warn("cannot write '%s': %s", sv->state_file, strerror(errno));
	json_decref(o);
}

/* ---- notice file -------------------------------------------------------- */

void sv_write_notice_file(struct sv *sv)
{
	char tmp[PATH_MAX + 48];
	char *s = prov_notice_json(&sv->notice, sv->id_settled ? &sv->id : NULL);
	int fd;

	if (!s)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", sv->notice_file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s) || close(fd) ||
	    rename(tmp, sv->notice_file))
		log_warn("cannot write the notice file '%s': %s", sv->notice_file, strerror(errno));
	free(s);
}

/* ---- commits ------------------------------------------------------------- */

/* Validates a committed folder: it must be a subfolder of the checkpoint dir. */
static int sv_commit_check(struct sv *sv, const char *dir, char *err, size_t errlen)
{
	char real[PATH_MAX], base[PATH_MAX];
	size_t n;

	if (!realpath(dir, real) || !realpath(sv->ckpt_dir, base)) {
		snprintf(err, errlen, "'%s': %s", dir, strerror(errno));
		return -1;
	}
	n = strlen(base);
	if (strncmp(real, base, n) || real[n] != '/' || strchr(real + n + 1, '/') ||
	    real[n + 1] == '.') {
		snprintf(err, errlen, "'%.2000s' is not a folder directly inside SPOTRUN_CKPT_DIR '%.2000s'",
			 dir, sv->ckpt_dir);
		return -1;
	}
	return 0;
}

/* With --store none a local commit is the commit: its event fires here
 * (with a store, sv_push.c fires it once the checkpoint is in the store). */
static void sv_local_commit_event(struct sv *sv, const char *dir, long long step)
{
	const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;

	if (sv->push.store)
		return;
	sv_event(sv, "checkpoint-committed", json_pack("{s:s, s:s, s:I, s:b}", "dir", dir, "name", name,
						       "step", (json_int_t)step, "local", 1));
}

static void sv_commit(struct sv *sv, int fd, const struct sv_commit_req *req)
{
	char err[4200];

	if (sv_commit_check(sv, req->dir, err, sizeof(err))) {
		log_warn("commit refused: %s", err);
		sv_sock_reply(fd, 0, err);
		return;
	}
	if (run_mark_complete(req->dir, req->step)) {
		sv_sock_reply(fd, 0, "cannot write the marker");
		return;
	}
	sv_sock_reply(fd, 1, NULL);
	sv->last_commit_at = prov_now();
	log_info("checkpoint committed: '%s' (step %lld)", req->dir, req->step);
	sv_local_commit_event(sv, req->dir, req->step);
	sv_push_committed(sv, req->dir);
}

/* The child exited: pick up a folder committed by marker file, or (when it
 * exited by itself after a notice) the folder it wrote last. */
void sv_on_commit_exit(struct sv *sv, int exited_cleanly)
{
	struct run_local_ckpt c;
	char dir[PATH_MAX];

	if (exited_cleanly && run_newest_unmarked(sv->ckpt_dir, sv->last_commit_at, dir, sizeof(dir))) {
		log_note("command exited after writing '%s': taking it as finished", dir);
		run_mark_complete(dir, run_step_from_name(strrchr(dir, '/') + 1));
	}
	if (run_newest_local(sv->ckpt_dir, &c) && c.committed_at > sv->last_commit_at) {
		sv->last_commit_at = c.committed_at;
		if (!strcmp(c.path, sv->push.pushed))
			return; /* the folder restored from the store: already there */
		sv_local_commit_event(sv, c.path, c.step);
		sv_push_committed(sv, c.path);
	}
}

/* ---- commit socket clients --------------------------------------------- */

double sv_clients_deadline(const struct sv *sv)
{
	double d = 1e300;
	for (int i = 0; i < SV_MAX_CLIENTS; i++)
		if (sv->clients[i].fd > 0 && sv->clients[i].deadline < d)
			d = sv->clients[i].deadline;
	return d;
}

int sv_clients_pollfds(struct sv *sv, struct pollfd *pfd)
{
	for (int i = 0; i < SV_MAX_CLIENTS; i++)
		pfd[i] = (struct pollfd){ .fd = sv->clients[i].fd > 0 ? sv->clients[i].fd : -1,
					  .events = POLLIN };
	return SV_MAX_CLIENTS;
}

void sv_clients_accept(struct sv *sv)
{
	int fd;

	while ((fd = accept4(sv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		int slot = -1;
		for (int i = 0; i < SV_MAX_CLIENTS && slot < 0; i++)
			if (sv->clients[i].fd <= 0)
				slot = i;
		if (slot < 0) {
			sv_sock_reply(fd, 0, "supervisor busy");
			close(fd);
			continue;
		}
		sv->clients[slot] = (struct sv_client){ .fd = fd, .deadline = sv_mono() + 5 };
	}
}

static void sv_client_close(struct sv_client *c)
{
	close(c->fd);
	c->fd = 0;
	c->len = 0;
}

void sv_clients_service(struct sv *sv, struct pollfd *pfd, int n)
{
	double now = sv_mono();

	for (int i = 0; i < n && i < SV_MAX_CLIENTS; i++) {
		struct sv_client *c = &sv->clients[i];
		struct sv_commit_req req;
		char err[128] = "bad request";
		if (c->fd <= 0)
			continue;
		if (pfd[i].revents) {
			int r = sv_sock_read(c->fd, c->buf, sizeof(c->buf), &c->len, &req, err, sizeof(err));
			if (r == 0)
				continue;
			if (r > 0)
				sv_commit(sv, c->fd, &req);
			else
				sv_sock_reply(c->fd, 0, err);
			sv_client_close(c);
		} else if (now >= c->deadline) {
			sv_client_close(c);
		}
	}
}

/* ---- set-up and tear-down -------------------------------------------- */

static int sv_settings(struct sv *sv)
{
	struct opts *o = sv->o;

	sv->notice_signal = (int)opt_int(o, OPT_NOTICE_SIGNAL);
	sv->signal_grace = opt_seconds(o, OPT_SIGNAL_GRACE);
	sv->kill_after = opt_seconds(o, OPT_KILL_AFTER);
	sv->max_restarts = (int)opt_int(o, OPT_MAX_RESTARTS);
	sv->restart_on = opt_str(o, OPT_RESTART_ON);
	sv->restart_delay = opt_seconds(o, OPT_RESTART_DELAY);
	sv->exit_interrupted = (int)opt_int(o, OPT_EXIT_INTERRUPTED);
	if (sv->exit_interrupted > 255)
		return log_fail(EX_USAGE, "--exit-interrupted must be 0..255");
	return 0;
}

static int sv_signals(struct sv *sv)
{
	sigset_t set;
	static const int sigs[] = { SIGCHLD, SIGINT, SIGHUP, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
				    SIGWINCH };

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &set, &sv->orig_mask))
		return log_fail(EX_OSERR, "sigprocmask: %s", strerror(errno));
	sv_child_save_dispositions();
	/* An ignored signal is discarded even while blocked, so one inherited
	 * as ignored (a shell's `spotrun ... &` ignores SIGINT and SIGQUIT)
	 * would never reach the signalfd: spotrun forwards these on purpose,
	 * so they go back to the default, for us and for the command. */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;
		if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) {
			log_debug("signal %d was ignored: restoring its default", sigs[i]);
			signal(sigs[i], SIG_DFL);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	sv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sv->sigfd < 0)
		return log_fail(EX_OSERR, "signalfd: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		log_warn("cannot become a child subreaper: %s", strerror(errno));
	return 0;
}

static int sv_providers(struct sv *sv)
{
	struct prov_config pc = {
		.force = opt_str(sv->o, OPT_PROVIDER),
		.simulate = opt_str(sv->o, OPT_SIMULATE),
		.trigger_file = opt_str(sv->o, OPT_NOTICE_TRIGGER),
		.signal_grace = sv->signal_grace,
		.poll_interval = opt_seconds(sv->o, OPT_POLL_INTERVAL),
		.settle_timeout = 0.3,
		.hold = SV_PROBE_HOLD,
	};
	int rc = prov_config_check(&pc);

	if (rc || (rc = prov_watch_start(&pc, &sv->watch)))
		return rc;
	sv->id_settled = prov_watch_identity(sv->watch, &sv->id);
	return 0;
}

static void sv_teardown(struct sv *sv)
{
	sv_events_close(sv);
	prov_watch_stop(sv->watch);
	sv_push_close(sv);
	for (int i = 0; i < SV_MAX_CLIENTS; i++)
		if (sv->clients[i].fd > 0)
			close(sv->clients[i].fd);
	if (sv->listen_fd > 0)
		close(sv->listen_fd);
	if (sv->sigfd > 0)
		close(sv->sigfd);
	if (sv->rundir[0]) {
		unlink(sv->socket_path);
		unlink(sv->notice_file);
		rmdir(sv->rundir);
	}
	prov_notice_clear(&sv->notice);
}

/* Earlier starts on other machines count too: the job record's runs[]
 * (a new machine has no local counter), like SLURM_RESTART_COUNT does. */
static void sv_starts_from_record(struct sv *sv)
{
	int n = sv->push.store ? run_jobrec_count(sv->push.store, sv->job) : 0;

	if (n > sv->starts_before)
		sv->starts_before = n;
}

static void sv_event_start(struct sv *sv)
{
	json_t *argv = json_array();

	for (char **a = sv->argv; *a; a++)
		json_array_append_new(argv, json_string(*a));
	sv_event(sv, "start", json_pack("{s:o, s:s, s:s, s:i}", "command", argv, "ckpt_dir",
					sv->ckpt_dir, "store", run_store_url(sv->o), "restarts",
					sv->starts_before));
}

/* After the loop: Slurm requeue, the exit event and its hooks, the
 * --hook-strict verdict, the run's end in job.json.  Returns the exit code. */
static int sv_wind_up(struct sv *sv)
{
	int rc = sv->final_code;

	sv_slurm_requeue(sv);
	sv_events_exit(sv, rc);
	if (sv->hook_strict && hook_failures(sv->hooks) && rc == 0) {
		log_error("%d hook(s) failed and --hook-strict is set: exiting %d",
			  hook_failures(sv->hooks), EX_SOFTWARE);
		rc = sv->final_code = EX_SOFTWARE;
	}
	sv_record_end(sv);
	return rc;
}

int cmd_run(struct opts *o)
{
	struct sv *sv = calloc(1, sizeof(*sv));
	int rc;

	if (!sv)
		return log_fail(EX_OSERR, "out of memory");
	sv->o = o;
	sv->argv = o->args;
	sv->listen_fd = sv->sigfd = -1;
	sv->push.done_fd[0] = sv->push.done_fd[1] = -1;
	srand48((long)getpid() ^ (long)time(NULL));
	if (o->nargs < 1) {
		rc = log_fail(EX_USAGE, "no command to run (usage: spotrun [run] [OPTIONS] -- COMMAND)");
		goto out;
	}
	if ((rc = sv_default_job(sv)) || (rc = sv_settings(sv)) || (rc = sv_folders(sv)) || (rc = sv_push_open(sv)))
		goto out;
	sv_state_load(sv);
	if ((rc = sv_signals(sv)) || (rc = sv_providers(sv)))
		goto out;
	sv_slurm_setup(sv);
	sv_starts_from_record(sv);
	if ((rc = sv_events_open(sv)))
		goto out;
	sv_event_start(sv);
	if ((rc = sv_restore(sv)))
		goto out;
	sv_events_record(sv);
	if ((rc = sv_start_child(sv)))
		goto out;
	sv_record_start(sv); /* after the start: the command never waits for the store */
	if ((rc = sv_loop(sv)))
		goto out;
	rc = sv_wind_up(sv);
	if (rc == sv->exit_interrupted && sv->next == NEXT_INTERRUPTED)
		log_note("interrupted: exiting %d so the scheduler retries", rc);
out:
	sv_teardown(sv);
	free(sv);
	return rc;
}
