// SPDX-License-Identifier: GPL-2.0
/*
 * init.c - PID 1 of the test initramfs: mount /proc, /sys and /dev, run
 * every binary in /tests in name order (each prints "N passed, N failed"),
 * print the sum and hand the verdict to QEMU through the isa-debug-exit
 * device at port 0xf4 (QEMU exits with (value << 1) | 1: 1 = pass, 3 = fail).
 * Kernel command line: umcg.only=NAME runs one test binary only.
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

/* Run one test binary, echo its output, add its last "N passed, N failed". */
static void run(const char *path, int *pass, int *fail)
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
		int a, b;
		if (sscanf(line, "%d passed, %d failed", &a, &b) == 2) {
			p = a;
			q = b;
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

int main(void)
{
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	char only[128] = "";
	FILE *c = fopen("/proc/cmdline", "r");
	if (c) {
		char buf[1024];
		if (fgets(buf, sizeof buf, c)) {
			char *o = strstr(buf, "umcg.only=");
			if (o)
				sscanf(o + 10, "%127s", only);
		}
		fclose(c);
	}

	char *names[256];
	int n = 0;
	DIR *d = opendir("/tests");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 256)
		if (e->d_name[0] != '.' && (!only[0] || !strcmp(only, e->d_name)))
			names[n++] = strdup(e->d_name);
	qsort(names, n, sizeof *names, cmp);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int pass = 0, fail = 0;
	for (int i = 0; i < n; i++) {
		char path[300];
		snprintf(path, sizeof path, "/tests/%s", names[i]);
		printf("=== %s\n", names[i]);
		run(path, &pass, &fail);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n == 0) {
		printf("init: no tests found\n");
		fail++;
	}
	printf("=== all tests: %.1f s in the guest\n",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("TOTAL: %d passed, %d failed\n", pass, fail);
	verdict(fail != 0);
}
