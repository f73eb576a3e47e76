// SPDX-License-Identifier: GPL-2.0
/*
 * test_ctl.c - the marker, and every errno path of sys_umcg_ctl() and
 * sys_umcg_wait() that a single thread can reach, in the documented order.
 */
#include <sys/mman.h>
#include <sys/time.h>

#include "kt.h"

static struct umcg_task self;

static void reset(struct umcg_task *t, uint32_t state)
{
	memset(t, 0, sizeof *t);
	t->state = state;
	t->api_version = UMCG_API_VERSION;
}

static void marker(void)
{
	FILE *f = fopen("/proc/sys/kernel/umcg_version", "r");
	int v = 0;
	CHECK(f && fscanf(f, "%d", &v) == 1);
	fclose(f);
	CHECK(v == 1);
	CHECK(kt_nr_ctl == 451 && kt_nr_wait == 452);
}

static void ctl_errors(void)
{
	static uint64_t head;
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL); /* not registered */
	reset(&self, UMCG_TASK_RUNNING);
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, &self), EINVAL);
	CHECK_ERR(umcg_ctl(0, &self), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_WORKER, &self), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_UNREGISTER, &self), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | 0x4, &self), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, NULL), EFAULT);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, (struct umcg_task *)8), EFAULT);
	/* unreadable: a PROT_NONE page */
	void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(none != MAP_FAILED);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, none), EFAULT);
	/* the struct straddles into the PROT_NONE page: EFAULT before alignment */
	char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(two != MAP_FAILED);
	CHECK(mprotect(two + 4096, 4096, PROT_NONE) == 0);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, (struct umcg_task *)(two + 4096 - 32)), EFAULT);
	/* misaligned but readable -> EINVAL */
	struct umcg_task *mis = (struct umcg_task *)(two + 8);
	reset(&self, UMCG_TASK_RUNNING);
	memcpy(mis, &self, sizeof self);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, mis), EINVAL);
	/* api_version */
	reset(&self, UMCG_TASK_RUNNING);
	self.api_version = 2;
	errno = 0;
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 1);
	self.api_version = 0;
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 1);
	/* api_version is checked before the tids and the state */
	self.server_tid = 1;
	self.state = 77;
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 1);
	reset(&self, UMCG_TASK_RUNNING);
	self.server_tid = kt_tid();
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &self), EINVAL);
	reset(&self, UMCG_TASK_RUNNING);
	self.next_tid = kt_tid();
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &self), EINVAL);
	/* server: exactly RUNNING */
	reset(&self, UMCG_TASK_IDLE);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &self), EINVAL);
	reset(&self, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &self), EINVAL);
	reset(&self, UMCG_TASK_RUNNING | 0x01000000u);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &self), EINVAL);
	/* worker: exactly IDLE and an idle_workers_ptr */
	reset(&self, UMCG_TASK_RUNNING);
	self.idle_workers_ptr = (uint64_t)(uintptr_t)&head;
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &self), EINVAL);
	reset(&self, UMCG_TASK_IDLE);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &self), EINVAL);
	/* nothing registered so far */
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);

	reset(&self, UMCG_TASK_RUNNING);
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 0);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &self), EINVAL); /* twice */
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, NULL), EINVAL);  /* 3 before 4 */
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, &self), EINVAL);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);
	/* re-register works (no stale state) */
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 0);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
}

static void *idle_thread(void *arg)
{
	pause();
	return arg;
}

