package lambdaenv

import "context"

// apiSlots bounds the Lambda calls one Patch or Restore has in flight (the Patcher's Concurrency). A function holds
// a slot only for the duration of one attempt of one call (paceCalls takes it once the call's quota lets it go),
// never while it sleeps: not while it waits for its update to go live, for its turn under the quota, or backs off.
// Holding a slot per function for its whole cycle made N functions cost N/Concurrency update propagations (13× one
// function for 100 functions, see docs/PERFORMANCE.md).
type apiSlots chan struct{}

func newAPISlots(n int) apiSlots { return make(apiSlots, max(n, 1)) }

// acquire takes a slot, or returns the context's error if it ends first. A nil apiSlots does not limit.
func (s apiSlots) acquire(ctx context.Context) error {
	if s == nil {
		return nil
	}
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// release gives back a slot taken by acquire.
func (s apiSlots) release() {
	if s != nil {
		<-s
	}
}
