/* SPDX-License-Identifier: MIT */
/*
 * epoll_server.c - a UMCG server that sleeps in ONE epoll_wait() on both
 * its listening socket and the group's idle eventfd (the review's
 * "idle_fd" design, include/umcg_idle.h).
 *
 * One server thread accepts TCP connections on 127.0.0.1 and starts one
 * worker thread per connection; the worker reads a request and writes a
 * reply with blocking calls (umcg_read / umcg_write), so it blocks and
 * wakes through libumcg's block and wake points. When a worker's read
 * completes, libumcg appends it to the idle-workers list and writes to the
 * eventfd, which wakes the server out of epoll_wait() next to its socket.
 * A client thread (not a UMCG task) makes -n connections, -c at a time,
 * and checks every reply. Exit status 0 iff every reply was right.
 *
 *   epoll_server [-n connections] [-c concurrent]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "umcg.h"
#include "umcg_idle.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"

/* A worker: its ABI struct first, so a list entry converts with a cast. */
struct worker {
	struct umcg_task task;
	int fd;
	_Atomic int done;
	_Atomic int gone; /* the thread no longer touches this struct */
	_Atomic uint32_t tid;
	struct worker *next; /* run queue link, then the finished list (server only) */
};

static struct umcg_idle_group grp;
static struct umcg_task server_task;
static uint16_t port;
static int nconn = 200, nconc = 8;
static _Atomic int client_ok, client_bad;
static _Atomic long blocks; /* worker came back BLOCKED */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	atomic_store(&w->tid, umcg_gettid());
	/* Register: parks until the server runs us (T2). */
	if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &w->task) != 0) {
		perror("umcg_ctl(worker)");
		exit(1);
	}
	char req[64], rep[80];
	ssize_t n = umcg_read(w->fd, req, sizeof req - 1); /* blocks: the server runs others */
	if (n > 0) {
		req[n] = 0;
		int len = snprintf(rep, sizeof rep, "pong %s", req + 5);
		if (umcg_write(w->fd, rep, (size_t)len) != len)
			perror("write");
	}
	close(w->fd);
	/* Finish: we must wake our server ourselves (v0.3 T10). */
	umcg_state_store(&w->task, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	atomic_store(&w->done, 1);
	uint32_t st = UMCG_TASK_IDLE;
	struct umcg_task *s = &server_task;
	if (!umcg_state_cas(s, &st, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING) &&
	    (st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
		abort();
	w->task.next_tid = w->task.server_tid;
	umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0);
	umcg_ctl(UMCG_CTL_UNREGISTER, NULL);
	/*
	 * The server runs again as soon as our umcg_wait() woke it, while we
	 * are still inside that call and then in umcg_ctl(): it may free this
	 * struct only after this store (release; its acquire load pairs).
	 */
	atomic_store_explicit(&w->gone, 1, memory_order_release);
	return NULL;
}

/* Free the finished workers whose threads are done with their struct. */
static struct worker *reap(struct worker *list)
{
	struct worker *keep = NULL;
	for (struct worker *w = list, *n; w; w = n) {
		n = w->next;
		if (atomic_load_explicit(&w->gone, memory_order_acquire)) {
			free(w);
		} else {
			w->next = keep;
			keep = w;
		}
	}
	return keep;
}

static void *client_main(void *arg)
{
	(void)arg;
	for (int base = 0; base < nconn; base += nconc) {
		int fds[64], k = nconn - base < nconc ? nconn - base : nconc;
		for (int i = 0; i < k; i++) {
			fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			if (connect(fds[i], (struct sockaddr *)&a, sizeof a)) {
				perror("connect");
				exit(1);
			}
			char req[32];
			int len = snprintf(req, sizeof req, "ping %d", base + i);
			if (write(fds[i], req, (size_t)len) != len)
				exit(1);
		}
		for (int i = 0; i < k; i++) {
			char rep[64], want[32];
			ssize_t n = read(fds[i], rep, sizeof rep - 1);
			rep[n > 0 ? n : 0] = 0;
			snprintf(want, sizeof want, "pong %d", base + i);
			atomic_fetch_add(strcmp(rep, want) ? &client_bad : &client_ok, 1);
			close(fds[i]);
		}
	}
	return NULL;
}

/* Run worker w on this server until it blocks, yields or finishes. */
static void run(struct worker *w)
{
	w->task.server_tid = server_task.server_tid;
	/*
	 * Server IDLE *before* the worker is RUNNING (spec 5.3): if the worker
	 * ran early (a signal) and blocked, its block point must find us IDLE,
	 * or nobody would wake us.
	 */
	umcg_state_store(&server_task, UMCG_TASK_IDLE);
	uint32_t st = umcg_state_load(&w->task);
	if (!umcg_state_cas(&w->task, &st, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING))
		abort();
	server_task.next_tid = atomic_load(&w->tid);
	while (umcg_wait(0, 0) && errno == EINTR)
		;
	server_task.next_tid = 0;
	if ((umcg_state_load(&w->task) & UMCG_TF_STATE_MASK) == UMCG_TASK_BLOCKED)
		atomic_fetch_add(&blocks, 1);
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "n:c:")) != -1) {
		if (opt == 'n')
			nconn = atoi(optarg);
		else if (opt == 'c')
			nconc = atoi(optarg);
		else {
			fprintf(stderr, "usage: %s [-n connections] [-c concurrent]\n", argv[0]);
			return 2;
		}
	}
	if (nconn < 1 || nconc < 1 || nconc > 64)
		return 2;
	if (umcg_idle_group_init(&grp, UMCG_IDLE_EVENTFD)) {
		perror("umcg_idle_group_init");
		return 1;
	}
	server_task.state = UMCG_TASK_RUNNING;
	server_task.api_version = UMCG_API_VERSION;
	if (umcg_ctl(UMCG_CTL_REGISTER, &server_task)) {
		perror("umcg_ctl(server)");
		return 1;
	}
	server_task.server_tid = umcg_gettid();

	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof a;
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 128) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen)) {
		perror("listen socket");
		return 1;
	}
	port = ntohs(a.sin_port);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	ev.data.fd = grp.idle_fd.fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, grp.idle_fd.fd, &ev);

	pthread_t client;
	pthread_create(&client, NULL, client_main, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 << 10);

	struct worker *rq_head = NULL, **rq_tail = &rq_head;
	int accepted = 0, finished = 0;
	struct worker *zombies = NULL;
	long runs = 0, epoll_sleeps = 0, idle_fd_wakes = 0, listen_wakes = 0;
	while (finished < nconn) {
		/* 1. take newly idle workers (LIFO stack) and queue them FIFO */
		struct worker *batch = NULL;
		for (struct umcg_task *t = umcg_idle_workers_pop_all(&grp.idle_workers); t;) {
			struct umcg_task *next = umcg_idle_workers_next(t, &grp.idle_workers);
			struct worker *w = (struct worker *)t;
			w->next = batch; /* reversing the LIFO chain restores arrival order */
			batch = w;
			t = next;
		}
		for (struct worker *w = batch, *n; w; w = n) {
			n = w->next;
			w->next = NULL;
			*rq_tail = w;
			rq_tail = &w->next;
		}
		/* 2. run one worker */
		if (rq_head) {
			struct worker *w = rq_head;
			rq_head = w->next;
			if (!rq_head)
				rq_tail = &rq_head;
			run(w);
			runs++;
			if (atomic_load(&w->done)) {
				finished++;
				w->next = zombies; /* freed by reap() once its thread let go */
				zombies = w;
			}
			zombies = reap(zombies);
		}
		if (finished == nconn)
			break;
		/* 3. new connections, and sleep when there is nothing to run */
		struct epoll_event evs[4];
		int timeout = 0;
		bool announced = false;
		if (!rq_head && umcg_idle_fd_prepare(&grp.idle_fd, &grp.idle_workers)) {
			timeout = -1; /* nothing to run and no idle worker: sleep */
			announced = true;
			epoll_sleeps++;
		}
		int n = epoll_wait(ep, evs, 4, timeout);
		if (announced && umcg_idle_fd_finish(&grp.idle_fd))
			idle_fd_wakes++;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd != ls)
				continue;
			listen_wakes++;
			int c;
			while ((c = accept4(ls, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
				/* struct umcg_task must be 64-byte aligned: not calloc() */
				struct worker *w =
				    aligned_alloc(_Alignof(struct worker), sizeof *w);
				memset(w, 0, sizeof *w);
				w->fd = c;
				w->task.state = UMCG_TASK_IDLE;
				w->task.api_version = UMCG_API_VERSION;
				umcg_idle_group_worker_init(&grp, &w->task);
				pthread_t th;
				if (pthread_create(&th, &attr, worker_main, w)) {
					perror("pthread_create");
					return 1;
				}
				accepted++;
			}
		}
	}
	pthread_join(client, NULL);
	while ((zombies = reap(zombies)))
		usleep(100);
	umcg_ctl(UMCG_CTL_UNREGISTER, NULL);
	printf("epoll_server: %d connections, %d replies ok, %d bad; %ld worker runs, %ld blocks;\n"
	       "  server slept %ld times in one epoll_wait: %ld woken by the idle eventfd, %ld by "
	       "the listening socket\n",
	       accepted, atomic_load(&client_ok), atomic_load(&client_bad), runs,
	       atomic_load(&blocks), epoll_sleeps, idle_fd_wakes, listen_wakes);
	umcg_idle_group_destroy(&grp);
	return atomic_load(&client_ok) == nconn && atomic_load(&client_bad) == 0 ? 0 : 1;
}
