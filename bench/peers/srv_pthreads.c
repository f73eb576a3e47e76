/* SPDX-License-Identifier: MIT */
/*
 * srv_pthreads.c - the peers benchmark's workload 4 on plain pthreads:
 * thread-per-connection minimal HTTP server (http_min.h) on
 * 127.0.0.1:port; the main thread accepts, each connection gets a detached
 * thread (stack 256 KiB, as a umcg worker's). Runs until killed; prints
 * "listening" when ready.
 *
 * Usage: srv_pthreads [-P port]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "http_min.h"

static void *conn(void *arg)
{
	http_min_serve((int)(intptr_t)arg, NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 8080, opt;
	while ((opt = getopt(argc, argv, "P:")) != -1) {
		if (opt != 'P') {
			fprintf(stderr, "usage: %s [-P port]\n", argv[0]);
			return 2;
		}
		port = atoi(optarg);
	}
	int lfd = http_min_listen(port);
	if (lfd < 0) {
		perror("srv_pthreads: listen");
		return 1;
	}
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_t t;
		if (pthread_create(&t, &a, conn, (void *)(intptr_t)fd))
			close(fd);
	}
}
