// SPDX-License-Identifier: MIT
//
// peers.go - the Go peer of bench/peers (issue 8): the same work as the C
// programs, with goroutines on GOMAXPROCS = the number of servers (-p,
// default: every CPU). One binary, one workload per run:
//
//	peers demo  [-p P] [-w 64] [-n 200] [-c 50] [-u 300]
//	    64 goroutines x 200 ops: ~50 us of computation, time.Sleep(300 us),
//	    a one-byte write + read on one of 8 pipes (os.Pipe: the files are
//	    non-blocking and parked in Go's netpoller, Go's own best way).
//	    Prints "elapsed S s".
//	peers lat   [-p P] [-b batch] [-n 1000] [-s 1000] [-c 10]
//	    one interactive goroutine (sleep 1 ms, then 10 us of computation)
//	    beside `batch` (default P) goroutines in an endless compute loop.
//	    Prints "lat_p50_us X lat_p99_us Y lat_max_us Z": timer expiry
//	    (the sleep's due time) to the end of the computation.
//	peers ring  [-p P] [-r N] [-n passes]
//	    N goroutines pass a token around a ring of unbuffered channels.
//	    Prints "switches_per_s X" (one switch = one pass).
//	peers http  [-p P] [-a :8080]
//	    net/http server (a goroutine per connection), answers every request
//	    with "hello"; runs until killed. Prints "listening" when ready.
//
// Timer slack: Go offers no knob; prctl(PR_SET_TIMERSLACK) is per thread,
// so -slack (default 1 ns) sets it on the threads that exist at start
// (/proc/<tid>/timerslack_ns) and, through inheritance, on the threads
// cloned from them later (-slackcheck prints every thread's slack at exit). It changes
// little: Go's timers wake through epoll_pwait with a millisecond timeout
// or at the next scheduling point of a P (see docs/peers.md).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var sink uint64

func compute(d time.Duration) {
	s := sink
	end := time.Now().Add(d)
	for {
		for i := 0; i < 64; i++ {
			s = s*6364136223846793005 + 1442695040888963407
		}
		if !time.Now().Before(end) {
			break
		}
	}
	atomic.AddUint64(&sink, s&1)
}

// setSlack sets the timer slack of every thread of the process that exists
// now (our own by prctl, the others through /proc/<tid>/timerslack_ns: root
// or CAP_SYS_NICE); threads cloned later inherit it from their creator.
func setSlack(ns int) {
	const prSetTimerslack = 29
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, uintptr(ns), 0)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, t := range tasks {
		// /proc/<tid>/timerslack_ns (there is none under task/)
		_ = os.WriteFile("/proc/"+t.Name()+"/timerslack_ns", []byte(fmt.Sprint(ns)), 0)
	}
}

func demo(workers, ops int, c, u time.Duration) {
	const nrPipes = 8
	var r, w [nrPipes]*os.File
	for i := range r {
		var err error
		if r[i], w[i], err = os.Pipe(); err != nil {
			panic(err)
		}
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(idx int) {
			defer wg.Done()
			b := []byte{byte(idx)}
			for k := 0; k < ops; k++ {
				compute(c)
				time.Sleep(u)
				if n, err := w[idx%nrPipes].Write(b); n != 1 || err != nil {
					panic(err)
				}
				if n, err := r[idx%nrPipes].Read(b); n != 1 || err != nil {
					panic(err)
				}
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("  elapsed             %.3f s\n", time.Since(t0).Seconds())
}

func lat(batch, n int, s, c time.Duration) {
	var stop int32
	var wg sync.WaitGroup
	for i := 0; i < batch; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(1)
			for atomic.LoadInt32(&stop) == 0 {
				for k := 0; k < 256; k++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			atomic.AddUint64(&sink, x&1)
		}()
	}
	time.Sleep(20 * time.Millisecond) // the batch goroutines occupy every P
	l := make([]time.Duration, n)
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			due := time.Now().Add(s)
			time.Sleep(s)
			compute(c)
			l[i] = time.Since(due)
		}
		close(done)
	}()
	<-done
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	fmt.Printf("lat_p50_us %.1f lat_p99_us %.1f lat_max_us %.1f\n",
		us(l[n/2]), us(l[n*99/100]), us(l[n-1]))
}

