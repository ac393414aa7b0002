// Package simscript exposes the awssim emulator to testscript scripts.
//
// Register Commands() in testscript.Params.Cmds. Each script gets its own
// emulator (state is keyed by the script's $WORK), so scripts may run in
// parallel. The commands:
//
//	awssim [-update-delay DURATION] [-seed N] [-quotas SPEC] SEED.json
//	    start an emulator seeded from SEED.json (a path in $WORK), export
//	    AWS_ENDPOINT_URL (also as AWSSIM_URL), AWS_REGION, AWS_DEFAULT_REGION,
//	    dummy AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
//	    AWS_EC2_METADATA_DISABLED=true, and clear AWS_PROFILE and
//	    AWS_SESSION_TOKEN. The emulator stops when the script ends. The
//	    update delay defaults to 0 (InProgress answers the update, every
//	    later read sees Successful). The quotas default to Lambda's (15
//	    control-plane and 100 GetFunction requests per second); SPEC as
//	    awssim.ParseQuotas: lambda | off | control=N,getfunction=N.
//	awssim-env [-without KEY]... FUNCTION
//	    print the function's variables as compact JSON with sorted keys and a
//	    newline, leaving out each KEY given; with !, succeed only if the
//	    function does not exist.
//	awssim-setenv [-replace] FUNCTION KEY=VALUE... [-KEY...]
//	    change variables as a deploy would (new RevisionId): set KEY=VALUE,
//	    remove -KEY, keep the others unless -replace.
//	awssim-delete FUNCTION
//	    delete the function, as `sam delete` would.
//	awssim-fault OP SPEC
//	    inject a fault into operation OP ("*" for all), SPEC as awssim.ParseFault:
//	    throttle,next=2 | error,rate=0.5 | conflict | drop,next=1 | latency=100ms | none.
//	awssim-count OP | operations:OP | updates:FUNCTION | throttled:OP
//	    print how many calls OP received (the quotas let through), how many
//	    SDK operations they were (retries left out: awssim.Operations), how
//	    many updates FUNCTION had, or how many calls of OP the quotas refused.
//	awssim-invoke FUNCTION [PAYLOAD]
//	    invoke the function's handler (its seed "invoke" built-in) and print
//	    the result; with !, expect the invocation to fail.
package simscript

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// servers holds the emulator of each running script, by $WORK.
type servers struct {
	mu     sync.Mutex
	byWork map[string]*awssim.Server
}

// Commands returns the awssim script commands. Each call returns commands
// with their own set of emulators.
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	reg := &servers{byWork: map[string]*awssim.Server{}}
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"awssim":        reg.start,
		"awssim-env":    reg.env,
		"awssim-setenv": reg.setenv,
		"awssim-delete": reg.delete,
		"awssim-fault":  reg.fault,
		"awssim-count":  reg.count,
		"awssim-invoke": reg.invoke,
	}
}

func (reg *servers) start(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! awssim")
	}
	fs := flag.NewFlagSet("awssim", flag.ContinueOnError)
	delay := fs.Duration("update-delay", 0, "how long updates stay InProgress")
	seed := fs.Int64("seed", 1, "seed of fault rates and identifiers")
	quotaSpec := fs.String("quotas", "lambda", "request quotas: lambda, off, or control=N,getfunction=N")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		ts.Fatalf("usage: awssim [-update-delay DURATION] [-seed N] [-quotas SPEC] SEED.json")
	}
	quotas, err := awssim.ParseQuotas(*quotaSpec)
	ts.Check(err)
	f, err := os.Open(ts.MkAbs(fs.Arg(0)))
	ts.Check(err)
	loaded, err := awssim.LoadSeed(f)
	f.Close()
	ts.Check(err)

	work := ts.Getenv("WORK")
	reg.mu.Lock()
	_, running := reg.byWork[work]
	reg.mu.Unlock()
	if running {
		ts.Fatalf("awssim is already running in this script")
	}
	s, err := awssim.New(awssim.Options{Region: loaded.Region, AccountID: loaded.Account, UpdateDelay: *delay, Seed: *seed, Quotas: quotas})
	ts.Check(err)
	if err := s.Apply(loaded); err != nil {
		s.Close()
		ts.Fatalf("%v", err)
	}
	reg.mu.Lock()
	reg.byWork[work] = s
	reg.mu.Unlock()
	ts.Defer(func() {
		s.Close()
		reg.mu.Lock()
		delete(reg.byWork, work)
		reg.mu.Unlock()
	})

	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":          s.URL(),
		"AWSSIM_URL":                s.URL(),
		"AWS_REGION":                s.Region(),
		"AWS_DEFAULT_REGION":        s.Region(),
		"AWS_ACCESS_KEY_ID":         "AKIDAWSSIMEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":     "awssim-secret",
		"AWS_SESSION_TOKEN":         "",
		"AWS_PROFILE":               "",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		ts.Setenv(k, v)
	}
}

