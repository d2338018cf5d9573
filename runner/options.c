/*
 * options.c - every option of every subcommand, defined once: long name,
 * short name, SPOTRUN_* environment twin, type, default, help text and the
 * subcommands that take it.  Parsing builds getopt_long's table from it and
 * resolves precedence flags > environment > JSON config file > default.
 * Values are validated here so subcommands read them without checks.
 */
#include "runner.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opt_def {
	enum opt_id id;
	const char *name;
	int shortopt;
	enum opt_type type;
	const char *env;	/* SPOTRUN_* twin, NULL for --help/--version */
	const char *def;	/* default value as text, NULL = unset */
	unsigned cmds;
	const char *argname;
	const char *help;
};

static const struct opt_def opt_table[OPT__COUNT] = {
	{ OPT_HELP, "help", 'h', OT_FLAG, NULL, NULL, CMD_ALL, NULL, "show this help and exit" },
	{ OPT_VERSION, "version", 'V', OT_FLAG, NULL, NULL, CMD_ALL, NULL, "print the version and exit" },
	{ OPT_CONFIG, "config", 0, OT_STR, "SPOTRUN_CONFIG", NULL, CMD_ALL, "FILE",
	  "JSON config file (default ./spotrun.json if present); keys are option names" },
	{ OPT_QUIET, "quiet", 'q', OT_FLAG, "SPOTRUN_QUIET", NULL, CMD_ALL, NULL, "only errors and warnings" },
	{ OPT_VERBOSE, "verbose", 'v', OT_COUNT, "SPOTRUN_VERBOSE", NULL, CMD_ALL, NULL, "more detail (twice: debug)" },
	{ OPT_LOG_FORMAT, "log-format", 0, OT_STR, "SPOTRUN_LOG_FORMAT", "human", CMD_ALL, "FMT",
	  "human (default) or json (one JSON object per line, for schedulers)" },
	{ OPT_JOB, "job", 'j', OT_STR, "SPOTRUN_JOB", NULL, CMD_ALL & ~CMD_COMMIT, "ID",
	  "job id (default: the command's name)" },
	{ OPT_STORE, "store", 's', OT_STR, "SPOTRUN_STORE", NULL, CMD_STORE, "URL",
	  "checkpoint store: file:///path, s3://, gs://, az://, or none" },
	{ OPT_ENDPOINT, "endpoint", 0, OT_STR, "SPOTRUN_ENDPOINT", NULL, CMD_STORE, "URL",
	  "object store endpoint for S3-compatible services and Azurite" },
	{ OPT_CKPT_DIR, "ckpt-dir", 'd', OT_STR, "SPOTRUN_CKPT_DIR", NULL, CMD_RUN | CMD_COMMIT, "DIR",
	  "local folder the child writes checkpoints into (default ./spotrun-ckpt/JOB)" },
	{ OPT_STEP, "step", 0, OT_INT, "SPOTRUN_STEP", NULL, CMD_PULL | CMD_PUSH | CMD_COMMIT | CMD_VERIFY, "N",
	  "checkpoint step (default: newest, or taken from the folder name)" },
	{ OPT_KEEP, "keep", 'k', OT_INT, "SPOTRUN_KEEP", NULL, CMD_GC, "N", "checkpoints to keep (at least 1)" },
	{ OPT_KEEP_LOCAL, "keep-local", 0, OT_INT, "SPOTRUN_KEEP_LOCAL", "0", CMD_RUN, "N",
	  "prune local checkpoint folders already in the store, keeping N (0: keep all)" },
	{ OPT_WORKERS, "workers", 0, OT_INT, "SPOTRUN_WORKERS", "0", CMD_STORE, "N",
	  "compression and transfer workers (0: one per core)" },
	{ OPT_PART_SIZE, "part-size", 0, OT_SIZE, "SPOTRUN_PART_SIZE", "8M", CMD_STORE, "SIZE",
	  "uncompressed bytes per part (e.g. 8M, 64M)" },
	{ OPT_LEVEL, "level", 0, OT_INT, "SPOTRUN_LEVEL", "1", CMD_STORE, "N", "zstd compression level" },
	{ OPT_JSON, "json", 0, OT_FLAG, "SPOTRUN_JSON", NULL, CMD_LS | CMD_DETECT | CMD_WATCH | CMD_PLAN | CMD_VERIFY,
	  NULL, "machine-readable JSON output" },
	{ OPT_NOTICE_SIGNAL, "notice-signal", 0, OT_SIGNAL, "SPOTRUN_NOTICE_SIGNAL", "USR1", CMD_RUN, "SIG",
	  "signal sent to the child when a notice arrives" },
	{ OPT_SIGNAL_GRACE, "signal-grace", 0, OT_SECONDS, "SPOTRUN_SIGNAL_GRACE", "30", CMD_RUN, "SECS",
	  "time budget of a SIGTERM/SIGUSR1 notice sent to spotrun (Kubernetes, Slurm)" },
	{ OPT_KILL_AFTER, "kill-after", 0, OT_SECONDS, "SPOTRUN_KILL_AFTER", "5", CMD_RUN, "SECS",
	  "SIGKILL this long after SIGTERM" },
	{ OPT_NOTICE_TRIGGER, "notice-file", 0, OT_STR, "SPOTRUN_NOTICE_TRIGGER", NULL, CMD_RUN | CMD_WATCH, "PATH",
	  "treat PATH appearing as an interruption notice" },
	{ OPT_SIMULATE, "simulate", 0, OT_STR, "SPOTRUN_SIMULATE", NULL, CMD_RUN | CMD_WATCH, "[PROV:]KIND@SECS",
	  "rehearse a notice: preempt@30 (deadline --signal-grace later), or a provider's own "
	  "payload and lead: aws:terminate@30s, gcp:preempt@10s, azure:preempt@5s" },
	{ OPT_PROVIDER, "provider", 0, OT_STR, "SPOTRUN_PROVIDER_FORCE", "auto", CMD_RUN | CMD_DETECT | CMD_WATCH, "NAME",
	  "auto, none, or a provider name" },
	{ OPT_POLL_INTERVAL, "poll-interval", 0, OT_SECONDS, "SPOTRUN_POLL_INTERVAL", "2", CMD_RUN | CMD_WATCH, "SECS",
	  "metadata poll period" },
	{ OPT_MAX_RESTARTS, "max-restarts", 0, OT_INT, "SPOTRUN_MAX_RESTARTS", "0", CMD_RUN, "N",
	  "restart a crashed child up to N times" },
	{ OPT_RESTART_ON, "restart-on", 0, OT_CODES, "SPOTRUN_RESTART_ON", "any", CMD_RUN, "CODES",
	  "exit codes that count as a crash: any (non-zero), or a list like 1,137,130-140" },
	{ OPT_RESTART_DELAY, "restart-delay", 0, OT_SECONDS, "SPOTRUN_RESTART_DELAY", "1", CMD_RUN, "SECS",
	  "first restart backoff; doubles each time (max 5 min), with jitter" },
	{ OPT_EXIT_INTERRUPTED, "exit-interrupted", 0, OT_INT, "SPOTRUN_EXIT_INTERRUPTED", "75", CMD_RUN, "CODE",
	  "exit code after an interruption with the checkpoint safe" },
	{ OPT_TO, "to", 0, OT_STR, "SPOTRUN_MIGRATE_TO", NULL, CMD_MIGRATE, "URL", "destination store" },
	{ OPT_DRY_RUN, "dry-run", 'n', OT_FLAG, "SPOTRUN_DRY_RUN", NULL, CMD_MIGRATE | CMD_GC, NULL,
	  "show what would happen, change nothing" },
	{ OPT_HOOK, "hook", 0, OT_LIST, "SPOTRUN_HOOK", NULL, CMD_RUN | CMD_MIGRATE, "EVENT=PATH",
	  "run executable PATH on EVENT (start, notice, checkpoint-committed, push-failed, resume, "
	  "migration, hardware-change, exit); repeatable" },
	{ OPT_HOOKS_DIR, "hooks-dir", 0, OT_STR, "SPOTRUN_HOOKS_DIR", NULL, CMD_RUN | CMD_MIGRATE, "DIR",
	  "run DIR/EVENT and DIR/EVENT.d/* on each event" },
	{ OPT_HOOK_TIMEOUT, "hook-timeout", 0, OT_SECONDS, "SPOTRUN_HOOK_TIMEOUT", "30", CMD_RUN | CMD_MIGRATE,
	  "SECS", "kill a hook still running after this long" },
	{ OPT_HOOK_STRICT, "hook-strict", 0, OT_FLAG, "SPOTRUN_HOOK_STRICT", NULL, CMD_RUN | CMD_MIGRATE, NULL,
	  "a failing hook fails the run (default: logged only)" },
	{ OPT_SLURM_REQUEUE, "slurm-requeue", 0, OT_FLAG, "SPOTRUN_SLURM_REQUEUE", NULL, CMD_RUN, NULL,
	  "after an interruption, scontrol requeue this Slurm job (default: when submitted with --requeue)" },
	{ OPT_METRICS_FILE, "metrics-file", 0, OT_STR, "SPOTRUN_METRICS_FILE", NULL, CMD_RUN, "PATH",
	  "write Prometheus text metrics to PATH (node_exporter textfile collector)" },
	{ OPT_CATALOG, "catalog", 0, OT_STR, "SPOTRUN_CATALOG", NULL, CMD_RUN | CMD_PLAN | CMD_MIGRATE, "FILE",
	  "price catalog JSON (default: the shipped examples/catalog.json)" },
	{ OPT_TARGETS, "targets", 0, OT_STR, "SPOTRUN_TARGETS", NULL, CMD_PLAN, "LIST",
	  "PROVIDER:REGION[:TYPE],... to rank (default: every catalog entry)" },
	{ OPT_HOURS, "hours", 0, OT_NUMBER, "SPOTRUN_HOURS", NULL, CMD_PLAN | CMD_MIGRATE | CMD_RUN, "H",
	  "remaining run time (default: from the job record's progress rate)" },
	{ OPT_MAX_COST, "max-cost", 0, OT_NUMBER, "SPOTRUN_MAX_COST", NULL, CMD_MIGRATE, "USD",
	  "refuse a migration whose estimated cost is higher" },
	{ OPT_MIGRATE, "migrate", 0, OT_STR, "SPOTRUN_MIGRATE", "deny", CMD_RUN, "POLICY",
	  "checkpoint elsewhere than where we run: deny, allow, or max-cost=USD" },
	{ OPT_HARDWARE_CHANGE, "hardware-change", 0, OT_STR, "SPOTRUN_HARDWARE_CHANGE", "warn", CMD_RUN, "POLICY",
	  "checkpoint made on other GPUs (type or count): deny (exit 78), warn, or allow" },
	{ OPT_FROM_STORE, "from-store", 0, OT_STR, "SPOTRUN_FROM_STORE", NULL, CMD_RUN, "URL",
	  "the store the job ran against before it moved: a newer checkpoint there is pulled "
	  "directly or copied into --store first, whichever costs less (--migrate decides)" },
	{ OPT_PORTABLE, "portable", 0, OT_FLAG, "SPOTRUN_PORTABLE", NULL, CMD_RUN | CMD_PUSH | CMD_MIGRATE, NULL,
	  "plain zstd frames only, so zstd -dc data.tar.zst | tar -x works without spotrun" },
	{ OPT_FULL, "full", 0, OT_FLAG, "SPOTRUN_FULL", NULL, CMD_RUN | CMD_PUSH, NULL,
	  "upload every file (default: files unchanged since the previous checkpoint are referenced)" },
	{ OPT_CA_BUNDLE, "ca-bundle", 0, OT_STR, "SPOTRUN_CA_BUNDLE", NULL, CMD_STORE, "FILE",
	  "PEM bundle of CAs for TLS to the store (verification is always on)" },
	{ OPT_ENCRYPT_KEY_FILE, "encrypt-key-file", 0, OT_STR, "SPOTRUN_ENCRYPT_KEY_FILE", NULL, CMD_STORE, "FILE",
	  "encrypt checkpoints client-side (AES-256-GCM) with the 32-byte key in FILE" },
};

