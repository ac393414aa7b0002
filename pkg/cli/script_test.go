package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the stptunnel binary: scripts run `exec stptunnel ...` as a real
// process, through the same Main that cmd/stptunnel calls.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"stptunnel": func() {
			os.Exit(Main(context.Background(), BuildInfo{Version: "v0.0.0-test", Commit: "testcommit", Date: "2026-01-01T00:00:00Z"},
				os.Args, os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs testdata/script/*.txtar. STPTUNNEL_UPDATE_GOLDEN=1 rewrites the expected outputs in place.
func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t))
}

func scriptParams(t *testing.T) testscript.Params {
	return testscript.Params{
		Dir:                 "../../testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("STPTUNNEL_UPDATE_GOLDEN") == "1",
		Cmds:                scriptCommands(),
		Condition:           scriptCondition,
		Setup: func(env *testscript.Env) error {
			// Scripts must never reach real AWS or bore.pub, nor a developer's profile.
			for _, k := range []string{"AWS_PROFILE", "AWS_ENDPOINT_URL", "BORE_SERVER", "BORE_SECRET", "GITHUB_ACTIONS", "NO_COLOR", "AWS_REGION"} {
				env.Setenv(k, "")
			}
			env.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			env.Setenv("AWS_CONFIG_FILE", env.WorkDir+"/.aws-config-absent")
			env.Setenv("AWS_SHARED_CREDENTIALS_FILE", env.WorkDir+"/.aws-credentials-absent")
			return nil
		},
	}
}

// scriptConditions are the custom [name:arg] conditions of the scripts, registered per topic from init functions
// like the commands. A condition that must hold (a required service under STPTUNNEL_REQUIRE_SERVICES=1) returns an
// error instead of false, which fails the script rather than letting it skip.
var scriptConditions = map[string]func(arg string) (bool, error){}

func scriptCondition(cond string) (bool, error) {
	name, arg, _ := strings.Cut(cond, ":")
	if f, ok := scriptConditions[name]; ok {
		return f(arg)
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
