#!/bin/bash
# End-to-end tests of assets/prefetch-image.sh on a real node on loopback (task `test:node`, root):
# containerd + runc + an authenticated OCI registry serving the real ECR host name, an `aws` shim,
# and the script run the way SSM runs it (document rendered with the parameters by ssm-render.js,
# then executed) or stand-alone with PREFETCH_* variables. See lib.sh for the setup.
#
# The SSM document comes from $PREFETCH_DOCUMENT_JSON if set, else from
# examples/print-document.ts (the construct's synthesized document) if present, else it is built
# from assets/prefetch-image.sh exactly as the construct does (ssm-render.js).
# Prints "ok"/"not ok" per check and ends with "N passed, N failed"; exit 1 on any failure.
# shellcheck source=test/node/lib.sh
source "$(dirname "$0")/lib.sh"
# E2E_ONLY=soci: a node whose CRI snapshotter is soci-snapshotter (soci.sh), from its start.
# shellcheck source=test/node/soci.sh
[ "${E2E_ONLY:-}" = soci ] && source "$(dirname "$0")/soci.sh"
e2e_reexec_in_namespace "$@"
set -uo pipefail


e2e_setup
T0="$EPOCHREALTIME"
REPO=team/app
IMG="$E2E_HOST/$REPO"
OUT="$E2E_WORK/out.txt"
PWNED="$E2E_WORK/pwned"

# ---------------------------------------------------------------------------------------------
# The document, and running it like SSM: render (pattern checks, defaults, substitution), then
# execute the file (shebang honoured) as root. Test-only knobs come from the environment.
DOC="$E2E_WORK/document.json"
e2e_document "$DOC"

# run_ssm PARAMS_JSON [ENV=VALUE...]: rc of the run; output in $OUT, the script's own wall time in
# $RUN_SECONDS (rendering excluded). rc 100 = SSM refused.
run_ssm() {
  local params="$1" script="$E2E_WORK/tmp/run-command.sh"
  shift
  rm -f "$script"
  if ! node "$E2E_REPO_ROOT/test/node/ssm-render.js" --document "$DOC" --params "$params" --out "$script" >"$OUT" 2>&1; then
    return 100
  fi
  local t="$EPOCHREALTIME" rc
  env PREFETCH_BACKOFF_BASE_MS=50 "$@" "${E2E_RUN_WITH[@]}" "$script" >"$OUT" 2>&1
  rc=$?
  RUN_SECONDS="$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
  return "$rc"
}

# run_env [ENV=VALUE...]: the script stand-alone, inputs from the environment.
run_env() {
  env PREFETCH_ACCOUNT_ID="$E2E_ACCOUNT" PREFETCH_REGION="$E2E_REGION" PREFETCH_REPOSITORY="$REPO" \
    PREFETCH_JITTER_SECONDS=0 PREFETCH_BACKOFF_BASE_MS=50 "$@" "${E2E_BASH:-bash}" "$E2E_SCRIPT" >"$OUT" 2>&1
}

params() { # params KEY=VALUE... -> the JSON EventBridge hands SSM ({"name": ["value"]})
  local -A p=([accountId]="$E2E_ACCOUNT" [region]="$E2E_REGION" [repositoryName]="$REPO" [jitterSeconds]=0)
  local args=() kv k
  for kv in "$@"; do p[${kv%%=*}]="${kv#*=}"; done
  for k in "${!p[@]}"; do args+=(--arg "$k" "${p[$k]}"); done
  jq -cn "${args[@]}" '$ARGS.named | map_values([.])'
}

expect() { # expect DESCRIPTION RC WANTED_RC [OUTPUT_PATTERN]
  local what="$1" rc="$2" want="$3" pat="${4:-}"
  if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -qE -- "$pat" "$OUT"; }; then
    ok "$what (exit $rc)"
  else
    notok "$what: exit $rc, wanted $want${pat:+ and /$pat/}"
    sed 's/^/#   /' "$OUT" | tail -n 15
  fi
}

ref_digest() { e2e_ctr images ls | awk -v r="$1" 'NR > 1 && $1 == r { print $3 }'; }
ref_labels() { e2e_ctr images ls | awk -v r="$1" 'NR > 1 && $1 == r { print $NF }'; }
store_state() { { e2e_ctr images ls | awk 'NR > 1 { print $1, $3, $NF }'; e2e_ctr content ls -q; } | sort; }
summary_field() { sed -n "s/.*prefetch: summary .*$1=\([^ ]*\).*/\1/p" "$OUT"; }
# Every image in k8s.io is complete (no half-made image that looks present).
# Every image in k8s.io has all its blobs (what a ctr pull leaves).
store_complete() { ! e2e_ctr images check 2>/dev/null | awk 'NR > 1' | grep -v ' complete ' | grep -q .; }
# Every image in k8s.io is usable by the CRI (lib.sh: manifest, config, committed snapshot kept by the
# config's GC label; layer blobs may be absent, as after a CRI pull that discards them).
store_consistent() {
  local ref
  while read -r ref; do
    e2e_image_usable "$ref" || { echo "# not usable by the CRI: $ref"; return 1; }
  done < <(e2e_ctr images ls -q)
}

# ---------------------------------------------------------------------------------------------
log "building and pushing test images"
e2e_build_image small1 1 1 "hello from v1" >/dev/null
e2e_build_image small2 1 1 "hello from v2" >/dev/null
e2e_build_image small3 1 1 "hello from v3" >/dev/null
e2e_build_image big 40 4 "big image" >/dev/null
D1="$(e2e_push small1 "$REPO" v1 2026-11-01T10:00:00.000+00:00)"
D2="$(e2e_push small2 "$REPO" v2 2026-11-02T10:00:00.000+00:00)"
D3="$(e2e_push small3 "$REPO" v3 2026-11-03T10:00:00.000+00:00)"
e2e_push small1 team/pfx release-1 2026-11-01T10:00:00.000+00:00 >/dev/null
e2e_push small2 team/pfx dev-2 2026-11-05T10:00:00.000+00:00 >/dev/null
DBIG="$(e2e_push big "$REPO" big 2026-10-01T10:00:00.000+00:00)"
e2e_build_index multi small3 small2 >/dev/null
DMULTI="$(e2e_push multi "$REPO" multi 2026-10-01T10:00:00.000+00:00)"

