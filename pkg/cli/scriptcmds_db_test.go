package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/stptunnel/stptunnel/internal/cloudside"
	"github.com/stptunnel/stptunnel/internal/services"
	"github.com/stptunnel/stptunnel/pkg/awssim"
)

// The real-database script commands and condition (testdata/script/e2e_*.txtar):
//
//	[service:KIND]
//	    KIND (postgres, mariadb, redis, dynalite) is installed here. Under STPTUNNEL_REQUIRE_SERVICES=1 a
//	    missing service fails the script instead of letting `[!service:KIND] skip` skip it.
//	pgserver | mariadbserver | redisserver | dynaliteserver
//	    start the real server on a free loopback port for this script, stopped when it ends; export, with
//	    <P> = PG, MARIADB, REDIS, DYNALITE: <P>_URL (the developer's connection string, localhost:PORT),
//	    <P>_PORT, <P>_USER, <P>_PASSWORD, <P>_PASSWORD_ENC (percent-escaped for a URL's userinfo),
//	    <P>_DATABASE, and for PostgreSQL PG_DSN (the key=value form, password quoted). The port is added to
//	    E2E_LOCAL_PORTS, the developer's ports the cloud side may not reach. A missing server fails the script:
//	    gate it with `[!service:KIND] skip` first.
//	cloudside-link
//	    make $WORK/bin/cloudside, a link to this test binary which then acts as the function runtime (the
//	    program form of the cloudside command, for `stptunnel dev -- $CLOUDSIDE ...`), and export CLOUDSIDE.
//	cloudside [-env FILE] [-env-out DIR] [-value V] FUNCTION TYPE VARIABLE [FUNCTION TYPE VARIABLE...]
//	    run each function's code, internal/cloudside's handler for TYPE (postgres, mysql, redis, dynamodb)
//	    reading VARIABLE, with the environment Lambda gives the function now (read through the Lambda API at
//	    $AWS_ENDPOINT_URL), or the variables in FILE (JSON as awssim-env prints it). The handler writes a
//	    row (key FUNCTION, value V, default "hello from FUNCTION") with the real driver, reads it back, and
//	    its response is printed, one JSON line per function. The ports in $E2E_LOCAL_PORTS are refused, as
//	    from AWS. -env-out writes the variables each function ran with to DIR/FUNCTION.json. With !, expect
//	    a failure and print it on stderr.
func init() {
	if filepath.Base(os.Args[0]) == cloudsideProgram {
		// The test binary run through the cloudside link: the function runtime, before TestMain.
		os.Exit(cloudsideMain(os.Args[1:]))
	}
	scriptConditions["service"] = serviceCondition
	registerScriptCmds(map[string]scriptCmd{
		"pgserver":       cmdDBServer(services.KindPostgres, "PG"),
		"mariadbserver":  cmdDBServer(services.KindMariaDB, "MARIADB"),
		"redisserver":    cmdDBServer(services.KindRedis, "REDIS"),
		"dynaliteserver": cmdDBServer(services.KindDynalite, "DYNALITE"),
		"cloudside-link": cmdCloudsideLink,
		"cloudside":      cmdCloudside,
	})
}

// localPortsEnv lists the developer's service ports of a script, comma-separated.
const localPortsEnv = "E2E_LOCAL_PORTS"

// cloudsideProgram is the name under which the test binary is the function runtime.
const cloudsideProgram = "cloudside"

// serviceCondition is [service:KIND].
func serviceCondition(kind string) (bool, error) {
	err := services.Installed(kind)
	if err == nil {
		return true, nil
	}
	if services.SkipReason(err) != "" {
		return false, nil
	}
	var missing *services.NotInstalledError
	if errors.As(err, &missing) {
		return false, fmt.Errorf("%v (%s=1: every service must be installed)", err, services.RequireEnv)
	}
	return false, err
}

func cmdDBServer(kind, prefix string) scriptCmd {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 0 {
			ts.Fatalf("usage: %sserver", strings.ToLower(prefix))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// Scripts skip a missing service with [!service:KIND] first: here, missing is a failure.
		s, err := services.Start(ctx, kind, services.Options{})
		ts.Check(err)
		ts.Defer(func() {
			if err := s.Close(); err != nil {
				ts.Fatalf("stopping %s: %v", kind, err)
			}
		})
		ts.Logf("%s listening on %s (started in %v)", kind, s.Addr(), s.Startup.Round(time.Millisecond))
		vars := map[string]string{"URL": s.URL(), "PORT": strconv.Itoa(s.Port), "USER": s.User,
			"PASSWORD": s.Password, "PASSWORD_ENC": strings.TrimPrefix(url.UserPassword("", s.Password).String(), ":"),
			"DATABASE": s.Database}
		if kind == services.KindPostgres {
			quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s.Password)
			vars["DSN"] = "host=localhost port=" + strconv.Itoa(s.Port) + " user=" + s.User + " password='" + quoted +
				"' dbname=" + s.Database + " sslmode=disable"
		}
		for k, v := range vars {
			ts.Setenv(prefix+"_"+k, v)
		}
		ports := ts.Getenv(localPortsEnv)
		if ports != "" {
			ports += ","
		}
		ts.Setenv(localPortsEnv, ports+strconv.Itoa(s.Port))
	}
}

func cmdCloudsideLink(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: cloudside-link")
	}
	linkSelf(ts, cloudsideProgram, "CLOUDSIDE")
}

func cmdCloudside(ts *testscript.TestScript, neg bool, args []string) {
	err := runCloudside(context.Background(), args, ts.Getenv, ts.MkAbs, ts.Stdout())
	switch {
	case errors.Is(err, errCloudsideUsage):
		ts.Fatalf("%v", err)
	case err != nil && !neg:
		ts.Fatalf("%v", err)
	case err != nil:
		fmt.Fprintln(ts.Stderr(), err)
	case neg:
		ts.Fatalf("cloudside succeeded, want a failure")
	}
}

// cloudsideMain is the program form of the cloudside command: the process environment is the runtime's, and
// exit status 1 reports a function that failed.
func cloudsideMain(args []string) int {
	// The runtime's own variables are not the function's: a process-wide AWS_ENDPOINT_URL (the emulator, which
	// dev hands its command) would override the function's AWS_ENDPOINT_URL_DYNAMODB in the SDK.
	getenv := snapshotEnv()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	abs := func(p string) string { return p }
	if err := runCloudside(context.Background(), args, getenv, abs, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cloudside:", err)
		if errors.Is(err, errCloudsideUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func snapshotEnv() func(string) string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

var errCloudsideUsage = errors.New("usage: cloudside [-env FILE] [-env-out DIR] [-value V] FUNCTION TYPE VARIABLE [FUNCTION TYPE VARIABLE...]")

// runCloudside runs the functions named in args (see the cloudside command) and prints their responses.
func runCloudside(ctx context.Context, args []string, getenv func(string) string, abs func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cloudside", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	envFile := fs.String("env", "", "")
	envOut := fs.String("env-out", "", "")
	value := fs.String("value", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 || fs.NArg()%3 != 0 {
		return errCloudsideUsage
	}
	var cloud cloudside.Cloud
	for _, p := range strings.Split(getenv(localPortsEnv), ",") {
		if port, err := strconv.Atoi(p); err == nil {
			cloud.LocalPorts = append(cloud.LocalPorts, port)
		}
	}
	lambdaClient := lambda.New(lambda.Options{
		BaseEndpoint:     aws.String(getenv("AWS_ENDPOINT_URL")),
		Region:           getenv("AWS_REGION"),
		Credentials:      credentials.NewStaticCredentialsProvider("e2e", "e2e", ""),
		RetryMaxAttempts: 1,
	})
	for rest := fs.Args(); len(rest) > 0; rest = rest[3:] {
		name, typ, variable := rest[0], rest[1], rest[2]
		h, err := cloud.Handler(typ, variable)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		env, err := cloudsideEnv(ctx, lambdaClient, name, *envFile, abs)
		if err == nil && *envOut != "" {
			dir := abs(*envOut)
			if err = os.MkdirAll(dir, 0o755); err == nil {
				err = os.WriteFile(filepath.Join(dir, name+".json"), append(awssim.CompactJSON(env), '\n'), 0o644)
			}
		}
		var out []byte
		if err == nil {
			env["AWS_REGION"] = getenv("AWS_REGION") // as Lambda sets it for every function
			req := cloudside.Request{Key: name, Value: *value}
			if req.Value == "" {
				req.Value = "hello from " + name
			}
			payload, _ := json.Marshal(req)
			out, err = h(ctx, env, payload)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
		if _, err := stdout.Write(append(out, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// cloudsideEnv is a function's variables: from FILE when one is given, else from the Lambda API.
func cloudsideEnv(ctx context.Context, client *lambda.Client, name, file string, abs func(string) string) (map[string]string, error) {
	env := map[string]string{}
	if file != "" {
		data, err := os.ReadFile(abs(file))
		if err != nil {
			return nil, err
		}
		return env, json.Unmarshal(data, &env)
	}
	out, err := client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: &name})
	if err != nil {
		return nil, err
	}
	if out.Environment != nil {
		for k, v := range out.Environment.Variables {
			env[k] = v
		}
	}
	return env, nil
}
