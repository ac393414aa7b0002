package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestUIRedactsPasswordsAndSecrets(t *testing.T) {
	var buf bytes.Buffer
	u := &ui{w: &buf}
	u.addSecret("bore-s3cret")
	u.ok("Updating %s via %s", "postgres://app:hunter22@localhost:5432/app", "server with secret bore-s3cret")
	u.warn("failed: dial redis://:r3dispass@localhost:6379/0")
	out := buf.String()
	for _, secret := range []string{"hunter22", "bore-s3cret", "r3dispass"} {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "✓ Updating postgres://app:****@localhost:5432/app") {
		t.Errorf("unexpected output:\n%s", out)
	}
	if !strings.Contains(out, "! failed:") {
		t.Errorf("warning prefix missing:\n%s", out)
	}
}

func TestUIQuietKeepsWarnings(t *testing.T) {
	var buf bytes.Buffer
	u := &ui{w: &buf, quiet: true}
	u.ok("progress")
	u.info("more progress")
	u.warn("attention")
	if got := buf.String(); got != "! attention\n" {
		t.Fatalf("quiet output = %q", got)
	}
}

func TestGitHubMasksBeforePrinting(t *testing.T) {
	var buf bytes.Buffer
	gh := newGitHub(func(k string) string {
		if k == "GITHUB_ACTIONS" {
			return "true"
		}
		return ""
	}, &buf)
	u := &ui{w: &buf, gh: gh}
	u.addSecret("line-one-secret\nline-two-secret")
	u.warn("value line-one-secret here")
	out := buf.String()
	if !strings.HasPrefix(out, "::add-mask::line-one-secret\n::add-mask::line-two-secret\n") {
		t.Fatalf("masks must come first:\n%s", out)
	}
	if strings.Contains(strings.SplitN(out, "\n", 3)[2], "line-one-secret") {
		t.Fatalf("secret printed after masking:\n%s", out)
	}
}
