/* SPDX-License-Identifier: MIT */
/*
 * trace.c - per-server event rings and their export as Chrome trace JSON.
 *
 * Each server has a ring of attr.trace_events entries (allocated only when
 * tracing is on; otherwise s->trace is NULL and each trace point is one
 * predictable branch). Writers: the server thread itself, or the worker it
 * is running (switch_to), never both at once: the worker runs only while
 * its server sleeps in umcg_wait(), and the hand-over between them is a
 * release/acquire pair on a state word. So a ring has one writer at a
 * time, and `head` is a relaxed atomic only so that an export while the
 * runtime still runs reads a sane (if torn) snapshot; export after
 * umcg_rt_shutdown() (the servers are joined) for a consistent one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt/rt.h"

int rt__trace_init(struct umcg_rt *rt)
{
	uint32_t n = rt->attr.trace_events;
	if (!n)
		return 0;
	for (int i = 0; i < rt->nr_servers; i++) {
		struct rt_trace *t = calloc(1, sizeof *t + sizeof(struct rt_event) * n);
		if (!t)
			return -1;
		t->size = n;
		rt->servers[i].trace = t;
	}
	return 0;
}

void rt__trace_free(struct umcg_rt *rt)
{
	for (int i = 0; i < rt->nr_servers; i++) {
		free(rt->servers[i].trace);
		rt->servers[i].trace = NULL;
	}
}

void rt__trace(struct rt_server *s, enum rt_ev type, uint32_t tid, uint32_t arg)
{
	struct rt_trace *t = s->trace;
	uint64_t h = atomic_load_explicit(&t->head, memory_order_relaxed);
	struct rt_event *e = &t->ev[h % t->size];
	e->ts = umcg_now_ns();
	e->tid = tid;
	e->type = (uint16_t)type;
	e->arg = (uint16_t)arg;
	atomic_store_explicit(&t->head, h + 1, memory_order_release);
}

static const char *const end_names[] = {
    [RT_END_BLOCK] = "block", [RT_END_YIELD] = "yield",	    [RT_END_PARK] = "park",
    [RT_END_EXIT] = "exit",   [RT_END_PREEMPT] = "preempt", [RT_END_SWITCH] = "switch",
};

static void comma(FILE *f, bool *first)
{
	if (!*first)
		fputs(",\n", f);
	*first = false;
}

/* One server's lane: pair RUN_BEGIN/RUN_END and IDLE_BEGIN/IDLE_END into slices. */
static void export_server(FILE *f, struct rt_server *s, uint64_t t0, bool *first)
{
	struct rt_trace *t = s->trace;
	uint64_t head = atomic_load_explicit(&t->head, memory_order_acquire);
	uint64_t from = head > t->size ? head - t->size : 0;
	uint64_t run_ts = 0, idle_ts = 0;
	uint32_t run_tid = 0;
	bool in_run = false, in_idle = false;
	comma(f, first);
	fprintf(f,
		"{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,"
		"\"args\":{\"name\":\"server %d (tid %u)\"}}",
		s->idx, s->idx, s->tid);
	for (uint64_t i = from; i < head; i++) {
		struct rt_event *e = &t->ev[i % t->size];
		double ts = (double)(e->ts - t0) / 1e3;
		switch ((enum rt_ev)e->type) {
		case RT_EV_RUN_BEGIN:
			in_run = true;
			run_ts = e->ts;
			run_tid = e->tid;
			break;
		case RT_EV_RUN_END:
			if (!in_run)
				break;
			in_run = false;
			comma(f, first);
			fprintf(f,
				"{\"name\":\"worker %u\",\"cat\":\"run\",\"ph\":\"X\",\"pid\":1,"
				"\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"end\":\"%s\"}}",
				run_tid, s->idx, (double)(run_ts - t0) / 1e3,
				(double)(e->ts - run_ts) / 1e3,
				e->arg < sizeof end_names / sizeof end_names[0] && end_names[e->arg]
				    ? end_names[e->arg]
				    : "?");
			break;
		case RT_EV_IDLE_BEGIN:
			in_idle = true;
			idle_ts = e->ts;
			break;
		case RT_EV_IDLE_END:
			if (!in_idle)
				break;
			in_idle = false;
			comma(f, first);
			fprintf(f,
				"{\"name\":\"idle\",\"cat\":\"idle\",\"ph\":\"X\",\"pid\":1,"
				"\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f}",
				s->idx, (double)(idle_ts - t0) / 1e3,
				(double)(e->ts - idle_ts) / 1e3);
			break;
		case RT_EV_WAKE:
		case RT_EV_STEAL:
			comma(f, first);
			fprintf(
			    f,
			    "{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,"
			    "\"tid\":%d,\"ts\":%.3f,\"args\":{\"%s\":%u}}",
			    e->type == RT_EV_WAKE ? "wake" : "steal",
			    e->type == RT_EV_WAKE ? "wake" : "steal", s->idx, ts,
			    e->type == RT_EV_WAKE ? "workers" : "worker",
			    e->type == RT_EV_WAKE ? e->arg : e->tid);
			break;
		}
	}
}

UMCG_RT_EXPORT int umcg_rt_trace_export(struct umcg_rt *rt, const char *path)
{
	if (!rt || !path || !rt->attr.trace_events) {
		errno = EINVAL;
		return -1;
	}
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	/* time 0: the earliest event still in any ring */
	uint64_t t0 = UINT64_MAX;
	for (int i = 0; i < rt->nr_servers; i++) {
		struct rt_trace *t = rt->servers[i].trace;
		uint64_t head = atomic_load_explicit(&t->head, memory_order_acquire);
		uint64_t from = head > t->size ? head - t->size : 0;
		if (from < head && t->ev[from % t->size].ts < t0)
			t0 = t->ev[from % t->size].ts;
	}
	if (t0 == UINT64_MAX)
		t0 = 0;
	bool first = true;
	fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
	for (int i = 0; i < rt->nr_servers; i++)
		export_server(f, &rt->servers[i], t0, &first);
	fputs("\n]}\n", f);
	if (ferror(f)) {
		fclose(f);
		errno = EIO;
		return -1;
	}
	return fclose(f) ? -1 : 0;
}