/* ---- value parsing -------------------------------------------------- */

int opt_parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return -1;
	if (!strcmp(end, "ms"))
		v /= 1000.0;
	else if (!strcmp(end, "m"))
		v *= 60.0;
	else if (!strcmp(end, "h"))
		v *= 3600.0;
	else if (*end && strcmp(end, "s"))
		return -1;
	*out = v;
	return 0;
}

int opt_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return -1;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int opt_parse_number(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int opt_parse_int(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || errno)
		return -1;
	*out = v;
	return 0;
}

int opt_parse_signal(const char *s)
{
	long long n;
	if (opt_parse_int(s, &n) == 0)
		return n > 0 && n < NSIG ? (int)n : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int i = 1; i < NSIG; i++) {
		const char *abbrev = sigabbrev_np(i);
		if (abbrev && !strcasecmp(s, abbrev))
			return i;
	}
	return -1;
}

/* "any", or comma-separated codes and ranges: 1,2,130-140 */
int opt_codes_match(const char *spec, int code)
{
	if (!strcmp(spec, "any"))
		return code != 0;
	const char *p = spec;
	while (*p) {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;
		if (end == p)
			return -1;
		if (*end == '-') {
			p = end + 1;
			hi = strtol(p, &end, 10);
			if (end == p)
				return -1;
		}
		if (code >= lo && code <= hi)
			return 1;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		p = end;
	}
	return 0;
}

