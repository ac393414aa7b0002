package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// TestAPIFaultSweep runs `env patch` then `env restore` (from the journal) over six functions while the emulator
// injects faults into both: throttling at several rates, 409 storms, 5xx, dropped connections, a mix, and 412 races
// from a concurrent writer that keeps changing another key of every function. Each run must converge: a patch
// either applies every function or exits 1 naming each one it did not, restore is re-run (as an operator would)
// until it exits 0, and then every bound variable is back byte for byte while the concurrent writer's last value
// of its own key is still there (no foreign change clobbered).
func TestAPIFaultSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary many times: not in -short")
	}
	type opFault struct {
		op   string
		spec string
	}
	cases := []struct {
		name   string
		faults []opFault
		racer  bool // a concurrent writer changes FOREIGN on every function during patch and restore
		full   bool // only with STPTUNNEL_FAULT_SWEEP=full: slow (SDK back-off) or redundant with a quick case
	}{
		{name: "throttle-10pct", faults: []opFault{{"*", "throttle,rate=0.1"}}, full: true},
		{name: "throttle-30pct", faults: []opFault{{"*", "throttle,rate=0.3"}}},
		{name: "throttle-50pct-updates", faults: []opFault{{"UpdateFunctionConfiguration", "throttle,rate=0.5"}}, full: true},
		{name: "409-storm-30pct", faults: []opFault{{"UpdateFunctionConfiguration", "conflict,rate=0.3"}}, full: true},
		{name: "409-storm-50pct", faults: []opFault{{"UpdateFunctionConfiguration", "conflict,rate=0.5"}}, full: true},
		{name: "409-storm-next-12", faults: []opFault{{"UpdateFunctionConfiguration", "conflict,next=12"}}},
		{name: "5xx-30pct", faults: []opFault{{"*", "error,rate=0.3"}}},
		{name: "5xx-60pct-updates", faults: []opFault{{"UpdateFunctionConfiguration", "error,rate=0.6"}}, full: true},
		{name: "drop-30pct", faults: []opFault{{"*", "drop,rate=0.3"}}},
		{name: "mixed", faults: []opFault{{"UpdateFunctionConfiguration", "conflict,rate=0.3"},
			{"GetFunction", "throttle,rate=0.2"}, {"*", "drop,rate=0.1"}}},
		{name: "412-race", racer: true},
		{name: "412-race-with-5xx", racer: true, faults: []opFault{{"UpdateFunctionConfiguration", "error,rate=0.2"}}, full: true},
	}
	full := os.Getenv("STPTUNNEL_FAULT_SWEEP") == "full"
	var summary []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.full && !full {
				t.Skip("STPTUNNEL_FAULT_SWEEP=full runs it")
			}
			sim, err := awssim.New(awssim.Options{Region: "eu-west-1", Seed: int64(len(tc.name))})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			seed := faultSweepSeed()
			for name, env := range seed {
				sim.PutFunction(awssim.Function{Name: name, Env: env})
			}
			for _, f := range tc.faults {
				fault, err := awssim.ParseFault(f.spec)
				if err != nil {
					t.Fatal(err)
				}
				sim.SetFault(f.op, fault)
			}
			var racer *foreignWriter
			if tc.racer {
				racer = startForeignWriter(t, sim, sortedNames(seed))
			}
			state := t.TempDir()
			start := time.Now()

			patch := stptunnelCmd(t, sim, faultSweepDoc(seed), "env", "patch", "--state-dir", state)
			var stderr strings.Builder
			patch.Stderr = &stderr
			patchErr := patch.Run()
			if patchErr != nil && exitOf(patchErr) != ExitFailed {
				t.Fatalf("env patch exited %d, want 0 or 1:\n%s", exitOf(patchErr), stderr.String())
			}
			notPatched := 0
			for name := range seed {
				env, _ := sim.Env(name)
				if strings.Contains(env["DB"], "127.0.0.1:40001") {
					continue
				}
				notPatched++
				if patchErr == nil {
					t.Fatalf("env patch exited 0 but %s is not patched:\n%s", name, stderr.String())
				}
				if !strings.Contains(stderr.String(), name) {
					t.Fatalf("env patch did not name %s, which it left unpatched:\n%s", name, stderr.String())
				}
			}

			restores := 0
			for {
				restores++
				restore := stptunnelCmd(t, sim, "", "env", "restore", "--state-dir", state)
				out, err := restore.CombinedOutput()
				if err == nil {
					break
				}
				if code := exitOf(err); code != ExitPatched && code != ExitFailed {
					t.Fatalf("env restore exited %d:\n%s", code, out)
				}
				if !strings.Contains(string(out), "stptunnel env restore") {
					t.Fatalf("env restore failed without saying how to finish:\n%s", out)
				}
				if restores == 5 {
					t.Fatalf("env restore did not converge in 5 runs:\n%s", out)
				}
			}
			elapsed := time.Since(start)
			var lastForeign map[string][]string
			if racer != nil {
				lastForeign = racer.stop()
			}
			for _, f := range tc.faults {
				sim.SetFault(f.op, awssim.Fault{})
			}
			for name, want := range seed {
				got, _ := sim.Env(name)
				if vs := lastForeign[name]; len(vs) > 0 {
					if !slices.Contains(vs, got["FOREIGN"]) {
						t.Fatalf("%s: the concurrent writer's FOREIGN was clobbered: %q, want one of %q", name, got["FOREIGN"], vs)
					}
					want = cloneWith(want, "FOREIGN", got["FOREIGN"])
				}
				if g, w := string(awssim.CompactJSON(got)), string(awssim.CompactJSON(want)); g != w {
					t.Fatalf("%s after the restore:\n got %s\nwant %s", name, g, w)
				}
			}
			if _, err := os.Stat(filepath.Join(state, "journal.json")); !os.IsNotExist(err) {
				t.Fatalf("journal left after a successful restore (%v)", err)
			}
			line := fmt.Sprintf("%s: patch exit %d (%d of %d not patched), %d restore run(s), %d updates, %d reads, %v",
				tc.name, exitOf(patchErr), notPatched, len(seed), restores, sim.Calls("UpdateFunctionConfiguration"),
				sim.Calls("GetFunction"), elapsed.Round(100*time.Millisecond))
			if racer != nil {
				line += fmt.Sprintf(", %d foreign writes", racer.writes.Load())
			}
			t.Log(line)
			summary = append(summary, line)
		})
	}
	t.Logf("sweep:\n%s", strings.Join(summary, "\n"))
}

