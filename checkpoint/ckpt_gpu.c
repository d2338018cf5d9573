/*
 * ckpt_gpu.c - the GPU fingerprint recorded in every manifest, so that a
 * resume on different hardware can be noticed.  NVIDIA's libraries are
 * loaded with dlopen at run time: NVML (libnvidia-ml.so.1, shipped with the
 * driver) first, else the CUDA runtime (libcudart.so*).  On a machine
 * without either, or without a GPU, the fingerprint is NULL ("gpu": null).
 * Nothing is linked at build time, so one binary serves both kinds of host.
 * Only the few stable C entry points are used, each looked up by name.
 *
 * Recorded: count, driver (version string), cuda_driver (the CUDA version
 * the driver supports), runtime (cudaRuntimeGetVersion, when a libcudart
 * is present), and per device name, compute capability and total memory.
 *
 * Testing knob: SPOTRUN_GPU_LIB=/path/lib.so replaces the search; that one
 * library is tried as NVML, else as the CUDA runtime (tests build a stub
 * with cc -shared).  SPOTRUN_NO_GPU disables probing.
 *
 * Also here: reading the fingerprint a committed checkpoint recorded, and
 * comparing two ("same hardware" = same device count and same multiset of
 * device names; memory or driver differences alone are not a change).
 */
#include "ckpt_int.h"

#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xfer.h"

typedef void *gpu_nvml_dev;

static const char *const gpu_cudart_names[] = { "libcudart.so", "libcudart.so.13", "libcudart.so.12",
						 "libcudart.so.11.0" };

/* "12.4" from 12040 */
static json_t *gpu_version(int v)
{
	char s[32];

	snprintf(s, sizeof(s), "%d.%d", v / 1000, v % 1000 / 10);
	return json_string(s);
}

/* cudaRuntimeGetVersion from h (which may be any library); 0 unknown. */
static int gpu_runtime_in(void *h)
{
	int (*rt)(int *) = h ? (int (*)(int *))dlsym(h, "cudaRuntimeGetVersion") : NULL;
	int v = 0;

	if (!rt || rt(&v) != 0 || v <= 0)
		return 0;
	return v;
}

/* The CUDA runtime's version: from lib (the SPOTRUN_GPU_LIB library), else
 * from a libcudart found by the loader.  Asking for it does not initialise
 * the runtime, but the library is never unloaded anyway (see below). */
static int gpu_runtime(void *lib)
{
	if (lib)
		return gpu_runtime_in(lib);
	for (size_t i = 0; i < sizeof(gpu_cudart_names) / sizeof(gpu_cudart_names[0]); i++) {
		void *h = dlopen(gpu_cudart_names[i], RTLD_NOW | RTLD_LOCAL);
		if (h)
			return gpu_runtime_in(h);
	}
	return 0;
}

static void gpu_set_versions(json_t *fp, int cuda_driver, int runtime)
{
	if (cuda_driver > 0)
		json_object_set_new(fp, "cuda_driver", gpu_version(cuda_driver));
	if (runtime > 0)
		json_object_set_new(fp, "runtime", gpu_version(runtime));
}

static json_t *gpu_device(const char *name, int major, int minor, unsigned long long mem)
{
	char cc[32];

	snprintf(cc, sizeof(cc), "%d.%d", major, minor);
	return json_pack("{s:s, s:s, s:I}", "name", name, "cc", cc, "memory", (json_int_t)mem);
}

