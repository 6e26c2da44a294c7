#!/usr/bin/env bash
# Headless Chromium and its WebDriver from Debian's packages, for the browser end-to-end test.
# Idempotent: does nothing when both are already installed. Also a CJK font, so screenshots are legible.
set -euo pipefail

PACKAGES=(chromium chromium-driver fonts-wqy-zenhei)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-browser.sh: ${PACKAGES[*]} already installed"
  exit 0
fi

SUDO=""
[[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
chromium --version
chromedriver --version
