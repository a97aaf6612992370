#!/bin/bash
# The whole event-to-node chain on a real node (root): an ECR event goes through the synthesized
# rule's event pattern and input transformer (chain.ts), the result goes through the synthesized
# SSM document the way SSM takes it (test/node/ssm-render.js: known names, allowedPattern,
# defaults, substitution), and the rendered script runs against the loopback node of
# test/node/lib.sh (containerd + authenticated registry serving the real ECR host name).
# Prints "ok"/"not ok" per check and ends with "N passed, N failed"; exit 1 on any failure.
#   sudo bash test/contract/node-chain.sh
# shellcheck source=test/node/lib.sh
source "$(dirname "$0")/../node/lib.sh"
e2e_reexec_in_namespace "$@"
set -uo pipefail

expect() { # expect DESCRIPTION ACTUAL WANTED
  if [ "$2" = "$3" ]; then ok "$1"; else notok "$1: got '$2', wanted '$3'"; fi
}

e2e_setup
T0="$EPOCHREALTIME"
REPO=team/app # the repository of the contract stack (synthesized.ts)
IMG="$E2E_HOST/$REPO"
PWNED="$E2E_WORK/pwned"

# event ACTION TAG DIGEST [DETAIL_TYPE [TIME [ARTIFACT_MEDIA_TYPE [ACCOUNT]]]]: an ECR event as
# EventBridge delivers it (a replication event carries no media types; aws.ecr@ECRReplicationAction).
event() {
  jq -cn --arg account "${7:-$E2E_ACCOUNT}" --arg region "$E2E_REGION" --arg repo "$REPO" \
    --arg action "$1" --arg tag "$2" --arg digest "$3" --arg type "${4:-ECR Image Action}" \
    --arg time "${5:-2026-11-16T01:54:34Z}" --arg artifact "${6:-application/vnd.oci.image.config.v1+json}" '{
      version: "0", id: "13cde686-328b-6117-af20-0e5566167482", "detail-type": $type,
      source: "aws.ecr", account: $account, time: $time, region: $region,
      resources: [],
      detail: ({result: "SUCCESS", "repository-name": $repo, "image-digest": $digest,
               "action-type": $action, "image-tag": $tag}
        + if $action == "REPLICATE" then {"source-account": "210987654321", "source-region": "us-east-1"}
          else {"manifest-media-type": "application/vnd.oci.image.manifest.v1+json", "artifact-media-type": $artifact} end)}'
}

# chain NAME EVENT_JSON [central]: event -> rule -> target -> document -> node script. Returns
# 3 when the rule does not match, 100 when SSM refuses the parameters, else the script's exit code.
# With `central`, the event is the registry account's and goes through the forwarder's rule first
# (4 when it is not forwarded). Logs in $E2E_WORK/chain/NAME.
N=0
chain() {
  local dir="$E2E_WORK/chain/$1" rc contract="$E2E_WORK/contract.json" central=()
  if [ "${3:-}" = central ]; then contract="$E2E_WORK/contract-central.json"; central=(--central); fi
  mkdir -p "$dir"
  printf '%s\n' "$2" >"$dir/event.json"
  (cd "$E2E_REPO_ROOT" && TS_NODE_TRANSPILE_ONLY=1 npx --no-install ts-node --project tsconfig.dev.json \
    test/contract/chain.ts --event "$dir/event.json" --out "$dir" --contract "$contract" "${central[@]}") >"$dir/eventbridge.log" 2>&1
  rc=$?
  ((rc == 3 || rc == 4)) && return "$rc"
  ((rc == 0)) || { log "chain.ts failed: $(tail -5 "$dir/eventbridge.log")"; return 99; }
  node "$E2E_REPO_ROOT/test/node/ssm-render.js" --document "$dir/document.json" \
    --params "$dir/params.json" --out "$dir/run-command.sh" >"$dir/ssm.log" 2>&1 || return 100
  N=$((N + 1))
  PREFETCH_BACKOFF_BASE_MS=50 "$dir/run-command.sh" >"$dir/node.log" 2>&1
}
ref_digest() { e2e_ctr images ls | awk -v r="$1" '$1 == r { print $3 }'; }
store() { e2e_ctr images ls -q | sort | tr '\n' ' '; }

e2e_build_image chain-v1 1 1 chain-v1 >/dev/null
e2e_build_image chain-v2 1 1 chain-v2 >/dev/null
D1="$(e2e_push chain-v1 "$REPO" v1)"
D2="$(e2e_push chain-v2 "$REPO" v2)"

