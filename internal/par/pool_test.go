package par

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDoRunsEachPartOnce checks that Do calls every part exactly once and
// returns only after all have returned, for part counts below, at and
// above the number of helpers, with nested calls from inside parts and
// with several goroutines calling Do at once.
func TestDoRunsEachPartOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := range 200 {
				n := 1 + (rep+g)%5
				calls := make([]atomic.Int32, n)
				inner := make([]atomic.Int32, n*3)
				Do(n, func(i int) {
					time.Sleep(time.Duration(i%2) * time.Microsecond)
					Do(3, func(j int) { inner[i*3+j].Add(1) })
					calls[i].Add(1)
				})
				for i := range calls {
					if c := calls[i].Load(); c != 1 {
						t.Errorf("goroutine %d rep %d: part %d of %d ran %d times", g, rep, i, n, c)
						return
					}
				}
				for i := range inner {
					if c := inner[i].Load(); c != 1 {
						t.Errorf("goroutine %d rep %d: nested part %d ran %d times", g, rep, i, c)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestDoUsesHelpers checks that with two cores a part runs on another
// goroutine while the first is still running (the parts meet), and that
// with one core every part runs on the caller.
func TestDoUsesHelpers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	met := false
	for try := 0; try < 50 && !met; try++ {
		var started atomic.Int32
		Do(2, func(i int) {
			started.Add(1)
			deadline := time.Now().Add(20 * time.Millisecond)
			for started.Load() < 2 && time.Now().Before(deadline) {
			}
		})
		met = started.Load() == 2
	}
	if !met {
		t.Fatal("the two parts never ran at the same time with GOMAXPROCS = 2")
	}
	runtime.GOMAXPROCS(1)
	caller := goid()
	Do(4, func(int) {
		if g := goid(); g != caller {
			t.Errorf("GOMAXPROCS = 1: a part ran on goroutine %d, not the caller's %d", g, caller)
		}
	})
}

// TestDoHelperAfterParking checks that a parked helper still takes work.
func TestDoHelperAfterParking(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	Do(2, func(int) {})
	time.Sleep(5*SpinFor + 10*time.Millisecond) // the helper parks
	var ran atomic.Int32
	Do(2, func(int) { ran.Add(1) })
	if ran.Load() != 2 {
		t.Fatalf("%d of 2 parts ran after the helper parked", ran.Load())
	}
}

// TestDoPanicReachesCaller checks that a panic in a helper's part is
// re-raised on the caller with its value.
func TestDoPanicReachesCaller(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "boom") {
			t.Fatalf("recovered %v, want the part's panic", r)
		}
	}()
	Do(2, func(i int) {
		if i == 1 {
			panic("boom")
		}
	})
	t.Fatal("Do returned normally")
}

// goid returns the current goroutine's id (from its stack header).
func goid() int {
	var buf [64]byte
	s := strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine ")
	id := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + int(c-'0')
	}
	return id
}

// TestStreamsFillingTheCoresRunInline checks that while as many streams
// as cores are registered, every part runs on the caller and Idle is
// false, and that helpers come back when a stream ends.
func TestStreamsFillingTheCoresRunInline(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	a, b := Stream(), Stream()
	caller := goid()
	Do(4, func(int) {
		if g := goid(); g != caller {
			t.Errorf("two streams on two cores: a part ran on goroutine %d, not the caller's %d", g, caller)
		}
	})
	if Idle() {
		t.Error("two streams on two cores: Idle is true")
	}
	b()
	b() // a second call does nothing
	// (a helper still finishing an earlier test's part becomes idle soon)
	for deadline := time.Now().Add(time.Second); !Idle() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !Idle() {
		t.Error("one stream on two cores: no idle helper")
	}
	a()
}

// TestHoldKeepsHelpersSpinning checks that a held helper does not park
// after SpinFor, parks once released, and parks while held if streams
// fill the cores.
func TestHoldKeepsHelpersSpinning(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	anyParked := func() bool {
		hs := helpers.Load() // all helpers (pool() gives none while streams fill the cores)
		if hs == nil {
			return false
		}
		for _, h := range *hs {
			if h.state.Load() == parked {
				return true
			}
		}
		return false
	}
	waitParked := func(want bool) bool {
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if anyParked() == want {
				return true
			}
		}
		return false
	}
	release := Hold()
	Do(2, func(int) {})
	time.Sleep(4*SpinFor + 5*time.Millisecond)
	if anyParked() {
		t.Error("a held helper parked")
	}
	release()
	if !waitParked(true) {
		t.Error("a released helper did not park")
	}
	release = Hold()
	defer release()
	a, b := Stream(), Stream()
	Do(2, func(int) {})
	if !waitParked(true) {
		t.Error("a held helper did not park while streams filled the cores")
	}
	a()
	b()
}