static int opt_validate(const struct opt_def *d, const char *v)
{
	long long n;
	double s;
	uint64_t sz;

	switch (d->type) {
	case OT_FLAG:
	case OT_COUNT:
		return strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") && strcmp(v, "false") &&
			       opt_parse_int(v, &n) ? -1 : 0;
	case OT_STR:
		if (d->id == OPT_LOG_FORMAT) {
			enum log_format f;
			return log_parse_format(v, &f);
		}
		return 0;
	case OT_INT:
		return opt_parse_int(v, &n) || n < 0 || n > INT_MAX ? -1 : 0;
	case OT_SECONDS:
		return opt_parse_seconds(v, &s);
	case OT_SIGNAL:
		return opt_parse_signal(v) < 0 ? -1 : 0;
	case OT_SIZE:
		return opt_parse_size(v, &sz);
	case OT_CODES:
		return opt_codes_match(v, 0) < 0 ? -1 : 0;
	case OT_NUMBER:
		return opt_parse_number(v, &s);
	case OT_LIST:
		return 0;
	}
	return -1;
}

static const char *opt_type_hint(enum opt_type t)
{
	switch (t) {
	case OT_INT: return "a whole number >= 0";
	case OT_SECONDS: return "seconds, e.g. 30, 1.5, 500ms, 2m";
	case OT_SIGNAL: return "a signal name or number, e.g. USR1";
	case OT_SIZE: return "a size, e.g. 8M";
	case OT_CODES: return "'any' or codes like 1,137,130-140";
	case OT_NUMBER: return "a number >= 0";
	case OT_FLAG: case OT_COUNT: return "true, false or a number";
	default: return "a valid value";
	}
}

