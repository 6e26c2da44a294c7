#!/usr/bin/env bash
# Build gitleaks (secret scanner) from the Go module proxy into .cache/bin (idempotent; ~30 s cold).
#
#   scripts/install-gitleaks.sh
#   GITLEAKS_VERSION=v8.30.1 scripts/install-gitleaks.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GITLEAKS_VERSION="${GITLEAKS_VERSION:-v8.30.1}"
BIN_DIR="$ROOT/.cache/bin"
STAMP="$BIN_DIR/.gitleaks-$GITLEAKS_VERSION"

# `go install` leaves the version unset ("version is set by build process"), so a stamp file records it.
if [[ -x "$BIN_DIR/gitleaks" && -f "$STAMP" ]]; then
  exit 0
fi
command -v go >/dev/null || { echo "install-gitleaks.sh: ERROR: go not found" >&2; exit 1; }
mkdir -p "$BIN_DIR"
echo "install-gitleaks.sh: building gitleaks $GITLEAKS_VERSION into $BIN_DIR" >&2
GOBIN="$BIN_DIR" CGO_ENABLED=0 go install "github.com/zricethezav/gitleaks/v8@$GITLEAKS_VERSION"
rm -f "$BIN_DIR"/.gitleaks-*
touch "$STAMP"
