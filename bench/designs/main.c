/* SPDX-License-Identifier: MIT */
/*
 * bench_designs - issue 3: the three idle-server designs, measured side by
 * side in one run (v0.3 idle-servers stack, the review's eventfd
 * "idle_fd", v0.4's tid word with chaining), each driven through struct
 * umcg_idle_group (include/umcg_idle.h), so that the scheduler code is the
 * same for all three and only the group's design differs.
 *
 * Parts (-P, default all):
 *
 *  1 lat   Idle-server wake-up latency. One server sleeps in
 *          umcg_idle_group_wait(); a waker thread (not a UMCG task) plays
 *          the kernel's wake point with a dummy worker: t0 = now, then
 *          umcg_idle_workers_push() + umcg__wake_idle_server() (the exact
 *          code a real worker's umcg_wake_point() runs after turning IDLE).
 *          t1 = the server's return from umcg_idle_group_wait() (so the
 *          design's own after-wake work is included: the stack's settle +
 *          GC + grace period, the tid word's grace period + chaining, the
 *          eventfd's read). Latency = t1 - t0. Before every sample the
 *          waker checks that the server really sleeps (its /proc state is
 *          S after it announced the wait), so every sample is a wake-up of
 *          a sleeping server. Baseline, same run, same pinning, same
 *          shape: a plain thread sleeping in FUTEX_WAIT on a semaphore word,
 *          woken by the waker's post (bench_sem_post: one FUTEX_WAKE).
 *          Pinning: "same" = server and waker on the same CPU, "diff" =
 *          server on one CPU, waker on another, "none" = both unpinned.
 *
 *  2 sys   System calls per wake-up, counted exactly. libumcg counts its
 *          own futex wait/wake, eventfd writes and sched_setaffinity calls
 *          per thread (struct umcg__stats, src/util/util.h). The eventfd
 *          design's poll() and read() in umcg_idle_group_wait() and the
 *          sched_yield() of the lists are libc calls: this file defines
 *          poll(), read() and sched_yield() (the executable's definitions
 *          win over libc's when libumcg.a is linked in), which count per
 *          thread and then make the raw system call. So every system call
 *          libumcg makes on these paths is counted, on the thread that made
 *          it (a contended pthread mutex would not be, see the notes).
 *          Scenarios: (a) "busy": nobody sleeps (one server spins on the
 *          idle-workers list): waker's calls per append, goal 0, and its
 *          time per append; (b) "1 sleeper": the part-1 loop, unpinned:
 *          waker's calls per wake-up (goal exactly 1) and the server's per
 *          idle/wake cycle, with its voluntary context switches
 *          (getrusage(RUSAGE_THREAD)) as the count of real sleeps;
 *          (c) "2 sleepers, 1 append" and (d) "2 sleepers, 2 appends back
 *          to back": how many servers wake (the herd of poll on one
 *          eventfd, the tid word's chaining), the waker's and the servers'
 *          calls per round, until both servers sleep again.
 *
 *  3 cpu   CPU time burnt by idle servers: -I servers per design (and as
 *          many futex-sleeping threads, the baseline) sleep in
 *          umcg_idle_group_wait() for -T seconds (default 10) with no work;
 *          their thread CPU clocks (pthread_getcpuclockid) and voluntary
 *          context switches (/proc/self/task/TID/status) are read before
 *          and after. All groups idle at the same time (they are
 *          independent), so the part takes -T seconds, not 4 x -T.
 *
 *  4 tput  Throughput under load, per workload (-L W:c:u:k): W real UMCG
 *          workers each do k operations of c us computation + a u us
 *          sleep entered through the block and wake points (the body of
 *          umcg_usleep(), src/detect/wrap.c, inlined so the wake point's
 *          calls can be counted apart from the block point's), run by a
 *          FIFO scheduler on S servers (-S, default 1..2*CPUs): drain the
 *          idle-workers list into a FIFO run queue, run the head (server
 *          IDLE first, then the worker RUNNING), kick another server with
 *          umcg_idle_group_wake_one() when the queue still has work, idle
 *          in umcg_idle_group_wait(). ops/s over -r runs (median, min..max)
 *          and per operation: idle waits, idle sleeps, wake-ups issued.
 *          Operation and run counts are checked exactly; a mismatch exits 1.
 *          Baseline: the same workers as plain threads (kernel scheduling).
 *          Default workloads: 64 workers x (20 us + 50 us): saturated, the
 *          servers almost never idle (what the brief's "many workers" gives
 *          on 2 CPUs); 8 workers x (10 us + 200 us): servers idle and are
 *          woken about once per operation, so the idle path is measured.
 *          The timer slack of every thread is left at the default (50 us):
 *          a "50 us" sleep lasts ~100 us.
 *
 * Output: tables on stdout; with -o FILE a TSV (one section name per row,
 * "#"-headers per section) for scripts/plot-designs.sh.
 * Exit: 0 ok, 1 a failed check, 2 usage/setup error, 3 watchdog (a hang).
 */