/* ---- access --------------------------------------------------------- */

static const char *opt_value(const struct opts *o, enum opt_id id)
{
	return o->val[id] ? o->val[id] : opt_table[id].def;
}

const char *opt_str(const struct opts *o, enum opt_id id) { return opt_value(o, id); }
int opt_is_set(const struct opts *o, enum opt_id id) { return o->val[id] != NULL; }

long long opt_int(const struct opts *o, enum opt_id id)
{
	const char *v = opt_value(o, id);
	long long n = 0;
	uint64_t sz;

	if (!v)
		return -1;
	if (opt_table[id].type == OT_SIZE)
		return opt_parse_size(v, &sz) ? -1 : (long long)sz;
	if (opt_table[id].type == OT_SIGNAL)
		return opt_parse_signal(v);
	opt_parse_int(v, &n);
	return n;
}

double opt_seconds(const struct opts *o, enum opt_id id)
{
	double s = 0;
	const char *v = opt_value(o, id);
	if (v)
		opt_parse_seconds(v, &s);
	return s;
}

double opt_number(const struct opts *o, enum opt_id id)
{
	double v = 0;
	const char *s = opt_value(o, id);
	if (s)
		opt_parse_number(s, &v);
	return v;
}

char **opt_list(const struct opts *o, enum opt_id id)
{
	const char *v = opt_value(o, id);
	size_t n = 0, k = 0;
	char **items, *copy, *save = NULL;

	for (const char *p = v ? v : ""; *p; p++)
		n += *p == '\n' || *p == ';';
	items = calloc(n + 2, sizeof(*items));
	copy = strdup(v ? v : "");
	if (!items || !copy) {
		free(items);
		free(copy);
		return NULL;
	}
	for (char *t = strtok_r(copy, "\n;", &save); t; t = strtok_r(NULL, "\n;", &save))
		if (*t && !(items[k++] = strdup(t)))
			break;
	free(copy);
	return items;
}

