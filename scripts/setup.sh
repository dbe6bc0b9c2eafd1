#!/usr/bin/env bash
# Installs every build and test dependency of unmask from Debian 12 packages
# (python3-matplotlib: the benchmark plots, bench/plot_forward_rows.py).
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libgtest-dev libgmock-dev libbenchmark-dev
      nlohmann-json3-dev libpcre2-dev libcli11-dev libcpp-httplib-dev
      clang libclang-rt-14-dev python3 python3-matplotlib chromium xz-utils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node for the server's client tests (tests/js); a node from elsewhere (with its npm) will do.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
else
  echo "setup: all dependencies present"
fi
# npm packages of the server tests (openai, playwright-core), pinned by package-lock.json.
JS_DIR="$(cd "$(dirname "$0")/../tests/js" && pwd)"
if [ ! -d "$JS_DIR/node_modules" ] || [ "$JS_DIR/package-lock.json" -nt "$JS_DIR/node_modules" ]; then
  echo "setup: npm ci in tests/js"
  (cd "$JS_DIR" && npm ci --no-audit --no-fund)
fi
