// SPDX-License-Identifier: GPL-2.0
/*
 * init.c - PID 1 of the test initramfs: mount /proc, /sys and /dev, run
 * every binary in /tests in name order (each prints "N passed, N failed"),
 * print the sum and hand the verdict to QEMU through the isa-debug-exit
 * device at port 0xf4 (QEMU exits with (value << 1) | 1: 1 = pass, 3 = fail).
 * Kernel command line: umcg.only=NAME[,NAME...] runs those test binaries only.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* name is one of the comma-separated names in list */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

static void verdict(int fail)
{
	fflush(stdout);
	sync();
	if (ioperm(0xf4, 4, 1) == 0)
		outb(fail ? 1 : 0, 0xf4);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/*
 * Run one test binary, echo its output, add its last "N passed, N failed"
 * (and the library harness's " (N skipped)").
 */
static void run(const char *path, int *pass, int *fail, int *skip)
{
	int fd[2];
	if (pipe(fd)) {
		(*fail)++;
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	FILE *f = fdopen(fd[0], "r");
	char line[512];
	int p = -1, q = -1;
	while (fgets(line, sizeof line, f)) {
		fputs(line, stdout);
		fflush(stdout);
		int a, b, k = 0;
		/* "N passed, N failed", also after a "name: " prefix (the library's tests) */
		for (char *s = line; *s; s++) {
			if ((s == line || s[-1] == ' ') &&
			    sscanf(s, "%d passed, %d failed (%d skipped)", &a, &b, &k) >= 2) {
				p = a;
				q = b;
				*skip += k;
				break;
			}
		}
	}
	fclose(f);
	int st;
	waitpid(pid, &st, 0);
	if (p < 0 || !WIFEXITED(st) || (WEXITSTATUS(st) != 0) != (q != 0)) {
		printf("init: %s ended badly (status %#x, no or inconsistent summary)\n", path, st);
		(*fail)++;
		if (p > 0)
			*pass += p;
		return;
	}
	*pass += p;
	*fail += q;
}

/*
 * umcg.bench=1: run each line of /bench/cmds instead of the tests, as
 * "[VAR=value ...] /path [args ...]" (no shell in the initramfs); the
 * verdict is a failure if a command does not exit 0.
 */
static int run_bench(void)
{
	FILE *f = fopen("/bench/cmds", "r");
	char line[1024];
	int bad = 0;
	while (f && fgets(line, sizeof line, f)) {
		char *argv[64], *envs[16], *save = NULL;
		int na = 0, ne = 0;
		for (char *t = strtok_r(line, " \t\n", &save); t && na < 63;
		     t = strtok_r(NULL, " \t\n", &save)) {
			if (!na && strchr(t, '=') && ne < 16)
				envs[ne++] = t;
			else
				argv[na++] = t;
		}
		argv[na] = NULL;
		if (!na || argv[0][0] == '#')
			continue;
		printf("=== bench:");
		for (int i = 0; i < ne; i++)
			printf(" %s", envs[i]);
		for (int i = 0; i < na; i++)
			printf(" %s", argv[i]);
		printf("\n");
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			for (int i = 0; i < ne; i++)
				putenv(envs[i]);
			execv(argv[0], argv);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("=== bench: %s failed (status %#x)\n", argv[0], st);
			bad++;
		}
	}
	if (f)
		fclose(f);
	else
		bad++;
	return bad;
}

int main(void)
{
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/*
	 * umcg.only=NAME: one binary; umcg.scale=N: UMCG_TEST_SCALE for the
	 * library's tests (lib_test_*), which run on the kernel backend
	 * (UMCG_BACKEND=kernel, or umcg.backend=user|auto to compare).
	 * umcg.transitions=N: KT_TRANSITIONS for test_stress's counted case.
	 */
	char only[1024] = "", scale[16] = "", backend[16] = "kernel", trans[24] = "";
	int bench = 0;
	FILE *c = fopen("/proc/cmdline", "r");
	if (c) {
		char buf[2048];
		if (fgets(buf, sizeof buf, c)) {
			char *o = strstr(buf, "umcg.only=");
			if (o)
				sscanf(o + 10, "%1023s", only);
			o = strstr(buf, "umcg.scale=");
			if (o)
				sscanf(o + 11, "%15s", scale);
			bench = strstr(buf, "umcg.bench=1") != NULL;
			o = strstr(buf, "umcg.backend=");
			if (o)
				sscanf(o + 13, "%15s", backend);
			o = strstr(buf, "umcg.transitions=");
			if (o)
				sscanf(o + 17, "%23s", trans);
		}
		fclose(c);
	}
	setenv("UMCG_BACKEND", backend, 1);
	if (scale[0])
		setenv("UMCG_TEST_SCALE", scale, 1);
	if (trans[0])
		setenv("KT_TRANSITIONS", trans, 1);

	if (bench)
		verdict(run_bench());

	char *names[256];
	int n = 0;
	DIR *d = opendir("/tests");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 256)
		if (e->d_name[0] != '.' && (!only[0] || listed(only, e->d_name)))
			names[n++] = strdup(e->d_name);
	qsort(names, n, sizeof *names, cmp);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int pass = 0, fail = 0, skip = 0;
	for (int i = 0; i < n; i++) {
		char path[300];
		snprintf(path, sizeof path, "/tests/%s", names[i]);
		struct timespec a, b;
		printf("=== %s\n", names[i]);
		clock_gettime(CLOCK_MONOTONIC, &a);
		run(path, &pass, &fail, &skip);
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("=== %s: %.1f s\n", names[i],
		       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n == 0) {
		printf("init: no tests found\n");
		fail++;
	}
	printf("=== all tests: %.1f s in the guest\n",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("TOTAL: %d passed, %d failed (%d skipped)\n", pass, fail, skip);
	verdict(fail != 0);
}