void opt_list_free(char **items)
{
	for (size_t i = 0; items && items[i]; i++)
		free(items[i]);
	free(items);
}

int opt_flag(const struct opts *o, enum opt_id id)
{
	const char *v = opt_value(o, id);
	return v && strcmp(v, "0") && strcmp(v, "false");
}

/* ---- help ----------------------------------------------------------- */

void opts_print_help(const struct run_cmd_info *ci)
{
	printf("usage: %s\n\n%s\n\noptions:\n", ci->usage, ci->summary);
	for (int i = 0; i < OPT__COUNT; i++) {
		const struct opt_def *d = &opt_table[i];
		char left[64];
		if (!(d->cmds & ci->cmd))
			continue;
		int n = d->shortopt ? snprintf(left, sizeof(left), "-%c, --%s", d->shortopt, d->name)
				    : snprintf(left, sizeof(left), "    --%s", d->name);
		if (d->argname)
			snprintf(left + n, sizeof(left) - (size_t)n, " %s", d->argname);
		printf("  %-28s %s", left, d->help);
		if (d->def && d->type != OT_FLAG && !strstr(d->help, "default"))
			printf(" (default %s)", d->def);
		if (d->env)
			printf(" [%s]", d->env);
		putchar('\n');
	}
	printf("\nprecedence: flags, then SPOTRUN_* environment, then the config file.\n"
	       "exit codes: see docs/exit-codes.md (75: interrupted, retry).\n");
}

/* ---- parsing -------------------------------------------------------- */

static const struct opt_def *opt_find(const char *name)
{
	for (int i = 0; i < OPT__COUNT; i++)
		if (!strcmp(opt_table[i].name, name))
			return &opt_table[i];
	return NULL;
}

