/*
 * curl_lazy.c - libcurl's entry points as spotrun uses them, each loading
 * libcurl with dlopen on first use (runner/lazylib.c).  spotrun does not
 * link libcurl: a run on a local store and outside any cloud never maps it
 * and its ~35 dependencies, which is most of what `spotrun -- true` cost.
 * When libcurl cannot be loaded, the constructors (curl_easy_init,
 * curl_multi_init, ...) fail as libcurl documents they can, and callers
 * report it.  A new libcurl function needs one line in CURL_FNS.
 *
 * The variadic setters (curl_easy_setopt, curl_easy_getinfo,
 * curl_share_setopt) take exactly one argument after the option, a long, a
 * pointer or a curl_off_t: on the LP64 Linux ABIs all three are passed in
 * the same 64-bit integer register or stack slot, so it is forwarded as one
 * pointer-sized value without changing its bits.
 */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <stdarg.h>

#include "lazylib.h"

#ifndef SPOTRUN_CURL_SONAME
#define SPOTRUN_CURL_SONAME "libcurl.so.4"
#endif

_Static_assert(sizeof(long) == sizeof(void *) && sizeof(curl_off_t) == sizeof(void *),
	       "curl_lazy.c forwards a setopt argument as one pointer-sized value");

/* F(return type, name, parameters, arguments, value when not loaded);
 * V(name, parameters, arguments) for void; VA(name) variadic (below). */
#define CURL_FNS(F, V, VA)								\
	F(CURLcode, curl_global_init, (long f), (f), CURLE_FAILED_INIT)			\
	F(CURL *, curl_easy_init, (void), (), NULL)					\
	VA(curl_easy_setopt) VA(curl_easy_getinfo) VA(curl_share_setopt)		\
	V(curl_easy_cleanup, (CURL *h), (h))						\
	F(const char *, curl_easy_strerror, (CURLcode c), (c), "libcurl not loaded")	\
	F(CURLHcode, curl_easy_header, (CURL *h, const char *nm, size_t i, unsigned int o,	\
	  int r, struct curl_header **out), (h, nm, i, o, r, out), CURLHE_NOT_BUILT_IN)	\
	F(char *, curl_easy_escape, (CURL *h, const char *s, int n), (h, s, n), NULL)	\
	F(struct curl_slist *, curl_slist_append, (struct curl_slist *l, const char *s),	\
	  (l, s), NULL)									\
	V(curl_slist_free_all, (struct curl_slist *l), (l))				\
	V(curl_free, (void *p), (p))							\
	F(CURLU *, curl_url, (void), (), NULL)						\
	V(curl_url_cleanup, (CURLU *u), (u))						\
	F(CURLUcode, curl_url_get, (CURLU *u, CURLUPart w, char **p, unsigned int f),	\
	  (u, w, p, f), CURLUE_OUT_OF_MEMORY)						\
	F(CURLUcode, curl_url_set, (CURLU *u, CURLUPart w, const char *p, unsigned int f),	\
	  (u, w, p, f), CURLUE_OUT_OF_MEMORY)						\
	F(CURLM *, curl_multi_init, (void), (), NULL)					\
	F(CURLMcode, curl_multi_cleanup, (CURLM *m), (m), CURLM_INTERNAL_ERROR)		\
	F(CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *h), (m, h), CURLM_INTERNAL_ERROR) \
	F(CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *h), (m, h),		\
	  CURLM_INTERNAL_ERROR)								\
	F(CURLMcode, curl_multi_perform, (CURLM *m, int *n), (m, n), CURLM_INTERNAL_ERROR) \
	F(CURLMcode, curl_multi_poll, (CURLM *m, struct curl_waitfd *x, unsigned int nx,	\
	  int ms, int *r), (m, x, nx, ms, r), CURLM_INTERNAL_ERROR)			\
	F(CURLMsg *, curl_multi_info_read, (CURLM *m, int *q), (m, q), NULL)		\
	F(CURLSH *, curl_share_init, (void), (), NULL)					\
	F(CURLSHcode, curl_share_cleanup, (CURLSH *s), (s), CURLSHE_NOT_BUILT_IN)

LAZY_LIBRARY(CURL_FNS, "libcurl", SPOTRUN_CURL_SONAME, "libcurl.so.4", "libcurl.so");
LAZY_DEFINE(CURL_FNS)

/* One pointer-sized argument after the option (see the header comment). */
#define CL_FORWARD(ret, name, htype, otype, fail)					\
	ret(name)(htype h, otype opt, ...)						\
	{										\
		va_list ap;								\
		void *arg;								\
											\
		va_start(ap, opt);							\
		arg = va_arg(ap, void *);						\
		va_end(ap);								\
		if (!LAZY_LOADED())							\
			return fail;							\
		return LAZY_FN(name, ret(*)(htype, otype, ...))(h, opt, arg);		\
	}
CL_FORWARD(CURLcode, curl_easy_setopt, CURL *, CURLoption, CURLE_FAILED_INIT)
CL_FORWARD(CURLcode, curl_easy_getinfo, CURL *, CURLINFO, CURLE_FAILED_INIT)
CL_FORWARD(CURLSHcode, curl_share_setopt, CURLSH *, CURLSHoption, CURLSHE_NOT_BUILT_IN)
