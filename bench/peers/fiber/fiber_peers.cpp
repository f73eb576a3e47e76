// SPDX-License-Identifier: MIT
//
// fiber_peers.cpp - the Boost.Fiber peer of bench/peers (issue 8): the same
// work as the C programs, as fibers on the work-stealing scheduler
// (boost::fibers::algo::work_stealing), one thread per CPU (-t, default:
// every CPU; the main thread is one of them).
//
//   fiber_peers demo [-t T] [-w 64] [-n 200] [-c 50] [-u 300]
//       64 fibers x 200 ops: ~50 us of computation,
//       boost::this_fiber::sleep_for(300 us) (the thread runs other fibers
//       meanwhile), a one-byte write + read on one of 8 pipes. The pipe: the
//       ends are O_NONBLOCK and a call that would block yields the fiber
//       (this_fiber::yield()) and tries again - what a Boost.Fiber user
//       without an event loop does to keep the thread free. In this workload
//       a call never has to wait (each worker writes its byte before it
//       reads one), so the yield path is counted ("eagain") and is 0.
//       Prints "elapsed S s".
//   fiber_peers ring [-t T] [-r N] [-n passes] [-R]
//       N fibers pass a token around a ring of buffered_channel<long> (size
//       2: the cheapest channel of Boost.Fiber). -R: the round_robin
//       scheduler on the main thread only (no stealing, no cross-thread
//       wake-ups: the ring is sequential anyway). Prints "switches_per_s X".
//
// Timer slack: prctl(PR_SET_TIMERSLACK, 1) before any thread starts (the
// setting is inherited), as in the C programs.
#include <boost/fiber/all.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace bf = boost::fibers;

static uint64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void compute(uint64_t ns)
{
	static thread_local volatile uint64_t sink;
	uint64_t end = now_ns() + ns;
	do {
		for (int i = 0; i < 64; i++)
			sink = sink * 6364136223846793005ull + 1442695040888963407ull;
	} while (now_ns() < end);
}

// Run `body` in the main fiber of the main thread with T-1 helper threads,
// all on the work-stealing scheduler; the helpers stay until `done`.
template <class F> static void run_pool(int nthreads, bool rr, F body)
{
	std::atomic<bool> done{false};
	bf::mutex mtx;
	bf::condition_variable cv;
	std::vector<std::thread> helpers;
	if (!rr) {
		for (int i = 1; i < nthreads; i++)
			helpers.emplace_back([&] {
				bf::use_scheduling_algorithm<bf::algo::work_stealing>(nthreads);
				std::unique_lock<bf::mutex> lk(mtx);
				cv.wait(lk, [&] { return done.load(); });
			});
		bf::use_scheduling_algorithm<bf::algo::work_stealing>(nthreads);
	}
	body();
	{
		std::unique_lock<bf::mutex> lk(mtx);
		done = true;
	}
	cv.notify_all();
	for (auto &t : helpers)
		t.join();
}

static long eagain;

static void pipe_io(int fd, bool wr, char *c)
{
	for (;;) {
		ssize_t r = wr ? write(fd, c, 1) : read(fd, c, 1);
		if (r == 1)
			return;
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			__atomic_fetch_add(&eagain, 1, __ATOMIC_RELAXED);
			boost::this_fiber::yield();
			continue;
		}
		perror("fiber_peers: pipe");
		std::exit(1);
	}
}

static int demo(int nthreads, int workers, long ops, long c_us, long u_us)
{
	enum { NR_PIPES = 8 };
	static int pipes[NR_PIPES][2];
	for (auto &p : pipes)
		if (pipe2(p, O_NONBLOCK))
			return 1;
	uint64_t t0 = now_ns();
	run_pool(nthreads, false, [&] {
		std::vector<bf::fiber> f;
		for (int i = 0; i < workers; i++)
			f.emplace_back([=] {
				int *p = pipes[i % NR_PIPES];
				for (long k = 0; k < ops; k++) {
					compute((uint64_t)c_us * 1000);
					boost::this_fiber::sleep_for(std::chrono::microseconds(u_us));
					char ch = (char)i;
					pipe_io(p[1], true, &ch);
					pipe_io(p[0], false, &ch);
				}
			});
		for (auto &x : f)
			x.join();
	});
	printf("  elapsed             %.3f s\n  eagain              %ld\n",
	       (double)(now_ns() - t0) / 1e9, eagain);
	return 0;
}

static int ring(int nthreads, bool rr, int nr, long passes)
{
	double el = 0;
	run_pool(nthreads, rr, [&] {
		std::vector<std::unique_ptr<bf::buffered_channel<long>>> ch;
		for (int i = 0; i < nr; i++)
			ch.emplace_back(new bf::buffered_channel<long>(2));
		std::vector<bf::fiber> f;
		for (int i = 0; i < nr; i++)
			f.emplace_back([&, i] {
				auto &in = *ch[i], &next = *ch[(i + 1) % nr];
				for (;;) {
					long t = in.value_pop();
					if (t >= passes) {
						if (t < passes + nr - 1)
							next.push(t + 1);
						return;
					}
					next.push(t + 1);
				}
			});
		uint64_t t0 = now_ns();
		ch[0]->push(0);
		for (auto &x : f)
			x.join();
		el = (double)(now_ns() - t0) / 1e9;
	});
	printf("switches_per_s %.0f elapsed_s %.3f\n", (double)passes / el, el);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
	usage:
		fprintf(stderr, "usage: fiber_peers demo|ring [-t threads] [-w workers] [-n ops]"
				" [-c us] [-u us] [-r members] [-R]\n");
		return 2;
	}
	const char *what = argv[1];
	int nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN), workers = 64, nr = 2, opt;
	long n = 0, c = 50, u = 300;
	bool rr = false;
	optind = 2;
	while ((opt = getopt(argc, argv, "t:w:n:c:u:r:R")) != -1) {
		switch (opt) {
		case 't': nthreads = atoi(optarg); break;
		case 'w': workers = atoi(optarg); break;
		case 'n': n = atol(optarg); break;
		case 'c': c = atol(optarg); break;
		case 'u': u = atol(optarg); break;
		case 'r': nr = atoi(optarg); break;
		case 'R': rr = true; break;
		default: goto usage;
		}
	}
	if (nthreads < 1 || nr < 1)
		goto usage;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (!strcmp(what, "demo"))
		return demo(nthreads, workers, n ? n : 200, c, u);
	if (!strcmp(what, "ring"))
		return ring(nthreads, rr, nr, n ? n : 1000000);
	goto usage;
}
