/*
 * check.h - the unit test harness: ASSERT_* checks that print both values
 * and never compile out, and a runner that forks each test into its own
 * process so a crash fails one test, not the file.  Every test prints one
 * "PASS name" or "FAIL name: why" line; tests/run.sh counts them.
 */
#ifndef SPOTRUN_CHECK_H
#define SPOTRUN_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK_FAIL(...) do { \
	fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

#define ASSERT_TRUE(c) do { if (!(c)) CHECK_FAIL("expected true: %s", #c); } while (0)
#define ASSERT_EQ(a, b) do { intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b); \
	if (a_ != b_) CHECK_FAIL("%s == %s: %jd != %jd", #a, #b, a_, b_); } while (0)
#define ASSERT_NE(a, b) do { intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b); \
	if (a_ == b_) CHECK_FAIL("%s != %s: both %jd", #a, #b, a_); } while (0)
#define ASSERT_STR_EQ(a, b) do { const char *a_ = (a), *b_ = (b); \
	if (!a_ || !b_ || strcmp(a_, b_)) CHECK_FAIL("%s == %s:\n    got:      \"%s\"\n    expected: \"%s\"", \
		#a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
#define ASSERT_NEAR(a, b, eps) do { double a_ = (a), b_ = (b); \
	if (a_ - b_ > (eps) || b_ - a_ > (eps)) CHECK_FAIL("%s ~ %s: %g vs %g", #a, #b, a_, b_); } while (0)

struct check_case { const char *name; void (*fn)(void); };
#define CHECK_CASE(f) { #f, f }

/* Runs each case in a child process; prints PASS/FAIL lines; returns exit status. */
static inline int check_run(const char *suite, const struct check_case *cases, size_t n)
{
	int failed = 0;
	const char *only = getenv("CHECK_ONLY");

	for (size_t i = 0; i < n; i++) {
		if (only && !strstr(cases[i].name, only))
			continue;
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			cases[i].fn();
			exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			printf("PASS %s/%s\n", suite, cases[i].name);
		} else {
			failed++;
			if (WIFSIGNALED(st))
				printf("FAIL %s/%s: killed by signal %d\n", suite, cases[i].name, WTERMSIG(st));
			else
				printf("FAIL %s/%s: exit %d\n", suite, cases[i].name, WEXITSTATUS(st));
		}
	}
	fflush(stdout);
	return failed ? 1 : 0;
}

#define CHECK_MAIN(suite, ...) int main(void) { \
	static const struct check_case cases_[] = { __VA_ARGS__ }; \
	return check_run(suite, cases_, sizeof(cases_) / sizeof(cases_[0])); }

#endif
