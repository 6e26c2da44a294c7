#!/usr/bin/env bash
# Build the six images from the repository root:
#   deploy/docker/build.sh [TAG]          # TAG defaults to the chart's appVersion
#   IMAGE_PREFIX=registry.example/minorprot deploy/docker/build.sh 0.1.0
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAG="${1:-$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "${ROOT}/deploy/helm/minorprot/Chart.yaml")}"
PREFIX="${IMAGE_PREFIX:-minorprot}"
for component in registry reporting referral benefits notify gateway; do
  docker build --file "${ROOT}/deploy/docker/Dockerfile" --build-arg "COMPONENT=${component}" \
    --tag "${PREFIX}/${component}:${TAG}" "${ROOT}"
done
