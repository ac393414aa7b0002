# Shortcuts; CI runs `bash .ci/run`.
.PHONY: test action-test release-check bench

test:
	go test ./...

# The GitHub Action's JavaScript unit tests (also run by go test ./pkg/cli, TestActionUnit).
action-test:
	node --test action/

# goreleaser's own check of goreleaser.yaml and a snapshot build of every archive (nothing is published).
release-check:
	bash .ci/release-check

# Benchmarks with ratios against same-run baselines, as a Markdown table (docs/PERFORMANCE.md); BENCH_QUICK=1 for a shorter run.
bench:
	bash scripts/bench
