/* SPDX-License-Identifier: MIT */
/* test_smoke.c - one server runs one worker through block and wake points. */
#include <pthread.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"

static uint64_t iwl_head, isl_head;
static _Atomic uint32_t worker_tid;
static _Atomic int done, blocks;
static struct umcg_task *worker_task;
static int pipe_fd[2];

/*
 * Each block is a read() of an empty pipe: the server writes the byte only
 * after the worker's block handed it back, so every read sleeps and the
 * count is exact on both backends (server runs = 100 blocks + the final
 * hand-back). It was umcg_usleep(100): on the user-space backend (explicit
 * block points) every call is a block, but on the kernel backend only a
 * sleep that reaches schedule() is, and do_nanosleep() does not schedule
 * if the 100 us timer already fired. In the TCG guest with its vCPU threads
 * descheduled by a busy host that happened to 1-4 sleeps in 100 (measured:
 * four guests at once; the sleeps without a voluntary context switch,
 * getrusage(RUSAGE_THREAD).ru_nvcsw, were exactly the missing runs).
 */

static void *worker_main(void *arg)
{
	static __thread struct umcg_task me;
	me.state = UMCG_TASK_IDLE;
	me.api_version = 1;
	me.idle_workers_ptr = (uint64_t)(uintptr_t)&iwl_head;
	me.idle_servers_ptr = (uint64_t)(uintptr_t)&isl_head;
	worker_task = &me;
	worker_tid = umcg_gettid();
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &me), 0);
	CHECK_EQ(umcg_state_load(&me) & UMCG_TF_STATE_MASK, UMCG_TASK_RUNNING);
	for (int i = 0; i < 100; i++) {
		char c;
		CHECK_EQ(umcg_read(pipe_fd[0], &c, 1), 1);
		blocks++;
		CHECK_EQ(umcg_state_load(&me) & UMCG_TF_STATE_MASK, UMCG_TASK_RUNNING);
	}
	/* finish: lock self, wake the server, unregister */
	uint32_t run = UMCG_TASK_RUNNING;
	CHECK(umcg_state_cas(&me, &run, UMCG_TASK_RUNNING | UMCG_TF_LOCKED));
	done = 1;
	extern struct umcg_task *server_task;
	uint32_t exp = UMCG_TASK_IDLE;
	CHECK(umcg_state_cas(server_task, &exp, UMCG_TASK_RUNNING));
	me.next_tid = me.server_tid;
	CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	return NULL;
}

struct umcg_task *server_task;
TEST_T(server_runs_worker_through_blocks, 10)
{
	static struct umcg_task s = {.state = UMCG_TASK_RUNNING, .api_version = 1};
	server_task = &s;
	/* every wrapped call a block: the explicit points (test_detect.c covers detection) */
	CHECK_EQ(umcg_tune(UMCG_TUNE_DETECT, 0), 0);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &s), 0);
	s.server_tid = umcg_gettid();
	CHECK_EQ(pipe(pipe_fd), 0);
	pthread_t th;
	pthread_create(&th, NULL, worker_main, NULL);
	int runs = 0;
	while (!done) {
		struct umcg_task *w = umcg_idle_workers_pop_all(&iwl_head);
		if (!w) {
			usleep(10);
			continue;
		}
		CHECK(umcg_idle_workers_next(w, &iwl_head) == NULL);
		CHECK_EQ(umcg_state_load(w), UMCG_TASK_IDLE);
		w->server_tid = s.server_tid;
		/* server IDLE first (spec 5.3): a worker that runs early and blocks must see it */
		umcg_state_store(&s, UMCG_TASK_IDLE);
		umcg_state_store(w, UMCG_TASK_RUNNING);
		s.next_tid = worker_tid;
		CHECK_EQ(umcg_wait(0, 0), 0);
		s.next_tid = 0;
		runs++;
		if (done)
			break;
		/* blocked in its read (it cannot be back: nothing to read yet) */
		CHECK_EQ(umcg_state_load(w) & UMCG_TF_STATE_MASK, UMCG_TASK_BLOCKED);
		CHECK_EQ(write(pipe_fd[1], "x", 1), 1);
	}
	pthread_join(th, NULL);
	CHECK_EQ(blocks, 100);
	CHECK_EQ(runs, 101);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
}

TEST(nr_cpu_ids_covers_every_online_cpu)
{
	long onln = sysconf(_SC_NPROCESSORS_ONLN);
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	CHECK(umcg_nr_cpu_ids() >= onln);
	CHECK(umcg_nr_cpu_ids() >= conf);
	CHECK(umcg_nr_cpu_ids() < 65536);
}