# 1. A push of v1 lands on the node under both names the kubelet looks up.
chain push-v1 "$(event PUSH v1 "$D1")"
expect "push event of v1: the node script succeeds" "$?" 0
expect "push event of v1: $IMG:v1 is the pushed digest" "$(ref_digest "$IMG:v1")" "$D1"
expect "push event of v1: $IMG@$D1 exists" "$(ref_digest "$IMG@$D1")" "$D1"
check "push event of v1: outcome=pulled" grep -q 'outcome=pulled' "$E2E_WORK/chain/push-v1/node.log"

# 2. EventBridge delivers at least once: the same event again is a no-op that succeeds.
chain push-v1-again "$(event PUSH v1 "$D1")"
expect "the same event again: succeeds" "$?" 0
check "the same event again: outcome=present" grep -q 'outcome=present' "$E2E_WORK/chain/push-v1-again/node.log"

BEFORE="$(store)"
# 3. Events the rule must not act on never reach the node.
chain child "$(event PUSH '' "$D2")"
expect "multi-arch child (\"image-tag\": \"\"): the rule does not match" "$?" 3
chain delete "$(event DELETE v1 "$D1")"
expect "DELETE of v1: the rule does not match" "$?" 3
chain cosign "$(event PUSH "${D1/:/-}.sig" "$D1")"
expect "a cosign signature tag (sha256-<hex>.sig): the rule does not match" "$?" 3
chain helm "$(event PUSH chart-1.0.0 "$D1" 'ECR Image Action' 2026-11-16T01:54:34Z application/vnd.cncf.helm.config.v1+json)"
expect "a Helm chart (artifact media type): the rule does not match" "$?" 3

# 4. A hostile tag (ECR refuses it; the document must refuse it anyway): SSM refuses, nothing runs.
chain hostile "$(event PUSH "v1'; touch $PWNED; '" "$D1")"
expect "hostile tag: SSM refuses the parameters" "$?" 100
check "hostile tag: nothing ran" test ! -e "$PWNED"
chain hostile-digest "$(event PUSH v1 "sha256:\$(touch $PWNED)")"
expect "hostile digest: SSM refuses the parameters" "$?" 100
check "hostile digest: nothing ran" test ! -e "$PWNED"
expect "no image appeared or went for the events above" "$(store)" "$BEFORE"

# 5. A push of another tag lands too, the first stays.
chain push-v2 "$(event PUSH v2 "$D2")"
expect "push event of v2: the node script succeeds" "$?" 0
expect "push event of v2: $IMG:v2 is the pushed digest" "$(ref_digest "$IMG:v2")" "$D2"
expect "push event of v2: $IMG:v1 unchanged" "$(ref_digest "$IMG:v1")" "$D1"

# 5b. A replica is warmed on arrival: the replication event of a tag lands like a push.
chain replication "$(event REPLICATE rep "$D2" 'ECR Replication Action' 2026-11-16T02:00:00Z)"
expect "ECR Replication Action of rep: the node script succeeds" "$?" 0
expect "ECR Replication Action of rep: $IMG:rep is the replicated digest" "$(ref_digest "$IMG:rep")" "$D2"

# 5c. Two pushes of one tag delivered out of order: the older one, arriving last, leaves the tag.
chain newer "$(event PUSH moving "$D2" 'ECR Image Action' 2026-11-16T03:00:10Z)"
expect "push of moving=D2 (03:00:10): succeeds" "$?" 0
chain older "$(event PUSH moving "$D1" 'ECR Image Action' 2026-11-16T03:00:00Z)"
expect "push of moving=D1 (03:00:00), delivered after: succeeds" "$?" 0
check "... as skipped-superseded" grep -q 'outcome=skipped-superseded' "$E2E_WORK/chain/older/node.log"
expect "... $IMG:moving stays at the newer push" "$(ref_digest "$IMG:moving")" "$D2"

# 6. The integ tests' hand-made image (integ/support.ts: fixed tar header, stored-deflate gzip)
# goes through a real registry, and the node script pulls and unpacks it.
INTEG_DIGEST="$(cd "$E2E_REPO_ROOT" && TS_NODE_TRANSPILE_ONLY=1 npx --no-install ts-node --project tsconfig.dev.json \
  test/contract/integ-image.ts chain-integ "$E2E_WORK/images/integ-image")"
PUSHED="$(e2e_push integ-image "$REPO" integ)"
expect "integ test image: the registry keeps its digest" "$PUSHED" "$INTEG_DIGEST"
chain push-integ "$(event PUSH integ "$INTEG_DIGEST")"
expect "integ test image: the node script pulls and unpacks it" "$?" 0
expect "integ test image: $IMG:integ is its digest" "$(ref_digest "$IMG:integ")" "$INTEG_DIGEST"

