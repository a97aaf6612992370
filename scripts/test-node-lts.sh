#!/usr/bin/env bash
# The unit and contract tests (jest) on the newest Node.js LTS as well as on the Node that runs the
# build (20, the oldest the library supports: package.json "engines"). Node 26 is the Active LTS line
# since 2026-10; its binary comes from the npm registry (node-linux-<arch>, the package behind npm's
# `node`), installed once into a cache. Ends with a plain `N passed, N failed` line.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_LTS_VERSION="${NODE_LTS_VERSION:-26.12.1}"
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "no Node.js package for $(uname -m)"; echo "0 passed, 1 failed"; exit 1 ;;
esac
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cdk-image-prefetcher/node-$NODE_LTS_VERSION"
node_bin="$cache/node_modules/node-linux-$arch/bin/node"
if [ ! -x "$node_bin" ]; then
  npm install --prefix "$cache" --no-save --no-audit --no-fund "node-linux-$arch@$NODE_LTS_VERSION" >&2
fi
echo "jest on $("$node_bin" --version) (the build ran on $(node --version))"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
rc=0
"$node_bin" node_modules/jest/bin/jest.js --ci --reporters=default --json --outputFile="$report" || rc=$?
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed`);
' "$report" || { echo "0 passed, 1 failed"; exit 1; }
exit "$rc"