blob_requests() { grep -c '"GET /v2/[^ ]*/blobs/' "$E2E_WORK/registry/registry.log" || true; }
# push_artifact KIND TAG: push a tagged non-image artifact the way its tool stores it in ECR (blobs
# and manifest through the registry API); prints the manifest digest.
push_artifact() {
  local kind="$1" tag="$2" config_type layer_type artifact="" config='{}' layer manifest
  case "$kind" in
    cosign-signature) # cosign: an OCI image config, a simple-signing payload as the layer
      config_type=application/vnd.oci.image.config.v1+json
      config='{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}'
      layer_type=application/vnd.dev.cosign.simplesigning.v1+json ;;
    helm-chart) config_type=application/vnd.cncf.helm.config.v1+json layer_type=application/vnd.cncf.helm.chart.content.v1.tar+gzip ;;
    buildkit-cache) config_type=application/vnd.buildkit.cacheconfig.v0 layer_type=application/vnd.oci.image.layer.v1.tar+gzip ;;
    soci-index) config_type=application/vnd.oci.empty.v1+json layer_type=application/vnd.amazon.soci.ztoc.v1
      artifact=application/vnd.amazon.soci.index.v1+json ;;
  esac
  layer="$kind payload $RANDOM"
  manifest="$(jq -cn --arg ct "$config_type" --arg cd "sha256:$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)" \
    --argjson cs "${#config}" --arg lt "$layer_type" --arg ld "sha256:$(printf '%s' "$layer" | sha256sum | cut -d' ' -f1)" \
    --argjson ls "${#layer}" --arg at "$artifact" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json"}
      + (if $at == "" then {} else {artifactType: $at} end)
      + {config: {mediaType: $ct, digest: $cd, size: $cs}, layers: [{mediaType: $lt, digest: $ld, size: $ls}]}')"
  local base="https://$E2E_HOST/v2/$REPO" curl_auth=(curl -sf --cacert "$E2E_WORK/registry/tls/ca.crt" -u "AWS:$E2E_TOKEN")
  local blob
  for blob in "$config" "$layer"; do
    "${curl_auth[@]}" -X POST -o /dev/null -D "$E2E_WORK/tmp/upload.h" "$base/blobs/uploads/" || die "blob upload of $kind failed"
    local loc
    loc="$(sed -n 's/^[Ll]ocation: *\([^\r]*\).*/\1/p' "$E2E_WORK/tmp/upload.h")"
    [[ "$loc" == http* ]] || loc="https://$E2E_HOST$loc"
    printf '%s' "$blob" | "${curl_auth[@]}" -X PUT -o /dev/null -H 'Content-Type: application/octet-stream' --data-binary @- \
      "$loc&digest=sha256:$(printf '%s' "$blob" | sha256sum | cut -d' ' -f1)" || die "blob upload of $kind failed"
  done
  printf '%s' "$manifest" | "${curl_auth[@]}" -X PUT -o /dev/null -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @- "$base/manifests/$tag" || die "manifest upload of $kind failed"
  echo "sha256:$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)"
}

kill_when() { # kill_when CONDITION_FUNCTION: start a pull of the big image, SIGKILL its group on CONDITION
  e2e_wipe_images
  setsid env PREFETCH_ACCOUNT_ID="$E2E_ACCOUNT" PREFETCH_REGION="$E2E_REGION" PREFETCH_REPOSITORY="$REPO" \
    PREFETCH_JITTER_SECONDS=0 PREFETCH_IMAGE_TAGS=big PREFETCH_IMAGE_DIGEST="$DBIG" "${E2E_BASH:-bash}" "$E2E_SCRIPT" >"$OUT" 2>&1 &
  local pid=$! i
  for i in $(seq 400); do
    if "$1"; then
      kill -9 -- "-$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      return 0
    fi
    sleep 0.02
  done
  wait "$pid"
  return 1
}
fetching() { [ -n "$(e2e_ctr content active 2>/dev/null | awk 'NR > 1')" ]; }
# Unpacking: the first snapshot exists and the tag does not yet. 1.x ctr unpacks after the
# download; the 2.x transfer service unpacks each layer as it arrives and creates the digest
# reference only at the end. (A kill that lands after the unpack, before the tag, is completed by
# the next run without a pull: outcome=present.)
unpacking() { [ -n "$(e2e_ctr snapshots ls 2>/dev/null | awk 'NR > 1')" ] && [ -z "$(ref_digest "$IMG:big")" ]; }
interrupted_pulls() {
  echo "# pull killed with kill -9 half-way, then completed by the next run"
  local phase rc want out
  for phase in fetching unpacking; do
    if ! kill_when "$phase"; then
      notok "could not catch the pull while $phase"
      continue
    fi
    ok "killed the pull while $phase"
    check "no tag reference after the kill ($phase)" test -z "$(ref_digest "$IMG:big")"
    run_env PREFETCH_IMAGE_TAGS=big PREFETCH_IMAGE_DIGEST="$DBIG"
    rc=$?
    want=pulled
    [ "$phase" = unpacking ] && want="(pulled|present)"
    expect "the next run completes it ($phase)" "$rc" 0 "outcome=$want"
    check "both references after the re-run ($phase)" test "$(ref_digest "$IMG:big") $(ref_digest "$IMG@$DBIG")" = "$DBIG $DBIG"
    # The killed pull's lease still holds the snapshots it committed; the re-run's unpacker skipped
    # fetching their layers, so those blobs may be absent: the state a CRI pull that discards
    # layers leaves, usable by the CRI. Either way the image must not depend on that lease.
    check "usable by the CRI after the re-run ($phase)" store_consistent
    echo "# $phase: re-run $(summary_field outcome), $(layer_blobs "$DBIG") layer blobs in the content store"
    drop_leases
    check "still usable once the killed pull's lease is gone, as after its 24 h expiry ($phase)" store_consistent
    out="$(e2e_ctr run --rm "$IMG:big" "t-$RANDOM" 2>&1)"
    check "container starts from the completed image ($phase)" test "$out" = "big image"
  done
}
layer_blobs() { # layer_blobs MANIFEST_DIGEST -> "present/total"
  local all have
  all="$(e2e_ctr content get "$1" | jq -r '.layers[].digest')"
  have="$(e2e_ctr content ls -q | grep -cxF "$all")"
  echo "$have/$(wc -l <<<"$all")"
}
drop_leases() {
  local leases
  leases="$(e2e_ctr leases ls -q)"
  # shellcheck disable=SC2086 # one lease ID per word
  [ -z "$leases" ] || e2e_ctr leases rm --sync $leases >/dev/null
}
# The token from the REAL kubelet credential provider (ecr-credential-provider, built from the Go
# module proxy: lib.sh) and from the aws CLI, per PREFETCH_TOKEN_SOURCE. The provider asks
# fake-ecr-api.js (ECR's GetAuthorizationToken, the shim's token and failure modes) with the
# endpoint overridden, static fake credentials and no instance metadata.
token_sources() {
  echo "# the ECR token: the real ecr-credential-provider first, the aws CLI otherwise"
  local provider=(PREFETCH_ECR_CREDENTIAL_PROVIDER="$E2E_ECR_PROVIDER") api="$AWS_SHIM_STATE/ecr-api.log" n calls
  [ -n "${E2E_ECR_API_STARTED:-}" ] || { e2e_start_ecr_api "$AWS_SHIM_STATE"; E2E_ECR_API_STARTED=1; }
  touch "$api" "$AWS_SHIM_STATE/calls.log"
  e2e_wipe_images
  n="$(wc -l <"$api")" calls="$(grep -c get-login-password "$AWS_SHIM_STATE/calls.log")"
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" "${provider[@]}"
  expect "auto, provider present: pulled with the provider's token" $? 0 "credentials: ECR token obtained from ecr-credential-provider \\(${#E2E_TOKEN} characters\\)"
  check "... one GetAuthorizationToken from the provider, without registryIds; the aws CLI not asked" \
    test "$(tail -n +$((n + 1)) "$api")-$(grep -c get-login-password "$AWS_SHIM_STATE/calls.log")" = "registryIds=--$calls"
  check "... and the image is complete" test "$(ref_digest "$IMG:v1")" = "$D1"
  e2e_wipe_images
  n="$(wc -l <"$api")"
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" "${provider[@]}" PREFETCH_TOKEN_SOURCE=cli
  expect "PREFETCH_TOKEN_SOURCE=cli, provider present: the aws CLI's token" $? 0 "obtained from aws ecr get-login-password"
  check "... the provider not run" test "$(wc -l <"$api")" = "$n"
  e2e_wipe_images
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" PREFETCH_TOKEN_SOURCE=provider PREFETCH_ECR_CREDENTIAL_PROVIDER=/nonexistent/provider
  expect "PREFETCH_TOKEN_SOURCE=provider without the provider -> auth exit code" $? 3 "/nonexistent/provider is not an executable file"
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" PREFETCH_TOKEN_SOURCE=kubelet
  expect "PREFETCH_TOKEN_SOURCE=kubelet -> bad input" $? 2 "PREFETCH_TOKEN_SOURCE is invalid"
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" PREFETCH_ECR_CREDENTIAL_PROVIDER=/nonexistent/provider PREFETCH_AWS_CLI=/nonexistent/aws
  expect "auto, neither provider nor CLI -> auth exit code" $? 3 "no /nonexistent/provider and no aws CLI"
  echo auth >"$AWS_SHIM_STATE/mode"
  n="$(wc -l <"$api")"
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" "${provider[@]}"
  expect "provider: AccessDenied -> auth exit code" $? 3 "ecr-credential-provider: authentication failed: .*AccessDeniedException"
  check "... asked once (no retry, no other request version)" test "$(($(wc -l <"$api") - n))" = 1
  check "... the provider's info lines are not in the output" bash -c "! grep -q 'Getting creds for' '$OUT'"
  # The SDK retries throttling itself (3 attempts a run); 4 refusals outlast one run of the provider.
  echo throttle >"$AWS_SHIM_STATE/mode"
  echo 4 >"$AWS_SHIM_STATE/throttle-count"
  n="$(wc -l <"$api")"
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" "${provider[@]}"
  expect "provider: throttled past the SDK's retries -> the script retries, pulled" $? 0 "ecr-credential-provider: attempt 1/5 failed: .*ThrottlingException"
  check "... 5 requests (3 + 2)" test "$(($(wc -l <"$api") - n))" = 5
  echo wrong-token >"$AWS_SHIM_STATE/mode"
  e2e_wipe_images
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" "${provider[@]}"
  expect "provider: a token the registry rejects -> auth exit code" $? 3 "outcome=auth-failed"
  rm -f "$AWS_SHIM_STATE/mode"
}

