/* SPDX-License-Identifier: MIT */
/*
 * test_rt_trace.c - per-server trace rings and their Chrome JSON export:
 * one slice per run and per idle wait (exact counts against the runtime's
 * counters), ring overflow keeps the newest events, errno when tracing is
 * off.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"
#include "umcg_rt.h"

static struct umcg_rt *mk(uint32_t events)
{
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.nr_servers = 2;
	a.trace_events = events;
	struct umcg_rt *rt = umcg_rt_create(&a);
	CHECK(rt != NULL);
	return rt;
}

static void *work(void *arg)
{
	for (int i = 0; i < 10; i++) {
		if (i % 2)
			umcg_rt_yield();
		else
			umcg_rt_sleep_ns(100000);
	}
	return NULL;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	static char buf[4 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static long count(const char *s, const char *what)
{
	long n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

static void run_workload(struct umcg_rt *rt, int n)
{
	struct umcg_rt_spawn_attr sa = {.flags = UMCG_RT_SPAWN_DETACHED};
	for (int i = 0; i < n; i++)
		CHECK(umcg_rt_spawn(rt, work, NULL, &sa) != NULL);
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
}

TEST_T(trace_slices_match_counters, 30)
{
	struct umcg_rt *rt = mk(1 << 16);
	run_workload(rt, 20);
	struct umcg_rt_stats st;
	umcg_rt_get_stats(rt, &st);
	char path[] = "/tmp/umcg_rt_trace_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(umcg_rt_trace_export(rt, path), 0);
	char *js = slurp(path);
	unlink(path);
	CHECK(!strncmp(js, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", 39));
	CHECK(strstr(js, "\n]}\n") != NULL);
	CHECK_EQ(count(js, "\"cat\":\"run\""), st.runs);
	CHECK_EQ(count(js, "\"cat\":\"idle\""), st.idle_waits);
	CHECK_EQ(count(js, "\"end\":\"yield\""), st.yields);
	CHECK_EQ(count(js, "\"end\":\"block\""), st.blocks);
	CHECK_EQ(count(js, "\"thread_name\""), 2);
	CHECK(count(js, "\"cat\":\"wake\"") >= 1);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

TEST_T(trace_ring_keeps_newest, 30)
{
	struct umcg_rt *rt = mk(16);
	run_workload(rt, 20);
	char path[] = "/tmp/umcg_rt_trace_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(umcg_rt_trace_export(rt, path), 0);
	char *js = slurp(path);
	unlink(path);
	/* at most 16 events per server: at most 8 slices each, at least one */
	long slices = count(js, "\"ph\":\"X\"");
	CHECK(slices >= 1);
	CHECK(slices <= 2 * 8);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

TEST_T(trace_errors, 20)
{
	struct umcg_rt *rt = mk(0);
	CHECK_ERR(umcg_rt_trace_export(rt, "/tmp/x.json"), EINVAL);
	CHECK_ERR(umcg_rt_trace_export(NULL, "/tmp/x.json"), EINVAL);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
	rt = mk(64);
	CHECK_ERR(umcg_rt_trace_export(rt, "/nonexistent-dir/x.json"), ENOENT);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}