static json_t *gpu_nvml(void *h, int stub)
{
	int (*init)(void) = (int (*)(void))dlsym(h, "nvmlInit_v2");
	int (*shut)(void) = (int (*)(void))dlsym(h, "nvmlShutdown");
	int (*count)(unsigned *) = (int (*)(unsigned *))dlsym(h, "nvmlDeviceGetCount_v2");
	int (*byidx)(unsigned, gpu_nvml_dev *) = (int (*)(unsigned, gpu_nvml_dev *))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
	int (*name)(gpu_nvml_dev, char *, unsigned) = (int (*)(gpu_nvml_dev, char *, unsigned))dlsym(h, "nvmlDeviceGetName");
	int (*cc)(gpu_nvml_dev, int *, int *) = (int (*)(gpu_nvml_dev, int *, int *))dlsym(h, "nvmlDeviceGetCudaComputeCapability");
	int (*mem)(gpu_nvml_dev, unsigned long long *) = (int (*)(gpu_nvml_dev, unsigned long long *))dlsym(h, "nvmlDeviceGetMemoryInfo");
	int (*drv)(char *, unsigned) = (int (*)(char *, unsigned))dlsym(h, "nvmlSystemGetDriverVersion");
	int (*cudrv)(int *) = (int (*)(int *))dlsym(h, "nvmlSystemGetCudaDriverVersion_v2");
	json_t *devs, *out = NULL;
	char driver[96] = "";
	unsigned n = 0;
	int cuv = 0;

	if (!init || !shut || !count || !byidx || !name || !cc || init() != 0)
		return NULL;
	if (count(&n) != 0 || n == 0 || !(devs = json_array()))
		goto out;
	for (unsigned i = 0; i < n; i++) {
		gpu_nvml_dev d;
		char nm[96] = "?";
		int ma = 0, mi = 0;
		unsigned long long meminfo[3] = { 0 };	/* nvmlMemory_t: total, free, used */
		if (byidx(i, &d) != 0)
			continue;
		name(d, nm, sizeof(nm));
		cc(d, &ma, &mi);
		if (mem)
			mem(d, meminfo);
		json_array_append_new(devs, gpu_device(nm, ma, mi, meminfo[0]));
	}
	if (drv)
		drv(driver, sizeof(driver));
	if (cudrv && cudrv(&cuv) != 0)
		cuv = 0;
	out = json_pack("{s:I, s:s, s:s, s:o}", "count", (json_int_t)n, "driver", driver, "via", "nvml",
			"devices", devs);
	if (out)
		gpu_set_versions(out, cuv, gpu_runtime(stub ? h : NULL));
out:
	shut();
	return out;
}

static json_t *gpu_cudart(void *h)
{
	int (*count)(int *) = (int (*)(int *))dlsym(h, "cudaGetDeviceCount");
	int (*attr)(int *, int, int) = (int (*)(int *, int, int))dlsym(h, "cudaDeviceGetAttribute");
	int (*props)(void *, int) = (int (*)(void *, int))dlsym(h, "cudaGetDeviceProperties");
	int (*drv)(int *) = (int (*)(int *))dlsym(h, "cudaDriverGetVersion");
	static const int attr_major = 75, attr_minor = 76;	/* cudaDevAttrComputeCapability* */
	int rtv = gpu_runtime_in(h);
	/* cudaDeviceProp.totalGlobalMem: after name[256], uuid[16], luid[8] and
	 * an unsigned since CUDA 10, right after name before */
	size_t mem_off = rtv >= 10000 ? 288 : 256;
	json_t *devs, *out;
	char driver[32];
	int n = 0, dv = 0;

	if (!count || !attr || count(&n) != 0 || n <= 0 || !(devs = json_array()))
		return NULL;
	for (int i = 0; i < n; i++) {
		/* cudaDeviceProp starts with char name[256]; the struct grows with
		 * every CUDA release, so give it plenty of room */
		static const size_t room = 16384;
		char *p = calloc(1, room);
		int ma = 0, mi = 0;
		size_t mem = 0;
		attr(&ma, attr_major, i);
		attr(&mi, attr_minor, i);
		if (p && props && props(p, i) == 0) {
			p[255] = 0;
			memcpy(&mem, p + mem_off, sizeof(mem));
		} else if (p) {
			strcpy(p, "?");
		}
		json_array_append_new(devs, gpu_device(p ? p : "?", ma, mi, mem));
		free(p);
	}
	if (drv)
		drv(&dv);
	snprintf(driver, sizeof(driver), "cuda %d.%d", dv / 1000, dv % 1000 / 10);
	out = json_pack("{s:i, s:s, s:s, s:o}", "count", n, "driver", driver, "via", "cudart", "devices",
			devs);
	if (out)
		gpu_set_versions(out, dv, rtv);
	return out;
}

char *ckpt_gpu_fingerprint(void)
{
	const char *lib = getenv("SPOTRUN_GPU_LIB");
	json_t *fp = NULL;
	char *text = NULL;
	void *h;

	if (getenv("SPOTRUN_NO_GPU"))
		return NULL;
	if (lib && *lib) { /* testing knob: this one library, NVML or CUDA runtime */
		if (!(h = dlopen(lib, RTLD_NOW | RTLD_LOCAL))) {
			log_warn("SPOTRUN_GPU_LIB: cannot load '%s': %s", lib, dlerror());
			return NULL;
		}
		fp = dlsym(h, "nvmlInit_v2") ? gpu_nvml(h, 1) : gpu_cudart(h);
		dlclose(h);
		goto done;
	}
	if ((h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL))) {
		fp = gpu_nvml(h, 0);
		dlclose(h);
	}
	for (size_t i = 0; !fp && i < sizeof(gpu_cudart_names) / sizeof(gpu_cudart_names[0]); i++) {
		if (!(h = dlopen(gpu_cudart_names[i], RTLD_NOW | RTLD_LOCAL)))
			continue;
		fp = gpu_cudart(h);
		/* the CUDA runtime cannot be unloaded safely once initialised */
	}
