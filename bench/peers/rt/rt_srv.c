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
 * Usage: rt_srv [-P port] [-s servers] [-p policy] [-U]
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "../http_min.h"
#include "umcg_rt.h"

static void *conn(void *arg)
{
	http_min_serve((int)(intptr_t)arg);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 8080, servers = 0, opt;
	bool pin = true;
	const char *policy = "fifo";
	while ((opt = getopt(argc, argv, "P:s:p:U")) != -1) {
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
		case 'U':
			pin = false;
			break;
		default:
			fprintf(stderr, "usage: %s [-P port] [-s servers] [-p policy] [-U]\n",
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