# E2E_ONLY=interrupted [E2E_REPEAT=N]: only these cases, N times in a row (flakiness hunt).
# E2E_ONLY=life: only the cases of node-life.sh (a node as it boots and ages).
# E2E_ONLY=soci: only the cases of soci.sh (the CRI snapshotter is soci), parallel pull then lazy mode.
# E2E_ONLY=token: only the cases of token_sources (the real ecr-credential-provider, the aws CLI).
if [ "${E2E_ONLY:-}" = life ]; then
  # shellcheck source=test/node/node-life.sh
  source "$(dirname "$0")/node-life.sh"
  e2e_summary
  ((FAILED == 0))
  exit
fi
if [ "${E2E_ONLY:-}" = soci ]; then
  soci_cases parallel
  soci_cases lazy
  e2e_summary
  ((FAILED == 0))
  exit
fi
if [ "${E2E_ONLY:-}" = token ]; then
  token_sources
  e2e_summary
  ((FAILED == 0))
  exit
fi
if [ "${E2E_ONLY:-}" = interrupted ]; then
  for ((round = 1; round <= ${E2E_REPEAT:-1}; round++)); do
    echo "# round $round"
    interrupted_pulls
  done
  e2e_summary
  ((FAILED == 0))
  exit
fi


# --- push event: exact digest, both references, labels, runs offline --------------------------
echo "# push event (SSM document, EventBridge parameters)"
run_ssm "$(params imageTags=v1 imageDigest="$D1")"
expect "push event pulls the pushed digest" $? 0 "outcome=pulled"
# What the script read from the node's containerd config (v2 TOML on 1.x, the v3 dump on 2.x).
check "script found containerd ${E2E_CONTAINERD_VERSION}: ctr ${E2E_CONTAINERD_MAJOR}.x, the CRI's snapshotter and root" \
  grep -qF "containerd ctr=${E2E_CONTAINERD_MAJOR}.x snapshotter=overlayfs root=${E2E_WORK}/containerd/root " "$OUT"
check "no containerd deprecation warnings in the command output" bash -c "! grep -q DEPRECATION '$OUT'"
check "tag reference points at the pushed digest" test "$(ref_digest "$IMG:v1")" = "$D1"
check "digest reference exists" test "$(ref_digest "$IMG@$D1")" = "$D1"
check "both references labelled io.cri-containerd.image=managed" \
  bash -c "[[ '$(ref_labels "$IMG:v1"),$(ref_labels "$IMG@$D1")' == *managed*,*managed* ]]"
if [ "$E2E_CONTAINERD_MAJOR" -ge 2 ]; then
  # The harness's 2.x config has discard_unpacked_layers = true, as EKS AL2023's. containerd's garbage
  # collector drops the blobs shortly after the pull, as after the CRI's own.
  no_layer_blobs() { [ "$(layer_blobs "$1" | cut -d/ -f1)" = 0 ]; }
  check "discard_unpacked_layers: no layer blob kept once GC ran (within 5 s), as after a CRI pull" e2e_poll no_layer_blobs "$D1"
else
  check "ctr images check: complete" store_complete
