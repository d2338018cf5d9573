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

/*
 * A shim file lists the library's functions once, as
 *   #define LIST(F, V, VA) F(ret, name, (params), (args), value if not loaded)
 *                          V(name, (params), (args))   for void ones
 *                          VA(name)                    variadic, written by hand
 * then says LAZY_LIBRARY(LIST, "what", soname...) and LAZY_DEFINE(LIST): the
 * symbol table, the lazy_lib and one definition per F and V entry, each
 * loading the library on first call.  Inside the file, LAZY_FN(name, type)
 * is the loaded function.
 */
#define LAZY_IDX3(r, n, p, a, f) LAZY_##n,
#define LAZY_IDX2(n, p, a) LAZY_##n,
#define LAZY_IDX1(n) LAZY_##n,
#define LAZY_NAME3(r, n, p, a, f) #n,
#define LAZY_NAME2(n, p, a) #n,
#define LAZY_NAME1(n) #n,
#define LAZY_LIBRARY(LIST, what, ...)							\
	enum { LIST(LAZY_IDX3, LAZY_IDX2, LAZY_IDX1) LAZY_COUNT };			\
	static const char *const lazy_names[] = { LIST(LAZY_NAME3, LAZY_NAME2, LAZY_NAME1) }; \
	static const char *const lazy_sonames[] = { __VA_ARGS__, NULL };		\
	static void *lazy_fns[LAZY_COUNT];						\
	static struct lazy_lib lazy_this = { what, lazy_sonames, lazy_names, lazy_fns, LAZY_COUNT, 0 }

#define LAZY_FN(n, type) ((type)lazy_fns[LAZY_##n])
#define LAZY_DEF3(r, n, p, a, f)							\
	r(n) p									\
	{										\
		if (!lazy_load(&lazy_this))						\
			return f;							\
		return LAZY_FN(n, r(*) p) a;						\
	}
#define LAZY_DEF2(n, p, a)								\
	void(n) p									\
	{										\
		if (lazy_load(&lazy_this))						\
			LAZY_FN(n, void(*) p) a;					\
	}
#define LAZY_DEF1(n)
#define LAZY_DEFINE(LIST) LIST(LAZY_DEF3, LAZY_DEF2, LAZY_DEF1)
#define LAZY_LOADED() lazy_load(&lazy_this)

#endif
