/*
 * ckpt_mem.c - large buffers (parts, decode scratch, write buffers) backed
 * by transparent huge pages where the kernel offers them (MADV_HUGEPAGE).
 * On the VMs spotrun runs on, the first touch of a fresh 4 KiB page costs
 * ~13 us: the ~80 MiB of buffers of a pull cost ~0.3 CPU-s in page faults
 * that way, and a few milliseconds as 2 MiB pages.  The buffers are
 * allocated once per pull and reused, so the cost is per pull, not per
 * byte; it matters most for small and medium checkpoints.
 */
#include "ckpt_int.h"

#include <stdlib.h>
#include <sys/mman.h>

#define MEM_HUGE (2u << 20)

void *ckpt_big_alloc(size_t n)
{
	void *p;

	if (n < MEM_HUGE / 2)
		return malloc(n ? n : 1);
	n = (n + MEM_HUGE - 1) & ~(size_t)(MEM_HUGE - 1);
	if (posix_memalign(&p, MEM_HUGE, n))
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, n, MADV_HUGEPAGE);	/* a hint: without it, 4 KiB pages */
#endif
	return p;
}
