# Shortcuts; CI runs `bash .ci/run`.
.PHONY: test action-test release-check

test:
	go test ./...

# The GitHub Action's JavaScript unit tests (also run by go test ./pkg/cli, TestActionUnit).
action-test:
	node --test action/

# goreleaser's own check of goreleaser.yaml and a snapshot build of every archive (nothing is published).
release-check:
	bash .ci/release-check
