/*
 * child.c - starting the supervised command and taking its process tree
 * down.  The child runs in its own process group with the signal mask and
 * dispositions it would have had without us; an exec failure travels back
 * through a close-on-exec pipe as errno, so 126/127 are detected, not
 * guessed.  spotrun is a child subreaper: orphaned descendants are
 * reparented to it, and sv_child_kill_all() finds them through /proc.
 */
#include "runner.h"
#include "sv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/types.h>
#include <unistd.h>

extern char **environ;

/* Dispositions before spotrun changed them (sv_child_save_dispositions). */
static struct sigaction sv_orig_sigpipe, sv_orig_sigttou;

/* Real-time signals our parent ignored.  glibc reserves 32 and 33 for its
 * threads and refuses sigaction() on them, and a threaded spotrun may take
 * one over, so they are read and restored with the raw system call. */
static unsigned char sv_orig_rt_ignored[_NSIG];

struct sv_ksigaction { /* the kernel's struct sigaction on x86-64 and arm64 */
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

void sv_child_save_dispositions(void)
{
	struct sv_ksigaction k;

	sigaction(SIGPIPE, NULL, &sv_orig_sigpipe);
	sigaction(SIGTTOU, NULL, &sv_orig_sigttou);
	for (int sig = 32; sig < _NSIG; sig++)
		if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof(k.mask)) == 0)
			sv_orig_rt_ignored[sig] = k.handler == SIG_IGN;
}

/* In the child: async-signal-safe (raw system calls only). */
static void sv_child_restore_rt(void)
{
	struct sv_ksigaction k = { .handler = SIG_IGN };

	for (int sig = 32; sig < _NSIG; sig++)
		if (sv_orig_rt_ignored[sig])
			syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
}

/* Child protocol variables that must never leak in from our own environment. */
static const char *const sv_protocol_vars[] = {
	"SPOTRUN_JOB", "SPOTRUN_CKPT_DIR", "SPOTRUN_RESUME_DIR", "SPOTRUN_RESUME_STEP",
	"SPOTRUN_RESTARTS", "SPOTRUN_NOTICE_FILE", "SPOTRUN_SOCKET", "SPOTRUN_PROVIDER",
	"SPOTRUN_REGION", "SPOTRUN_INSTANCE_TYPE", "SPOTRUN_LIFECYCLE", "SPOTRUN_HARDWARE_CHANGED",
	"SPOTRUN_HARDWARE_OLD", "SPOTRUN_HARDWARE_NEW", NULL,
};

static int sv_env_add(struct sv_env *e, const char *name, const char *value)
{
	if (e->n + 2 > SV_ENV_MAX)
		return -1;
	if (asprintf(&e->v[e->n], "%s=%s", name, value) < 0)
		return -1;
	e->n++;
	e->v[e->n] = NULL;
	return 0;
}

void sv_env_free(struct sv_env *e)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->owned[i])
			free(e->v[i]);
	memset(e, 0, sizeof(*e));
}

static int sv_is_protocol_var(const char *kv)
{
	for (int i = 0; sv_protocol_vars[i]; i++) {
		size_t n = strlen(sv_protocol_vars[i]);
		if (!strncmp(kv, sv_protocol_vars[i], n) && kv[n] == '=')
			return 1;
	}
	return 0;
}

/* Builds the child's environment: ours minus stale protocol variables,
 * plus the protocol variables of this start.  Done before fork(). */
int sv_env_build(struct sv_env *e, const struct sv_start *s)
{
	char num[32];
	int rc = 0;

	memset(e, 0, sizeof(*e));
	for (char **p = environ; *p && e->n + 16 < SV_ENV_MAX; p++) {
		if (sv_is_protocol_var(*p))
			continue;
		e->v[e->n++] = *p;
	}
	size_t first_owned = e->n;
	rc |= sv_env_add(e, "SPOTRUN_JOB", s->job);
	rc |= sv_env_add(e, "SPOTRUN_CKPT_DIR", s->ckpt_dir);
	if (s->resume_dir[0]) {
		rc |= sv_env_add(e, "SPOTRUN_RESUME_DIR", s->resume_dir);
		if (s->resume_step >= 0) {
			snprintf(num, sizeof(num), "%lld", s->resume_step);
			rc |= sv_env_add(e, "SPOTRUN_RESUME_STEP", num);
		}
	}
	snprintf(num, sizeof(num), "%d", s->restarts);
	rc |= sv_env_add(e, "SPOTRUN_RESTARTS", num);
	rc |= sv_env_add(e, "SPOTRUN_NOTICE_FILE", s->notice_file);
	rc |= sv_env_add(e, "SPOTRUN_SOCKET", s->socket_path);
	if (s->id && s->id->provider[0]) {
		rc |= sv_env_add(e, "SPOTRUN_PROVIDER", s->id->provider);
		if (s->id->region[0])
			rc |= sv_env_add(e, "SPOTRUN_REGION", s->id->region);
		if (s->id->instance_type[0])
			rc |= sv_env_add(e, "SPOTRUN_INSTANCE_TYPE", s->id->instance_type);
		if (s->id->lifecycle[0])
			rc |= sv_env_add(e, "SPOTRUN_LIFECYCLE", s->id->lifecycle);
	}
	if (s->hw_old && s->hw_new) {
		rc |= sv_env_add(e, "SPOTRUN_HARDWARE_CHANGED", "1");
		rc |= sv_env_add(e, "SPOTRUN_HARDWARE_OLD", s->hw_old);
		rc |= sv_env_add(e, "SPOTRUN_HARDWARE_NEW", s->hw_new);
	}
	for (size_t i = first_owned; i < e->n; i++)
		e->owned[i] = 1;
	if (rc) {
		sv_env_free(e);
		return log_fail(EX_OSERR, "cannot build the child's environment");
	}
	return 0;
}

