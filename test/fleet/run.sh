#!/bin/bash
# Local fleet test (task test:fleet, root): one ECR push rolled out by SendCommand to a fleet of
# real containerd nodes on this machine, with the rate control of the current Run Command target
# (OLD: MaxConcurrency 3 to make waves visible on 10 nodes, MaxErrors 0 as SendCommand's default)
# and of the new push path (NEW: the MaxConcurrency and MaxErrors that the synthesized push rollout of
# an ImagePrefetcher with default props sends, read by examples/print-document.ts; FLEET_NEW_MAX_CONCURRENCY
# and FLEET_NEW_MAX_ERRORS override them). Both pass the document the same parameters with
# jitterSeconds=$FLEET_JITTER_SECONDS (2, not the construct's 90: a 10-node run stays short and its
# peak stays above the throttling scenario's rate; `npx projen bench:fleet` models the 90 s).
# The nodes, the registry and its throttling proxy are set up by lib.sh; dispatcher.js plays
# SendCommand with dispatch.js's policy and runs the SSM-rendered document in each node's namespace.
#
# Scenarios, each with OLD then NEW settings, every node's images wiped before each run:
#   (a) all nodes healthy
#   (b) node00's containerd filesystem is full (its root tmpfs filled to 100%): it skips, exit 0
#   (c) node00's containerd is down (crashed: killed, its socket left behind): it fails, exit 6
#   (d) node00 is of another architecture (PREFETCH_PLATFORM=linux/arm64; the pushed index has this
#       machine's platform and linux/s390x): it skips, exit 0
#   (e) throttling: one node against a manifest API answering 429 to everything (the script must
#       retry, not give up as not-found), then the fleet against a registry answering 429 above
#       $FLEET_RATE_LIMIT requests per second (20: half the peak 10 nodes reach with a 2 s jitter;
#       with a longer jitter the fleet's peak drops, set it below the "(a) new" line's peak, and
#       not below ~10: one node's pull makes ~8 requests at once)
# The odd node is node00, the FIRST target, on purpose: SendCommand sends to it alone first, and a
# node whose containerd is down fails within a fraction of a second (before the jitter), while a
# healthy node does that work and then the pull. So under MaxErrors 0 the failing node00 stops the
# rollout while only node01 and node02 have been sent the command: 7 healthy nodes are never sent
# it, whatever the timing. A failing node later in the order could end after the last node was sent.
#
# A node is warm when its containerd has both HOST/REPO:TAG and HOST/REPO@DIGEST on the pushed
# digest and the image is usable by the CRI (checked with ctr in the node's namespace, not by
# reading the script's output). Prints "ok"/"not ok" per check, a markdown table of the runs, and
# "N passed, N failed"; exit 1 on any failure. FLEET_ONLY="a c" runs some scenarios,
# FLEET_REPEAT=N runs them N times; E2E_CONTAINERD=v2.2.9 tests that containerd (test/node/lib.sh);
# E2E_KEEP=1 keeps the work dir (every node's output in runs/SCENARIO-PATH/nodeNN.out).
# shellcheck source=test/fleet/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_reexec_in_namespace "$@"
set -uo pipefail

NODES="${FLEET_NODES:-10}"
JITTER="${FLEET_JITTER_SECONDS:-2}"
RATE_LIMIT="${FLEET_RATE_LIMIT:-20}"
OLD_MAX_CONCURRENCY=3
OLD_MAX_ERRORS=0
ODD=0
((NODES >= 10)) || die "FLEET_NODES: at least 10 nodes, got $NODES"

fleet_setup
T0="$EPOCHREALTIME"
REPO=team/app
IMG="$E2E_HOST/$REPO"
DOC="$E2E_WORK/document.json"
fleet_document "$DOC" "$E2E_WORK/rollout.json"
if [ -s "$E2E_WORK/rollout.json" ]; then
  NEW_MAX_CONCURRENCY="${FLEET_NEW_MAX_CONCURRENCY:-$(jq -r .maxConcurrency "$E2E_WORK/rollout.json")}"
  NEW_MAX_ERRORS="${FLEET_NEW_MAX_ERRORS:-$(jq -r .maxErrors "$E2E_WORK/rollout.json")}"
  log "new path: the synthesized push rollout sends MaxConcurrency $NEW_MAX_CONCURRENCY, MaxErrors $NEW_MAX_ERRORS"