fi
check "usable by the CRI: manifest, config, committed snapshot kept by its GC label" store_consistent
# What the kubelet asks before it would pull: CRI ImageStatus, by the reference the pod names.
check "CRI ImageStatus (crictl inspecti) of repo:tag finds it, with its tag and digest" \
  e2e_cri_knows "$IMG:v1" "$IMG:v1" "$IMG@$D1"
check "CRI ImageStatus of repo@digest (a digest-pinned pod) finds it" \
  e2e_cri_knows "$IMG@$D1" "$IMG:v1" "$IMG@$D1"
# The CRI plugin subscribes to image events in k8s.io and updates its image store (what
# ImageStatus/ListImages answer from) for each reference; it logs each event and any failure.
clog="$E2E_WORK/containerd/containerd.log"
# (1.x logs `ImageCreate{Name:REF,...}`, 2.x `ImageCreate event name:\"REF\" ...`.)
create_events() { # create_events REF...: number of ImageCreate events logged for these references
  local pats=() r
  for r in "$@"; do pats+=(-e "ImageCreate{Name:$r," -e "ImageCreate event name:\\\"$r\\\""); done
  grep -cF "${pats[@]}" "$clog"
}
check "the CRI plugin received both references (ImageCreate events)" \
  test "$(create_events "$IMG@$D1" "$IMG:v1")" = 2
check "the CRI plugin handled them without error" bash -c "! grep -i 'failed to handle' '$clog' | grep -qF '$IMG'"
e2e_stop_registry
out="$(e2e_ctr run --rm "$IMG:v1" "t-$RANDOM" 2>&1)"
check "a container starts from it with the registry stopped" test "$out" = "hello from v1"
out="$(e2e_ctr run --rm "$IMG@$D1" "t-$RANDOM" 2>&1)"
check "... and from the digest reference" test "$out" = "hello from v1"
e2e_start_registry

echo "# the jitter counts from the push (eventTime): a node SSM reached late does not wait a whole jitter more"
e2e_wipe_images
past="$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"
run_ssm "$(params imageTags=v1 imageDigest="$D1" jitterSeconds=2 eventTime="$past")"
expect "pushed an hour ago: the node's slot has passed" $? 0 "jitter: waiting [0-9]+ ms before contacting ECR \\((36|37)[0-9]{5} ms since the push\\)"
waited="$(sed -n 's/.*jitter: waiting \([0-9]*\) ms.*/\1/p' "$OUT")"
check "... it waits a random part of the jitter, at most 2 s (${waited} ms)" test "${waited:-9999}" -le 2000
e2e_wipe_images
run_ssm "$(params imageTags=v1 imageDigest="$D1" jitterSeconds=0 eventTime="$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)")"
expect "a push time ahead of the node's clock (skew) counts as now" $? 0 "jitter: waiting 0 ms before contacting ECR \\(0 ms since the push\\)"
run_env PREFETCH_IMAGE_TAGS=v1 PREFETCH_IMAGE_DIGEST="$D1" PREFETCH_EVENT_TIME=2026-02-30T00:00:00Z
expect "an eventTime that is no date is refused" $? 2 "eventTime is not a valid time"

echo "# tags only move forward: pushes of one tag delivered out of order and at once"
T1=2026-11-20T10:00:00Z T2=2026-11-20T10:00:10Z T3=2026-11-20T10:00:20Z
epoch() { date -u -d "$1" +%s; }
pushed_at() { ref_labels "$1" | tr ',' '\n' | sed -n 's/^cdk-image-prefetcher.pushed-at=//p'; }
run_ssm "$(params imageTags=ord imageDigest="$D2" eventTime="$T2")"
expect "push of ord=D2 at T2" $? 0 "outcome=(pulled|present)"
check "ord points at D2, labelled with T2" test "$(ref_digest "$IMG:ord") $(pushed_at "$IMG:ord")" = "$D2 $(epoch "$T2")"
before="$(e2e_registry_requests)"
run_ssm "$(params imageTags=ord imageDigest="$D1" eventTime="$T1")"
expect "the older push of ord=D1 (T1), delivered after: skipped" $? 0 "outcome=skipped-superseded"
check "... ord still points at D2" test "$(ref_digest "$IMG:ord")" = "$D2"
check "... and it made no registry request" test "$(e2e_registry_requests)" = "$before"
run_ssm "$(params imageTags=ord imageDigest="$D3" eventTime="$T3")"
expect "a newer push of ord=D3 (T3)" $? 0 "outcome=(pulled|present)"
check "... moves ord to D3, labelled with T3" test "$(ref_digest "$IMG:ord") $(pushed_at "$IMG:ord")" = "$D3 $(epoch "$T3")"
run_ssm "$(params imageTags=ord imageDigest="$D3" eventTime="$T3")"
expect "the same push again (EventBridge delivers at least once)" $? 0 "outcome=present"
check "... leaves ord at D3" test "$(ref_digest "$IMG:ord")" = "$D3"
# The kubelet pulled ord=D2 (no label of ours); then D2's event arrives, then D1's, late.
e2e_ctr images rm "$IMG:ord" >/dev/null
e2e_ctr images tag "$IMG@$D2" "$IMG:ord" >/dev/null
run_ssm "$(params imageTags=ord imageDigest="$D2" eventTime="$T2")"
expect "push of D2 to a node where the kubelet already set ord=D2" $? 0 "outcome=present"
check "... records T2 on the kubelet's reference" test "$(pushed_at "$IMG:ord")" = "$(epoch "$T2")"
run_ssm "$(params imageTags=ord imageDigest="$D1" eventTime="$T1")"
expect "... then D1's older event is skipped" $? 0 "outcome=skipped-superseded"
# Without our label the time of a reference is unknown (the kubelet's own pull): a push moves it.
e2e_ctr images rm "$IMG:ord" >/dev/null
e2e_ctr images tag "$IMG@$D2" "$IMG:ord" >/dev/null
run_ssm "$(params imageTags=ord imageDigest="$D1" eventTime="$T1")"
expect "a reference the kubelet set, of unknown time, is moved by a push" $? 0 "outcome=present"
check "... to D1" test "$(ref_digest "$IMG:ord")" = "$D1"
# The older push is still pulling when the newer one completes: it pulls, then leaves the tag.
e2e_wipe_images
run_ssm "$(params imageTags=v2 imageDigest="$D2")" >/dev/null
setsid env PREFETCH_ACCOUNT_ID="$E2E_ACCOUNT" PREFETCH_REGION="$E2E_REGION" PREFETCH_REPOSITORY="$REPO" \
  PREFETCH_JITTER_SECONDS=0 PREFETCH_IMAGE_TAGS=ord PREFETCH_IMAGE_DIGEST="$DBIG" PREFETCH_EVENT_TIME="$T1" \
  bash "$E2E_SCRIPT" >"$E2E_WORK/older.out" 2>&1 &
