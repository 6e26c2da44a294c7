#!/usr/bin/env bash
# Build buf (protobuf lint/breaking/generate) into .cache/bin from the Go module proxy.
# Prebuilt release binaries cannot be downloaded on these machines, so it is compiled with `go install`:
# ~6 min on 2 cores the first time, seconds when Go's module/build caches are warm, instant when already built.
#
#   scripts/install-buf.sh           # then: .cache/bin/buf --version
#   BUF_VERSION=v1.75.0 scripts/install-buf.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUF_VERSION="${BUF_VERSION:-v1.75.0}"
BIN_DIR="$ROOT/.cache/bin"
BUF="$BIN_DIR/buf"

# `buf --version` prints the version without the leading v, e.g. 1.75.0.
if [[ -x "$BUF" ]] && [[ "$("$BUF" --version 2>/dev/null)" == "${BUF_VERSION#v}" ]]; then
  echo "install-buf.sh: buf ${BUF_VERSION#v} already in $BIN_DIR" >&2
  exit 0
fi

command -v go >/dev/null || { echo "install-buf.sh: ERROR: go not found" >&2; exit 1; }
mkdir -p "$BIN_DIR"
echo "install-buf.sh: building buf $BUF_VERSION into $BIN_DIR (takes minutes on a cold Go cache)" >&2
# CGO_ENABLED=0: a static binary that needs no C compiler on the machine.
GOBIN="$BIN_DIR" CGO_ENABLED=0 go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
echo "install-buf.sh: $("$BUF" --version)" >&2
