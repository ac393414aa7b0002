// Package deploy_test checks the CloudFormation template of docs/deploy: its structure, the script it runs on
// the instance, and that the server command line in that script is one `stptunnel bore server` accepts and
// serves with.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stptunnel/stptunnel/internal/echotest"
	"github.com/stptunnel/stptunnel/pkg/bore"
	"github.com/stptunnel/stptunnel/pkg/cli"
)

const templateFile = "bore-server.json"

// template is the parsed template: JSON, so that no YAML dependency is needed to read it.
type template struct {
	FormatVersion string                    `json:"AWSTemplateFormatVersion"`
	Description   string                    `json:"Description"`
	Parameters    map[string]map[string]any `json:"Parameters"`
	Resources     map[string]resource       `json:"Resources"`
	Outputs       map[string]struct {
		Description string `json:"Description"`
		Value       any    `json:"Value"`
	} `json:"Outputs"`
}

type resource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
}

func load(t *testing.T) template {
	t.Helper()
	data, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tpl); err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	return tpl
}

// sample are parameter values for rendering the user data.
var sample = map[string]string{
	"AWS::Region": "eu-west-1", "AWS::StackName": "stptunnel", "StptunnelVersion": "v1.2.3",
	"SecretParameterName": "/stptunnel/bore-secret", "ControlPort": "7835", "MinPort": "1024", "MaxPort": "65535",
	"VpcCidr": "10.0.0.0/16",
}

func TestTemplateStructure(t *testing.T) {
	tpl := load(t)
	if tpl.FormatVersion != "2010-09-09" || tpl.Description == "" {
		t.Errorf("AWSTemplateFormatVersion %q, description %q", tpl.FormatVersion, tpl.Description)
	}
	wantParams := map[string]string{
		"VpcId": "AWS::EC2::VPC::Id", "VpcCidr": "String", "SubnetId": "AWS::EC2::Subnet::Id", "DeveloperCidr": "String",
		"SecretParameterName": "String", "ControlPort": "Number", "MinPort": "Number", "MaxPort": "Number",
		"InstanceType": "String", "ImageId": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "StptunnelVersion": "String",
	}
	for name, typ := range wantParams {
		if got := tpl.Parameters[name]["Type"]; got != typ {
			t.Errorf("parameter %s: type %v, want %s", name, got, typ)
		}
	}
	if len(tpl.Parameters) != len(wantParams) {
		t.Errorf("%d parameters, want %d", len(tpl.Parameters), len(wantParams))
	}
	// The defaults match what detect assumes of a server: bore's port range and control port.
	for name, want := range map[string]float64{"ControlPort": bore.DefaultControlPort, "MinPort": 1024, "MaxPort": 65535} {
		if got := tpl.Parameters[name]["Default"]; got != want {
			t.Errorf("parameter %s: default %v, want %v", name, got, want)
		}
	}
	for name, p := range tpl.Parameters {
		if strings.Contains(strings.ToLower(name), "secret") && name != "SecretParameterName" {
			t.Errorf("parameter %s: the secret itself must not be a parameter (%v)", name, p)
		}
	}

	wantTypes := map[string]string{"SecurityGroup": "AWS::EC2::SecurityGroup", "Role": "AWS::IAM::Role",
		"InstanceProfile": "AWS::IAM::InstanceProfile", "Instance": "AWS::EC2::Instance", "ElasticIP": "AWS::EC2::EIP"}
	for name, typ := range wantTypes {
		if got := tpl.Resources[name].Type; got != typ {
			t.Errorf("resource %s: type %q, want %s", name, got, typ)
		}
	}
	if len(tpl.Resources) != len(wantTypes) {
		t.Errorf("%d resources, want %d", len(tpl.Resources), len(wantTypes))
	}

	// Ingress: the control port from the developers, the tunnel ports from the VPC, nothing else.
	sg := tpl.Resources["SecurityGroup"].Properties
	if !isRef(sg["VpcId"], "VpcId") {
		t.Errorf("security group VpcId %v", sg["VpcId"])
	}
	type rule struct{ from, to, source string }
	var rules []rule
	for _, r := range sg["SecurityGroupIngress"].([]any) {
		m := r.(map[string]any)
		if m["IpProtocol"] != "tcp" {
			t.Errorf("ingress %v: want tcp", m)
		}
		rules = append(rules, rule{refName(m["FromPort"]), refName(m["ToPort"]), refName(m["CidrIp"])})
	}
	if want := []rule{{"ControlPort", "ControlPort", "DeveloperCidr"}, {"MinPort", "MaxPort", "VpcCidr"}}; !slices.Equal(rules, want) {
		t.Errorf("ingress %+v, want %+v", rules, want)
	}

	// The role reads the one parameter, nothing else.
	policies := tpl.Resources["Role"].Properties["Policies"].([]any)
	statements := policies[0].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any)
	if len(policies) != 1 || len(statements) != 1 {
		t.Fatalf("role policies %v", policies)
	}
	st := statements[0].(map[string]any)
	if st["Effect"] != "Allow" || st["Action"] != "ssm:GetParameter" ||
		sub(st["Resource"]) != "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SecretParameterName}" {
		t.Errorf("role statement %v", st)
	}

	in := tpl.Resources["Instance"].Properties
	if !isRef(in["SubnetId"], "SubnetId") || !isRef(in["IamInstanceProfile"], "InstanceProfile") || !isRef(in["ImageId"], "ImageId") {
		t.Errorf("instance %v", in)
	}
	if md, _ := in["MetadataOptions"].(map[string]any); md["HttpTokens"] != "required" {
		t.Errorf("instance metadata options %v: want IMDSv2 (HttpTokens required)", md)
	}
	if eip := tpl.Resources["ElasticIP"].Properties; !isRef(eip["InstanceId"], "Instance") || eip["Domain"] != "vpc" {
		t.Errorf("elastic IP %v", eip)
	}

	for name, want := range map[string][]any{"PublicAddress": {"ElasticIP", "PublicIp"}, "PrivateAddress": {"Instance", "PrivateIp"}} {
		v, _ := tpl.Outputs[name].Value.(map[string]any)
		if !slices.Equal(asSlice(v["Fn::GetAtt"]), want) {
			t.Errorf("output %s = %v, want Fn::GetAtt %v", name, tpl.Outputs[name].Value, want)
		}
	}
	if dev := sub(tpl.Outputs["DevCommand"].Value); !strings.Contains(dev, "--to ${ElasticIP.PublicIp}:${ControlPort} --tunnel-host ${Instance.PrivateIp}") {
		t.Errorf("DevCommand %q", dev)
	}
}

// TestTemplateLint runs cfn-lint, AWS's template linter, where it is installed.
func TestTemplateLint(t *testing.T) {
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not installed (pip install cfn-lint): the template is checked by the other tests only")
	}
	if out, err := exec.Command(lint, templateFile).CombinedOutput(); err != nil {
		t.Errorf("cfn-lint %s: %v\n%s", templateFile, err, out)
	}
}

// TestTemplateReferences: every Ref, Fn::GetAtt and Fn::Sub variable names a parameter, a resource or a
// pseudo parameter.
func TestTemplateReferences(t *testing.T) {
	tpl := load(t)
	known := func(name string) bool {
		_, param := tpl.Parameters[name]
		_, res := tpl.Resources[name]
		return param || res || strings.HasPrefix(name, "AWS::")
	}
	subVar := regexp.MustCompile(`\$\{([^!}][^}]*)\}`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "Ref":
					if !known(x.(string)) {
						t.Errorf("%s: Ref %v names nothing", path, x)
					}
				case "Fn::GetAtt":
					if name := asSlice(x)[0].(string); tpl.Resources[name].Type == "" {
						t.Errorf("%s: Fn::GetAtt %v names no resource", path, x)
					}
				case "Fn::Sub":
					for _, m := range subVar.FindAllStringSubmatch(x.(string), -1) {
						name, _, attr := strings.Cut(m[1], ".")
						if !known(name) || (attr && tpl.Resources[name].Type == "") {
							t.Errorf("%s: Fn::Sub ${%s} names nothing", path, m[1])
						}
					}
				}
				walk(path+"."+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), x)
			}
		}
	}
	data, _ := os.ReadFile(templateFile)
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	walk("", raw)
}

// userData renders the instance's user data with the sample parameters.
func userData(t *testing.T, tpl template) string {
	t.Helper()
	b64, _ := tpl.Resources["Instance"].Properties["UserData"].(map[string]any)
	join, _ := b64["Fn::Base64"].(map[string]any)
	parts := asSlice(join["Fn::Join"])
	if len(parts) != 2 || parts[0] != "\n" {
		t.Fatalf("UserData is not Fn::Base64 of Fn::Join with newlines: %v", b64)
	}
	subVar := regexp.MustCompile(`\$\{([^}]*)\}`)
	var lines []string
	for _, l := range asSlice(parts[1]) {
		s, ok := l.(string)
		if !ok {
			s = subVar.ReplaceAllStringFunc(sub(l), func(m string) string {
				if name := m[2 : len(m)-1]; strings.HasPrefix(name, "!") {
					return "${" + name[1:] + "}"
				} else if v, ok := sample[name]; ok {
					return v
				}
				t.Fatalf("user data: no sample value for %s", m)
				return ""
			})
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n")
}

// heredoc returns the body of the here-document that writes path in script.
func heredoc(t *testing.T, script, path string) string {
	t.Helper()
	_, rest, ok := strings.Cut(script, "cat >"+path+" <<'EOF'\n")
	body, _, closed := strings.Cut(rest, "\nEOF\n")
	if !ok || !closed {
		t.Fatalf("the user data writes no %s", path)
	}
	return body
}

func TestTemplateUserData(t *testing.T) {
	script := userData(t, load(t))
	for _, want := range []string{
		"set -euo pipefail",
		"sha256sum -c -", // the release is checked against its checksums.txt
		"base=https://github.com/stptunnel/stptunnel/releases",
		`url="$base/download/$version"`,
		"aws ssm get-parameter --region 'eu-west-1' --name '/stptunnel/bore-secret' --with-decryption",
		"systemctl enable --now stptunnel-bore.service",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the user data lacks %q", want)
		}
	}
	// The secret reaches the server through its environment only: never argv, never the user data.
	if strings.Contains(script, "--secret") || strings.Contains(strings.ToLower(script), "noecho") {
		t.Errorf("the user data passes a secret itself:\n%s", script)
	}
	wrapper := heredoc(t, script, "/usr/local/libexec/stptunnel-bore-server")
	if !strings.Contains(wrapper, "export BORE_SECRET\nexec /usr/local/bin/stptunnel bore server ") {
		t.Errorf("the wrapper does not hand BORE_SECRET to the server:\n%s", wrapper)
	}
	unit := heredoc(t, script, "/etc/systemd/system/stptunnel-bore.service")
	for _, want := range []string{"ExecStart=/usr/local/libexec/stptunnel-bore-server", "Restart=always", "DynamicUser=yes", "WantedBy=multi-user.target"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q:\n%s", want, unit)
		}
	}

	t.Run("bash -n", func(t *testing.T) {
		sh, err := exec.LookPath("bash")
		if err != nil {
			t.Skip("no bash to check the script's syntax")
		}
		for name, s := range map[string]string{"user data": script, "wrapper": wrapper} {
			cmd := exec.Command(sh, "-n")
			cmd.Stdin = strings.NewReader(s)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("bash -n on the %s: %v\n%s", name, err, out)
			}
		}
	})
	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("no systemd-analyze to check the unit")
		}
		// verify wants ExecStart to exist: point it at a stand-in.
		dir := t.TempDir()
		stand := filepath.Join(dir, "stptunnel-bore-server")
		if err := os.WriteFile(stand, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "stptunnel-bore.service")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/libexec/stptunnel-bore-server", stand)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

// TestTemplateServerCommand runs the server command line of the template's wrapper with the real CLI (on
// loopback, as tests must: --bind-addr is the one flag added) and opens a tunnel through it with the secret: the
// flags exist, the secret comes from BORE_SECRET, the public port is in the range, and a visitor from the allowed
// block is forwarded.
func TestTemplateServerCommand(t *testing.T) {
	script := userData(t, load(t))
	wrapper := heredoc(t, script, "/usr/local/libexec/stptunnel-bore-server")
	_, line, _ := strings.Cut(wrapper, "exec ")
	args := strings.Fields(strings.TrimSpace(line))
	if len(args) < 3 || args[0] != "/usr/local/bin/stptunnel" || args[1] != "bore" || args[2] != "server" {
		t.Fatalf("the wrapper runs %q", args)
	}
	control := freePort(t)
	for i, a := range args {
		switch {
		case a == "--control-port":
			args[i+1] = strconv.Itoa(control)
		case a == "--min-port":
			args[i+1] = "40000"
		case a == "--max-port":
			args[i+1] = "40999"
		case a == "--allow":
			args[i+1] = "127.0.0.0/8" // the "VPC" of this test: the visitor dials from loopback
		}
	}
	args = append(append([]string{"stptunnel"}, args[1:]...), "--bind-addr", "127.0.0.1")
	t.Setenv("BORE_SECRET", "from-ssm")

	ctx, cancel := context.WithCancel(t.Context())
	var stderr lockedBuffer // the server's log, written by its goroutines
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, cli.BuildInfo{Version: "test"}, args, strings.NewReader(""), io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("stptunnel %s exited %d\n%s", strings.Join(args[1:], " "), code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("the server did not stop")
		}
	})

	echo := echoService(t)
	_, echoPort, _ := net.SplitHostPort(echo)
	port, _ := strconv.Atoi(echoPort)
	server := net.JoinHostPort("127.0.0.1", strconv.Itoa(control))
	var client *bore.Client
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := bore.NewClient(bore.ClientConfig{Server: server, LocalHost: "127.0.0.1", LocalPort: port, Secret: "from-ssm"})
		if err != nil {
			t.Fatal(err)
		}
		if err = c.Start(ctx); err == nil {
			client = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tunnel through `stptunnel %s`: %v\n%s", strings.Join(args[1:], " "), err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { client.Close() })
	_, publicPort, _ := net.SplitHostPort(client.PublicAddr())
	if p, _ := strconv.Atoi(publicPort); p < 40000 || p > 40999 {
		t.Errorf("public port %d outside --min-port/--max-port 40000-40999", p)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", publicPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping\n" {
		t.Errorf("through the tunnel: %q, %v", got, err)
	}

	// The wrong secret is refused: the server did take BORE_SECRET.
	wrong, err := bore.NewClient(bore.ClientConfig{Server: server, LocalHost: "127.0.0.1", LocalPort: port, Secret: "guess"})
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Start(ctx); err == nil {
		wrong.Close()
		t.Error("a client with the wrong secret opened a tunnel")
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func echoService(t *testing.T) string {
	ln, _ := echotest.Start(t)
	return ln.Addr().String()
}

func isRef(v any, name string) bool { return refName(v) == name }

func refName(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["Ref"].(string)
	return s
}

func sub(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["Fn::Sub"].(string)
	return s
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