older=$!
for i in $(seq 400); do fetching && break; sleep 0.02; done
caught=no
fetching && caught=yes
run_ssm "$(params imageTags=ord imageDigest="$D2" eventTime="$T2")"
expect "the newer push completes while the older one is fetching (caught: $caught)" $? 0 "outcome=present"
wait "$older"
rc=$?
cp "$E2E_WORK/older.out" "$OUT"
expect "the older push finishes its pull" "$rc" 0 "kept ${IMG}:ord at ${D2}"
check "... ord points at D2, the digest reference of the older image exists" \
  test "$(ref_digest "$IMG:ord") $(ref_digest "$IMG@$DBIG")" = "$D2 $DBIG"
check "... and the store is consistent" store_consistent
# Both at once, 6 rounds: whatever the order in which they finish, ord ends at the newer push.
wins=0 older_last=0
for round in 1 2 3 4 5 6; do
  e2e_wipe_images
  racers=()
  for d in "$D1|$T1" "$D2|$T2"; do
    setsid env PREFETCH_ACCOUNT_ID="$E2E_ACCOUNT" PREFETCH_REGION="$E2E_REGION" PREFETCH_REPOSITORY="$REPO" \
      PREFETCH_JITTER_SECONDS=0 PREFETCH_IMAGE_TAGS=ord PREFETCH_IMAGE_DIGEST="${d%%|*}" PREFETCH_EVENT_TIME="${d#*|}" \
      bash "$E2E_SCRIPT" >"$E2E_WORK/race-${d%%|*}.out" 2>&1 &
    racers+=($!)
  done
  wait "${racers[@]}"
  [ "$(ref_digest "$IMG:ord")" = "$D2" ] && wins=$((wins + 1))
  grep -q "kept ${IMG}:ord\|outcome=skipped-superseded" "$E2E_WORK/race-$D1.out" && older_last=$((older_last + 1))
done
check "6 rounds of both pushes at once: ord ends at the newer push every time ($wins of 6; the older run found it newer in $older_last)" test "$wins" = 6
# Back to the store the cases below start from: v1 prefetched.
e2e_wipe_images
run_ssm "$(params imageTags=v1 imageDigest="$D1")" || die "could not prefetch v1 again"

echo "# multi-arch push (an image index)"
run_ssm "$(params imageTags=multi imageDigest="$DMULTI")"
expect "index digest pulled for this platform" $? 0 "outcome=pulled"
check "both references point at the index" test "$(ref_digest "$IMG:multi") $(ref_digest "$IMG@$DMULTI")" = "$DMULTI $DMULTI"
check "CRI ImageStatus of the index digest finds it" e2e_cri_knows "$IMG@$DMULTI" "$IMG:multi" "$IMG@$DMULTI"
out="$(e2e_ctr run --rm "$IMG:multi" "t-$RANDOM" 2>&1)"
check "the container is this platform's image" test "$out" = "hello from v3"
run_ssm "$(params imageTags=multi imageDigest="$DMULTI")"
expect "index: second run is a no-op" $? 0 "outcome=present"

# --- idempotency --------------------------------------------------------------------------------
echo "# second run is a no-op"
before="$(e2e_registry_requests)"
calls="$(wc -l <"$AWS_SHIM_STATE/calls.log")"
# Each run of the fast path must not wait for its jitter (30 s here) and must say nothing of it.
# Its cost is the bench's figure (rerunSeconds, target 0.5 s on an idle machine): a wall-clock
# bound that tight fails on a loaded machine (seen: 0.536 s with other node tests running), so the
# test bounds it at 2 s, far below any jitter wait it would catch together with the output check.
secs=0 jittered=0
for i in 1 2 3; do
  run_ssm "$(params imageTags=v1 imageDigest="$D1" jitterSeconds=30)"
  rc=$?
  secs="$(awk -v a="$secs" -v b="$RUN_SECONDS" 'BEGIN { print (b > a) ? b : a }')"
  grep -q 'jitter: waiting' "$OUT" && jittered=$((jittered + 1))
done
expect "second run reports present" "$rc" 0 "outcome=present"
check "second run made no registry request" test "$(e2e_registry_requests)" = "$before"
check "no run of the fast path waited for its jitter ($jittered of 3)" test "$jittered" = 0
check "slowest of 3 fast-path runs took ${secs}s (< 2 s; the bench measures the figure)" awk -v s="$secs" 'BEGIN { exit !(s < 2) }'
check "no aws call (token) on the no-op path" test "$(wc -l <"$AWS_SHIM_STATE/calls.log")" = "$calls"

