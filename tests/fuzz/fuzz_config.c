/*
 * fuzz_config.c - fuzz target for the JSON config file path of the option
 * parser (runner/options.c): any bytes as ./spotrun.json must give 0 or
 * EX_CONFIG, never a crash.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"

static char path[64];
const long fuzz_default_iterations = 4000; /* each input is a file write + read */

static void fuzz_cleanup(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct run_cmd_info ci = { "run", CMD_RUN, "", "", NULL };
	char *argv[] = { "spotrun", "--config", path, "--", "true", NULL };
	struct opts o;
	int done, fd, rc;

	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/spotrun-fuzz-config-%d.json", (int)getpid());
		log_setup(-1, LOG_FMT_HUMAN);
		atexit(fuzz_cleanup);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	close(fd);
	rc = opts_parse(&o, &ci, 5, argv, &done);
	log_setup(-1, LOG_FMT_HUMAN); /* a successful parse applied its own verbosity */
	if (rc != 0 && rc != EX_CONFIG)
		abort();
	if (rc == 0) { /* every accepted value must read back without trouble */
		for (int i = 0; i < OPT__COUNT; i++) {
			(void)opt_str(&o, (enum opt_id)i);
			(void)opt_int(&o, (enum opt_id)i);
		}
	}
	opts_free(&o);
	return 0;
}
