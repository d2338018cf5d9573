/*
 * supervise.c - `spotrun run`: the supervise loop.  An explicit state
 * machine (state x event -> small handler, after s6-supervise) that waits in
 * exactly one place: poll() over a signalfd, the provider watch pipe, the
 * commit socket and its clients, with one deadline computed from every
 * timer (grace, kill, restart backoff, drain, client timeouts); it never
 * sleeps.
 *
 *   RUNNING --notice--> NOTICED --term_at--> TERMINATING --kill_at--> KILLING
 *      |                   |                     |                       |
 *      +--child exits------+---------------------+-----------------------+
 *                          v
 *                      DRAINING (take every descendant down: TERM, then KILL)
 *                          v
 *            BACKOFF (crash restart) -> RUNNING,  or  FINISHING -> DONE
 */
#include "runner.h"
#include "sv.h"
#include "hooks.h"

#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double sv_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const sv_state_names[] = { "running", "noticed", "terminating", "killing",
					      "draining", "backoff", "finishing", "done" };

void sv_set_state(struct sv *sv, enum sv_state s)
{
	log_debug("state %s -> %s", sv_state_names[sv->state], sv_state_names[s]);
	sv->state = s;
}

/* ---- starting the child --------------------------------------------- */

static void sv_find_resume(struct sv *sv, struct sv_start *s)
{
	struct run_local_ckpt c;

	s->resume_dir[0] = 0;
	s->resume_step = -1;
	if (run_newest_local(sv->ckpt_dir, &c)) {
		snprintf(s->resume_dir, sizeof(s->resume_dir), "%s", c.path);
		s->resume_step = c.step;
	}
}

int sv_start_child(struct sv *sv)
{
	struct sv_start s = { .job = sv->job, .ckpt_dir = sv->ckpt_dir,
			      .notice_file = sv->notice_file, .socket_path = sv->socket_path };
	struct sv_env env;
	int err, rc;

	sv_find_resume(sv, &s);
	s.restarts = sv->starts_before + sv->restarts;
	s.id = sv->id_settled ? &sv->id : NULL;
	if (sv->hw_changed && !strcmp(s.resume_dir, sv->hw_dir))
		s.hw_old = sv->hw_old, s.hw_new = sv->hw_new;
	if ((rc = sv_env_build(&env, &s)))
		return rc;
	if (s.resume_dir[0])
		log_note("resuming from '%s' (step %lld)", s.resume_dir, s.resume_step);
	sv->child = sv_child_spawn(sv->argv, env.v, &sv->orig_mask, &err);
	sv_env_free(&env);
	if (sv->child == -2)
		return log_fail(EX_OSERR, "cannot fork: %s", strerror(errno));
	if (sv->child == -1) {
		sv->final_code = err == ENOENT || err == ENOTDIR ? 127 : 126;
		log_error("cannot run '%s': %s", sv->argv[0], strerror(err));
		sv_set_state(sv, SV_DONE);
		return 0;
	}
	sv->child_alive = 1;
	sv->started_at = sv_mono();
	if (!sv->probe_at)
		sv->probe_at = sv->started_at + SV_PROBE_DELAY;
	sv_state_save(sv, s.restarts + 1);
	log_info("started '%s' (pid %d, start %d)", sv->argv[0], (int)sv->child, s.restarts + 1);
	sv_set_state(sv, SV_RUNNING);
	return 0;
}

/* ---- events ------------------------------------------------------------ */

/* Signals the command's tree, sparing running hooks (our children too). */
static int sv_kill(const struct sv *sv, pid_t pgid, int sig)
{
	pid_t spare[4];
	int n = sv_spared_pgids(sv, spare, 4);

	return sv_child_kill_spare(pgid, sig, spare, n);
}

static void sv_begin_drain(struct sv *sv, enum sv_next next)
{
	sv->next = next;
	sv->drain_sig = SIGTERM;
	sv->drain_at = sv_mono() + (sv->kill_after < 2 ? sv->kill_after : 2);
	sv_set_state(sv, SV_DRAINING);
	sv_kill(sv, sv->child, SIGTERM);
	sv_check_drained(sv);
}