echo "# layer blobs discarded after unpacking (as a CRI pull with discard_unpacked_layers leaves them)"
for layer in $(e2e_ctr content get "$D1" | jq -r '.layers[].digest'); do e2e_ctr content rm "$layer" >/dev/null; done
check "v1's layer blobs are gone, its snapshots stay" bash -c "[ -z \"\$(ctr -a '$CONTAINERD_ADDRESS' -n $E2E_NS content ls -q | grep -xF '$(jq -r '.layers[0].digest' "$E2E_WORK/images/small1/blobs/sha256/${D1#sha256:}")')\" ]"
before="$(e2e_registry_requests)"
run_ssm "$(params imageTags=v1 imageDigest="$D1")"
expect "an unpacked image without its layer blobs is present (the CRI needs no layer blob)" $? 0 "outcome=present"
check "... and made no registry request" test "$(e2e_registry_requests)" = "$before"
check "... and is usable by the CRI" store_consistent
check "... CRI ImageStatus finds it" e2e_cri_knows "$IMG@$D1" "$IMG:v1" "$IMG@$D1"
out="$(e2e_ctr run --rm "$IMG:v1" "t-$RANDOM" 2>&1)"
check "... a container starts from it" test "$out" = "hello from v1"

echo "# two concurrent runs pull once"
e2e_wipe_images
layer="$(jq -r '.layers[-1].digest' "$E2E_WORK/images/small2/blobs/sha256/${D2#sha256:}")"
layer_gets() { grep -c "GET /v2/$REPO/blobs/$layer" "$E2E_WORK/registry/registry.log" || true; }
gets_before="$(layer_gets)"
run_env PREFETCH_IMAGE_TAGS=v2 PREFETCH_IMAGE_DIGEST="$D2" &
p1=$!
env PREFETCH_ACCOUNT_ID="$E2E_ACCOUNT" PREFETCH_REGION="$E2E_REGION" PREFETCH_REPOSITORY="$REPO" \
  PREFETCH_JITTER_SECONDS=0 PREFETCH_IMAGE_TAGS=v2 PREFETCH_IMAGE_DIGEST="$D2" "${E2E_BASH:-bash}" "$E2E_SCRIPT" >"$OUT.2" 2>&1 &
p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
outcomes="$(cat "$OUT" "$OUT.2" | sed -n 's/.*summary .*outcome=\([^ ]*\).*/\1/p' | sort | tr '\n' ' ')"
check "both concurrent runs exit 0 ($r1, $r2)" test "$r1$r2" = 00
check "one pulled, the other found it present ($outcomes)" test "$outcomes" = "present pulled "
check "the layer was fetched once" test "$(($(layer_gets) - gets_before))" = 1

# --- new node / reconcile ----------------------------------------------------------------------
echo "# new node: named tags, newest tagged image, tag prefixes"
e2e_wipe_images
run_ssm "$(params imageTags=v1,v2)"
expect "named tags v1,v2 pulled" $? 0 "outcome=pulled"
check "v1 and v2 point at their digests" test "$(ref_digest "$IMG:v1") $(ref_digest "$IMG:v2")" = "$D1 $D2"
check "digest references for v1 and v2" test "$(ref_digest "$IMG@$D1") $(ref_digest "$IMG@$D2")" = "$D1 $D2"
run_ssm "$(params imageTags=v1,v2)"
expect "named tags again: resolved (tags move), found present, nothing pulled" $? 0 "outcome=present"
e2e_wipe_images
run_ssm "$(params imageTags=)"
expect "empty tags: newest pushed tagged image" $? 0 "newest: $D3"
check "v3 (newest imagePushedAt) is present by tag and digest" test "$(ref_digest "$IMG:v3") $(ref_digest "$IMG@$D3")" = "$D3 $D3"
check "older images were not pulled" test -z "$(ref_digest "$IMG:v1")$(ref_digest "$IMG:v2")"
check "describe-images called with region, registry id, TAGGED filter" grep -q \
  "describe-images --region $E2E_REGION --registry-id $E2E_ACCOUNT --repository-name $REPO --filter tagStatus=TAGGED --page-size 1000 --output json" \
  "$AWS_SHIM_STATE/calls.log"
REPO=team/pfx
run_ssm "$(params imageTags= tagPrefixes=release-,hotfix-)"
expect "tagPrefixes=release-,hotfix- picks the newest matching image" $? 0 "newest: $D1 tags=release-1"
check "release-1 present, dev-2 (newer, not matching) absent" \
  test "$(ref_digest "$E2E_HOST/team/pfx:release-1")-$(ref_digest "$E2E_HOST/team/pfx:dev-2")" = "$D1-"
REPO=team/tz
# imagePushedAt with different UTC offsets (AWS CLI v2 prints the client's local offset): "b" sorts
# after "a" as a string but was pushed earlier.
e2e_push small1 team/tz a 2026-11-03T10:00:00.000+00:00 >/dev/null
e2e_push small2 team/tz b 2026-11-03T11:30:00.000+02:00 >/dev/null
run_ssm "$(params imageTags=)"
expect "newest by instant, not by string (UTC offsets)" $? 0 "newest: $D1 tags=a"
REPO=team/app
echo "# new node: the newest image from the push leg's record (one GetItem); the search only without one"
api_calls() { grep -c "$1" "$AWS_SHIM_STATE/api.log" || true; }
jq -n --arg d "$D2" --arg r "$REPO" '{"prefetch-record": {"Prefetch1": {prefetcher: {S: "Prefetch1"}, digest: {S: $d},
  tags: {SS: ["v2"]}, pushedAt: {S: "2026-11-25T10:00:00Z"}, repositoryName: {S: $r}}}}' >"$AWS_SHIM_STATE/record.json"
e2e_wipe_images
: >"$AWS_SHIM_STATE/api.log"
run_ssm "$(params imageTags= recordTable=prefetch-record recordKey=Prefetch1)"
expect "the recorded image (v2), although the search would say v3" $? 0 "newest image from the record: $D2"
check "... v2 present, labelled with the record's push time" \
  test "$(ref_digest "$IMG:v2") $(pushed_at "$IMG:v2")" = "$D2 $(epoch 2026-11-25T10:00:00Z)"
check "... one GetItem, no DescribeImages" test "$(api_calls GetItem) $(api_calls DescribeImages)" = "1 0"
: >"$AWS_SHIM_STATE/api.log"
run_ssm "$(params imageTags= recordTable=prefetch-record recordKey=Prefetch2)"
expect "nothing recorded for this prefetcher yet: the repository search" $? 0 "no newest image of $REPO recorded yet"
check "... finds v3, with one DescribeImages request (1,000 images a page)" \
  test "$(grep -c "newest: $D3" "$OUT") $(api_calls DescribeImages)" = "1 1"
REPO=team/pfx
run_ssm "$(params imageTags= recordTable=prefetch-record recordKey=Prefetch1)"
expect "a record of another repository (the prefetcher's repository changed) is not used" $? 0 "no newest image of team/pfx recorded yet"
REPO=team/app
run_ssm "$(params imageTags= tagPrefixes=release- recordTable=prefetch-record recordKey=Prefetch1)"
expect "a recorded tag without the prefix (the tag filter changed) is not used" $? 0 "no newest image of team/app with a tag starting with release-"
run_ssm "$(params imageTags= recordTable=no-such-table recordKey=Prefetch1)"
expect "a record that cannot be read (ResourceNotFound): the search, saying why" $? 0 "could not be read.*ResourceNotFound"
# Artifacts the search must pass over, pushed after v3: a cosign signature and a Helm chart.
sig_digest="$(push_artifact cosign-signature "${D3/:/-}.sig")"
e2e_record_image "$REPO" "${D3/:/-}.sig" "$sig_digest" 2026-11-26T10:00:00.000+00:00 100
chart_digest="$(push_artifact helm-chart chart-1.0.0)"
e2e_record_image "$REPO" chart-1.0.0 "$chart_digest" 2026-11-27T10:00:00.000+00:00 100
jq --arg d "$chart_digest" 'map(if .imageDigest == $d then .artifactMediaType = "application/vnd.cncf.helm.config.v1+json" else . end)' \
  "$AWS_SHIM_STATE/images.json" >"$E2E_WORK/tmp/images.json" && mv "$E2E_WORK/tmp/images.json" "$AWS_SHIM_STATE/images.json"
run_ssm "$(params imageTags=)"
expect "the search passes over a newer cosign signature and Helm chart" $? 0 "newest: $D3"
REPO=team/pfx
run_ssm "$(params imageTags= tagPrefixes=nomatch-)"
expect "no matching image: nothing to do, exit 0" $? 0 "outcome=nothing"
REPO=team/app