#include "designs.h"

static void usage(const char *argv0, int status) __attribute__((noreturn));

static void add_workload(const char *spec, const char *argv0)
{
	struct workload *w = &opt.wl[opt.nwl];
	char rest;
	if (opt.nwl == 8 ||
	    sscanf(spec, "%d:%ld:%ld:%ld%c", &w->workers, &w->compute_us, &w->sleep_us, &w->ops,
		   &rest) != 4 ||
	    w->workers < 1 || w->workers > 4096 || w->compute_us < 0 || w->sleep_us < 1 ||
	    w->ops < 1)
		usage(argv0, 2);
	snprintf(w->name, sizeof w->name, "W%dc%ldu%ld", w->workers, w->compute_us, w->sleep_us);
	opt.nwl++;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(const char *argv0, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [-P parts] [-d designs] [-o out.tsv] [-n N] [-w N] [-p pins] [-R N]\n"
		"          [-T secs] [-I N] [-L W:c:u:k,...] [-S list] [-r N] [-A] [-x]\n"
		"  -P  parts: lat,sys,cpu,tput or 1,2,3,4 or all (default all)\n"
		"  -d  designs: stack,eventfd,tid (default all; the futex baseline always runs)\n"
		"  -o  write the TSV for scripts/plot-designs.sh to this file\n"
		"  part 1 (lat): -n samples per case and run (default 2000), -w warm-up (default "
		"200),\n"
		"                -p pin modes same,diff,none (default all),\n"
		"                -x no stk-nogp diagnostic row\n"
		"  part 2 (sys): -R rounds per scenario (default 400)\n"
		"  part 3 (cpu): -T idle seconds (default 10), -I idle servers per design "
		"(default 2*CPUs)\n"
		"  part 4 (tput): -L workloads, each workers:compute_us:sleep_us:ops_per_worker\n"
		"                (default " DEFAULT_WORKLOADS "," DEFAULT_WORKLOADS2 ")\n"
		"                -S server counts, e.g. 1,2,4 (default 1..2*CPUs), -r runs "
		"(default 3;\n"
		"                also part 1's repetitions),\n"
		"                -A pin servers round-robin to CPUs (default unpinned)\n",
		argv0);
	exit(status);
}

static long num(const char *s, long min, long max, const char *argv0)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage(argv0, 2);
	return v;
}