static int sv_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static void sv_on_child_exit(struct sv *sv, int status)
{
	int code = sv_exit_code(status);

	sv->child_alive = 0;
	sv->child_code = code;
	if (WIFSIGNALED(status))
		log_note("command killed by signal %d (%s)", WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?: "?");
	else
		log_info("command exited with status %d", code);
	switch (sv->state) {
	case SV_RUNNING:
		sv_on_commit_exit(sv, 0);
		if (code != 0 && opt_codes_match(sv->restart_on, code) == 1 &&
		    sv->restarts < sv->max_restarts) {
			sv_begin_drain(sv, NEXT_RESTART);
			return;
		}
		sv->final_code = code;
		sv_begin_drain(sv, NEXT_EXIT);
		return;
	case SV_NOTICED:
		/* exited by itself after the notice: its last folder is finished */
		sv_on_commit_exit(sv, WIFEXITED(status));
		/* fall through */
	case SV_TERMINATING:
	case SV_KILLING:
		sv->final_code = sv->exit_interrupted;
		sv_begin_drain(sv, NEXT_INTERRUPTED);
		return;
	default:
		return;
	}
}

static void sv_schedule_grace(struct sv *sv)
{
	double now = sv_mono(), left = sv->notice.deadline - prov_now();
	double reserve = sv_push_estimate(sv);
	double term = now + left - reserve - sv->kill_after;

	if (term < now)
		term = now;
	if (sv->state == SV_NOTICED && term >= sv->term_at)
		return; /* a later deadline never postpones an earlier one */
	sv->term_at = term;
	log_note("child gets SIGTERM in %.1f s (deadline in %.1f s, upload reserve %.1f s, "
		 "kill-after %.1f s)", term - now, left, reserve, sv->kill_after);
}

/* The notice event's data; the provider's own payload goes with it (raw:
 * parsed when it is JSON, raw_text: byte for byte), so the store keeps
 * exactly what the provider said. */
static json_t *sv_notice_data(const struct sv *sv)
{
	const struct prov_notice *n = &sv->notice;
	json_t *d = json_pack("{s:s, s:s, s:f, s:f, s:s}", "source", n->source, "kind",
			      prov_kind_name(n->kind), "lead_seconds", n->deadline - n->received,
			      "deadline", n->deadline, "state", sv_state_names[sv->state]);
	json_t *raw;

	if (d && n->raw) {
		raw = json_loads(n->raw, JSON_DECODE_ANY, NULL);
		json_object_set_new(d, "raw", raw ? raw : json_string(n->raw));
		json_object_set_new(d, "raw_text", json_string(n->raw)); /* NULL: not UTF-8 */
	}
	return d;
}

void sv_on_notice(struct sv *sv, struct prov_notice *n)
{
	log_note("interruption notice: %s from %s, deadline in %.1f s", prov_kind_name(n->kind),
		 n->source, n->deadline - prov_now());
	if (n->kind == PROV_REBALANCE) {
		log_note("rebalance recommendation: pushing the newest checkpoint early");
		sv_push_newest(sv);
		prov_notice_clear(n);
		return;
	}
	if (sv->noticed && n->deadline >= sv->notice.deadline) {
		prov_notice_clear(n);
		return;
	}
	if (sv->noticed)
		prov_notice_clear(&sv->notice);
	sv->notice = *n;
	n->raw = NULL;
	sv->noticed = 1;
	sv_write_notice_file(sv);
	sv_event(sv, "notice", sv_notice_data(sv));
	switch (sv->state) {
	case SV_RUNNING:
		sv_schedule_grace(sv);
		sv_set_state(sv, SV_NOTICED);
		if (kill(sv->child, sv->notice_signal) == 0)
			log_info("sent %s to the command", sigabbrev_np(sv->notice_signal) ?: "signal");
		return;
	case SV_NOTICED:
		sv_schedule_grace(sv);
		return;
	case SV_BACKOFF:
		sv->final_code = sv->exit_interrupted;
		sv->next = NEXT_INTERRUPTED;
		sv_finish(sv);
		return;
	case SV_DRAINING:
		if (sv->next == NEXT_RESTART) {
			sv->next = NEXT_INTERRUPTED;
			sv->final_code = sv->exit_interrupted;
		}
		return;
	default:
		return;
	}
}

