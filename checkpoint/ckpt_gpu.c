/*
 * ckpt_gpu.c - the GPU fingerprint recorded in every manifest, so that a
 * resume on different hardware can be noticed.  NVIDIA's libraries are
 * loaded with dlopen at run time: NVML (libnvidia-ml.so.1, shipped with the
 * driver) first, else the CUDA runtime (libcudart.so*).  On a machine
 * without either, or without a GPU, the fingerprint is NULL ("gpu": null).
 * Nothing is linked at build time, so one binary serves both kinds of host.
 * Only the few stable C entry points are used, each looked up by name.
 */
#include "ckpt_int.h"

#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef void *gpu_nvml_dev;

static json_t *gpu_device(const char *name, int major, int minor, unsigned long long mem)
{
	char cc[32];

	snprintf(cc, sizeof(cc), "%d.%d", major, minor);
	return json_pack("{s:s, s:s, s:I}", "name", name, "cc", cc, "memory", (json_int_t)mem);
}

static json_t *gpu_nvml(void *h)
{
	int (*init)(void) = (int (*)(void))dlsym(h, "nvmlInit_v2");
	int (*shut)(void) = (int (*)(void))dlsym(h, "nvmlShutdown");
	int (*count)(unsigned *) = (int (*)(unsigned *))dlsym(h, "nvmlDeviceGetCount_v2");
	int (*byidx)(unsigned, gpu_nvml_dev *) = (int (*)(unsigned, gpu_nvml_dev *))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
	int (*name)(gpu_nvml_dev, char *, unsigned) = (int (*)(gpu_nvml_dev, char *, unsigned))dlsym(h, "nvmlDeviceGetName");
	int (*cc)(gpu_nvml_dev, int *, int *) = (int (*)(gpu_nvml_dev, int *, int *))dlsym(h, "nvmlDeviceGetCudaComputeCapability");
	int (*mem)(gpu_nvml_dev, unsigned long long *) = (int (*)(gpu_nvml_dev, unsigned long long *))dlsym(h, "nvmlDeviceGetMemoryInfo");
	int (*drv)(char *, unsigned) = (int (*)(char *, unsigned))dlsym(h, "nvmlSystemGetDriverVersion");
	json_t *devs, *out = NULL;
	char driver[96] = "";
	unsigned n = 0;

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
	out = json_pack("{s:I, s:s, s:s, s:o}", "count", (json_int_t)n, "driver", driver, "via", "nvml",
			"devices", devs);
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
	json_t *devs;
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
		attr(&ma, attr_major, i);
		attr(&mi, attr_minor, i);
		if (p && props && props(p, i) == 0)
			p[255] = 0;
		else if (p)
			strcpy(p, "?");
		json_array_append_new(devs, gpu_device(p ? p : "?", ma, mi, 0));
		free(p);
	}
	if (drv)
		drv(&dv);
	snprintf(driver, sizeof(driver), "cuda %d.%d", dv / 1000, dv % 1000 / 10);
	return json_pack("{s:i, s:s, s:s, s:o}", "count", n, "driver", driver, "via", "cudart", "devices",
			 devs);
}

char *ckpt_gpu_fingerprint(void)
{
	static const char *const cudart[] = { "libcudart.so", "libcudart.so.12", "libcudart.so.11.0" };
	json_t *fp = NULL;
	char *text = NULL;
	void *h;

	if (getenv("SPOTRUN_NO_GPU"))
		return NULL;
	if ((h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL))) {
		fp = gpu_nvml(h);
		dlclose(h);
	}
	for (size_t i = 0; !fp && i < sizeof(cudart) / sizeof(cudart[0]); i++) {
		if (!(h = dlopen(cudart[i], RTLD_NOW | RTLD_LOCAL)))
			continue;
		fp = gpu_cudart(h);
		/* the CUDA runtime cannot be unloaded safely once initialised */
	}
	if (fp)
		text = json_dumps(fp, JSON_COMPACT);
	json_decref(fp);
	log_debug("gpu fingerprint: %s", text ? text : "none");
	return text;
}
