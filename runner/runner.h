/*
 * runner.h - the CLI layer: subcommands, options (flags > SPOTRUN_* env >
 * JSON config file > defaults), the supervise loop and local checkpoint
 * bookkeeping.  Only code in runner/ exits the process, and only main.c
 * calls exit: every other function returns 0 or an EX_* code (sysexits.h).
 */
#ifndef SPOTRUN_RUNNER_H
#define SPOTRUN_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* Subcommands, as bits so an option can list where it applies. */
enum run_cmd {
	CMD_RUN = 1 << 0, CMD_PUSH = 1 << 1, CMD_PULL = 1 << 2, CMD_LS = 1 << 3,
	CMD_VERIFY = 1 << 4, CMD_GC = 1 << 5, CMD_DETECT = 1 << 6, CMD_WATCH = 1 << 7,
	CMD_PLAN = 1 << 8, CMD_MIGRATE = 1 << 9, CMD_COMMIT = 1 << 10,
};
#define CMD_ALL 0x7ff
#define CMD_STORE (CMD_RUN | CMD_PUSH | CMD_PULL | CMD_LS | CMD_VERIFY | CMD_GC | CMD_PLAN | CMD_MIGRATE)

/* Option ids; the table in options.c defines name, env twin, type and help. */
enum opt_id {
	OPT_HELP, OPT_VERSION, OPT_CONFIG, OPT_QUIET, OPT_VERBOSE, OPT_LOG_FORMAT,
	OPT_JOB, OPT_STORE, OPT_ENDPOINT, OPT_CKPT_DIR, OPT_STEP, OPT_KEEP, OPT_KEEP_LOCAL,
	OPT_WORKERS, OPT_PART_SIZE, OPT_LEVEL, OPT_JSON,
	OPT_NOTICE_SIGNAL, OPT_SIGNAL_GRACE, OPT_KILL_AFTER, OPT_NOTICE_TRIGGER,
	OPT_SIMULATE, OPT_PROVIDER, OPT_POLL_INTERVAL, OPT_MAX_RESTARTS, OPT_RESTART_ON,
	OPT_RESTART_DELAY, OPT_EXIT_INTERRUPTED, OPT_TO, OPT_DRY_RUN,
	/* schedulers, hooks, observability [5/7] */
	OPT_HOOK, OPT_HOOKS_DIR, OPT_HOOK_TIMEOUT, OPT_HOOK_STRICT, OPT_SLURM_REQUEUE,
	OPT_METRICS_FILE,
	/* migration [6/7] */
	OPT_CATALOG, OPT_TARGETS, OPT_HOURS, OPT_MAX_COST, OPT_MIGRATE, OPT_HARDWARE_CHANGE,
	OPT_FROM_STORE,
	/* codec, incremental, encryption [7/7]; in the order of options.c's
	 * table, which is indexed by these ids */
	OPT_PORTABLE, OPT_FULL, OPT_CA_BUNDLE, OPT_ENCRYPT_KEY_FILE,
	OPT__COUNT
};

enum opt_type { OT_FLAG, OT_COUNT, OT_STR, OT_INT, OT_SECONDS, OT_SIGNAL, OT_SIZE, OT_CODES,
		OT_NUMBER, /* a number >= 0, e.g. 12.5 */
		OT_LIST,   /* repeatable: each flag adds one item; env: items separated by ';' or
			    * newlines; config: an array of strings */
};
enum opt_src { SRC_DEFAULT = 0, SRC_CONFIG, SRC_ENV, SRC_FLAG };

struct opts;
/* One subcommand: name, bit, usage line, one-line summary, entry point. */
struct run_cmd_info {
	const char *name;
	enum run_cmd cmd;
	const char *usage;
	const char *summary;
	int (*fn)(struct opts *o);
};

struct opts {
	enum run_cmd cmd;
	const char *cmd_name;
	char *owned[OPT__COUNT];	/* values converted from the config file */
	const char *val[OPT__COUNT];	/* raw text, owned by argv/environ/config */
	enum opt_src src[OPT__COUNT];
	char *config_path;		/* the config file that was read, if any */
	int verbosity;
	int nargs;			/* positional arguments after options */
	char **args;
};

/* Parses argv for one subcommand.  Returns 0, EX_USAGE or EX_CONFIG (after
 * logging one line).  *done is set when --help/--version was printed. */
int opts_parse(struct opts *o, const struct run_cmd_info *ci, int argc, char **argv, int *done);
void opts_free(struct opts *o);
/* Typed access; the value was validated by opts_parse.  Defaults apply. */
const char *opt_str(const struct opts *o, enum opt_id id);
long long opt_int(const struct opts *o, enum opt_id id);
double opt_seconds(const struct opts *o, enum opt_id id);
double opt_number(const struct opts *o, enum opt_id id);
/* Items of an OT_LIST option: NULL-terminated, malloc'd; free with opt_list_free. */
char **opt_list(const struct opts *o, enum opt_id id);
void opt_list_free(char **items);
int opt_flag(const struct opts *o, enum opt_id id);
int opt_is_set(const struct opts *o, enum opt_id id);
/* Exit-code list ("1,2,130-140" or "any"): is code in it? */
int opt_codes_match(const char *spec, int code);
int opt_parse_signal(const char *s);
int opt_parse_seconds(const char *s, double *out);
int opt_parse_size(const char *s, uint64_t *out);
void opts_print_help(const struct run_cmd_info *ci);

