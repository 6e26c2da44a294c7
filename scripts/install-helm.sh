#!/usr/bin/env bash
# Build helm from the Go module proxy into .cache/bin (idempotent).
#
#   scripts/install-helm.sh            # installs .cache/bin/helm if missing or of another version
#   HELM_VERSION=v3.22.0 scripts/install-helm.sh
#
# Helm is built from source with `go install` (no prebuilt binary is downloaded), so the only
# requirement is a Go toolchain able to build it. Prints the path of the helm binary on stdout.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${ROOT}/.cache/bin"
HELM="${BIN_DIR}/helm"

installed_version() {
  # `helm version --template` prints e.g. v3.22.0; an unusable binary prints nothing.
  "${HELM}" version --template '{{ .Version }}' 2>/dev/null || true
}

if [[ -x "${HELM}" && "$(installed_version)" == "${HELM_VERSION}" ]]; then
  echo "${HELM}"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-helm.sh: the go command is required to build helm ${HELM_VERSION}" >&2
  exit 1
fi

mkdir -p "${BIN_DIR}"
echo "install-helm.sh: building helm ${HELM_VERSION} into ${BIN_DIR} (takes a few minutes the first time)" >&2
# The same -X flags as helm's own Makefile: the version `helm version` reports, and the Kubernetes
# version `helm template`/`helm lint` assume without a cluster (that of the client-go module helm
# is built with; left unset, helm would assume v1.20).
gomod="$(go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
k8s_minor="$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2] }' "${gomod}")"
if [[ -z "${k8s_minor}" ]]; then
  echo "install-helm.sh: cannot read the client-go version from ${gomod}" >&2
  exit 1
fi
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done
GOBIN="${BIN_DIR}" GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0 \
  go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"

got="$(installed_version)"
if [[ "${got}" != "${HELM_VERSION}" ]]; then
  echo "install-helm.sh: built helm reports version '${got}', expected ${HELM_VERSION}" >&2
  exit 1
fi
echo "${HELM}"