func faultSweepSeed() map[string]map[string]string {
	seed := map[string]map[string]string{}
	for i := range 6 {
		seed["fn"+strconv.Itoa(i)] = map[string]string{
			"DB":    fmt.Sprintf("postgres://app:pw@localhost:5432/app%d", i),
			"KEEP":  "byte <for> byte & " + strconv.Itoa(i),
			"EMPTY": "",
		}
	}
	return seed
}

func faultSweepDoc(seed map[string]map[string]string) string {
	var fns []string
	for _, name := range sortedNames(seed) {
		fns = append(fns, fmt.Sprintf(`{"name": %q, "bindings": [{"env": "DB", "resource": "postgresDb", "via": "map"}]}`, name))
	}
	return `{"stptunnel": "v1", "region": "eu-west-1",
 "resources": [{"name": "postgresDb", "type": "postgres", "address": "localhost:5432"}],
 "functions": [` + strings.Join(fns, ",\n") + `],
 "tunnels": [{"resource": "postgresDb", "local": "localhost:5432", "public": "127.0.0.1:40001"}]}`
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	for i := range names { // tiny maps: an insertion sort keeps the imports short
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}

func cloneWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range m {
		if key != k {
			out[key] = val
		}
	}
	return out
}

// exitOf is the exit code of a finished command's error (0 for nil, -1 if it did not run).
func exitOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// foreignWriter is someone else (a deploy, a colleague) changing the key FOREIGN of each function through the
// Lambda API with RevisionId, as fast as it can, so that stptunnel's writes meet 412s and 409s.
type foreignWriter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	writes atomic.Int64

	mu       sync.Mutex
	last     map[string]string // the value of FOREIGN in the writer's last accepted write, by function
	inFlight map[string]string // the value of FOREIGN in the writer's last request, accepted or not
}

func startForeignWriter(t *testing.T, sim *awssim.Server, names []string) *foreignWriter {
	client := lambda.New(lambda.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(sim.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFOREIGN", "foreign", ""),
	})
	ctx, cancel := context.WithCancel(context.Background())
	w := &foreignWriter{cancel: cancel, last: map[string]string{}, inFlight: map[string]string{}}
	for _, name := range names {
		w.wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				time.Sleep(100 * time.Millisecond) // pacing, not readiness: leaves the writers under test room to win
				cfg, err := client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
				if err != nil || cfg.LastUpdateStatus == types.LastUpdateStatusInProgress || cfg.Environment == nil {
					continue
				}
				value := fmt.Sprintf("deploy-%d", n)
				w.mu.Lock()
				w.inFlight[name] = value // an update whose answer is lost may still have landed
				w.mu.Unlock()
				env := cloneWith(cfg.Environment.Variables, "FOREIGN", value)
				_, err = client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
					FunctionName: aws.String(name), RevisionId: cfg.RevisionId, Environment: &types.Environment{Variables: env}})
				if err == nil {
					w.writes.Add(1)
					w.mu.Lock()
					w.last[name] = value
					w.mu.Unlock()
				}
			}
		})
	}
	t.Cleanup(w.stopNow)
	return w
}

func (w *foreignWriter) stopNow() { w.cancel(); w.wg.Wait() }

// stop ends the writer and returns, by function, the values of FOREIGN its last writes may have left: the last
// accepted one and, when its answer was lost, the one in flight. Anything else means someone clobbered it.
func (w *foreignWriter) stop() map[string][]string {
	w.stopNow()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for name, v := range w.last {
		out[name] = append(out[name], v)
	}
	for name, v := range w.inFlight {
		if v != w.last[name] {
			out[name] = append(out[name], v)
		}
	}
	return out
}