/* Shared by the subcommands (common.c). */
#define RUN_DEFAULT_STORE "spotrun-store"	/* a folder store in the working folder */
struct xfer_store;
/* --store, else the default local folder store; "none" means no store. */
const char *run_store_url(const struct opts *o);
/* Opens the store with --endpoint/--workers/--part-size; *st = NULL for "none". */
int run_store_open(const struct opts *o, struct xfer_store **st);
int run_workers(const struct opts *o);
struct json_t;
/* Prints a JSON document (indented) on stdout; takes the reference. */
int run_print_json(struct json_t *j);
/* Opens another store next to --store (spotrun migrate --to, run
 * --from-store): --endpoint applies when its scheme is --store's, else the
 * store's environment (AWS_ENDPOINT_URL, ...) does.  "none" is a usage error
 * naming opt. */
int run_store_open_other(const struct opts *o, const char *url, const char *opt, struct xfer_store **st);
/* Like run_store_open, but "none" is a usage error (store subcommands). */
int run_store_need(const struct opts *o, struct xfer_store **st);
/* Positional argument count check: EX_USAGE (logged) outside [lo, hi]. */
int run_nargs(const struct opts *o, int lo, int hi);
/* --job, else the store's only job (*owned is then malloc'd). */
int run_store_job(const struct opts *o, struct xfer_store *st, const char **job, char **owned);
/* The seq of --step's newest checkpoint, or of the newest. */
int run_store_pick(const struct opts *o, struct xfer_store *st, const char *job, uint64_t *seq);
/* Job record and events in the store (jobrec.c); json_t from jansson. */
struct json_t;
/* <job>/job.json as a JSON object, NULL when missing or not an object. */
struct json_t *run_jobrec_read(struct xfer_store *st, const char *job);
int run_jobrec_run(struct xfer_store *st, const char *job, char **argv, int index, struct json_t *run);
int run_event_put(struct xfer_store *st, const char *job, const char *host, struct json_t *ev);
void run_now_iso(char *buf, size_t n);
struct ckpt_origin;
struct xfer_place;
/* Where a store holds a checkpoint (cmd_plan.c; docs/migration.md "Where a
 * checkpoint is"): s3/gs/az name the provider, the region is the manifest's
 * when it was made on that provider; a file:// store is where the manifest
 * says it was made. */
void run_store_place(const char *url, const struct ckpt_origin *og, struct xfer_place *p);
/* Migration records (cmd_plan.c): append rec to job.json's migrations[]
 * (creating the record from base when missing); who/where made the move. */
int run_jobrec_migration(struct xfer_store *st, const char *job, struct json_t *base,
			 struct json_t *rec);
struct json_t *run_migration_who(void);
/* Makes a job id store-safe: [A-Za-z0-9._-], not starting with '.'. */
void run_job_sanitize(char *job);

/* Subcommands: each takes the parsed options, returns an exit code. */
int cmd_run(struct opts *o);
int cmd_commit(struct opts *o);
int cmd_push(struct opts *o);
int cmd_pull(struct opts *o);
int cmd_ls(struct opts *o);
int cmd_verify(struct opts *o);
int cmd_gc(struct opts *o);
int cmd_detect(struct opts *o);
int cmd_watch(struct opts *o);
int cmd_plan(struct opts *o);
int cmd_migrate(struct opts *o);

/* Local checkpoint folders (localckpt.c). */
struct run_local_ckpt {
	char path[4096];
	long long step;		/* -1 when unknown */
	double committed_at;	/* marker mtime */
};
/* Writes DIR/.spotrun-complete (atomically) with its step. */
int run_mark_complete(const char *dir, long long step);
/* Finds the newest finished folder in ckpt_dir; returns 1 found, 0 none. */
int run_newest_local(const char *ckpt_dir, struct run_local_ckpt *out);
/* Newest unmarked folder modified after `after`: 1 found. */
int run_newest_unmarked(const char *ckpt_dir, double after, char *out, size_t outlen);
/* mkdir -p; 0 or EX_CANTCREAT (logged). */
int run_mkdirs(const char *path);
/* Step number from a folder name such as step-000500; -1 when none. */
long long run_step_from_name(const char *name);

/* Child process plumbing (child.c), used by the supervise loop. */
#include <signal.h>
#include <sys/types.h>
#include "provider.h"

#define SV_ENV_MAX 4096
struct sv_env {
	char *v[SV_ENV_MAX];
	unsigned char owned[SV_ENV_MAX];
	size_t n;
};
/* What one start of the child gets (DESIGN.md section 3). */
struct sv_start {
	const char *job, *ckpt_dir, *notice_file, *socket_path;
	char resume_dir[4096];
	long long resume_step;
	int restarts;
	const struct prov_identity *id;	/* NULL until detection settles */
	/* resuming a checkpoint made on other hardware (--hardware-change warn or
	 * allow): compact JSON fingerprints, "null" for no GPU; NULL otherwise */
	const char *hw_old, *hw_new;
};
int sv_env_build(struct sv_env *e, const struct sv_start *s);
void sv_env_free(struct sv_env *e);
pid_t sv_child_spawn(char **argv, char **envp, const sigset_t *orig_mask, int *exec_errno);
int sv_child_kill_all(pid_t pgid, int sig);
/* Call before changing SIGPIPE/SIGTTOU: the child gets the originals back. */
void sv_child_save_dispositions(void);

/* Commit socket (commitsock.c): the supervisor's side. */
struct sv_commit_req {
	char dir[4096];
	long long step;
};
int sv_sock_listen(const char *path);
/* Reads one request from a connected client (non-blocking fd): 1 complete,
 * 0 need more, -1 bad/closed.  buf/len keep partial input between calls. */
int sv_sock_read(int fd, char *buf, size_t cap, size_t *len, struct sv_commit_req *req, char *err,
		 size_t errlen);
void sv_sock_reply(int fd, int ok, const char *msg);

#endif
