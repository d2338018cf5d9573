/*
 * fuzz_commitreq.c - fuzz target for the commit socket's request parser
 * (runner/commitsock.c), which reads whatever a process on the machine
 * sends to SPOTRUN_SOCKET.  Fed through a socketpair like the real thing.
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	char buf[4608], err[128];
	size_t len = 0;
	struct sv_commit_req req;

	if (size > 8192 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		return 0;
	if (size && write(sv[0], data, size) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	close(sv[0]);
	while (sv_sock_read(sv[1], buf, sizeof(buf), &len, &req, err, sizeof(err)) == 0)
		;
	close(sv[1]);
	return 0;
}
