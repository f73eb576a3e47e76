// SPDX-License-Identifier: GPL-2.0
/*
 * test_ext.c - the two extensions libumcg ships in v0.3's padding, done by
 * the kernel at the wake point: the v0.4 idle-server tid word and the
 * idle_fd eventfd; the stack still comes first.
 */
#include <poll.h>
#include <sys/eventfd.h>

#include "kts.h"

static struct umcg_task srv;
static struct group grp;
static uint32_t tid_word;
static struct {
	int32_t fd;
	uint32_t waiters;
} idle_fd;

static _Atomic int ext_mode; /* 1: tid word, 2: idle_fd, 3: bad tid */

static void *ext_worker(void *arg)
{
	struct worker *w = arg;
	w->tid = kt_tid();
	memset(&w->t, 0, sizeof w->t);
	w->t.state = UMCG_TASK_IDLE;
	w->t.api_version = UMCG_API_VERSION;
	w->t.idle_workers_ptr = (uint64_t)(uintptr_t)&grp.idle_workers;
	if (atomic_load(&ext_mode) != 2)
		w->t.idle_server_tid_ptr = (uint64_t)(uintptr_t)&tid_word;
	else
		w->t.idle_fd_ptr = (uint64_t)(uintptr_t)&idle_fd;
	CHECK(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &w->t) == 0);
	atomic_store(&w->phase, 1);
	worker_finish(w);
	return NULL;
}

/* A registering worker takes the published tid (word -> 0) and wakes that server. */
static void tid_word_wake(void)
{
	static struct worker w;
	atomic_store(&ext_mode, 1);
	server_register(&srv, &grp);
	kt_store(&srv.state, UMCG_TASK_IDLE);
	__atomic_store_n(&tid_word, kt_tid(), __ATOMIC_SEQ_CST);
	memset(&w, 0, sizeof w);
	w.arg = &srv;
	CHECK(pthread_create(&w.th, NULL, ext_worker, &w) == 0);
	while (umcg_wait(0, 0))
		CHECK(errno == EINTR);
	CHECK(kt_load(&srv.state) == UMCG_TASK_RUNNING);
	CHECK(__atomic_load_n(&tid_word, __ATOMIC_ACQUIRE) == 0);
	CHECK(take_one(&grp, 5000) == &w);
	run(&srv, &w);
	CHECK(atomic_load(&w.phase) == 1 && atomic_load(&w.done));
	pthread_join(w.th, NULL);
}

/* The eventfd gets 1 only while a server announced it waits. */
static void idle_fd_signal(void)
{
	static struct worker w[2];
	atomic_store(&ext_mode, 2);
	server_register(&srv, &grp);
	idle_fd.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(idle_fd.fd >= 0);
	uint64_t v;
	/* nobody announced: no write */
	memset(&w[0], 0, sizeof w[0]);
	w[0].arg = &srv;
	CHECK(pthread_create(&w[0].th, NULL, ext_worker, &w[0]) == 0);
	CHECK(take_one(&grp, 5000) == &w[0]);
	CHECK_ERR(read(idle_fd.fd, &v, sizeof v), EAGAIN);
	run(&srv, &w[0]);
	pthread_join(w[0].th, NULL);
	/* announced: the wake point writes 1 */
	__atomic_store_n(&idle_fd.waiters, 1, __ATOMIC_SEQ_CST);
	memset(&w[1], 0, sizeof w[1]);
	w[1].arg = &srv;
	CHECK(pthread_create(&w[1].th, NULL, ext_worker, &w[1]) == 0);
	struct pollfd p = {.fd = idle_fd.fd, .events = POLLIN};
	CHECK(poll(&p, 1, 5000) == 1);
	CHECK(read(idle_fd.fd, &v, sizeof v) == sizeof v && v == 1);
	CHECK(take_one(&grp, 5000) == &w[1]);
	run(&srv, &w[1]);
	CHECK(atomic_load(&w[1].done));
	pthread_join(w[1].th, NULL);
}

/* A tid in the word that is not a UMCG task breaks the contract: SIGSEGV. */
static void tid_word_bad_kills(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		static struct worker w;
		atomic_store(&ext_mode, 3);
		tid_word = 1; /* init: not ours */
		w.arg = &srv;
		pthread_create(&w.th, NULL, ext_worker, &w);
		kt_sleep_ms(5000);
		_exit(9);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
}

KT_MAIN(KT_CASE(tid_word_wake), KT_CASE(idle_fd_signal), KT_CASE(tid_word_bad_kills))