static void wait_errors(void)
{
	CHECK_ERR(umcg_wait(0, 0), EINVAL); /* not registered */
	reset(&self, UMCG_TASK_RUNNING);
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 0);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), EINVAL); /* next_tid 0 */
	self.next_tid = kt_tid();
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 1), EINVAL);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | 4, 0), EINVAL);
	CHECK(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0) == 0); /* self: a no-op wake */
	CHECK(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0) == 0);
	CHECK(kt_load(&self.state) == UMCG_TASK_RUNNING); /* untouched */
	/* not a UMCG task */
	pthread_t th;
	pthread_create(&th, NULL, idle_thread, NULL);
	usleep(10000);
	/* pthread_t -> tid: the thread's tid is main's + 1 in this fresh process */
	self.next_tid = 999999;
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
	CHECK_ERR(umcg_wait(0, 0), ESRCH);
	self.next_tid = kt_tid() + 1;
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
	self.next_tid = 1; /* init: another process */
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
	self.next_tid = 0;
	/* without WAKE_ONLY every flag bit is EINVAL */
	CHECK_ERR(umcg_wait(UMCG_WAIT_WF_CURRENT_CPU, 0), EINVAL);
	CHECK_ERR(umcg_wait(8, 0), EINVAL);
	/* RUNNING: returns at once */
	CHECK(umcg_wait(0, 0) == 0);
	/* timeout: absolute CLOCK_MONOTONIC, back to RUNNING */
	kt_store(&self.state, UMCG_TASK_IDLE | 0x02000000u);
	uint64_t t0 = kt_now();
	CHECK_ERR(umcg_wait(0, t0 + 20000000ull), ETIMEDOUT);
	CHECK(kt_now() - t0 >= 20000000ull);
	CHECK(kt_load(&self.state) == (UMCG_TASK_RUNNING | 0x02000000u)); /* user bits kept */
	kt_store(&self.state, UMCG_TASK_IDLE);
	CHECK_ERR(umcg_wait(0, 1), ETIMEDOUT); /* in the past */
	CHECK(kt_load(&self.state) == UMCG_TASK_RUNNING);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void wait_eintr(void)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	sigaction(SIGALRM, &sa, NULL);
	reset(&self, UMCG_TASK_RUNNING);
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 0);
	kt_store(&self.state, UMCG_TASK_IDLE);
	struct itimerval it = {.it_value = {0, 20000}};
	setitimer(ITIMER_REAL, &it, NULL);
	CHECK_ERR(umcg_wait(0, 0), EINTR);
	CHECK(kt_load(&self.state) == UMCG_TASK_IDLE);
}

/* The struct unmapped while registered: EFAULT, never an oops. */
static void wait_efault(void)
{
	struct umcg_task *t =
	    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(t != MAP_FAILED);
	reset(t, UMCG_TASK_RUNNING);
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, t) == 0);
	CHECK(munmap(t, 4096) == 0);
	CHECK_ERR(umcg_wait(0, 0), EFAULT);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), EFAULT);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
}

/* T12: the child of fork is not registered; the parent still is. */
static void fork_child(void)
{
	reset(&self, UMCG_TASK_RUNNING);
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, &self) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL) != -1 || errno != EINVAL)
			_exit(2);
		if (umcg_wait(0, 0) != -1 || errno != EINVAL)
			_exit(3);
		/* the child may register its own copy */
		if (umcg_ctl(UMCG_CTL_REGISTER, &self) != 0)
			_exit(4);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* the pinned page stays ours and writable after fork */
	kt_store(&self.state, UMCG_TASK_IDLE);
	CHECK_ERR(umcg_wait(0, 1), ETIMEDOUT);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
}

/* exec unregisters (the struct was in the old mm). */
static void exec_unregisters(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		reset(&self, UMCG_TASK_RUNNING);
		if (umcg_ctl(UMCG_CTL_REGISTER, &self) != 0)
			_exit(6);
		execl("/proc/self/exe", "test_ctl", "--exec-check", (char *)NULL);
		_exit(5);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* a thread registers and exits without unregistering (T11) */
static void *exit_registered(void *arg)
{
	static __thread struct umcg_task t;
	reset(&t, UMCG_TASK_RUNNING);
	*(long *)arg = umcg_ctl(UMCG_CTL_REGISTER, &t);
	return NULL;
}

static void thread_exit(void)
{
	for (int i = 0; i < 50; i++) {
		long r = -1;
		pthread_t th;
		pthread_create(&th, NULL, exit_registered, &r);
		pthread_join(th, NULL);
		CHECK(r == 0);
	}
}

static int exec_check(void)
{
	/* registered before exec: the new image starts unregistered */
	if (kt_probe())
		return 10;
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL) != -1 || errno != EINVAL)
		return 11;
	return 0;
}

static const struct kt_case cases[] = {
    KT_CASE(marker),	  KT_CASE(ctl_errors), KT_CASE(wait_errors),	  KT_CASE(wait_eintr),
    KT_CASE(wait_efault), KT_CASE(fork_child), KT_CASE(exec_unregisters), KT_CASE(thread_exit),
};

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--exec-check"))
		return exec_check();
	return kt_main(cases, (int)(sizeof cases / sizeof cases[0]));
}
