/*
 * ckpt_int.h - private to checkpoint/ (and its unit tests): the manifest
 * model, the folder scan, store key names and small helpers shared by the
 * push and pull pipelines.  Nothing outside checkpoint/ includes this file.
 */
#ifndef SPOTRUN_CKPT_INT_H
#define SPOTRUN_CKPT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <locale.h>
#include <sys/types.h>
#include <time.h>

#include "ckpt.h"

#define CKPT_SHA_LEN 32
#define CKPT_MANIFEST_MAX (512u << 20)	/* largest manifest we read */
#define CKPT_MAX_WORKERS 64

enum ckpt_type { CKPT_REG = 1, CKPT_DIR, CKPT_LNK };

struct ckpt_file {
	char *path;		/* relative to the folder, '/'-separated */
	char *target;		/* symlink target, else NULL */
	enum ckpt_type type;
	uint32_t mode;		/* permission bits (07777) */
	uint64_t size;		/* regular files; 0 otherwise */
	int64_t mtime;		/* seconds */
	long mtime_nsec;
	unsigned char sha[CKPT_SHA_LEN];	/* regular files */
	/* format 2, regular files: where the data lives.  ref_seq 0: in this
	 * checkpoint's tar stream at raw offset data_off; else an earlier
	 * checkpoint's (ref_seq) tar stream at raw offset data_off, and the
	 * file is not in this checkpoint's archive (an incremental push). */
	uint64_t data_off, ref_seq;
	int has_off;			/* data_off known (format 2 writers) */
};

enum ckpt_codec { CKPT_CODEC_ZSTD = 0, CKPT_CODEC_BP1 = 1 };

struct ckpt_part {
	uint64_t raw_offset, raw_size;	/* in the tar stream */
	int codec;			/* enum ckpt_codec: how the stored bytes decode */
	uint64_t offset, size;		/* in data.tar.zst */
	unsigned char sha[CKPT_SHA_LEN];	/* of the compressed frame */
};

#define CKPT_NONCE_LEN 12
#define CKPT_TAG_LEN 16
struct ckpt_crypt {		/* manifest "encryption" (ckpt_crypt.c) */
	int on;
	unsigned char wrap_nonce[CKPT_NONCE_LEN];
	unsigned char wrapped[CKPT_KEY_LEN + CKPT_TAG_LEN];	/* data key, GCM under the user key */
	unsigned char prefix[4];	/* part nonce = prefix || part index (64-bit big-endian) */
	unsigned char dkey[CKPT_KEY_LEN];	/* the data key, once unwrapped */
	int have_key;
};

struct ckpt_manifest {
	int format;
	char *job, *name, *created, *host, *provider, *region, *instance;
	uint64_t seq;
	long long step;		/* -1: null */
	char *gpu;		/* JSON object text, NULL: null */
	struct ckpt_file *files;
	size_t nfiles, capfiles;
	struct ckpt_part *parts;
	size_t nparts, capparts;
	uint64_t raw_bytes, stored_bytes;
	int level;
	uint64_t part_size;
	struct ckpt_crypt enc;
	char *text;		/* the exact bytes read (ckpt_read_manifest), for the MAC */
	size_t textlen;
};

/* ckpt_manifest.c */
char *ckpt_manifest_encode(const struct ckpt_manifest *m);	/* malloc'd JSON, NULL: no memory */
/* Strict parse: every field present with its type, parts contiguous,
 * hashes 64 hex digits.  0 or EX_DATAERR (logged, naming the field). */
int ckpt_manifest_parse(const char *text, size_t len, struct ckpt_manifest *m);
void ckpt_manifest_free(struct ckpt_manifest *m);
struct ckpt_file *ckpt_manifest_add_file(struct ckpt_manifest *m);
struct ckpt_part *ckpt_manifest_add_part(struct ckpt_manifest *m);
const char *ckpt_type_name(enum ckpt_type t);

/* ckpt_codec.c: the float-aware part codec "bp1" (docs/codec.md). */
#define CKPT_BP_MAXSEG 1024
struct ckpt_region {		/* typed bytes inside a part: elements of width bytes */
	uint64_t off, len;
	unsigned width;		/* 2 or 4 */
};
size_t ckpt_codec_bound(size_t raw);	/* largest stored size of a part of raw bytes */
struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;
struct evp_md_st;
/* Encodes raw[0..n) into out; scratch holds n bytes.  0, or -1 when cap is too small. */
int ckpt_bp_encode(struct ZSTD_CCtx_s *cc, int level, const unsigned char *raw, size_t n,
		   const struct ckpt_region *rg, size_t nrg, unsigned char *scratch, unsigned char *out,
		   size_t cap, size_t *outlen);
