/*
 * ckpt.h - the checkpoint engine: pushes a local checkpoint folder into a
 * store as one committed checkpoint, lists, pulls, verifies and collects
 * them.  The store layout and the manifest are described in
 * docs/store-format.md:
 *
 *   <job>/ckpt/<seq>/claim.json      seq reservation (create-only)
 *   <job>/ckpt/<seq>/data.tar.zst    pax tar cut into parts of fixed raw size,
 *                                    each an independent zstd or bp1 frame
 *                                    (docs/codec.md), AES-256-GCM when encrypted
 *   <job>/ckpt/<seq>/manifest.mac    encrypted checkpoints: the manifest's HMAC
 *   <job>/ckpt/<seq>/manifest.json   written last, create-only: the commit
 *
 * Pushes are incremental by default: files unchanged since the previous
 * committed checkpoint are referenced, not uploaded (ckpt_ref.c).
 *
 * A checkpoint without a manifest does not exist: list, pull and verify
 * never see it, and gc removes it once it is clearly abandoned.
 *
 * Threading: every call is thread-safe and may run on a background thread
 * (the supervise loop pushes from one).  Nothing here exits, raises or
 * catches signals, changes the working folder or keeps global state; output
 * goes through log.h, plus one progress line on stderr when asked for and
 * stderr is a terminal.  Memory is bounded by about 2 x (workers + 1) x
 * part_size plus a few MiB, whatever the checkpoint's size.
 *
 * Return values: 0, or an EX_* code from sysexits.h after logging the reason
 * once: EX_DATAERR (65) a checkpoint failed verification or is malformed,
 * EX_NOINPUT (66) no such checkpoint or folder, EX_CANTCREAT (73) the pull
 * destination exists, EX_IOERR (74) local I/O, or a store error (see xfer.h).
 */
#ifndef SPOTRUN_CKPT_H
#define SPOTRUN_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

struct xfer_store;

#define CKPT_FORMAT 2			/* newest manifest "format" understood (1: plain zstd parts only) */
#define CKPT_PART_SIZE_DEFAULT (8u << 20)
#define CKPT_PART_SIZE_MIN (64u << 10)
#define CKPT_PART_SIZE_MAX (1u << 30)

/* Where a checkpoint was made; any field may be NULL (recorded as ""). */
struct ckpt_ident {
	const char *host, *provider, *region, *instance_type;
};

struct ckpt_push_opts {
	const char *job;	/* required: [A-Za-z0-9._-], not starting with '.' */
	long long step;		/* -1: from the folder name's last digits (step-000500), else unknown */
	int workers;		/* compression threads; 0 = one per core */
	uint64_t part_size;	/* raw bytes per part; 0 = CKPT_PART_SIZE_DEFAULT */
	int level;		/* zstd level; 0 = 1 */
	int progress;		/* 1: progress line on stderr when it is a terminal */
	struct ckpt_ident ident;	/* host NULL: gethostname() */
	const char *gpu_json;	/* GPU fingerprint (JSON object text) to record; NULL: probe now */
	int portable;		/* 1: plain zstd frames only (zstd -dc | tar -x works) */
	int full;		/* 1: no references to the previous checkpoint (not incremental) */
	const unsigned char *key;	/* CKPT_KEY_LEN bytes: encrypt (AES-256-GCM); NULL: plain */
};

struct ckpt_result {
	uint64_t seq;
	long long step;		/* -1 unknown */
	uint64_t raw_bytes;	/* tar stream bytes */
	uint64_t stored_bytes;	/* compressed bytes in the store */
	uint64_t files;		/* entries (files, folders, symlinks) */
	double seconds;
	char name[256];		/* the folder's name */
	uint64_t ref_bytes;	/* file bytes referenced from earlier checkpoints, not uploaded */
};

/* Pushes folder dir as the next checkpoint of o->job and commits it.  r may be NULL. */
int ckpt_push(struct xfer_store *st, const char *dir, const struct ckpt_push_opts *o,
	      struct ckpt_result *r);

struct ckpt_info {
	uint64_t seq;
	long long step;		/* -1 unknown */
	char name[256];
	char created[40];	/* RFC 3339, UTC */
	uint64_t raw_bytes, stored_bytes;
	unsigned files;
};

/* The committed checkpoints of job, ascending seq; free(*v).  A manifest
 * that cannot be read is skipped with a warning.  No checkpoints: 0, *n = 0. */
int ckpt_list(struct xfer_store *st, const char *job, struct ckpt_info **v, size_t *n);

/* Job names that have at least one object in the store, sorted; free with
 * ckpt_jobs_free. */
int ckpt_jobs(struct xfer_store *st, char ***jobs, size_t *n);
void ckpt_jobs_free(char **jobs, size_t n);

/* The newest committed checkpoint of job (with step, when step >= 0):
 * 0 and *seq, or EX_NOINPUT (logged) when there is none. */
int ckpt_find(struct xfer_store *st, const char *job, long long step, uint64_t *seq);

struct ckpt_pull_opts {
	const char *job;
	int workers;		/* parallel part downloads/decoders; 0 = one per core */
	int progress;
	int replace;		/* 1: dest may exist and is replaced (rename, then old removed) */
	const unsigned char *key;	/* user key for encrypted checkpoints; NULL: none */
};

/* Restores checkpoint seq of o->job into dest, which must not exist (unless
 * o->replace).  Everything is extracted into a hidden sibling folder
 * (".<name>.spotrun-tmp-XXXXXX"), checked against the manifest (part and
 * file hashes, paths that stay inside the folder) and renamed into place;
 * on any failure nothing is left behind.  r may be NULL. */
