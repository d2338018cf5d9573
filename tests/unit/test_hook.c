/*
 * test_hook.c - the hook module's pure parts (EVENT=PATH parsing, event
 * names) and, driven by hand like the supervise loop drives it, the queue:
 * order, the event file on stdin, output lines, status and timeouts.
 */
#include "check.h"
#include "hooks.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

static void test_event_names(void)
{
	const char *ok[] = { "start", "notice", "checkpoint-committed", "push-failed", "resume",
			     "migration", "hardware-change", "exit" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ASSERT_TRUE(hook_event_ok(ok[i]));
	ASSERT_TRUE(!hook_event_ok("Start"));
	ASSERT_TRUE(!hook_event_ok("start "));
	ASSERT_TRUE(!hook_event_ok(""));
	ASSERT_TRUE(!hook_event_ok(NULL));
	ASSERT_TRUE(!hook_event_ok("restart")); /* recorded, but no hooks */
}

static void test_spec_parse_table(void)
{
	static const struct { const char *spec; int rc; const char *event, *path, *err; } t[] = {
		{ "start=/bin/true", 0, "start", "/bin/true", NULL },
		{ "exit=relative/x.sh", 0, "exit", "relative/x.sh", NULL },
		{ "notice=/a=b", 0, "notice", "/a=b", NULL },	/* first '=' splits */
		{ "checkpoint-committed=/x y", 0, "checkpoint-committed", "/x y", NULL },
		{ "start=", -1, NULL, NULL, "invalid hook 'start=': expected EVENT=PATH" },
		{ "=/bin/true", -1, NULL, NULL, "invalid hook '=/bin/true': expected EVENT=PATH" },
		{ "/bin/true", -1, NULL, NULL, "invalid hook '/bin/true': expected EVENT=PATH" },
		{ "", -1, NULL, NULL, "invalid hook '': expected EVENT=PATH" },
		{ "bogus=/x", -1, NULL, NULL, "unknown hook event 'bogus' (one of start, notice, "
		  "checkpoint-committed, push-failed, resume, migration, hardware-change, exit)" },
		{ "averyveryveryveryveryverylongeventname=/x", -1, NULL, NULL,
		  "unknown hook event 'averyveryveryveryveryverylongeventname'" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char ev[32] = "", err[256] = "";
		const char *path = NULL;
		int rc = hook_spec_parse(t[i].spec, ev, sizeof(ev), &path, err, sizeof(err));
		ASSERT_EQ(rc, t[i].rc);
		if (rc == 0) {
			ASSERT_STR_EQ(ev, t[i].event);
			ASSERT_STR_EQ(path, t[i].path);
		} else {
			ASSERT_STR_EQ(err, t[i].err);
		}
	}
}

static void test_set_rejects_bad_spec(void)
{
	char *specs[] = { "start=/bin/true", "nope=/bin/true", NULL };
	struct hook_config c = { .specs = specs, .tmpdir = "/tmp" };
	struct hook_set *h = (void *)1;

	log_setup(-1, LOG_FMT_HUMAN);
	ASSERT_EQ(hook_set_new(&c, &h), EX_USAGE);
	ASSERT_TRUE(h == NULL);
	hook_set_free(NULL);
}

/* Removes the test's files; the folder must then be empty (the module
 * removed its event files). */
static void rm_dir(const char *dir, const char *a, const char *b)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/%s", dir, a);
	ASSERT_EQ(unlink(p), 0);
	if (b) {
		snprintf(p, sizeof(p), "%s/%s", dir, b);
		ASSERT_EQ(unlink(p), 0);
	}
	ASSERT_EQ(rmdir(dir), 0);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Drives the set the way the loop does, reaping with waitpid(-1). */
static void drive(struct hook_set *h, double max_seconds)
{
	double end = mono() + max_seconds;

	while (hook_busy(h) && mono() < end) {
		struct pollfd pfd[HOOK_MAX_FDS];
		int n = hook_pollfds(h, pfd), status;
		pid_t pid;
		poll(pfd, (nfds_t)n, 10);
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			ASSERT_TRUE(hook_reaped(h, pid, status));
		hook_service(h, pfd, n);
	}
}

static void test_queue_order_stdin_status(void)
{
	char dir[] = "/tmp/test-hook-XXXXXX", path[256], specs_buf[3][300], out[4096];
	char *specs[4];
	struct hook_set *h;
	FILE *f;
	sigset_t mask;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/h.sh", dir);
	f = fopen(path, "w");
	fprintf(f, "#!/bin/sh\nprintf '%%s %%s ' \"$SPOTRUN_EVENT\" \"$(cat)\" >>%s/log\n"
		   "[ \"$(cat \"$SPOTRUN_EVENT_FILE\")\" = '{\"n\": 1}' ] || exit 9\nexit ${CODE:-0}\n", dir);
	fclose(f);
	chmod(path, 0755);
	snprintf(specs_buf[0], sizeof(specs_buf[0]), "start=%s", path);
	snprintf(specs_buf[1], sizeof(specs_buf[1]), "exit=%s", path);
	snprintf(specs_buf[2], sizeof(specs_buf[2]), "start=%s/missing", dir);
	specs[0] = specs_buf[0], specs[1] = specs_buf[1], specs[2] = specs_buf[2], specs[3] = NULL;
	sigemptyset(&mask);
	struct hook_config c = { .specs = specs, .tmpdir = dir, .timeout = 5, .mask = &mask };
	ASSERT_EQ(hook_set_new(&c, &h), 0);
	ASSERT_EQ(hook_count(h, "start"), 2);
	ASSERT_EQ(hook_count(h, "notice"), 0);
	ASSERT_EQ(hook_fire(h, "notice", "{}", NULL), 0);
	ASSERT_EQ(hook_fire(h, "start", "{\"n\": 1}", NULL), 2);
	char *env[] = { "CODE=3", NULL };
	ASSERT_EQ(hook_fire(h, "exit", "{\"n\": 1}", env), 1);
	ASSERT_TRUE(hook_busy(h));
	ASSERT_TRUE(isfinite(hook_deadline(h)));
	pid_t pg[2];
	ASSERT_EQ(hook_pgids(h, pg, 2), 1);
	drive(h, 10);
	ASSERT_TRUE(!hook_busy(h));
	ASSERT_EQ(hook_failures(h), 2); /* missing (127) and exit 3 */
	snprintf(path, sizeof(path), "%s/log", dir);
	f = fopen(path, "r");
	out[fread(out, 1, sizeof(out) - 1, f)] = 0;
	fclose(f);
	ASSERT_STR_EQ(out, "start {\"n\": 1} exit {\"n\": 1} ");
	hook_set_free(h);
	rm_dir(dir, "h.sh", "log");
}

static void test_timeout_kills_group(void)
{
	char *specs[] = { NULL, NULL };
	char dir[] = "/tmp/test-hook-XXXXXX", path[300], spec[400];
	struct hook_set *h;
	FILE *f;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/slow", dir);
	f = fopen(path, "w");
	fprintf(f, "#!/bin/sh\ntrap '' TERM\nsleep 30\n");
	fclose(f);
	chmod(path, 0755);
	snprintf(spec, sizeof(spec), "notice=%s", path);
	specs[0] = spec;
	struct hook_config c = { .specs = specs, .tmpdir = dir, .timeout = 0.2 };
	ASSERT_EQ(hook_set_new(&c, &h), 0);
	double t0 = mono();
	ASSERT_EQ(hook_fire(h, "notice", "{}", NULL), 1);
	drive(h, 10);
	double el = mono() - t0;
	ASSERT_TRUE(!hook_busy(h));
	ASSERT_EQ(hook_failures(h), 1);
	ASSERT_TRUE(el >= 2.0 && el < 6); /* 0.2 s, then SIGTERM ignored, SIGKILL 2 s later */
	hook_set_free(h);
	rm_dir(dir, "slow", NULL);
}

int main(void)
{
	static const struct check_case cases[] = {
		CHECK_CASE(test_event_names),
		CHECK_CASE(test_spec_parse_table),
		CHECK_CASE(test_set_rejects_bad_spec),
		CHECK_CASE(test_queue_order_stdin_status),
		CHECK_CASE(test_timeout_kills_group),
	};
	return check_run("unit/hook", cases, sizeof(cases) / sizeof(cases[0]));
}
