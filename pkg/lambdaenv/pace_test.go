package lambdaenv

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// TestPacerAfterA429: a 429 lowers the rate by a quarter and skips one interval at the new rate, which a call that
// had reserved a time within it waits out too; the rate comes back with the calls that succeed.
func TestPacerAfterA429(t *testing.T) {
	ctx := ctxT(t)
	p := newPacer(2) // one call every 500 ms
	if err := p.wait(ctx); err != nil {
		t.Fatal(err)
	}
	reserved := make(chan time.Time)
	go func() {
		if err := p.wait(ctx); err != nil { // reserves 500 ms from now
			t.Error(err)
		}
		reserved <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond)
	throttledAt := time.Now()
	p.throttled()
	if got := (<-reserved).Sub(throttledAt); got < time.Second*2/3 {
		t.Errorf("a call reserved before the 429 started %v after it; want one interval at 1.5 per second, 667 ms", got)
	}
	if p.rate != 1.5 {
		t.Errorf("rate after a 429: %v, want 1.5 (a quarter less)", p.rate)
	}
	for range 3 { // a tenth of the quota each
		p.succeeded()
	}
	if p.rate != 2 {
		t.Errorf("rate after three successes: %v, want back at the quota, 2", p.rate)
	}
	for range 10 {
		p.throttled()
	}
	if p.rate != 0.5 {
		t.Errorf("rate after ten 429s: %v, want the floor, a quarter of the quota", p.rate)
	}
}

// TestThrottledCallWaitsForRetryAfter: the update that met a 429 with Retry-After 1 s is tried again no sooner than
// a second later, though the SDK's own back-off (1 ms here) would retry at once.
func TestThrottledCallWaitsForRetryAfter(t *testing.T) {
	sim := newSim(t, apiFn)
	var mu sync.Mutex
	var puts []time.Time
	p := newPatcher(t, lambdaClient(sim, func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPut {
				mu.Lock()
				puts = append(puts, time.Now())
				mu.Unlock()
			}
			return next.RoundTrip(r)
		})
	}))
	p.RetryMax = 2 * time.Second // honours the whole Retry-After
	sim.SetFault("UpdateFunctionConfiguration", awssim.Fault{Kind: awssim.FaultThrottle, Next: 1, RetryAfter: 1})
	if _, err := p.Patch(ctxT(t), allPlans()[:1]); err != nil {
		t.Fatal(err)
	}
	if len(puts) != 2 {
		t.Fatalf("%d updates sent, want 2 (the throttled one, then its retry)", len(puts))
	}
	if gap := puts[1].Sub(puts[0]); gap < time.Second {
		t.Errorf("the throttled update was retried %v later; want at least its Retry-After, 1 s", gap)
	}
}

// TestPollBackoff: the readiness polls wait PollInterval, then half as long again each time, up to 4×.
func TestPollBackoff(t *testing.T) {
	b := pollBackoff(100 * time.Millisecond)
	var got []time.Duration
	for range 7 {
		d, stop := b.Next()
		if stop {
			t.Fatal("the poll back-off stopped by itself; WaitTimeout bounds it")
		}
		got = append(got, d)
	}
	want := []time.Duration{100, 150, 225, 337, 400, 400, 400}
	for i := range want {
		if got[i].Milliseconds() != int64(want[i]) {
			t.Fatalf("poll delays %v, want %v ms", got, want)
		}
	}
}
