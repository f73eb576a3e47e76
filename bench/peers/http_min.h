/* SPDX-License-Identifier: MIT */
/*
 * http_min.h - the peers benchmark's workload 4: the smallest HTTP/1.1
 * server loop for one keep-alive connection, shared by srv_pthreads.c and
 * rt/rt_srv.c. Every request (a header block ending in an empty line; no
 * body) gets "200 OK" with the 5-byte body "hello". Blocking read/write:
 * one thread (or umcg worker) per connection.
 */
#ifndef PEERS_HTTP_MIN_H
#define PEERS_HTTP_MIN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char http_min_reply[] = "HTTP/1.1 200 OK\r\n"
				     "Content-Length: 5\r\n"
				     "Content-Type: text/plain\r\n"
				     "\r\n"
				     "hello";

/*
 * Serve fd until the peer closes it (or an error); closes fd. after_reply
 * (may be NULL) runs after each batch of replies.
 */
static inline void http_min_serve(int fd, void (*after_reply)(void))
{
	char buf[4096];
	size_t have = 0;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof buf - have - 1);
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = 0;
		char *p = buf, *e;
		int nreq = 0;
		while ((e = strstr(p, "\r\n\r\n"))) { /* one complete request each */
			nreq++;
			p = e + 4;
		}
		have -= (size_t)(p - buf);
		memmove(buf, p, have);
		if (have == sizeof buf - 1)
			break; /* a header block this long: not our client */
		for (int i = 0; i < nreq; i++)
			if (write(fd, http_min_reply, sizeof http_min_reply - 1) !=
			    (ssize_t)(sizeof http_min_reply - 1))
				goto out;
		if (after_reply && nreq)
			after_reply();
	}
out:
	close(fd);
}

/* A listening TCP socket on 127.0.0.1:port, or -1. */
static inline int http_min_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096)) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif
