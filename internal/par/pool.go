package par

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The helpers: GOMAXPROCS − 1 goroutines that run the parts of Do after the
// first. Between tasks a helper spins (with PAUSE, yielding its core to any
// runnable goroutine every 50 µs) for SpinFor before it parks, and a caller
// waiting for its parts spins too. A sampler's step alternates products
// split over the cores with short serial passes; with a goroutine started
// per part, as before, the Go scheduler parked the idle core between them
// and each wake-up (a futex, and on a virtual machine the host's wake-up of
// an idle vCPU) took about as long as the half product it delivered: at the
// GMM shape one worker gained nothing from the second core. A spinning
// helper picks its part up within a microsecond.

// SpinFor is how long an idle helper polls for work before parking.
var SpinFor = 500 * time.Microsecond

const (
	parked   int32 = iota // blocked on wake
	spinning              // polling state
	claimed               // a dispatcher has claimed it and is storing the task
	busy                  // running a task
)

// task is one helper's share of a Do call.
type task struct {
	f func() // the call's loop over its parts
	c *call
}

// call is the state of one Do call that its helpers share.
type call struct {
	// gate counts the helpers that started their task; the caller sets it
	// to −1 once every part is taken, and a helper arriving after that
	// (one woken late from parking) leaves without starting, so the caller
	// never waits for a helper that has no part left
	gate     atomic.Int32
	finished atomic.Int32 // helpers that started and returned
	perr     atomic.Pointer[panicked]
}

// enter reports whether a helper may start (the gate is still open).
func (c *call) enter() bool {
	for {
		v := c.gate.Load()
		if v < 0 {
			return false
		}
		if c.gate.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

type panicked struct{ v any }

type helper struct {
	state atomic.Int32
	task  task
	ready atomic.Bool
	wake  chan struct{}
}

var (
	helpersMu sync.Mutex
	helpers   atomic.Pointer[[]*helper]
)

// streams counts the goroutines registered with Stream.
var streams atomic.Int32

// Stream registers the calling goroutine as one of the process's
// independent streams of work (a sweep's point runner, say) until the
// returned function is called. While there are at least as many streams as
// cores, Do and Ranges run every part on the caller and Idle reports
// false: the cores are busy already, and a helper would only take one
// from another stream (a sweep with two points in parallel ran 17-20 %
// slower with helpers).
func Stream() (done func()) {
	streams.Add(1)
	var once sync.Once
	return func() { once.Do(func() { streams.Add(-1) }) }
}

// holds counts the calls of Hold not yet released.
var holds atomic.Int32

// Hold keeps idle helpers spinning, instead of parking after SpinFor, until
// the returned function is called; while streams fill the cores it has no
// effect. It is for a run on one worker whose serial passes between split
// products can outlast SpinFor: at the MNIST shape the engine's per-step
// work takes 1-2 ms, the helper parked before every forward pass, and each
// wake-up of a parked helper on this virtual machine took about 0.6 ms
// (the one-worker MNIST rates rose 13-25 % when helpers stayed up).
func Hold() (release func()) {
	holds.Add(1)
	var once sync.Once
	return func() { once.Do(func() { holds.Add(-1) }) }
}

// held reports whether idle helpers should keep spinning.
func held() bool {
	return holds.Load() > 0 && int(streams.Load()) < runtime.GOMAXPROCS(0)
}

// pool returns the helpers for the current GOMAXPROCS (started on first
// use; more are started when GOMAXPROCS grows, none stop), none while the
// streams fill the cores.
func pool() []*helper {
	procs := runtime.GOMAXPROCS(0)
	if int(streams.Load()) >= procs {
		return nil
	}
	want := procs - 1
	if hs := helpers.Load(); hs != nil && len(*hs) >= want {
		return (*hs)[:want]
	}
	helpersMu.Lock()
	defer helpersMu.Unlock()
	var hs []*helper
	if p := helpers.Load(); p != nil {
		hs = *p
	}
	for len(hs) < want {
		h := &helper{wake: make(chan struct{}, 1)}
		h.state.Store(spinning)
		hs = append(hs, h)
		go h.loop()
	}
	helpers.Store(&hs)
	return hs[:want]
}

func (h *helper) loop() {
	for {
		idle := time.Now()
		yielded := idle
		for n := 0; ; n++ {
			if h.state.Load() == claimed {
				h.run()
				idle = time.Now()
				yielded = idle
				continue
			}
			pause()
			if n&255 != 255 {
				continue
			}
			now := time.Now()
			if now.Sub(idle) > SpinFor && !held() && h.state.CompareAndSwap(spinning, parked) {
				<-h.wake // a dispatcher has claimed the helper
				h.run()
				idle = time.Now()
				yielded = idle
				continue
			}
			if now.Sub(yielded) > yieldEvery {
				runtime.Gosched() // any runnable goroutine gets the core
				yielded = time.Now()
			}
		}
	}
}

// yieldEvery bounds how long a spinning helper (or a caller waiting for
// the helpers) keeps its core from other runnable goroutines.
const yieldEvery = 50 * time.Microsecond

// run waits for the claiming dispatcher to store the task, then runs it.
func (h *helper) run() {
	for !h.ready.Load() {
		pause()
	}
	t := h.task
	h.task = task{}
	h.ready.Store(false)
	if !t.c.enter() { // every part is taken: the caller is not waiting for us
		h.state.Store(spinning)
		return
	}
	h.state.Store(busy)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.c.perr.CompareAndSwap(nil, &panicked{r})
			}
		}()
		t.f()
	}()
	h.state.Store(spinning)
	t.c.finished.Add(1)
}

// claim hands t to an idle helper, reporting false when every helper is
// busy.
func claim(hs []*helper, t task) bool {
	for _, h := range hs {
		if h.state.CompareAndSwap(spinning, claimed) {
			h.task = t
			h.ready.Store(true)
			return true
		}
		if h.state.CompareAndSwap(parked, claimed) {
			h.task = t
			h.ready.Store(true)
			h.wake <- struct{}{}
			return true
		}
	}
	return false
}

// Idle reports whether a helper is free to take a part now (a hint: by the
// time Do claims one it may be gone, and Do then runs the part inline).
// Callers whose parts cost more inline than the whole would (a product
// whose parts each pack the same operand) run the whole when it is false.
func Idle() bool {
	for _, h := range pool() {
		if s := h.state.Load(); s == spinning || s == parked {
			return true
		}
	}
	return false
}

// Do calls f(0), …, f(n−1), returning when all have returned. The caller
// and the idle helpers (at most n − 1) take the parts in order, each the
// next one left when it finishes its last, so a faster core takes more of
// many parts. Each part must write its own outputs only, and must not wait
// for another part: they may all run on the caller, one after another. A
// panic in a part is re-raised on the caller.
func Do(n int, f func(i int)) {
	if n <= 0 {
		return
	}
	hs := pool()
	if n == 1 || len(hs) == 0 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	parts := func() {
		for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
			f(i)
		}
	}
	c := &call{}
	for range min(n-1, len(hs)) {
		if !claim(hs, task{f: parts, c: c}) {
			break
		}
	}
	parts()
	started := c.gate.Swap(-1) // every part is taken: late helpers leave
	var since time.Time
	for spins := 0; c.finished.Load() != started; spins++ {
		pause()
		if spins&255 == 255 {
			if since.IsZero() {
				since = time.Now()
			} else if time.Since(since) > yieldEvery {
				runtime.Gosched()
				since = time.Now()
			}
		}
	}
	if p := c.perr.Load(); p != nil {
		panic(fmt.Sprintf("par: a part panicked: %v", p.v))
	}
}