func ring(nr, passes int) {
	ch := make([]chan int, nr)
	for i := range ch {
		ch[i] = make(chan int)
	}
	var wg sync.WaitGroup
	for i := 0; i < nr; i++ {
		wg.Add(1)
		go func(me int) {
			defer wg.Done()
			next := ch[(me+1)%nr]
			for {
				t := <-ch[me]
				if t >= passes {
					// the end goes round once; the last member
					// (whose next has returned) keeps it
					if t < passes+nr-1 {
						next <- t + 1
					}
					return
				}
				next <- t + 1
			}
		}(i)
	}
	t0 := time.Now()
	ch[0] <- 0
	wg.Wait()
	el := time.Since(t0)
	fmt.Printf("switches_per_s %.0f elapsed_s %.3f\n", float64(passes)/el.Seconds(), el.Seconds())
}

func serve(addr string) {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
	})
	fmt.Println("listening")
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// spawn: n times, start a goroutine running an empty function and wait for
// it (a channel), as bench_rt's spawn case does with umcg_rt_spawn+join and
// pthread_create+join; p50 and p99 of the round trip.
func spawn(n int) {
	v := make([]int64, n)
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		t0 := time.Now()
		go func() { done <- struct{}{} }()
		<-done
		v[i] = int64(time.Since(t0))
	}
	sort.Slice(v, func(a, b int) bool { return v[a] < v[b] })
	fmt.Printf("go spawn+join: %d samples, p50 %d ns, p99 %d ns\n", n, v[n/2], v[n*99/100])
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peers demo|lat|ring|http|spawn [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	p := fs.Int("p", runtime.NumCPU(), "GOMAXPROCS (servers)")
	slack := fs.Int("slack", 1, "timer slack, ns (0: leave as is)")
	w := fs.Int("w", 64, "workers (demo)")
	n := fs.Int("n", 0, "operations per worker / samples / passes")
	c := fs.Int("c", 0, "computation per operation, us")
	u := fs.Int("u", 300, "sleep per operation, us (demo)")
	s := fs.Int("s", 1000, "sleep of the interactive goroutine, us (lat)")
	b := fs.Int("b", 0, "batch goroutines (lat; default: P)")
	r := fs.Int("r", 2, "ring members (ring)")
	a := fs.String("a", ":8080", "listen address (http)")
	check := fs.Bool("slackcheck", false, "print every thread's timer slack at exit")
	fs.Parse(os.Args[2:])
	runtime.GOMAXPROCS(*p)
	if *slack > 0 {
		setSlack(*slack)
	}
	def := func(v *int, d int) int {
		if *v == 0 {
			return d
		}
		return *v
	}
	us := func(v int) time.Duration { return time.Duration(v) * time.Microsecond }
	switch os.Args[1] {
	case "demo":
		demo(*w, def(n, 200), us(def(c, 50)), us(*u))
	case "lat":
		lat(def(b, *p), def(n, 1000), us(*s), us(def(c, 10)))
	case "ring":
		ring(*r, def(n, 1000000))
	case "http":
		serve(*a)
	case "spawn":
		spawn(def(n, 100000))
	default:
		fmt.Fprintln(os.Stderr, "usage: peers demo|lat|ring|http|spawn [flags]")
		os.Exit(2)
	}
	if *check {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, t := range tasks {
			b, _ := os.ReadFile("/proc/" + t.Name() + "/timerslack_ns")
			fmt.Printf("# thread %s timerslack_ns %s", t.Name(), b)
		}
	}
}
