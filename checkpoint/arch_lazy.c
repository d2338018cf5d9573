/*
 * arch_lazy.c - libarchive's entry points as spotrun uses them, each
 * loading libarchive with dlopen on first use (runner/lazylib.c), so that a
 * run which never pushes or pulls does not map libarchive and its
 * compression and XML dependencies.  When it cannot be loaded the
 * constructors (archive_read_new, archive_write_new, archive_entry_new, ...)
 * return NULL as libarchive documents they can.  A new libarchive function
 * needs one line in ARCH_FNS.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <stdio.h>

#include "lazylib.h"

#ifndef SPOTRUN_ARCHIVE_SONAME
#define SPOTRUN_ARCHIVE_SONAME "libarchive.so.13"
#endif

typedef struct archive_entry ae_t;
typedef struct archive ar_t;

/* F(return type, name, parameters, arguments, value when not loaded);
 * V(name, parameters, arguments) for void; VA(name) variadic (below). */
#define ARCH_FNS(F, V, VA)									\
	F(ar_t *, archive_read_new, (void), (), NULL)					\
	F(ar_t *, archive_write_new, (void), (), NULL)					\
	F(ar_t *, archive_write_disk_new, (void), (), NULL)				\
	F(ae_t *, archive_entry_new, (void), (), NULL)					\
	F(int, archive_read_support_format_tar, (ar_t *a), (a), ARCHIVE_FATAL)		\
	F(int, archive_read_open, (ar_t *a, void *c, archive_open_callback *o,		\
	  archive_read_callback *r, archive_close_callback *cl), (a, c, o, r, cl), ARCHIVE_FATAL) \
	F(int, archive_read_next_header, (ar_t *a, ae_t **e), (a, e), ARCHIVE_FATAL)	\
	F(int, archive_read_data_block, (ar_t *a, const void **b, size_t *n,		\
	  la_int64_t *off), (a, b, n, off), ARCHIVE_FATAL)				\
	F(int, archive_read_free, (ar_t *a), (a), ARCHIVE_FATAL)			\
	F(int, archive_write_set_format_pax, (ar_t *a), (a), ARCHIVE_FATAL)		\
	F(int, archive_write_add_filter_none, (ar_t *a), (a), ARCHIVE_FATAL)		\
	F(int, archive_write_set_bytes_per_block, (ar_t *a, int n), (a, n), ARCHIVE_FATAL) \
	F(int, archive_write_open, (ar_t *a, void *c, archive_open_callback *o,		\
	  archive_write_callback *w, archive_close_callback *cl), (a, c, o, w, cl), ARCHIVE_FATAL) \
	F(int, archive_write_disk_set_options, (ar_t *a, int f), (a, f), ARCHIVE_FATAL)	\
	F(int, archive_write_header, (ar_t *a, ae_t *e), (a, e), ARCHIVE_FATAL)		\
	F(la_ssize_t, archive_write_data, (ar_t *a, const void *b, size_t n), (a, b, n), -1) \
	F(la_ssize_t, archive_write_data_block, (ar_t *a, const void *b, size_t n,	\
	  la_int64_t off), (a, b, n, off), -1)						\
	F(int, archive_write_finish_entry, (ar_t *a), (a), ARCHIVE_FATAL)		\
	F(int, archive_write_close, (ar_t *a), (a), ARCHIVE_FATAL)			\
	F(int, archive_write_free, (ar_t *a), (a), ARCHIVE_FATAL)			\
	F(const char *, archive_error_string, (ar_t *a), (a), "libarchive not loaded")	\
	VA(archive_set_error)								\
	F(ae_t *, archive_entry_clear, (ae_t *e), (e), NULL)				\
	V(archive_entry_free, (ae_t *e), (e))						\
	V(archive_entry_copy_pathname, (ae_t *e, const char *s), (e, s))		\
	V(archive_entry_copy_symlink, (ae_t *e, const char *s), (e, s))			\
	F(const char *, archive_entry_pathname, (ae_t *e), (e), NULL)			\
	F(const char *, archive_entry_pathname_utf8, (ae_t *e), (e), NULL)		\
	F(const char *, archive_entry_symlink_utf8, (ae_t *e), (e), NULL)		\
	F(const char *, archive_entry_hardlink, (ae_t *e), (e), NULL)			\
	F(__LA_MODE_T, archive_entry_filetype, (ae_t *e), (e), 0)			\
	F(__LA_MODE_T, archive_entry_perm, (ae_t *e), (e), 0)				\
	F(la_int64_t, archive_entry_size, (ae_t *e), (e), 0)				\
	F(time_t, archive_entry_mtime, (ae_t *e), (e), 0)				\
	F(long, archive_entry_mtime_nsec, (ae_t *e), (e), 0)				\
	V(archive_entry_set_filetype, (ae_t *e, unsigned int t), (e, t))		\
	V(archive_entry_set_perm, (ae_t *e, __LA_MODE_T m), (e, m))			\
	V(archive_entry_set_size, (ae_t *e, la_int64_t n), (e, n))			\
	V(archive_entry_set_uid, (ae_t *e, la_int64_t n), (e, n))			\
	V(archive_entry_set_gid, (ae_t *e, la_int64_t n), (e, n))			\
	V(archive_entry_set_mtime, (ae_t *e, time_t t, long ns), (e, t, ns))

LAZY_LIBRARY(ARCH_FNS, "libarchive", SPOTRUN_ARCHIVE_SONAME, "libarchive.so.13", "libarchive.so");
LAZY_DEFINE(ARCH_FNS)

/* printf-style: formatted here, handed on as "%s". */
void archive_set_error(ar_t *a, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (LAZY_LOADED())
		LAZY_FN(archive_set_error, void (*)(ar_t *, int, const char *, ...))(a, err, "%s", msg);
}