/* In the child after fork(): only async-signal-safe calls until exec. */
static void sv_child_exec(char **argv, char **envp, const sigset_t *mask, int errfd,
			  pid_t parent, int take_tty)
{
	int err;

	setpgid(0, 0);
	if (take_tty) {
		signal(SIGTTOU, SIG_IGN);
		tcsetpgrp(STDIN_FILENO, getpgrp());
	}
	/* spotrun killed with SIGKILL must not leave the tree running */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(128 + SIGKILL);
	/* only what spotrun itself changed goes back: dispositions inherited
	 * from our parent (an ignored signal, say) stay as they were */
	sigaction(SIGPIPE, &sv_orig_sigpipe, NULL);
	sigaction(SIGTTOU, &sv_orig_sigttou, NULL);
	sv_child_restore_rt();
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvpe(argv[0], argv, envp);
	err = errno;
	if (write(errfd, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

/* Forks and execs argv.  Returns the pid, or -1 with *exec_errno set when
 * exec failed (the failed child has been reaped), or -2 on fork failure. */
pid_t sv_child_spawn(char **argv, char **envp, const sigset_t *orig_mask, int *exec_errno)
{
	int pfd[2], err = 0, status;
	pid_t parent = getpid(), pid;
	int take_tty = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
	ssize_t r;

	*exec_errno = 0;
	if (pipe2(pfd, O_CLOEXEC))
		return -2;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -2;
	}
	if (pid == 0) {
		close(pfd[0]);
		sv_child_exec(argv, envp, orig_mask, pfd[1], parent, take_tty);
	}
	setpgid(pid, pid); /* both sides set it: no race with an early kill(-pgid) */
	close(pfd[1]);
	do
		r = read(pfd[0], &err, sizeof(err));
	while (r < 0 && errno == EINTR);
	close(pfd[0]);
	if (r == (ssize_t)sizeof(err)) {
		waitpid(pid, &status, 0);
		*exec_errno = err;
		return -1;
	}
	return pid;
}

static int sv_spared(pid_t pgrp, const pid_t *spare, int nspare)
{
	for (int i = 0; i < nspare; i++)
		if (spare[i] == pgrp)
			return 1;
	return 0;
}

/* Calls fn for every process whose parent is us and whose process group is
 * not spared; returns how many there were. */
static int sv_children_scan(const pid_t *spare, int nspare, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[300], buf[512], state;
		int ppid = 0, pgrp = 0;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		char *p = strrchr(buf, ')'); /* comm may contain spaces and parens */
		if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 || ppid != self ||
		    sv_spared(pgrp, spare, nspare))
			continue;
		if (sig)
			kill((pid_t)atoi(e->d_name), sig);
		n++;
	}
	closedir(d);
	return n;
}

/* Sends sig to the command's process group and to every process whose
 * parent is us (orphans reparented to the subreaper included), except the
 * spared process groups (running hooks). */
int sv_child_kill_spare(pid_t pgid, int sig, const pid_t *spare, int nspare)
{
	int n = 0;

	if (pgid > 0 && !sv_spared(pgid, spare, nspare) && kill(-pgid, sig) == 0)
		n++;
	return n + sv_children_scan(spare, nspare, sig);
}

int sv_child_kill_all(pid_t pgid, int sig)
{
	return sv_child_kill_spare(pgid, sig, NULL, 0);
}

int sv_child_others(const pid_t *spare, int nspare)
{
	return sv_children_scan(spare, nspare, 0) > 0;
}