# 7. The node check the integ tests send with SSM Run Command (integ/support.ts) gives exactly the
# answer their assertions expect, run by sh as AWS-RunShellScript does (dash here: POSIX only).
integ_check() { # integ_check NAME SPEC_JSON: ok when the output is exactly the expected one
  local dir="$E2E_WORK/integ-check/$1"
  mkdir -p "$dir"
  (cd "$E2E_REPO_ROOT" && TS_NODE_TRANSPILE_ONLY=1 npx --no-install ts-node --project tsconfig.dev.json \
    test/contract/integ-check.ts "$2" "$dir") >"$dir/gen.log" 2>&1 || { notok "$1: integ-check.ts failed"; return; }
  sh "$dir/commands.sh" >"$dir/actual" 2>"$dir/stderr"
  if cmp -s "$dir/actual" "$dir/stdout"; then ok "$1"; else notok "$1: $(diff "$dir/stdout" "$dir/actual" | tr '\n' ' ')"; fi
}
ABSENT="sha256:$(printf '%064d' 0)"
integ_check "integ node check: present, moved and absent references" "$(jq -cn \
  --arg img "$IMG" --arg d1 "$D1" --arg d2 "$D2" --arg absent "$ABSENT" '{
    expected: [{reference: "\($img):v1", digest: $d1}, {reference: "\($img)@\($d1)", digest: $d1},
               {reference: "\($img):v2", digest: $d2}, {reference: "\($img):v9"}, {reference: "\($img)@\($absent)"}],
    waitFor: {reference: "\($img):v2", digest: $d2}, settleSeconds: 1, absentDigests: [$absent]}')"
# ... and it can fail: a wrong expectation does not match.
WRONG="$E2E_WORK/integ-check/wrong"
mkdir -p "$WRONG"
(cd "$E2E_REPO_ROOT" && TS_NODE_TRANSPILE_ONLY=1 npx --no-install ts-node --project tsconfig.dev.json \
  test/contract/integ-check.ts "$(jq -cn --arg img "$IMG" --arg d1 "$D1" '{expected: [{reference: "\($img):v2", digest: $d1}], absentDigests: [$d1]}')" "$WRONG") >/dev/null 2>&1
sh "$WRONG/commands.sh" >"$WRONG/actual" 2>/dev/null
check "integ node check: a wrong expectation does not match" test "$(cat "$WRONG/actual")" != "$(cat "$WRONG/stdout")"

# 8. Central registry account (test/contract/central.ts): the repository is in the registry account,
# $E2E_ACCOUNT, whose ECR host the node resolves; the prefetcher's stack is in another account.
# A push there goes through the forwarder's rule, arrives on the workload account's bus, goes
# through the workload rule and the document, and the node pulls from the registry account's host.
e2e_build_image chain-v3 1 1 chain-v3 >/dev/null
D3="$(e2e_push chain-v3 "$REPO" v3)"
chain central-v3 "$(event PUSH v3 "$D3")" central
expect "central registry: push of v3 in the registry account: forwarded, matched, the node script succeeds" "$?" 0
expect "central registry: the workload rule matches account $E2E_ACCOUNT only" "$(jq -c '.eventPattern.account' "$E2E_WORK/contract-central.json")" "[\"$E2E_ACCOUNT\"]"
expect "central registry: the document's accountId is the registry account" "$(jq -r '.accountId[0]' "$E2E_WORK/chain/central-v3/params.json")" "$E2E_ACCOUNT"
expect "central registry: $IMG:v3 (the registry account's host) is the pushed digest" "$(ref_digest "$IMG:v3")" "$D3"
expect "central registry: $IMG@$D3 exists" "$(ref_digest "$IMG@$D3")" "$D3"
BEFORE="$(store)"
chain central-child "$(event PUSH '' "$D2")" central
expect "central registry: a multi-arch child is not forwarded" "$?" 4
chain central-delete "$(event DELETE v3 "$D3")" central
expect "central registry: DELETE of v3 is not forwarded" "$?" 4
chain central-other-account "$(event PUSH v2 "$D2" 'ECR Image Action' 2026-11-16T01:54:34Z application/vnd.oci.image.config.v1+json 555566667777)" central
expect "central registry: a push of the same repository name in a third account: the workload rule does not match" "$?" 3
expect "central registry: no image appeared or went for the events above" "$(store)" "$BEFORE"

log "node chain: $N node runs, $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
e2e_summary
((FAILED == 0))