# --- malicious or malformed parameters ----------------------------------------------------------
echo "# malicious and malformed parameters change nothing"
before="$(store_state)"
requests="$(e2e_registry_requests)"
long_tag="$(printf 'a%.0s' {1..129})"
long_repo="$(printf 'r%.0s' {1..257})"
many_tags="$(seq -s, -f 't%g' 21)"
bad=(
  "imageTags=v1'; touch $PWNED #"
  "imageTags=\$(touch $PWNED)"
  "imageTags=\`touch $PWNED\`"
  "imageTags=v1
touch $PWNED"
  "imageTags=v1 v2"
  "imageTags=$long_tag"
  "imageTags=$many_tags"
  "imageTags=-v1"
  "imageDigest=sha256:abc"
  "imageDigest=sha256:$(printf 'A%.0s' {1..64})"
  "repositoryName=Team/App"
  "repositoryName=../etc"
  "repositoryName=team//app"
  "accountId=12345678901"
  "region=eu-west-1; touch $PWNED"
  "jitterSeconds=-1"
  "maxDiskUsagePercent=0"
  "pinImages=yes"
  "maxAttempts=11"
  "tagPrefixes=\$(id)"
  "eventTime=2026-11-16T01:54:34Z; touch $PWNED"
  "eventTime=yesterday"
  "recordTable=t\$(touch $PWNED)"
  "recordTable=ab"
  "recordKey=k'; touch $PWNED; '"
)
for kv in "${bad[@]}"; do
  name="${kv%%=*}"
  shown="$(printf '%q' "${kv:0:60}")"
  # through SSM: refused by allowedPattern before anything runs
  run_ssm "$(params imageTags=v1 "$kv")"
  expect "SSM refuses $shown" $? 100 "does not match allowedPattern"
  # stand-alone: the script refuses it itself
  var=""
  case "$name" in
    imageTags) var=PREFETCH_IMAGE_TAGS ;; imageDigest) var=PREFETCH_IMAGE_DIGEST ;;
    repositoryName) var=PREFETCH_REPOSITORY ;; accountId) var=PREFETCH_ACCOUNT_ID ;;
    region) var=PREFETCH_REGION ;; jitterSeconds) var=PREFETCH_JITTER_SECONDS ;;
    maxDiskUsagePercent) var=PREFETCH_MAX_DISK_PERCENT ;; pinImages) var=PREFETCH_PIN ;;
    maxAttempts) var=PREFETCH_MAX_ATTEMPTS ;; tagPrefixes) var=PREFETCH_TAG_PREFIXES ;;
    eventTime) var=PREFETCH_EVENT_TIME ;; recordTable) var=PREFETCH_RECORD_TABLE ;;
    recordKey) var=PREFETCH_RECORD_KEY ;;
  esac
  run_env PREFETCH_IMAGE_TAGS=v1 "$var=${kv#*=}"
  expect "script refuses $shown" $? 2 "outcome=bad-input"
done
# Values that pass the SSM pattern but not the script's extra rules.
run_ssm "$(params imageTags=v1 repositoryName="$long_repo")"
rc=$?
if jq -e '.parameters.repositoryName.maxChars' "$DOC" >/dev/null; then
  expect "repositoryName of 257 characters: SSM maxChars refuses" "$rc" 100 "maxChars"
else
  expect "repositoryName of 257 characters: the script refuses (the document has no maxChars)" "$rc" 2 "2-256 characters"
fi
run_env PREFETCH_IMAGE_TAGS=v1 PREFETCH_REPOSITORY="$long_repo"
expect "script refuses a 257-character repositoryName" $? 2 "2-256 characters"
run_ssm "$(params imageTags=v1 repositoryName=a)"
expect "SSM refuses a 1-character repositoryName (minChars)" $? 100 "minChars"
run_env PREFETCH_IMAGE_TAGS=v1 PREFETCH_REPOSITORY=a
expect "script refuses a 1-character repositoryName" $? 2 "2-256 characters"
run_ssm "$(params imageTags=v1,v2 imageDigest="$D1")"
expect "a digest with two tags" $? 2 "exactly one tag"
run_ssm "$(params imageTags= imageDigest="$D1")"
expect "a digest without a tag" $? 2 "exactly one tag"
run_ssm "$(params imageTags=v1 jitterSeconds=3601)"
expect "jitterSeconds above 3600" $? 2 "at most 3600"
run_ssm "$(params imageTags=v1 unknownParam=x)"
expect "SSM refuses an undeclared parameter" $? 100 "not declared"
check "no pwned file" test ! -e "$PWNED"
check "image store unchanged by refused runs" test "$(store_state)" = "$before"
check "no registry request by refused runs" test "$(e2e_registry_requests)" = "$requests"

# --- failures with their exit codes -------------------------------------------------------------
echo "# failures: auth, registry down, throttling, containerd down, disk guard"
e2e_wipe_images
echo wrong-token >"$AWS_SHIM_STATE/mode"
run_ssm "$(params imageTags=v1 imageDigest="$D1")"
expect "token rejected by the registry -> auth exit code" $? 3 "outcome=auth-failed"
echo auth >"$AWS_SHIM_STATE/mode"
run_ssm "$(params imageTags=v1 imageDigest="$D1")"
expect "get-login-password AccessDenied -> auth exit code" $? 3 "AccessDeniedException"
rm -f "$AWS_SHIM_STATE/mode"
e2e_stop_registry
run_ssm "$(params imageTags=v1 imageDigest="$D1" maxAttempts=3)"
expect "registry down -> network exit code after 3 attempts" $? 4 "attempt 3/3 failed.*connection refused"
e2e_start_registry
echo throttle >"$AWS_SHIM_STATE/mode"
echo 2 >"$AWS_SHIM_STATE/throttle-count"
run_ssm "$(params imageTags= maxAttempts=3)"
expect "describe-images throttled twice, third attempt succeeds" $? 0 "ThrottlingException.*"
echo 5 >"$AWS_SHIM_STATE/throttle-count"
e2e_wipe_images
run_ssm "$(params imageTags= maxAttempts=2)"
expect "throttled beyond maxAttempts -> network exit code" $? 4 "giving up after 2 attempts"
rm -f "$AWS_SHIM_STATE/mode"

