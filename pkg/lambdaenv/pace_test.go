package lambdaenv

import (
	"testing"
	"time"
)

// TestPacerHoldsCallsForRetryAfter: after a 429, no call starts before its Retry-After has passed, including one that
// had reserved an earlier time; the rate drops by a quarter and comes back with the calls that succeed.
func TestPacerHoldsCallsForRetryAfter(t *testing.T) {
	ctx := ctxT(t)
	p := newPacer(2) // one call every 500 ms
	if err := p.wait(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	reserved := make(chan time.Duration)
	go func() {
		if err := p.wait(ctx); err != nil { // reserves start+500 ms
			t.Error(err)
		}
		reserved <- time.Since(start)
	}()
	time.Sleep(50 * time.Millisecond)
	p.throttled(time.Second)
	if got := <-reserved; got < time.Second {
		t.Errorf("a call reserved before the 429 started %v after it; want after the 1 s Retry-After", got)
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
		p.throttled(0)
	}
	if p.rate != 0.5 {
		t.Errorf("rate after ten 429s: %v, want the floor, a quarter of the quota", p.rate)
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
