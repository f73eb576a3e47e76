/* SPDX-License-Identifier: MIT */
/* harness.c - the runner behind harness.h. */
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "umcg.h"

#define TH_SKIP_EXIT 77

const char *th_user_only_reason;

static struct th_test *th_head, **th_tail = &th_head;

void th_register(struct th_test *t)
{
	*th_tail = t; /* keep file order */
	th_tail = &t->next;
}

void th_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	char buf[512];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "    %s:%d: %s\n", file, line, buf);
	fflush(stderr);
	_exit(99);
}

int th_on_kernel(void)
{
	return umcg_backend() == UMCG_BACKEND_KERNEL;
}

void th_skip(const char *reason)
{
	printf("    skip: %s\n", reason);
	fflush(stdout);
	_exit(TH_SKIP_EXIT);
}

long th_scaled(long n, long min)
{
	const char *s = getenv("UMCG_TEST_SCALE");
	long div = s ? atol(s) : 1;
	if (div < 1)
		div = 1;
	n /= div;
	return n < min ? min : n;
}

int th_thread_sleeps(long tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* comm may contain spaces */
	return p && p[1] == ' ' && p[2] == 'S';
}

static double th_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	int list = 0, passed = 0, failed = 0, skipped = 0;
	int opt;
	while ((opt = getopt(argc, argv, "t:l")) != -1) {
		if (opt == 't')
			only = optarg;
		else if (opt == 'l')
			list = 1;
		else
			return 2;
	}
	const char *tenv = getenv("UMCG_TEST_TIMEOUT");
	int deftimeout = tenv ? atoi(tenv) : 120;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (struct th_test *t = th_head; t; t = t->next) {
		if (only && !strstr(t->name, only))
			continue;
		if (list) {
			printf("%s\n", t->name);
			continue;
		}
		if (th_user_only_reason && th_on_kernel()) {
			skipped++;
			printf("skip %-44s (kernel backend: %s)\n", t->name, th_user_only_reason);
			continue;
		}
		double t0 = th_now();
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			alarm((unsigned)(t->timeout ? t->timeout : deftimeout));
			t->fn();
			fflush(stdout);
			_exit(0);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0)
			;
		double dt = th_now() - t0;
		if (WIFEXITED(st) && WEXITSTATUS(st) == TH_SKIP_EXIT) {
			skipped++;
			printf("skip %-44s %7.3fs\n", t->name, dt);
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			passed++;
			printf("ok   %-44s %7.3fs\n", t->name, dt);
		} else {
			failed++;
			if (WIFSIGNALED(st))
				printf("FAIL %-44s %7.3fs (signal %d%s)\n", t->name, dt,
				       WTERMSIG(st), WTERMSIG(st) == SIGALRM ? ": timeout" : "");
			else
				printf("FAIL %-44s %7.3fs (exit %d)\n", t->name, dt,
				       WEXITSTATUS(st));
		}
	}
	if (!list)
		printf("%s: %d passed, %d failed%s", argv[0], passed, failed, skipped ? "" : "\n");
	if (!list && skipped)
		printf(" (%d skipped)\n", skipped);
	return failed ? 1 : 0;
}