/* Decodes a whole bp1 frame into exactly rawn bytes; scratch holds rawn
 * bytes.  0, or -1 and *why. */
int ckpt_bp_decode(struct ZSTD_DCtx_s *dc, const unsigned char *in, size_t n, unsigned char *raw,
		   size_t rawn, unsigned char *scratch, const char **why);
const char *ckpt_codec_name(int codec);
int ckpt_codec_parse(const char *name);	/* -1: unknown */

/* ckpt_crypt.c */
void ckpt_hex_n(const unsigned char *p, size_t n, char *out);	/* out: 2n + 1 */
int ckpt_unhex_n(const char *hex, size_t len, unsigned char *out);	/* 0 or -1 */
int ckpt_crypt_new(struct ckpt_crypt *c, const unsigned char *ukey, const char *job, uint64_t seq);
int ckpt_crypt_unwrap(struct ckpt_crypt *c, const unsigned char *ukey, const char *job, uint64_t seq);
void ckpt_crypt_nonce(const struct ckpt_crypt *c, uint64_t index, unsigned char nonce[CKPT_NONCE_LEN]);
/* In place: enc appends the tag (buf holds n + CKPT_TAG_LEN); decryption
 * checks and drops it.  0, or -1 (tag mismatch). */
int ckpt_crypt_part(const struct ckpt_crypt *c, int enc, uint64_t index, unsigned char *buf, size_t n,
		    size_t *outlen);
int ckpt_crypt_mac(const struct ckpt_crypt *c, const char *text, size_t n, unsigned char mac[32]);
/* ckpt_store.c: checks an encrypted manifest read by ckpt_read_manifest
 * with the user key (unwraps the data key, checks manifest.mac).  Plain
 * manifests: 0.  Encrypted without a key: EX_DATAERR unless parts_only. */
int ckpt_unlock(struct xfer_store *st, struct ckpt_manifest *m, const unsigned char *ukey);

/* ckpt_hint.c: where a file's typed elements are (file offsets, ascending),
 * from its safetensors header or a sample of its bytes.  *n = 0: none. */
int ckpt_hints(int rootfd, const struct ckpt_file *f, struct ckpt_region **v, size_t *n);

/* ckpt_ref.c: incremental pushes.  Marks the files of m (scanned, not yet
 * hashed) that match the previous committed checkpoint of the job (same
 * path, size, mtime and, after hashing them now, SHA-256) as references. */
int ckpt_ref_mark(struct xfer_store *st, struct ckpt_manifest *m, int rootfd, const unsigned char *ukey,
		  uint64_t *saved);
/* Reads file f of m, a reference, from the older data object: hands it to
 * w (between ckpt_writer_begin and _end; NULL: only checks) and checks its
 * SHA-256. */
struct ckpt_refs;
struct ckpt_writer;
int ckpt_refs_open(struct ckpt_refs **r, struct xfer_store *st, const struct ckpt_manifest *m,
		   const unsigned char *ukey);
int ckpt_refs_read(struct ckpt_refs *r, const struct ckpt_file *f, struct ckpt_writer *w);
void ckpt_refs_close(struct ckpt_refs *r);
/* ckpt_fetch.c: checks part i's stored bytes against m and decodes them
 * into raw (p->raw_size bytes); *scratch is grown as needed (free it). */
int ckpt_part_decode(const struct ckpt_manifest *m, size_t i, struct ZSTD_DCtx_s *dc, struct evp_md_st *sha256,
		     unsigned char *comp, unsigned char *raw, unsigned char **scratch);

/* ckpt_scan.c: m->files in archive order (depth first, names sorted bytewise). */
int ckpt_scan(const char *dir, struct ckpt_manifest *m);

/* ckpt_util.c */
void ckpt_hex(const unsigned char *sha, char out[2 * CKPT_SHA_LEN + 1]);
int ckpt_unhex(const char *hex, unsigned char *sha);	/* 0 or -1 */
void ckpt_rfc3339(time_t t, char out[40]);
double ckpt_now(void);
/* Fills a push/pull result from the manifest; t0 is when the work began. */
void ckpt_result_fill(struct ckpt_result *r, const struct ckpt_manifest *m, double t0);				/* monotonic seconds */
int ckpt_nworkers(int workers);			/* 0 -> cores, clamped */
/* "<job>/ckpt/<seq 8 digits>/<leaf>" */
void ckpt_key(char *out, size_t n, const char *job, uint64_t seq, const char *leaf);
/* Removes a tree (no symlinks followed, read-only folders made writable). */
int ckpt_rmtree(const char *path);
/* Is rel (no leading '/', no "..", no empty components) a safe relative path? */
int ckpt_path_safe(const char *rel);

