/* SPDX-License-Identifier: MIT */
/*
 * rt_srv.c - the peers benchmark's workload 4 on the umcg runtime: one
 * worker per connection, minimal HTTP server (../http_min.h) on
 * 127.0.0.1:port. The main thread (not a worker) accepts and spawns a
 * detached worker per connection; the worker's read() and write() are
 * plain libc calls: when one sleeps in the kernel, transparent block
 * detection (docs/detection.md) frees its server, and the worker comes
 * back through the idle-workers list when it wakes. Runs until killed;
 * prints "listening" when ready.
 *
 * A worker whose read() finds data at once never sleeps, so it keeps its
 * server: with many busy connections a FIFO runtime serves a few of them
 * and starves the rest. Two cures: -S us, the "prio" policy with
 * time-slice preemption (round robin among equals), or -Y, a worker yields
 * after each batch of replies (cooperative, like a goroutine parking in
 * Go's netpoller when its read would block).
 *
 * Usage: rt_srv [-P port] [-s servers] [-p policy] [-S slice_us] [-Y] [-U]
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "../http_min.h"
#include "umcg_rt.h"

static bool yield_after_reply;

static void yield_now(void)
{
	umcg_rt_yield();
}

static void *conn(void *arg)
{
	http_min_serve((int)(intptr_t)arg, yield_after_reply ? yield_now : NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 8080, servers = 0, opt;
	long slice_us = 0;
	bool pin = true;
	const char *policy = "fifo";
	while ((opt = getopt(argc, argv, "P:s:p:S:YU")) != -1) {
		switch (opt) {
		case 'P':
			port = atoi(optarg);
			break;
		case 's':
			servers = atoi(optarg);
			break;
		case 'p':
			policy = optarg;
			break;
		case 'S':
			slice_us = atol(optarg);
			policy = "prio";
			break;
		case 'Y':
			yield_after_reply = true;
			break;
		case 'U':
			pin = false;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-P port] [-s servers] [-p policy] [-S slice_us] [-Y] "
				"[-U]\n",
				argv[0]);
			return 2;
		}
	}
	int lfd = http_min_listen(port);
	if (lfd < 0) {
		perror("rt_srv: listen");
		return 1;
	}
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.nr_servers = servers;
	a.pin_servers = pin;
	a.policy = umcg_rt_policy_by_name(policy);
	a.pool_max = 4096;
	a.preempt_slice_ns = (uint64_t)slice_us * 1000;
	struct umcg_rt *rt = a.policy ? umcg_rt_create(&a) : NULL;
	if (!rt) {
		fprintf(stderr, "rt_srv: umcg_rt_create: %s\n", strerror(errno));
		return 1;
	}
	struct umcg_rt_spawn_attr sa = {.flags = UMCG_RT_SPAWN_DETACHED};
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (!umcg_rt_spawn(rt, conn, (void *)(intptr_t)fd, &sa)) {
			fprintf(stderr, "rt_srv: umcg_rt_spawn: %s\n", strerror(errno));
			close(fd);
		}
	}
}