else
  { [ -n "${FLEET_NEW_MAX_CONCURRENCY:-}" ] && [ -n "${FLEET_NEW_MAX_ERRORS:-}" ]; } ||
    die "no synthesized push rollout settings (examples/print-document.ts): set FLEET_NEW_MAX_CONCURRENCY and FLEET_NEW_MAX_ERRORS"
  NEW_MAX_CONCURRENCY="$FLEET_NEW_MAX_CONCURRENCY" NEW_MAX_ERRORS="$FLEET_NEW_MAX_ERRORS"
fi

log "building and pushing the test images"
# A busybox layer and 2 x 4 MiB random layers; the index's linux/s390x entry is a 1 MiB image.
e2e_build_image app 4 2 "hello from the fleet" >/dev/null
e2e_build_image other 1 1 "another platform" >/dev/null
e2e_build_index multi app other >/dev/null
fleet_proxy reset >/dev/null
DIGEST="$(e2e_push app "$REPO" v1)"
DIGEST_MULTI="$(e2e_push multi "$REPO" multi)"

log "starting $NODES containerd nodes ($(containerd --version | awk '{ print $3 }'))"
for ((i = 0; i < NODES; i++)); do fleet_start_node "$i"; done
for ((i = 0; i < NODES; i++)); do fleet_start_containerd "$i"; done
for ((i = 0; i < NODES; i++)); do fleet_wait_containerd "$i"; done
e2e_containerd_version

# The parameters the push leg passes (the event's tag, digest and, on the new path, time; the
# construct's common ones), limited to those the document declares. KEY=VALUE arguments override.
params() { # params KEY=VALUE...
  local -A p=([accountId]="$E2E_ACCOUNT" [region]="$E2E_REGION" [repositoryName]="$REPO"
    [jitterSeconds]="$JITTER" [maxDiskUsagePercent]=80 [pinImages]=false [maxAttempts]=5 [executionTimeout]=180)
  local args=() kv k
  for kv in "$@"; do p[${kv%%=*}]="${kv#*=}"; done
  for k in "${!p[@]}"; do args+=(--arg "$k" "${p[$k]}"); done
  jq -cn "${args[@]}" --slurpfile doc "$DOC" \
    '$ARGS.named | with_entries(select(.key as $k | $doc[0].parameters | has($k))) | map_values([.])'
}

# dispatch NAME MAX_CONCURRENCY MAX_ERRORS PARAMS NODES_JSON: SendCommand by dispatcher.js; the
# nodes' output and result.json in $E2E_WORK/runs/NAME (path in R), its log in runs/NAME.log.
dispatch() {
  local out="$E2E_WORK/runs/$1"
  R="$out/result.json"
  setpriv --pdeathsig KILL node "$FLEET_DIR/dispatcher.js" --nodes "$5" --document "$DOC" --params "$4" \
    --max-concurrency "$2" --max-errors "$3" --out "$out" 2>"$out.log" ||
    notok "dispatcher: $(tail -3 "$out.log")"
}

wipe_all() {
  local i
  for ((i = 0; i < NODES; i++)); do
    [ -z "${FLEET_CONTAINERD[$i]}" ] || fleet_in "$i" e2e_wipe_images || notok "node $i: could not wipe its images"
  done
}

