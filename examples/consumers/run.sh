#!/usr/bin/env bash
# Installs the packages that `npx projen package` built in dist/ into a Python, a Java and a
# Go app, synthesizes the same stack in each, and compares every template with the one the
# TypeScript reference (reference.ts, built from src/) synthesizes.
#
#   bash examples/consumers/run.sh [python] [java] [go]     (default: all three)
#
# Needs python3 (with venv), Maven and Java 17, Go >= 1.25, and PyPI, Maven Central and the
# Go module proxy for aws-cdk-lib/constructs (the library itself always comes from dist/).
# Caches stay where the tools keep them by default (~/.cache/pip, ~/.m2, ~/go), plus the
# app's own .venv, so a second run is fast. Logs: test-reports/consumers/<language>.log.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dist="$root/dist"
logs="$root/test-reports/consumers"
mkdir -p "$logs"

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export AWS_EC2_METADATA_DISABLED=true

# The aws-cdk-lib every app must use (the library's pinned version).
CDK_GO_MODULE=github.com/aws/aws-cdk-go/awscdk/v2
CDK_GO_VERSION=v2.245.0
# Used only when the Go proxy refuses $CDK_GO_VERSION (it does on the project's machines:
# "403 This module version is not available"); the run says so, and the template must still
# match the TypeScript one.
CDK_GO_FALLBACK=v2.244.0

languages=("$@")
[ ${#languages[@]} -gt 0 ] || languages=(python java go)

seconds() { date +%s; }

# ---------------------------------------------------------------------------
check_dist() {
  local missing=()
  compgen -G "$dist/python/*.whl" >/dev/null || missing+=("dist/python/*.whl")
  [ -d "$dist/java/io/github/cdk-image-prefetcher/cdk-image-prefetcher" ] || missing+=("dist/java (Maven repository)")
  [ -f "$dist/go/cdkimageprefetcher/go.mod" ] || missing+=("dist/go/cdkimageprefetcher")
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing build output: ${missing[*]}"
    echo "run 'npx projen build' (or 'npx projen compile && npx projen package') first"
    return 1
  fi
}

reference() {
  rm -rf "$here/cdk.out"
  (cd "$root" && CDK_OUTDIR="$here/cdk.out" npx ts-node --project tsconfig.dev.json examples/consumers/reference.ts)
}

python_app() {
  local app="$here/python" venv="$here/python/.venv" wheel
  local wheels=("$dist"/python/*.whl)
  wheel="${wheels[0]}"
  [ -f "$wheel" ] || { echo "no wheel in $dist/python"; return 1; }
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
  local pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
  "${pip[@]}" install -q -r "$app/requirements.txt" "$wheel" || return 1
  # Same version number on every local build: force the wheel just built.
  "${pip[@]}" install -q --force-reinstall --no-deps "$wheel" || return 1
  "${pip[@]}" check || return 1
  "$venv/bin/python" -c 'import aws_cdk, cdk_image_prefetcher, importlib.metadata as m; print("aws-cdk-lib", m.version("aws-cdk-lib"), "| cdk-image-prefetcher", m.version("cdk-image-prefetcher"), "from", cdk_image_prefetcher.__file__)'
  rm -rf "$app/cdk.out"
  (cd "$app" && CDK_OUTDIR="$app/cdk.out" "$venv/bin/python" app.py)
}

java_app() {
  local app="$here/java" group="$dist/java/io/github/cdk-image-prefetcher/cdk-image-prefetcher" version
  local versions=("$group"/*/)
  version="$(basename "${versions[0]}")"
  local m2="${MAVEN_LOCAL_REPOSITORY:-$HOME/.m2/repository}"
  # Same version number on every local build: drop the cached copy so Maven takes dist's jar.
  rm -rf "$m2/io/github/cdk-image-prefetcher/cdk-image-prefetcher"
  rm -rf "$app/cdk.out"
  (cd "$app" && CDK_OUTDIR="$app/cdk.out" mvn -B -q -Dmaven.repo.local="$m2" \
    -Dprefetcher.version="$version" compile exec:java) || return 1
  echo "cdk-image-prefetcher $version from $group"
}

go_app() {
  local app="$here/go"
  cd "$app" || return 1
  # Work on a copy of go.mod: the committed one stays as written (pinned versions, no go.sum
  # for a module that is rebuilt on every run).
  cp go.mod run.go.mod && rm -f run.go.sum
  if ! go mod download -modfile run.go.mod "$CDK_GO_MODULE@$CDK_GO_VERSION"; then
    echo "NOTE: the Go proxy does not serve $CDK_GO_MODULE@$CDK_GO_VERSION; using $CDK_GO_FALLBACK" | tee "$logs/go.note"
    go mod edit -modfile run.go.mod -replace "$CDK_GO_MODULE=$CDK_GO_MODULE@$CDK_GO_FALLBACK" || return 1
  fi
  go mod tidy -modfile run.go.mod || return 1
  go list -modfile run.go.mod -m "$CDK_GO_MODULE" github.com/aws/constructs-go/constructs/v10 \
    github.com/aws/jsii-runtime-go github.com/cdk-image-prefetcher/cdk-image-prefetcher-go/cdkimageprefetcher || return 1
  rm -rf "$app/cdk.out"
  CDK_OUTDIR="$app/cdk.out" go run -modfile run.go.mod .
}

# ---------------------------------------------------------------------------
passed=0
failed=0

if ! check_dist; then
  echo "0 passed, ${#languages[@]} failed"
  exit 1
fi

start=$(seconds)
if ! reference >"$logs/reference.log" 2>&1; then
  echo "not ok - TypeScript reference ($(($(seconds) - start)) s): see test-reports/consumers/reference.log"
  tail -n 30 "$logs/reference.log"
  echo "0 passed, ${#languages[@]} failed"
  exit 1
fi
echo "ok - TypeScript reference synthesized ($(($(seconds) - start)) s)"

for lang in "${languages[@]}"; do
  log="$logs/$lang.log"
  rm -f "$logs/$lang.note"
  start=$(seconds)
  if ! declare -F "${lang}_app" >/dev/null; then
    echo "not ok - $lang: unknown language (python, java, go)"
    failed=$((failed + 1))
    continue
  fi
  if ("${lang}_app") >"$log" 2>&1 && {
    echo "--- compare with the TypeScript template" >>"$log"
    node "$here/compare.js" "$here/cdk.out" "$here/$lang/cdk.out" >>"$log" 2>&1
  }; then
    note=""
    [ -f "$logs/$lang.note" ] && note=" [$(sed 's/^NOTE: //' "$logs/$lang.note")]"
    echo "ok - $lang: synthesized a template equal to the TypeScript one ($(($(seconds) - start)) s)$note"
    grep -E '^  (same|DIFFERENT|byte)' "$log" | grep -E 'DIFFERENT|byte' | sed 's/^/    /'
    passed=$((passed + 1))
  else
    echo "not ok - $lang ($(($(seconds) - start)) s): see test-reports/consumers/$lang.log"
    tail -n 40 "$log" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