echo "# the node is fine but the pull is not for it: exit 0, outcome=skipped-<reason> (a rollout's MaxErrors counts only non-zero exits)"
run_ssm "$(params imageTags=v1 imageDigest="$D1" maxDiskUsagePercent=1)"
expect "disk guard tripped -> skipped, exit 0" $? 0 "outcome=skipped-disk"
check "nothing pulled when the disk guard trips" test -z "$(ref_digest "$IMG@$D1")"
run_ssm "$(params imageTags=multi imageDigest="$DMULTI")" PREFETCH_PLATFORM=linux/arm64
expect "an index without the node's platform -> skipped, exit 0" $? 0 "outcome=skipped-platform"
check "nothing pulled for another platform" test -z "$(ref_digest "$IMG@$DMULTI")"
for kind in cosign-signature helm-chart buildkit-cache soci-index; do
  dart="$(push_artifact "$kind" "sha256-${D1#sha256:}.$kind")"
  before="$(blob_requests)"
  run_ssm "$(params imageTags="sha256-${D1#sha256:}.$kind" imageDigest="$dart")"
  expect "a $kind pushed with a tag -> skipped-not-an-image, exit 0" $? 0 "outcome=skipped-not-an-image"
  check "... nothing pulled, no blob fetched (only the manifest was read)" \
    test "$(ref_digest "$IMG@$dart")-$(blob_requests)" = "-$before"
done
exec {held}>"$PREFETCH_RUN_DIR/locks/${D1#sha256:}.lock"
flock -n "$held"
run_ssm "$(params imageTags=v1 imageDigest="$D1")" PREFETCH_LOCK_TIMEOUT_SECONDS=1
expect "another run holds the image's lock past the wait -> skipped, exit 0" $? 0 "outcome=skipped-locked"
exec {held}>&-
run_ssm "$(params imageTags="v1,sha256-${D1#sha256:}.helm-chart")"
expect "tags: one image pulled, one skipped -> the run's outcome is pulled" $? 0 "outcome=pulled"
check "... and the other image's skip is in the output" grep -qF "skipped (not-an-image)" "$OUT"
e2e_wipe_images
run_ssm "$(params imageTags=nope)"
expect "unknown tag -> not-found exit code" $? 7 "outcome=not-found"
e2e_stop_containerd
run_ssm "$(params imageTags=v1 imageDigest="$D1")" PREFETCH_CONTAINERD_WAIT_SECONDS=1
expect "containerd down -> containerd exit code" $? 6 "outcome=containerd-unavailable"
e2e_start_containerd
check "store consistent after the failures" store_consistent

echo "# ecr-credential-provider fallback (no aws CLI) and pinning"
cat >"$E2E_WORK/tmp/ecr-credential-provider" <<EOF
#!/bin/bash
# fake kubelet credential provider: answers a v1 CredentialProviderRequest
req="\$(cat)"
jq -e '.kind == "CredentialProviderRequest" and .apiVersion == "credentialprovider.kubelet.k8s.io/v1"' <<<"\$req" >/dev/null || exit 1
jq -n --rawfile t "$AWS_SHIM_STATE/token" '{kind: "CredentialProviderResponse", apiVersion: "credentialprovider.kubelet.k8s.io/v1",
  cacheKeyType: "Registry", auth: {"*.dkr.ecr.*.amazonaws.com": {username: "AWS", password: (\$t | rtrimstr("\n"))}}}'
EOF
chmod 700 "$E2E_WORK/tmp/ecr-credential-provider"
run_ssm "$(params imageTags=v1 imageDigest="$D1" pinImages=true)" PREFETCH_AWS_CLI=/nonexistent/aws \
  PREFETCH_ECR_CREDENTIAL_PROVIDER="$E2E_WORK/tmp/ecr-credential-provider"
expect "pull with the node's ecr-credential-provider" $? 0 "outcome=pulled"
check "pinImages=true labels io.cri-containerd.pinned=pinned" bash -c "[[ '$(ref_labels "$IMG:v1")' == *io.cri-containerd.pinned=pinned* ]]"

token_sources

echo "# a snapshotter other than the transfer service's (2.x: unpacked with ctr --local)"
e2e_wipe_images
committed() { e2e_ctr snapshots --snapshotter "$1" ls | awk 'NR > 1 && $NF == "Committed"' | wc -l; }
run_env PREFETCH_IMAGE_TAGS=v2 PREFETCH_IMAGE_DIGEST="$D2" PREFETCH_SNAPSHOTTER=native
expect "pull for the native snapshotter" $? 0 "outcome=pulled"
check "unpacked for native ($(committed native) committed snapshots), not for overlayfs" \
  test "$(committed native) $(committed overlayfs)" = "2 0"
if [ "$E2E_CONTAINERD_MAJOR" -ge 2 ]; then
  check "2.x: the transfer service refused native; the script pulled with ctr --local" \
    grep -qF "does not unpack for native (not in its unpack_config); pulling with ctr --local" "$OUT"
else
  check "1.x: ctr pulled and unpacked for native itself" bash -c "! grep -qF 'pulling with ctr --local' '$OUT'"
fi

# --- interrupted pulls ---------------------------------------------------------------------------
# (defined above, next to the image build, so that E2E_ONLY=interrupted can run them alone)
interrupted_pulls

# --- the token on command lines -----------------------------------------------------------------
echo "# the registry token never appears in a process command line"
e2e_wipe_images
# A node config that already has header tables: the script must add the token to them (with
# builtins only) and keep the file valid.
cat >>"/etc/containerd/certs.d/$E2E_HOST/hosts.toml" <<EOF

[header]
  X-Node-Config = "top"

[host."https://${E2E_HOST}".header]
  X-Node-Config = "host"
EOF
needle="${E2E_TOKEN:20:40}"
needle64="$(printf 'AWS:%s' "$E2E_TOKEN" | base64 -w0)"
needle64="${needle64:20:40}"
run_env PREFETCH_IMAGE_TAGS=big PREFETCH_IMAGE_DIGEST="$DBIG" &
pid=$!
samples=0 leaks=0 saw_pull=0
while kill -0 "$pid" 2>/dev/null; do
  for f in /proc/[0-9]*/cmdline; do
    # builtins only (mapfile), so that one sweep is fast enough to catch the short-lived ctr calls
    mapfile -d '' -t argv 2>/dev/null <"$f" || continue
    c="${argv[*]}"
    [[ "$c" == *"$needle"* || "$c" == *"$needle64"* ]] && { leaks=$((leaks + 1)); echo "# LEAK: $f"; }
    [[ "$c" == *"images pull"*"$DBIG"* || "$c" == *"--unix-socket"*"ImageService/PullImage"* ]] && saw_pull=1
  done
  samples=$((samples + 1))
done
wait "$pid"
expect "big pull while sampling" $? 0 "outcome=pulled"
check "sampled /proc/*/cmdline $samples times, saw the pull (the CRI's PullImage through curl, or ctr), no token ($leaks leaks)" test "$saw_pull$leaks" = 10
leftover=("$PREFETCH_RUN_DIR"/run.*)
check "private files removed on exit" test ! -e "${leftover[0]}"

# --- a node as it boots and ages (issue 15) ------------------------------------------------------
# shellcheck source=test/node/node-life.sh
source "$(dirname "$0")/node-life.sh"

# ---------------------------------------------------------------------------------------------
secs="$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')"
echo "# took ${secs}s"
e2e_summary
((FAILED == 0))
