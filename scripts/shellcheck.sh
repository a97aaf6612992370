#!/bin/bash
# Runs shellcheck on the node-side script, the node and contract test harnesses and the CI scripts (task lint:shell, part of `projen test`).
# Installs shellcheck from the distribution when missing (CI has only what the project installs).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v shellcheck >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck; } >&2
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    { sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck; } >&2
  else
    echo "shellcheck not found and cannot be installed here (apt-get as root or sudo needed)" >&2
    exit 1
  fi
fi
shopt -s nullglob
files=(assets/*.sh test/node/*.sh test/contract/*.sh test/fleet/*.sh scripts/*.sh examples/consumers/run.sh .ci/run)
# -x follows `source` of test/node/lib.sh; the severity is the default (style and up).
shellcheck -x -P SCRIPTDIR "${files[@]}"
echo "shellcheck: ${#files[@]} files clean"