// server is the script's emulator; it fails the script when none runs.
func (reg *servers) server(ts *testscript.TestScript) *awssim.Server {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	s, ok := reg.byWork[ts.Getenv("WORK")]
	if !ok {
		ts.Fatalf("awssim is not running: start it with `awssim SEED.json` first")
	}
	return s
}

func (reg *servers) env(ts *testscript.TestScript, neg bool, args []string) {
	var without []string
	for len(args) > 2 && args[0] == "-without" {
		without, args = append(without, args[1]), args[2:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: awssim-env [-without KEY]... FUNCTION")
	}
	env, ok := reg.server(ts).Env(args[0])
	for _, k := range without {
		delete(env, k)
	}
	switch {
	case neg && ok:
		ts.Fatalf("function %s exists", args[0])
	case neg:
		return
	case !ok:
		ts.Fatalf("function %s does not exist", args[0])
	}
	fmt.Fprintf(ts.Stdout(), "%s\n", awssim.CompactJSON(env))
}

func (reg *servers) setenv(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! awssim-setenv")
	}
	replace := len(args) > 0 && args[0] == "-replace"
	if replace {
		args = args[1:]
	}
	if len(args) < 1 {
		ts.Fatalf("usage: awssim-setenv [-replace] FUNCTION KEY=VALUE... [-KEY...]")
	}
	s := reg.server(ts)
	env, ok := s.Env(args[0])
	if !ok {
		ts.Fatalf("function %s does not exist", args[0])
	}
	if replace {
		env = map[string]string{}
	}
	for _, arg := range args[1:] {
		if key, ok := strings.CutPrefix(arg, "-"); ok {
			delete(env, key)
			continue
		}
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			ts.Fatalf("awssim-setenv: %q is neither KEY=VALUE nor -KEY", arg)
		}
		env[key] = value
	}
	s.SetEnv(args[0], env)
}

func (reg *servers) delete(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: awssim-delete FUNCTION")
	}
	reg.server(ts).DeleteFunction(args[0])
}

func (reg *servers) fault(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: awssim-fault OP SPEC")
	}
	f, err := awssim.ParseFault(args[1])
	ts.Check(err)
	reg.server(ts).SetFault(args[0], f)
}

func (reg *servers) count(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: awssim-count OP | operations:OP | updates:FUNCTION | throttled:OP")
	}
	s := reg.server(ts)
	n := 0
	if fn, ok := strings.CutPrefix(args[0], "updates:"); ok {
		n = s.Updates(fn)
	} else if op, ok := strings.CutPrefix(args[0], "throttled:"); ok {
		n = s.Throttled(op)
	} else if op, ok := strings.CutPrefix(args[0], "operations:"); ok {
		n = s.Operations(op)
	} else {
		n = s.Calls(args[0])
	}
	fmt.Fprintf(ts.Stdout(), "%d\n", n)
}

func (reg *servers) invoke(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: awssim-invoke FUNCTION [PAYLOAD]")
	}
	var payload []byte
	if len(args) == 2 {
		payload = []byte(args[1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), invokeTimeout)
	defer cancel()
	out, err := reg.server(ts).Invoke(ctx, args[0], payload)
	switch {
	case neg && err == nil:
		ts.Fatalf("invoking %s succeeded: %s", args[0], out)
	case neg:
		fmt.Fprintf(ts.Stderr(), "%v\n", err)
		return
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\n')
	}
	_, _ = ts.Stdout().Write(out)
}

// invokeTimeout bounds an invocation from a script, like a function's timeout.
const invokeTimeout = 30 * time.Second