static void sv_on_signal(struct sv *sv, const struct signalfd_siginfo *si)
{
	int sig = (int)si->ssi_signo;
	struct prov_notice n;

	switch (sig) {
	case SIGCHLD:
		return; /* reaping happens after every wake-up */
	case SIGTERM:
	case SIGUSR1:
		if (sv->state == SV_DRAINING && sv->next == NEXT_EXIT)
			return;
		prov_notice_make(&n, "signal", PROV_SCHEDULER, sv->signal_grace);
		if (asprintf(&n.raw, "{\"signal\": \"SIG%s\", \"sender_pid\": %u}",
			     sigabbrev_np(sig), si->ssi_pid) < 0)
			n.raw = NULL;
		sv_on_notice(sv, &n);
		return;
	default: /* SIGINT, SIGHUP, SIGQUIT, SIGUSR2, SIGWINCH: forward */
		if (sv->child_alive) {
			kill(sv->child, sig);
		} else if (sv->state == SV_BACKOFF && sig != SIGWINCH && sig != SIGUSR2) {
			sv->final_code = 128 + sig;
			sv->next = NEXT_EXIT;
			sv_finish(sv);
		}
		return;
	}
}

static void sv_on_deadline(struct sv *sv, double now)
{
	switch (sv->state) {
	case SV_NOTICED:
		if (now < sv->term_at)
			return;
		log_note("grace period over: sending SIGTERM to the command's process group");
		sv_kill(sv, sv->child, SIGTERM);
		sv->kill_at = now + sv->kill_after;
		sv_set_state(sv, SV_TERMINATING);
		return;
	case SV_TERMINATING:
		if (now < sv->kill_at)
			return;
		log_warn("command still running %.1f s after SIGTERM: sending SIGKILL", sv->kill_after);
		sv_kill(sv, sv->child, SIGKILL);
		sv_set_state(sv, SV_KILLING);
		return;
	case SV_DRAINING:
		if (now < sv->drain_at)
			return;
		if (sv->drain_sig == SIGTERM) {
			sv->drain_sig = SIGKILL;
			sv->drain_at = now + 2;
			sv_kill(sv, sv->child, SIGKILL);
		} else {
			log_warn("some descendants did not exit after SIGKILL; leaving them");
			sv_after_drain(sv);
		}
		return;
	case SV_BACKOFF:
		if (now >= sv->restart_at)
			sv_start_child(sv);
		return;
	default:
		return;
	}
}

/* Reaps every exited child; the main child's status drives the machine,
 * hooks' statuses go to the hook module. */
static void sv_reap(struct sv *sv)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == sv->child && sv->child_alive)
			sv_on_child_exit(sv, status);
		else if (!hook_reaped(sv->hooks, pid, status))
			log_debug("reaped descendant %d", (int)pid);
	}
	if (sv->state == SV_DRAINING) {
		sv_kill(sv, 0, sv->drain_sig); /* newly reparented orphans */
		sv_check_drained(sv);
	}
}

/* Drained: no child of ours is left except running hooks. */
void sv_check_drained(struct sv *sv)
{
	pid_t spare[4];
	int status, n;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (!hook_reaped(sv->hooks, pid, status))
			log_debug("reaped descendant %d", (int)pid);
	n = sv_spared_pgids(sv, spare, 4);
	if ((pid < 0 && errno == ECHILD) || (pid == 0 && n > 0 && !sv_child_others(spare, n)))
		sv_after_drain(sv);
}

