package cli

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The GitHub Action's JavaScript (action/) is tested by node's own test runner; these tests run it from go test so
// that `go test ./...` covers it. They skip where node is missing.

func nodeOrSkip(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the GitHub Action's JavaScript is not tested")
	}
	return node
}

func runNode(t *testing.T, node string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %q: %v\n%s", args, err, out)
	}
	return out
}

// TestActionUnit runs action/*.test.js.
func TestActionUnit(t *testing.T) {
	node := nodeOrSkip(t)
	out := runNode(t, node, "--test", "action/")
	if !bytes.Contains(out, []byte("# fail 0")) || bytes.Contains(out, []byte("# pass 0\n")) {
		t.Fatalf("node --test action/:\n%s", out)
	}
}

// TestActionReadsGoArchives checks the action's extractor and checksum verification against archives written by
// Go's archive/tar and archive/zip, as goreleaser writes the release archives.
func TestActionReadsGoArchives(t *testing.T) {
	node := nodeOrSkip(t)
	dir := t.TempDir()
	binary := make([]byte, 200_000)
	if _, err := rand.Read(binary[:1000]); err != nil { // mostly zeros, so deflate has work to do
		t.Fatal(err)
	}
	readme := []byte("# stptunnel\n")

	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		body []byte
	}{{"README.md", readme}, {"stptunnel", binary}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Format: tar.FormatPAX, ModTime: time.Unix(1, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}

	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	for _, f := range []struct {
		name string
		body []byte
	}{{"README.md", readme}, {"stptunnel.exe", binary}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}

	var checksums bytes.Buffer
	for name, data := range map[string][]byte{"stptunnel_linux_amd64.tar.gz": tgz.Bytes(), "stptunnel_windows_amd64.zip": zipped.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&checksums, "%x  %s\n", sha256.Sum256(data), name)
	}
	if err := os.WriteFile(filepath.Join(dir, "checksums.txt"), checksums.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// The script verifies and extracts both archives and writes what it extracted next to them.
	script := `
const fs = require('node:fs'), path = require('node:path'), lib = require('./action/lib.js');
const dir = process.argv[1], sums = fs.readFileSync(path.join(dir, 'checksums.txt'), 'utf8');
for (const [os, bin] of [['Linux', 'stptunnel'], ['Windows', 'stptunnel.exe']]) {
  const archive = lib.archiveName(os, 'X64'), data = fs.readFileSync(path.join(dir, archive));
  lib.verifyChecksum(sums, archive, data);
  fs.writeFileSync(path.join(dir, 'out-' + bin), lib.extractBinary(archive, data, bin));
}`
	runNode(t, node, "-e", script, dir)
	for _, bin := range []string{"stptunnel", "stptunnel.exe"} {
		got, err := os.ReadFile(filepath.Join(dir, "out-"+bin))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, binary) {
			t.Errorf("%s: extracted %d bytes that differ from the %d archived", bin, len(got), len(binary))
		}
	}
}
