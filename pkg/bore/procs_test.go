package bore

import (
	"runtime"
	"testing"
)

// LimitClientProcs caps GOMAXPROCS at ClientProcs, unless the environment chose a value, and never raises it.
func TestLimitClientProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
	noEnv := func(string) string { return "" }
	cases := []struct {
		name        string
		procs, want int
		getenv      func(string) string
	}{
		{"capped", ClientProcs + 3, ClientProcs, noEnv},
		{"already low", ClientProcs, ClientProcs, noEnv},
		{"chosen by GOMAXPROCS", ClientProcs + 3, ClientProcs + 3, func(k string) string {
			if k == "GOMAXPROCS" {
				return "4"
			}
			return ""
		}},
	}
	for _, c := range cases {
		runtime.GOMAXPROCS(c.procs)
		got := LimitClientProcs(c.getenv)
		if now := runtime.GOMAXPROCS(0); got != c.want || now != c.want {
			t.Errorf("%s: from %d, LimitClientProcs returned %d and left GOMAXPROCS %d, want %d", c.name, c.procs, got, now, c.want)
		}
	}
}