static int opts_getopt(struct opts *o, const struct run_cmd_info *ci, int argc, char **argv)
{
	struct option lopts[OPT__COUNT + 1];
	char shorts[2 * OPT__COUNT + 4] = "+:";
	size_t ns = 2, nl = 0;
	int c, idx, count = 0;

	if (ci->cmd != CMD_RUN) /* only run needs options first; others: spotrun push DIR --job J */
		memmove(shorts, shorts + 1, ns--);

	for (int i = 0; i < OPT__COUNT; i++) {
		const struct opt_def *d = &opt_table[i];
		if (!(d->cmds & ci->cmd))
			continue;
		int arg = d->type == OT_FLAG || d->type == OT_COUNT ? no_argument : required_argument;
		lopts[nl++] = (struct option){ d->name, arg, NULL, 1000 + i };
		if (d->shortopt) {
			shorts[ns++] = (char)d->shortopt;
			if (arg == required_argument)
				shorts[ns++] = ':';
		}
	}
	lopts[nl] = (struct option){ 0 };
	shorts[ns] = 0;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, lopts, &idx)) != -1) {
		const struct opt_def *d = NULL;
		if (c == '?' || c == ':') {
			const char *bad = argv[optind - 1];
			return log_fail(EX_USAGE, "%s '%s' (see 'spotrun %s --help')",
					c == '?' ? "unknown option" : "missing value for", bad ? bad : "?",
					ci->name);
		}
		if (c >= 1000)
			d = &opt_table[c - 1000];
		for (int i = 0; !d && i < OPT__COUNT; i++)
			if (opt_table[i].shortopt == c)
				d = &opt_table[i];
		if (!d)
			return log_fail(EX_USAGE, "unknown option (see 'spotrun %s --help')", ci->name);
		o->src[d->id] = SRC_FLAG;
		if (d->type == OT_COUNT) {
			count++;
			o->val[d->id] = "1";
		} else if (d->type == OT_FLAG) {
			o->val[d->id] = "1";
		} else if (opt_validate(d, optarg)) {
			return log_fail(EX_USAGE, "invalid value '%s' for --%s: expected %s", optarg,
					d->name, opt_type_hint(d->type));
		} else if (d->type == OT_LIST && o->val[d->id]) {
			char *joined;
			if (asprintf(&joined, "%s\n%s", o->val[d->id], optarg) < 0)
				return log_fail(EX_OSERR, "out of memory");
			free(o->owned[d->id]);
			o->owned[d->id] = joined;
			o->val[d->id] = joined;
		} else {
			o->val[d->id] = optarg;
		}
	}
	o->verbosity = 1 + count;
	o->args = argv + optind;
	o->nargs = argc - optind;
	return 0;
}

static int opts_env(struct opts *o, const struct run_cmd_info *ci)
{
	for (int i = 0; i < OPT__COUNT; i++) {
		const struct opt_def *d = &opt_table[i];
		const char *v;
		if (!(d->cmds & ci->cmd) || !d->env || o->val[i] || !(v = getenv(d->env)) || !*v)
			continue;
		if (opt_validate(d, v))
			return log_fail(EX_CONFIG, "invalid value '%s' in environment %s: expected %s", v,
					d->env, opt_type_hint(d->type));
		o->val[i] = v;
		o->src[i] = SRC_ENV;
	}
	return 0;
}

/* A list option in the config file: an array of strings, joined by newlines. */
static int opts_config_list(struct opts *o, const struct opt_def *d, json_t *v, const char *path)
{
	size_t i, len = 1;
	json_t *item;
	char *joined;

	json_array_foreach(v, i, item) {
		if (!json_is_string(item) || strchr(json_string_value(item), '\n'))
			return log_fail(EX_CONFIG, "config '%s': \"%s\" must be an array of strings",
					path, d->name);
		len += json_string_length(item) + 1;
	}
	if (!(joined = calloc(1, len)))
		return log_fail(EX_OSERR, "out of memory");
	json_array_foreach(v, i, item) {
		if (i)
			strcat(joined, "\n");
		strcat(joined, json_string_value(item));
	}
	o->owned[d->id] = joined;
	o->val[d->id] = joined;
	o->src[d->id] = SRC_CONFIG;
	return 0;
}