/* This thread's LC_CTYPE set to C.UTF-8 while libarchive runs. */
struct ckpt_locale {
	locale_t utf8, old;
};
struct ckpt_locale ckpt_utf8_begin(void);
void ckpt_utf8_end(struct ckpt_locale l);

struct ckpt_progress {
	int on;
	const char *what;
	uint64_t total, done;
	double start, last;
};
void ckpt_progress_init(struct ckpt_progress *p, int want, const char *what, uint64_t total);
void ckpt_progress_update(struct ckpt_progress *p, uint64_t done);
void ckpt_progress_end(struct ckpt_progress *p);

/* ckpt_read.c: file contents in manifest order (io_uring, or pread). */
#define CKPT_READ_DEPTH 8
#define CKPT_READ_BUF (1u << 20)
struct ckpt_reader;
int ckpt_reader_open(struct ckpt_reader **r, int rootfd, const struct ckpt_manifest *m);
/* 0 and the next chunk (valid until the next call), 1 at the end, or EX_*. */
int ckpt_reader_next(struct ckpt_reader *r, size_t *file, const void **data, size_t *len);
int ckpt_reader_uring(const struct ckpt_reader *r);
void ckpt_reader_close(struct ckpt_reader *r);	/* drains the queue; accepts NULL */

/* ckpt_store.c */
int ckpt_read_manifest(struct xfer_store *st, const char *job, uint64_t seq, struct ckpt_manifest *m);
/* The newest committed checkpoint's manifest whose manifest reads (newer
 * unreadable ones skipped with a warning, as ckpt_list does), reading no
 * other manifest: 0 and *have, or a store error. */
int ckpt_read_newest(struct xfer_store *st, const char *job, struct ckpt_manifest *m, int *have);
/* Reserves the next free seq of job with a create-only claim object. */
int ckpt_claim(struct xfer_store *st, const char *job, const char *host, uint64_t *seq);

/* ckpt_fetch.c: parts of data.tar.zst fetched, checked and decompressed by
 * worker threads, handed out strictly in order. */
struct ckpt_fetch;
int ckpt_fetch_start(struct ckpt_fetch **f, struct xfer_store *st, const struct ckpt_manifest *m,
		     int workers, struct ckpt_progress *pg);
/* 0 and the next part's raw bytes (valid until the next call), 1 at the
 * end, or EX_* (logged, naming the part). */
int ckpt_fetch_next(struct ckpt_fetch *f, const void **data, size_t *len);
void ckpt_fetch_stop(struct ckpt_fetch *f);	/* accepts NULL */

/* ckpt_mem.c: a buffer of n bytes for bulk data, on huge pages where the
 * kernel allows (aligned to 2 MiB when n is 1 MiB or more); free() it. */
void *ckpt_big_alloc(size_t n);

/* ckpt_write.c: the write side of a pull.  File contents go through
 * CKPT_WR_BUF-byte aligned buffers; files of CKPT_WR_DIRECT_MIN bytes or
 * more are written with O_DIRECT (unless SPOTRUN_PULL_DIRECT=0 or the file
 * system refuses) by a writer thread; blocks of zeros become holes. */
#define CKPT_WR_ALIGN 4096u
#define CKPT_WR_BUF (4u << 20)
#define CKPT_WR_DIRECT_MIN (256u << 10)
int ckpt_writer_open(struct ckpt_writer **w);
/* Starts file f in fd (created empty, O_WRONLY): the writer owns fd from
 * here on, and ckpt_writer_end sets its size, mode and times (ts: atime,
 * mtime) and closes it. */
int ckpt_writer_begin(struct ckpt_writer *w, int fd, const struct ckpt_file *f, mode_t mode,
		      const struct timespec ts[2]);
/* The file's bytes at offset off, in increasing order; gaps are holes. */
int ckpt_writer_data(struct ckpt_writer *w, const void *buf, size_t len, uint64_t off);
/* ok: the rest is written, then size, mode, times; else the file is only
 * closed.  Returns the first error of any file so far. */
int ckpt_writer_end(struct ckpt_writer *w, int ok);
int ckpt_writer_drain(struct ckpt_writer *w);	/* waits for every write; first error */
void ckpt_writer_close(struct ckpt_writer *w);	/* ends an open file, drains; accepts NULL */

/* ckpt_pull.c: the shared read pipeline; dest NULL = verify only. */
int ckpt_extract(struct xfer_store *st, const struct ckpt_manifest *m, const char *dest,
		 const struct ckpt_pull_opts *o);

#endif