int ckpt_pull(struct xfer_store *st, uint64_t seq, const char *dest, const struct ckpt_pull_opts *o,
	      struct ckpt_result *r);

/* Reads checkpoint seq entirely and checks every part hash, every file hash
 * and the archive's structure, writing nothing.  EX_DATAERR names the first
 * bad part or file. */
int ckpt_verify(struct xfer_store *st, const char *job, uint64_t seq, const struct ckpt_pull_opts *o);

/* Deletes all but the newest keep (>= 1) committed checkpoints, and
 * uncommitted leftovers (claims/data without manifest) whose seq is below
 * the newest committed one or that are older than one hour.  dry_run: only
 * log what would go.  Each deletion is logged as a note. */
int ckpt_gc(struct xfer_store *st, const char *job, unsigned keep, int dry_run);

/* GPU fingerprint of this machine as JSON object text (malloc'd):
 * {"count":N,"driver":"...","devices":[{"name":...,"cc":"9.0"},...]}, or
 * NULL when no NVIDIA library or GPU is present.  Loads libnvidia-ml /
 * libcudart with dlopen, so it works (returning NULL) on machines without. */
char *ckpt_gpu_fingerprint(void);
/* The GPU fingerprint checkpoint seq of job recorded (*gpu malloc'd JSON
 * text, NULL when it recorded none); whether two fingerprints are the same
 * hardware (same device count and names; memory and driver may differ); a
 * short summary: "2x NVIDIA H100 80GB" or "no GPU". */
int ckpt_gpu_recorded(struct xfer_store *st, const char *job, uint64_t seq, char **gpu);
int ckpt_gpu_same(const char *a, const char *b);
void ckpt_gpu_summary(const char *fp, char *out, size_t n);

#define CKPT_KEY_LEN 32
/* Reads a user key file: exactly 32 bytes, or 64 hex digits (a trailing
 * newline allowed).  0, or EX_* logged. */
int ckpt_key_load(const char *path, unsigned char key[CKPT_KEY_LEN]);

/* The step in a folder name: its last group of digits ("step-000500" -> 500),
 * -1 when it has none. */
long long ckpt_step_from_name(const char *name);

/* Is job usable as a job id (and a store key component)? */
int ckpt_job_ok(const char *job);

/* ==== migration between stores [6/7 migration] (ckpt_migrate.c) ========
 * See docs/migration.md. */

/* Where and when a committed checkpoint was made (from its manifest). */
struct ckpt_origin {
	char provider[32], region[64], instance[96], created[40];
	long long step;		/* -1 unknown */
	uint64_t stored_bytes;	/* bytes of every object under its seq, but the manifest */
};
int ckpt_origin(struct xfer_store *st, const char *job, uint64_t seq, struct ckpt_origin *o);

struct ckpt_migrate_result {
	unsigned copied, skipped;	/* checkpoints */
	uint64_t bytes;			/* bytes copied (streamed or server-side) */
	uint64_t server_side_bytes;	/* of which copied inside the service */
	uint64_t verified_bytes;	/* bytes re-read and hashed at the destination */
	double seconds;
};

/* Copies every committed checkpoint of job from src to dst in seq order,
 * keeping seq numbers, each object under <job>/ckpt/<seq>/ but claim.json
 * (streamed through memory: ranged GETs into a multipart upload, or a
 * server-side copy when both stores are one service), re-reads each copied
 * object at dst and checks its size and SHA-256 (and each manifest part's
 * SHA-256 for data.tar.zst), then commits the same manifest create-only.
 * A checkpoint whose manifest is already at dst byte for byte is skipped;
 * an object already at dst with the right size and hashes is kept, any
 * other is copied again whole.  A different manifest at dst under the same
 * seq is EX_DATAERR.  workers: parallel parts (0 = default). */
int ckpt_migrate(struct xfer_store *src, struct xfer_store *dst, const char *job, int workers,
		 struct ckpt_migrate_result *r);
/* The same for the listed checkpoints only (ascending seqs, all committed in
 * src); r covers just these. */
int ckpt_migrate_seqs(struct xfer_store *src, struct xfer_store *dst, const char *job, const uint64_t *seqs,
		      size_t n, struct ckpt_migrate_result *r);

/* What restoring or copying checkpoint seq needs (manifests' files[].ref.seq:
 * an incremental checkpoint reads unchanged files from older data objects). */
struct ckpt_needs {
	uint64_t *seqs;		/* seq and, transitively, every checkpoint it references; ascending */
	size_t n;
	uint64_t bytes;		/* stored bytes of all of them (manifests excluded): a copy */
	uint64_t pull_bytes;	/* seq's objects plus the data objects it references: a pull reads at most this */
};
/* 0, or EX_DATAERR when a reference is bad or names an uncommitted seq, or a
 * store error.  Free with ckpt_needs_free (accepts a zeroed or NULL one). */
int ckpt_needs(struct xfer_store *st, const char *job, uint64_t seq, struct ckpt_needs *nd);
void ckpt_needs_free(struct ckpt_needs *nd);
/* Would copying seqs into dst overwrite a different committed checkpoint?
 * 1 yes (*bad: the first such seq), 0 no (each absent or byte for byte the
 * same), else an EX_* / store error. */
int ckpt_migrate_conflict(struct xfer_store *src, struct xfer_store *dst, const char *job, const uint64_t *seqs,
			  size_t n, uint64_t *bad);
/* ==== end of migration ================================================= */

#endif