ROWS=()
# run SCENARIO PATH TAG DIGEST PROXY_LIMITS [NODE=VAR=VALUE...]: the push rolled out to the whole
# fleet, every node's images wiped first; sets R, WARM/HEALTHY, NOT_SENT, STATS, adds a table row.
run() {
  local scenario="$1" path="$2" tag="$3" digest="$4" limits="$5" maxc maxe i nodes="$E2E_WORK/tmp/nodes.json"
  shift 5
  if [ "$path" = old ]; then maxc="$OLD_MAX_CONCURRENCY" maxe="$OLD_MAX_ERRORS"; else maxc="$NEW_MAX_CONCURRENCY" maxe="$NEW_MAX_ERRORS"; fi
  wipe_all
  fleet_proxy reset "$limits" >/dev/null
  fleet_nodes_json "$NODES" "$@" >"$nodes"
  local event=()
  # The new path passes the push's time (the jitter counts from it); the Run Command target did not.
  [ "$path" = new ] && event=("eventTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  dispatch "$scenario-$path" "$maxc" "$maxe" "$(params imageTags="$tag" imageDigest="$digest" "${event[@]}")" "$nodes"
  STATS="$(fleet_proxy stats)"
  WARM=0 HEALTHY=0
  for ((i = 0; i < NODES; i++)); do
    [[ "$scenario" == [bcd] ]] && ((i == ODD)) && continue
    HEALTHY=$((HEALTHY + 1))
    if fleet_in "$i" fleet_warm "$IMG" "$tag" "$digest"; then
      WARM=$((WARM + 1))
    else
      # (a node never sent the command is counted in NOT_SENT)
      jq -r --arg n "$(fleet_node_name "$i")" '.invocations[$n] // empty |
        "#   \($n) not warm: \(.status) exit=\(.exit) outcome=\(.outcome)"' "$R"
      grep -h 'prefetch: error' "$E2E_WORK/runs/$scenario-$path/$(fleet_node_name "$i").out" 2>/dev/null | cut -c1-300 | sed 's/^/#     /'
    fi
  done
  NOT_SENT="$(jq '.notSent | length' "$R")"
  local wall peak throttled odd="-"
  wall="$(jq '.wallSeconds' "$R")"
  peak="$(jq '.peakRequestsPerSecond' <<<"$STATS")"
  throttled="$(jq '.throttled' <<<"$STATS")"
  [[ "$scenario" == [bcd] ]] &&
    odd="$(jq -r --arg n "$(fleet_node_name "$ODD")" '.invocations[$n] | "\(.status) exit=\(.exit) \(.outcome)"' "$R")"
  echo "# ($scenario) $path (MaxConcurrency $maxc, MaxErrors $maxe): healthy nodes warm $WARM/$HEALTHY, never sent $NOT_SENT, wall ${wall}s, peak ${peak} req/s, 429s $throttled, node00: $odd"
  echo "#   sent at: $(jq -r '.invocations | to_entries | sort_by(.value.sentAt) | map("\(.key | ltrimstr("node")) \(.value.sentAt * 10 | round / 10)s") | join(", ")' "$R")"
  ROWS+=("| ${TITLE[$scenario]} | $path: $maxc / $maxe | $WARM/$HEALTHY | $NOT_SENT | $odd | $wall | $peak | $throttled |")
}

ended() { # ended NODE STATUS EXIT OUTCOME: the node's invocation in $R ended so
  jq -e --arg n "$1" --arg s "$2" --argjson e "$3" --arg o "$4" \
    '.invocations[$n] | .status == $s and .exit == $e and .outcome == $o' "$R" >/dev/null
}
odd_is() { ended "$(fleet_node_name "$ODD")" "$@"; }
all_warm() { [ "$WARM" = "$HEALTHY" ]; }
at_most_in_flight() { [ "$(jq '.peakInFlight' "$R")" -le "$1" ]; }
# Nodes whose output shows a pull attempt refused with 429 and retried, and that still ended Success.
retried_429() {
  local n=0 f name
  for f in "$1"/node*.out; do
    name="$(basename "$f" .out)"
    grep -q 'attempt [0-9]*/[0-9]* failed: .*429 Too Many Requests' "$f" &&
      jq -e --arg n "$name" '.invocations[$n].status == "Success"' "$R" >/dev/null && n=$((n + 1))
  done
  echo "$n"
}

declare -A TITLE=(
  [a]="(a) all healthy" [b]="(b) node00 disk full" [c]="(c) node00 containerd down"
  [d]="(d) node00 other arch" [e]="(e) ECR throttling (429 above $RATE_LIMIT req/s)"
)

scenario_a() {
  echo "# (a) all $NODES nodes healthy"
  run a old v1 "$DIGEST" ""
  check "OLD (a): every node warm ($WARM/$HEALTHY)" all_warm
  check "OLD (a): at most $OLD_MAX_CONCURRENCY nodes ran at once (waves)" at_most_in_flight "$OLD_MAX_CONCURRENCY"
  run a new v1 "$DIGEST" ""
  check "NEW (a): every node warm ($WARM/$HEALTHY)" all_warm
}

# A node that is fine but for which the pull is not meant (full disk, other platform) exits 0 with
# outcome=skipped-<reason>: no error for MaxErrors, so even MaxErrors 0 sends to every node.
scenario_b() {
  echo "# (b) node00's containerd filesystem is full"
  fleet_in "$ODD" fleet_fill_disk
  echo "#   node00's containerd root: $(fleet_in "$ODD" fleet_disk_percent)% used"
  for path in old new; do
    run b "$path" v1 "$DIGEST" ""
    check "${path^^} (b): the full node is skipped, not failed (Success, exit 0, outcome=skipped-disk)" odd_is Success 0 skipped-disk
    check "${path^^} (b): every healthy node warm ($WARM/$HEALTHY)" all_warm
    [ "$path" = new ] || check "OLD (b): the skip does not stop the rollout: every node was sent the command" test "$NOT_SENT" = 0
  done
  fleet_in "$ODD" fleet_free_disk
}

# A node whose containerd is down is a real failure (exit 6): MaxErrors 0 stops the rollout there.
scenario_c() {
  echo "# (c) node00's containerd is down"
  fleet_crash_containerd "$ODD"
  for path in old new; do
    # A crashed containerd, not a booting node: the script's boot-time wait for containerd (a quarter
    # of executionTimeout) is cut to 1 s, so that the failure reaches SSM as fast as MaxErrors needs.
    run c "$path" v1 "$DIGEST" "" "$ODD=PREFETCH_CONTAINERD_WAIT_SECONDS=1"
    check "${path^^} (c): the node without containerd fails (Failed, exit 6, outcome=containerd-unavailable)" \
      odd_is Failed 6 containerd-unavailable
    if [ "$path" = old ]; then
      check "OLD (c): MaxErrors 0 stopped the rollout: $NOT_SENT healthy nodes never sent the command" test "$NOT_SENT" -ge 1
      check "OLD (c): at most $OLD_MAX_CONCURRENCY nodes ran at once" at_most_in_flight "$OLD_MAX_CONCURRENCY"
    else
      check "NEW (c): every healthy node warm ($WARM/$HEALTHY)" all_warm
    fi
  done
  fleet_start_containerd "$ODD"
  fleet_wait_containerd "$ODD"
}

scenario_d() {
  echo "# (d) node00 is linux/arm64; the pushed index has linux/$(e2e_goarch) and linux/s390x"
  for path in old new; do
    run d "$path" multi "$DIGEST_MULTI" "" "$ODD=PREFETCH_PLATFORM=linux/arm64"
    check "${path^^} (d): the node of another platform is skipped, not failed (Success, exit 0, outcome=skipped-platform)" \
      odd_is Success 0 skipped-platform
    check "${path^^} (d): every healthy node warm ($WARM/$HEALTHY)" all_warm
    [ "$path" = new ] || check "OLD (d): the skip does not stop the rollout: every node was sent the command" test "$NOT_SENT" = 0
  done
}

# ECR throttles with 429. First, deterministically, one node against a registry whose manifest API
# refuses everything (ECR's quotas are per API): the script must take the 429 for what it is,
# transient, and retry it until maxAttempts (exit 4), whatever containerd logs on the way (1.x
# resolves a digest at /manifests/, then falls back to /blobs/, which answers 404 and logs "trying
# next host - response was http.StatusNotFound" before the 429 is returned). Then the fleet, with a
# request rate above which the registry answers 429. The OLD run there is reported, not checked:
# whether a node runs out of attempts (and MaxErrors 0 then stops the rollout) depends on timing.
scenario_e() {
  echo "# (e) throttling: one node against a manifest API that answers 429 to everything"
  wipe_all
  fleet_proxy reset manifestLimit=0 >/dev/null
  fleet_nodes_json 2 | jq '.[1:]' >"$E2E_WORK/tmp/probe.json"
  dispatch e-probe 1 0 "$(params imageTags=v1 imageDigest="$DIGEST" jitterSeconds=0 maxAttempts=2)" "$E2E_WORK/tmp/probe.json"
  local probe="$E2E_WORK/runs/e-probe/node01.out" throttled n
  echo "#   node01: $(jq -r '.invocations.node01 | "\(.status) exit=\(.exit) outcome=\(.outcome)"' "$R"), registry: $(fleet_proxy stats | jq -r '"\(.throttled) answers 429"')"
  check "a manifest request refused with 429 is transient: retried up to maxAttempts=2, then exit 4 (registry-failed), not 7 (not-found)" \
    ended node01 Failed 4 registry-failed
  check "... the node script logged the retried 429 (attempt 1/2 failed: ...429 Too Many Requests)" \
    grep -q 'attempt 1/2 failed: .*429 Too Many Requests' "$probe"
  grep -q 'attempt 1/2 failed' "$probe" || grep 'prefetch: error' "$probe" | cut -c1-400 | sed 's/^/#   /'

  echo "# (e) the registry answers 429 above $RATE_LIMIT requests per second"
  run e old v1 "$DIGEST" "limit=$RATE_LIMIT"
  run e new v1 "$DIGEST" "limit=$RATE_LIMIT"
  throttled="$(jq .throttled <<<"$STATS")"
  check "NEW (e): the registry throttled the fleet ($throttled answers 429; peak $(jq .peakRequestsPerSecond <<<"$STATS") req/s offered, limit $RATE_LIMIT)" \
    test "$throttled" -ge 1
  n="$(retried_429 "$E2E_WORK/runs/e-new")"
  echo "#   retries: $n nodes retried after 429; the most failed attempts at one step: $(cat "$E2E_WORK"/runs/e-new/node*.out |
    sed -n 's/.*: attempt \([0-9]*\)\/[0-9]* failed: .*/\1/p' | sort -n | tail -n1 | grep . || echo 0) of maxAttempts 5"
  check "NEW (e): the node script retried requests refused with 429 and succeeded ($n nodes)" test "$n" -ge 1
  check "NEW (e): every node warm despite the throttling ($WARM/$HEALTHY)" all_warm
}

# FLEET_ONLY="a c" runs only those scenarios; FLEET_REPEAT=N runs them N times (flakiness hunt).
for ((round = 1; round <= ${FLEET_REPEAT:-1}; round++)); do
  [ "${FLEET_REPEAT:-1}" = 1 ] || echo "# round $round"
  for s in ${FLEET_ONLY:-a b c d e}; do
    [ -n "${TITLE[$s]:-}" ] || die "FLEET_ONLY: scenarios among a b c d e, got: $s"
    "scenario_$s"
  done
done

# ---------------------------------------------------------------------------------------------
echo
echo "Fleet of $NODES containerd $E2E_CONTAINERD_VERSION nodes, jitterSeconds $JITTER; settings: MaxConcurrency / MaxErrors"
echo
echo "| scenario | settings | healthy nodes warm | never sent | node00 | wall (s) | peak req/s | 429s |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
secs="$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')"
echo "# took ${secs}s"
e2e_summary
((FAILED == 0))