void sv_after_drain(struct sv *sv)
{
	if (sv->state != SV_DRAINING)
		return;
	if (sv->next == NEXT_RESTART) {
		double base = sv->restart_delay * pow(2, sv->restarts);
		double delay = (base > 300 ? 300 : base) * (0.5 + 0.5 * drand48());
		sv->restarts++;
		sv->restart_at = sv_mono() + delay;
		log_note("command failed with status %d: restart %d of %d in %.2f s", sv->child_code,
			 sv->restarts, sv->max_restarts, delay);
		sv_event(sv, "restart", json_pack("{s:i, s:i, s:f}", "code", sv->child_code,
						  "restart", sv->restarts, "delay", delay));
		sv_set_state(sv, SV_BACKOFF);
		return;
	}
	sv_finish(sv);
}

/* ---- the loop ---------------------------------------------------------- */

static double sv_next_deadline(const struct sv *sv)
{
	double d = INFINITY;

	switch (sv->state) {
	case SV_NOTICED: d = sv->term_at; break;
	case SV_TERMINATING: d = sv->kill_at; break;
	case SV_DRAINING: d = sv->drain_at; break;
	case SV_BACKOFF: d = sv->restart_at; break;
	default: break;
	}
	if (sv->probe_at > 0)
		d = fmin(d, sv->probe_at);
	d = fmin(d, sv_clients_deadline(sv));
	d = fmin(d, hook_deadline(sv->hooks));
	return fmin(d, sv_push_deadline(sv));
}

/* Provider probes were held (sv_providers) so that the command's start
 * never waits for them or for libcurl; they go SV_PROBE_DELAY after it. */
static void sv_release_probes(struct sv *sv, double now)
{
	if (sv->probe_at > 0 && now >= sv->probe_at) {
		prov_watch_release(sv->watch);
		sv->probe_at = -1;
	}
}

static void sv_read_signals(struct sv *sv)
{
	struct signalfd_siginfo si[8];
	ssize_t r;

	while ((r = read(sv->sigfd, si, sizeof(si))) > 0)
		for (size_t i = 0; i < (size_t)r / sizeof(si[0]); i++)
			sv_on_signal(sv, &si[i]);
}

static void sv_take_notices(struct sv *sv)
{
	struct prov_notice n;

	while (sv->watch && prov_watch_take(sv->watch, &n))
		sv_on_notice(sv, &n);
	if (sv->watch && !sv->id_settled && prov_watch_identity(sv->watch, &sv->id)) {
		sv->id_settled = 1;
		log_info("provider: %s%s%s", sv->id.provider, sv->id.region[0] ? " region " : "",
			 sv->id.region);
	}
}

int sv_loop(struct sv *sv)
{
	struct pollfd pfd[4 + SV_MAX_CLIENTS + HOOK_MAX_FDS];

	while (sv->state != SV_DONE) {
		double now = sv_mono(), d = sv_next_deadline(sv);
		int timeout = isinf(d) ? -1 : d <= now ? 0 : (int)ceil((d - now) * 1000);
		int n = 0;

		pfd[n++] = (struct pollfd){ .fd = sv->sigfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = sv->watch ? prov_watch_fd(sv->watch) : -1, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = sv->listen_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = sv_push_fd(sv), .events = POLLIN };
		n += sv_clients_pollfds(sv, pfd + n);
		int nh = hook_pollfds(sv->hooks, pfd + n);
		n += nh;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			return log_fail(EX_OSERR, "poll: %s", strerror(errno));
		if (pfd[0].revents)
			sv_read_signals(sv);
		sv_reap(sv);
		if (pfd[1].revents)
			sv_take_notices(sv);
		if (pfd[2].revents)
			sv_clients_accept(sv);
		if (pfd[3].revents)
			sv_push_done(sv);
		sv_clients_service(sv, pfd + 4, SV_MAX_CLIENTS);
		hook_service(sv->hooks, pfd + 4 + SV_MAX_CLIENTS, nh);
		sv_release_probes(sv, sv_mono());
		sv_on_deadline(sv, sv_mono());
	}
	return 0;
}