static int opts_config_value(struct opts *o, const struct opt_def *d, json_t *v, const char *path)
{
	char buf[64];
	const char *text = NULL;

	if (d->type == OT_LIST && json_is_array(v))
		return opts_config_list(o, d, v, path);
	if (json_is_string(v))
		text = json_string_value(v);
	else if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v)), text = buf;
	else if (json_is_real(v))
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v)), text = buf;
	else if (json_is_boolean(v))
		text = json_is_true(v) ? "1" : "0";
	if (!text || opt_validate(d, text))
		return log_fail(EX_CONFIG, "config '%s': invalid value for \"%s\": expected %s", path,
				d->name, opt_type_hint(d->type));
	if (!(o->owned[d->id] = strdup(text)))
		return log_fail(EX_OSERR, "out of memory");
	o->val[d->id] = o->owned[d->id];
	o->src[d->id] = SRC_CONFIG;
	return 0;
}

static int opts_config(struct opts *o, const struct run_cmd_info *ci)
{
	const char *path = o->val[OPT_CONFIG];
	json_error_t jerr;
	const char *key;
	json_t *root, *v;
	int rc = 0;

	if (!path) {
		if (access("spotrun.json", F_OK))
			return 0;
		path = "spotrun.json";
	}
	o->config_path = strdup(path);
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (jerr.line < 1)
			return log_fail(EX_CONFIG, "config '%s': %s", path, jerr.text);
		return log_fail(EX_CONFIG, "config '%s': line %d column %d: %s", path, jerr.line,
				jerr.column, jerr.text);
	}
	if (!json_is_object(root)) {
		rc = log_fail(EX_CONFIG, "config '%s': line 1: expected a JSON object", path);
		goto out;
	}
	json_object_foreach(root, key, v) {
		const struct opt_def *d = opt_find(key);
		if (!d || !d->env || d->id == OPT_CONFIG) {
			rc = log_fail(EX_CONFIG, "config '%s': unknown option \"%s\"", path, key);
			goto out;
		}
		if (!(d->cmds & ci->cmd) || o->val[d->id])
			continue;
		if ((rc = opts_config_value(o, d, v, path)))
			goto out;
	}
out:
	json_decref(root);
	return rc;
}

int opts_parse(struct opts *o, const struct run_cmd_info *ci, int argc, char **argv, int *done)
{
	enum log_format fmt;
	int rc;

	memset(o, 0, sizeof(*o));
	o->cmd = ci->cmd;
	o->cmd_name = ci->name;
	*done = 0;
	for (int i = 0; i < OPT__COUNT; i++) /* the table is indexed by id */
		if (opt_table[i].id != (enum opt_id)i)
			return log_fail(EX_SOFTWARE, "option table: entry %d is not in enum opt_id order", i);
	if ((rc = opts_getopt(o, ci, argc, argv)))
		return rc;
	if (o->val[OPT_HELP]) {
		opts_print_help(ci);
		*done = 1;
		return 0;
	}
	if (o->val[OPT_VERSION]) {
		printf("spotrun %s\n", SPOTRUN_VERSION);
		*done = 1;
		return 0;
	}
	if ((rc = opts_env(o, ci)) || (rc = opts_config(o, ci)))
		return rc;
	if (o->src[OPT_VERBOSE] != SRC_FLAG && o->val[OPT_VERBOSE]) {
		long long n = 0;
		opt_parse_int(o->val[OPT_VERBOSE], &n);
		o->verbosity = 1 + (int)(!strcmp(o->val[OPT_VERBOSE], "true") ? 1 : n);
	}
	if (opt_flag(o, OPT_QUIET))
		o->verbosity = 0;
	log_parse_format(opt_str(o, OPT_LOG_FORMAT), &fmt);
	log_setup(o->verbosity, fmt);
	return 0;
}

void opts_free(struct opts *o)
{
	for (int i = 0; i < OPT__COUNT; i++)
		free(o->owned[i]);
	free(o->config_path);
	memset(o, 0, sizeof(*o));
}