static void parse(int argc, char **argv)
{
	opt.parts = PART_LAT | PART_SYS | PART_CPU | PART_TPUT;
	opt.designs = 7;
	opt.pins = (1u << BENCH_PIN_NR) - 1;
	opt.lat_n = 2000;
	opt.lat_warm = 200;
	opt.rounds = 400;
	opt.idle_secs = 10;
	opt.idle_servers = 2 * ncpus;
	opt.reps = 3;
	for (int i = 0; i < 2 * ncpus && i < 16; i++)
		opt.srv_counts[opt.nsrv_counts++] = i + 1;
	add_workload(DEFAULT_WORKLOADS, argv[0]);
	add_workload(DEFAULT_WORKLOADS2, argv[0]);
	bool wl_given = false;
	int c;
	char buf[256];
	while ((c = getopt(argc, argv, "P:d:o:n:w:p:R:T:I:L:S:r:Axh")) != -1) {
		char *save = NULL, *t;
		switch (c) {
		case 'P':
			opt.parts = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (!strcmp(t, "lat") || !strcmp(t, "1"))
					opt.parts |= PART_LAT;
				else if (!strcmp(t, "sys") || !strcmp(t, "2"))
					opt.parts |= PART_SYS;
				else if (!strcmp(t, "cpu") || !strcmp(t, "3"))
					opt.parts |= PART_CPU;
				else if (!strcmp(t, "tput") || !strcmp(t, "4"))
					opt.parts |= PART_TPUT;
				else if (!strcmp(t, "all"))
					opt.parts |= 15;
				else
					usage(argv[0], 2);
			}
			break;
		case 'd':
			opt.designs = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				enum umcg_idle_design d;
				if (umcg_idle_design_parse(t, &d))
					usage(argv[0], 2);
				opt.designs |= 1u << d;
			}
			break;
		case 'p':
			opt.pins = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (!strcmp(t, "same"))
					opt.pins |= 1u << BENCH_PIN_SAME;
				else if (!strcmp(t, "diff"))
					opt.pins |= 1u << BENCH_PIN_DIFF;
				else if (!strcmp(t, "none"))
					opt.pins |= 1u << BENCH_PIN_NONE;
				else
					usage(argv[0], 2);
			}
			break;
		case 'S':
			opt.nsrv_counts = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (opt.nsrv_counts == 16)
					usage(argv[0], 2);
				opt.srv_counts[opt.nsrv_counts++] = (int)num(t, 1, 256, argv[0]);
			}
			break;
		case 'o':
			opt.out = optarg;
			break;
		case 'n':
			opt.lat_n = num(optarg, 1, 10000000, argv[0]);
			break;
		case 'w':
			opt.lat_warm = num(optarg, 0, 10000000, argv[0]);
			break;
		case 'R':
			opt.rounds = num(optarg, 1, 10000000, argv[0]);
			break;
		case 'T':
			opt.idle_secs = num(optarg, 1, 3600, argv[0]);
			break;
		case 'I':
			opt.idle_servers = (int)num(optarg, 1, 256, argv[0]);
			break;
		case 'L':
			if (!wl_given)
				opt.nwl = 0;
			wl_given = true;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
				add_workload(t, argv[0]);
			break;
		case 'r':
			opt.reps = (int)num(optarg, 1, 64, argv[0]);
			break;
		case 'A':
			opt.pin_servers = true;
			break;
		case 'x':
			opt.no_diag = true;
			break;
		case 'h':
			usage(argv[0], 0);
			break;
		default:
			usage(argv[0], 2);
		}
	}
	if (optind != argc || !opt.designs)
		usage(argv[0], 2);
}

int main(int argc, char **argv)
{
	bench_init();
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set))
		bench_die("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			cpu_list[ncpus++] = c;
	parse(argc, argv);
	if (opt.out) {
		tsv = fopen(opt.out, "we");
		if (!tsv)
			bench_die("%s: %s", opt.out, strerror(errno));
	}
	struct utsname u;
	char date[64], la[64];
	bench_date_uname(date, sizeof date, &u);
	loadavg(la, sizeof la);
	printf("# bench_designs  %s  kernel %s %s  %d CPUs allowed  load %s\n", date, u.release,
	       u.machine, ncpus, la);
	printf("# designs:%s%s%s (+ futex baseline); times in microseconds, CLOCK_MONOTONIC\n",
	       design_on(0) ? " stack" : "", design_on(1) ? " eventfd" : "",
	       design_on(2) ? " tid" : "");
	tsv_row("#meta\tkey\tvalue");
	tsv_row("meta\tdate\t%s", date);
	tsv_row("meta\tkernel\t%s", u.release);
	tsv_row("meta\tcpus\t%d", ncpus);
	tsv_row("meta\tload_start\t%s", la);
	uint64_t t0 = bench_now();
	if (opt.parts & PART_LAT)
		part_lat();
	if (opt.parts & PART_SYS)
		part_sys();
	if (opt.parts & PART_CPU)
		part_cpu();
	if (opt.parts & PART_TPUT)
		part_tput();
	loadavg(la, sizeof la);
	double secs = (double)(bench_now() - t0) / 1e9;
	tsv_row("meta\tload_end\t%s", la);
	tsv_row("meta\tseconds\t%.1f", secs);
	printf("\n# done in %.1f s, load %s; %s\n", secs, la,
	       failures ? "CHECKS FAILED" : "all checks passed");
	if (tsv && fclose(tsv))
		bench_die("%s: %s", opt.out, strerror(errno));
	return failures ? 1 : 0;
}
