/*
 * lazylib.h - shared libraries loaded with dlopen on their first use
 * (libcurl, libarchive), so that `spotrun -- CMD` does not map their forty
 * dependencies before the command starts.  Prefix: lazy_.
 */
#ifndef SPOTRUN_LAZYLIB_H
#define SPOTRUN_LAZYLIB_H

#include <stddef.h>

struct lazy_lib {
	const char *what;		/* "libcurl", for messages */
	const char *const *sonames;	/* tried in order, NULL-terminated */
	const char *const *names;	/* symbols, n of them */
	void **fns;			/* filled by lazy_load */
	size_t n;
	int state;			/* 0 not tried, 1 loaded, -1 failed */
};

/* Loads l once (thread-safe); 1 when every symbol resolved, else 0 after
 * one logged error naming the library. */
int lazy_load(struct lazy_lib *l);

#endif