done:
	if (fp)
		text = json_dumps(fp, JSON_COMPACT);
	json_decref(fp);
	log_debug("gpu fingerprint: %s", text ? text : "none");
	return text;
}

/* ---- comparing fingerprints ----------------------------------------- */

int ckpt_gpu_recorded(struct xfer_store *st, const char *job, uint64_t seq, char **gpu)
{
	char key[600], *text = NULL;
	json_t *m, *g;
	size_t len;
	int rc;

	*gpu = NULL;
	ckpt_key(key, sizeof(key), job, seq, "manifest.json");
	if ((rc = xfer_get(st, key, &text, &len, CKPT_MANIFEST_MAX)))
		return rc == XFER_NOTFOUND ? log_fail(EX_NOINPUT, "no checkpoint seq %llu of '%s'",
						      (unsigned long long)seq, job) : rc;
	m = json_loadb(text, len, 0, NULL);
	free(text);
	if (!m)
		return log_fail(EX_DATAERR, "checkpoint seq %llu of '%s': manifest is not JSON",
				(unsigned long long)seq, job);
	if (json_is_object(g = json_object_get(m, "gpu")))
		*gpu = json_dumps(g, JSON_COMPACT);
	json_decref(m);
	return 0;
}

static int gpu_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Device names of fingerprint fp, sorted: *n names (borrowed from fp). */
static const char **gpu_names(json_t *fp, size_t *n)
{
	json_t *devs = json_object_get(fp, "devices"), *d;
	const char **v;
	size_t i;

	*n = json_array_size(devs);
	if (!(v = calloc(*n + 1, sizeof(*v))))
		return NULL;
	json_array_foreach(devs, i, d)
		v[i] = json_string_value(json_object_get(d, "name")) ?: "?";
	qsort(v, *n, sizeof(*v), gpu_cmp_str);
	return v;
}

static long long gpu_count(json_t *fp)
{
	json_t *c = json_object_get(fp, "count");

	return json_is_integer(c) ? json_integer_value(c) : (long long)json_array_size(json_object_get(fp, "devices"));
}

int ckpt_gpu_same(const char *a, const char *b)
{
	json_t *ja = a ? json_loads(a, 0, NULL) : NULL, *jb = b ? json_loads(b, 0, NULL) : NULL;
	const char **na = NULL, **nb = NULL;
	size_t ca = 0, cb = 0;
	int same = 0;

	if (!json_is_object(ja) || !json_is_object(jb)) {
		same = !json_is_object(ja) && !json_is_object(jb);
		goto out;
	}
	if (gpu_count(ja) != gpu_count(jb) || !(na = gpu_names(ja, &ca)) || !(nb = gpu_names(jb, &cb)) ||
	    ca != cb)
		goto out;
	same = 1;
	for (size_t i = 0; i < ca && same; i++)
		same = !strcmp(na[i], nb[i]);
out:
	free(na);
	free(nb);
	json_decref(ja);
	json_decref(jb);
	return same;
}

void ckpt_gpu_summary(const char *fp, char *out, size_t n)
{
	json_t *j = fp ? json_loads(fp, 0, NULL) : NULL;
	const char **v = NULL;
	size_t cnt = 0, len = 0;

	snprintf(out, n, "no GPU");
	if (!json_is_object(j) || !(v = gpu_names(j, &cnt)) || cnt == 0)
		goto out;
	out[0] = 0;
	for (size_t i = 0; i < cnt;) { /* sorted: count runs of one name */
		size_t k = i;
		while (k < cnt && !strcmp(v[k], v[i]))
			k++;
		int w = snprintf(out + len, n - len, "%s%zux %s", len ? " + " : "", k - i, v[i]);
		if (w < 0 || (size_t)w >= n - len)
			break;
		len += (size_t)w;
		i = k;
	}
out:
	free(v);
	json_decref(j);
}
