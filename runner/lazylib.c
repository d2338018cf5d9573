/*
 * lazylib.c - the loader behind the libcurl and libarchive shims
 * (transfer/curl_lazy.c, checkpoint/arch_lazy.c): dlopen on first use, every
 * symbol resolved at once under one lock, the outcome kept for later calls.
 */
#include "lazylib.h"

#include <dlfcn.h>
#include <pthread.h>

#include "log.h"

static pthread_mutex_t lazy_lock = PTHREAD_MUTEX_INITIALIZER;

static int lazy_open(struct lazy_lib *l)
{
	const char *err = "no library name";
	void *h = NULL;
	size_t i;

	for (i = 0; l->sonames[i] && !h; i++)
		if (!(h = dlopen(l->sonames[i], RTLD_LAZY | RTLD_LOCAL)))
			err = dlerror();
	if (!h) {
		log_error("cannot load %s: %s", l->what, err ? err : "unknown error");
		return -1;
	}
	for (i = 0; i < l->n; i++) {
		if (!(l->fns[i] = dlsym(h, l->names[i]))) {
			log_error("cannot load %s: symbol %s missing (%s)", l->what, l->names[i],
				  l->sonames[0]);
			dlclose(h);
			return -1;
		}
	}
	return 1; /* the handle stays open for the life of the process */
}

int lazy_load(struct lazy_lib *l)
{
	int st = __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);

	if (st)
		return st > 0;
	pthread_mutex_lock(&lazy_lock);
	if (!(st = l->state)) {
		st = lazy_open(l);
		__atomic_store_n(&l->state, st, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lazy_lock);
	return st > 0;
}
