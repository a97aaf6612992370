#!/bin/bash
# (The construct inserts the SSM document's parameter assignments, PREFETCH_*=<value of the parameter>, after line 1.)
#
# prefetch-image.sh: pull an Amazon ECR image into containerd on an EKS worker node, so the kubelet
# finds it under both HOST/REPO:TAG and HOST/REPO@sha256:DIGEST and starts pods without pulling.
# Run by an SSM Command document (aws:runShellScript, as root) on ECR push events and when a node
# joins; also runs stand-alone with the same PREFETCH_* variables in the environment.
#
# Inputs (document parameters; validated again here, whatever called us):
#   PREFETCH_ACCOUNT_ID, PREFETCH_REGION, PREFETCH_REPOSITORY   the ECR repository
#   PREFETCH_IMAGE_TAGS     comma-separated tags (up to 20), or empty
#   PREFETCH_IMAGE_DIGEST   sha256:... (push event: exactly one tag with it), or empty
#   PREFETCH_TAG_PREFIXES   with no tags: only consider images having a tag with one of these prefixes
#   PREFETCH_JITTER_SECONDS (90)  PREFETCH_MAX_DISK_PERCENT (80)  PREFETCH_PIN (false)  PREFETCH_MAX_ATTEMPTS (5)
#   PREFETCH_EVENT_TIME     the push's time (YYYY-MM-DDThh:mm:ssZ, the EventBridge event's), or empty
#   PREFETCH_RECORD_TABLE, PREFETCH_RECORD_KEY   with no tags: the DynamoDB item where the push leg
#                           records the newest image (digest, tags, pushedAt), read before any search
#   PREFETCH_EXECUTION_TIMEOUT (3600)  the document's executionTimeout: SSM stops the script after it, so
#                           every wait (containerd at boot, another run's lock) ends before it
# Modes:
#   digest + one tag  pull exactly that digest, then add the tag reference (push event)
#   tags, no digest   resolve each tag against the registry, pull its digest, add both references
#   no tags           the newest image: the record the push leg keeps (one dynamodb get-item); while
#                     nothing is recorded, the newest tagged image by imagePushedAt (aws ecr
#                     describe-images, 1,000 a page), optionally only among images with a tag
#                     starting with one of PREFETCH_TAG_PREFIXES
# Node-side knobs (environment only, not document parameters):
#   CONTAINERD_ADDRESS (ctr default), PREFETCH_SNAPSHOTTER (default: the CRI's, else overlayfs),
#   PREFETCH_CONTAINERD_CONFIG (file for `containerd config dump`), PREFETCH_RUN_DIR
#   (/run/cdk-image-prefetcher: locks and private temp files), PREFETCH_LOCK_TIMEOUT_SECONDS (until
#   30 s before the execution timeout), PREFETCH_CONTAINERD_WAIT_SECONDS (a quarter of it, at most 600),
#   PREFETCH_BACKOFF_BASE_MS (1000), PREFETCH_BACKOFF_MAX_MS (30000), PREFETCH_PLATFORM (linux/<arch>),
#   PREFETCH_ECR_CREDENTIAL_PROVIDER (/etc/eks/image-credential-provider/ecr-credential-provider),
#   PREFETCH_AWS_CLI (aws: the CLI used for get-login-password and describe-images),
#   PREFETCH_TOKEN_SOURCE (auto: the ECR token from the kubelet's ecr-credential-provider when it is
#   executable, which EKS AMIs install, else from `aws ecr get-login-password`; provider; cli),
#   PREFETCH_KUBELET_CONFIG (/etc/kubernetes/kubelet/config.json: its imageServiceEndpoint, and its
#   drop-ins' in <file>.d/*.conf, is where the CRI's PullImage goes; else containerd's socket),
#   PREFETCH_SOCI_CONFIG (/etc/soci-snapshotter-grpc/config.toml: read when the CRI's snapshotter is
#   soci; without parallel_pull_unpack, ctr pulls, so that no layer is loaded lazily),
#   PREFETCH_PULL (auto: the CRI's PullImage when curl speaks HTTP/2 and the snapshotter and platform
#   are the CRI's, else ctr; cri; ctr).
#
# Exit codes. SSM marks any non-zero exit Failed, and a rollout's MaxErrors counts Failed nodes, so a
# node that is fine but for which the pull is not meant exits 0 too; the summary's outcome tells them
# apart (pulled | present | nothing | skipped-<reason>):
#   0  the image is present at the end (outcome=pulled|present), nothing matches (outcome=nothing), or
#      the node is fine and skips the image:
#        skipped-disk          containerd's filesystem would pass maxDiskUsagePercent
#        skipped-platform      the pushed index has no image for the node's platform
#        skipped-not-an-image  the manifest is an artifact (signature, attestation, SBOM, cache, chart)
#        skipped-locked        another run on this node holds the image's lock past the wait; it
#                              completes the image and reports its own outcome
#        skipped-superseded    (push) the node's tag already points at a newer push of the tag
#   1  unexpected failure (unpack, tag or label failed; a required tool is missing)
#   2  bad input (a parameter fails its pattern, or a bad combination)
#   3  authentication/authorization failure (no ECR token, or the registry refused it)
#   4  registry or network failure after PREFETCH_MAX_ATTEMPTS attempts (throttling, 5xx, timeouts)
#   6  containerd unavailable (no ctr, or the daemon does not answer)
#   7  not found (the tag or digest does not exist in the repository)
#   (5 and 8 were the disk guard and the lock wait before they became skips; they are not reused.)
#
# Why it pulls this way:
# - Credentials: the token goes into an Authorization header in a private copy of the node's
#   registry host config (certs.d/HOST/hosts.toml, mode 600 under a mode 700 dir in /run, removed
#   on exit), passed with `ctr --hosts-dir`. It never appears on a command line (`ctr -u` would put
#   it in /proc/*/cmdline). The header goes only to the ECR host itself, never to mirrors.
#   The pull itself goes through the CRI (below), which takes the token in its request (a mode 600
#   file read by curl) and sends it to the image's own host only.
# - Pull path: the kubelet's, the CRI's PullImage (gRPC over the kubelet's image service socket,
#   containerd's or, on SOCI nodes, soci-snapshotter's; with curl): it
#   unpacks each layer as it arrives on every version and honours discard_unpacked_layers, so the
#   prefetch costs what the kubelet's pull costs. Where that is not usable (no curl with HTTP/2, a
#   snapshotter or platform other than the CRI's, PREFETCH_PULL=ctr, a CRI without the runtime.v1
#   image service, a soci-snapshotter that may load lazily), the one a plain `ctr images pull` takes. containerd 2.x pulls in the daemon
#   (transfer service), which reads the private hosts dir and unpacks while it downloads: on 2.2
#   that is seconds faster for 1 GiB than the client-side pull (`--local`), which unpacks after.
#   1.6 and 1.7 pull in ctr itself. The transfer service only unpacks for the snapshotters of its
#   unpack_config (default: overlayfs) and refuses others ("no unpack platforms defined"): then the
#   script pulls with `ctr images pull --local`.
# - Completeness: ctr creates the digest reference once all content is fetched; the tag reference
#   and labels are created only after the unpack is verified (the snapshot of the image's chain ID
#   exists for the CRI's snapshotter). "Present" means exactly that, so a pull interrupted at any
#   point is completed by the next run (containerd resumes partial downloads).
# - Fleet scale: random jitter before contacting ECR, retries with exponential backoff and jitter,
#   one flock per digest so overlapping runs pull once.
# - Tags only move forward: each tag reference carries the time of the push that put it there
#   (label cdk-image-prefetcher.pushed-at: the event's time, the registry's imagePushedAt, or the
#   moment a tag was resolved), and a run moves a tag only for a push that is not older, under a lock
#   per repository and tag. EventBridge does not promise order; two pushes of a tag are two commands.

# shellcheck disable=SC2317 # finish, provider_password and fetch_object run through trap/with_retries
# Bash 4.2 or newer (Amazon Linux 2 ships 4.2, AL2023 5.2): with 4.2, no EPOCHREALTIME (date gives the
# time), no negative array index, and an empty array expands with ${a[@]+"${a[@]}"} under set -u.
if [ -z "${BASH_VERSINFO:-}" ] || ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 402)); then
  printf 'prefetch: error: bash 4.2 or newer is needed, this is %s\n' "${BASH_VERSION:-not bash}" >&2
  printf 'prefetch: summary image=- digest=- outcome=unsupported-shell seconds=0.0 exit=1\n'
  exit 1
fi
set -uo pipefail
umask 077

: "${PREFETCH_ACCOUNT_ID:=}"
: "${PREFETCH_REGION:=}"
: "${PREFETCH_REPOSITORY:=}"
: "${PREFETCH_IMAGE_TAGS:=}"
: "${PREFETCH_IMAGE_DIGEST:=}"
: "${PREFETCH_TAG_PREFIXES:=}"
: "${PREFETCH_JITTER_SECONDS:=90}"
: "${PREFETCH_EVENT_TIME:=}"
: "${PREFETCH_RECORD_TABLE:=}"
: "${PREFETCH_RECORD_KEY:=}"
: "${PREFETCH_MAX_DISK_PERCENT:=80}"
: "${PREFETCH_PIN:=false}"
: "${PREFETCH_MAX_ATTEMPTS:=5}"
: "${PREFETCH_EXECUTION_TIMEOUT:=3600}"
: "${PREFETCH_CONTAINERD_WAIT_SECONDS:=}"
: "${PREFETCH_PULL:=auto}"
: "${PREFETCH_RUN_DIR:=/run/cdk-image-prefetcher}"
: "${PREFETCH_LOCK_TIMEOUT_SECONDS:=}"
: "${PREFETCH_BACKOFF_BASE_MS:=1000}"
: "${PREFETCH_BACKOFF_MAX_MS:=30000}"
: "${PREFETCH_SNAPSHOTTER:=}"
: "${PREFETCH_CONTAINERD_CONFIG:=}"
: "${PREFETCH_PLATFORM:=}"
: "${PREFETCH_ECR_CREDENTIAL_PROVIDER:=/etc/eks/image-credential-provider/ecr-credential-provider}"
: "${PREFETCH_AWS_CLI:=aws}"
: "${PREFETCH_TOKEN_SOURCE:=auto}"
: "${PREFETCH_KUBELET_CONFIG:=/etc/kubernetes/kubelet/config.json}"
: "${PREFETCH_SOCI_CONFIG:=/etc/soci-snapshotter-grpc/config.toml}"

readonly EXIT_OK=0 EXIT_FAIL=1 EXIT_INPUT=2 EXIT_AUTH=3 EXIT_NETWORK=4 \
  EXIT_CONTAINERD=6 EXIT_NOT_FOUND=7
readonly NAMESPACE=k8s.io
readonly LABEL_MANAGED=io.cri-containerd.image=managed
readonly LABEL_PINNED=io.cri-containerd.pinned=pinned
# On a tag reference: when the push that put the tag there happened (epoch seconds).
readonly LABEL_PUSHED_AT=cdk-image-prefetcher.pushed-at
# The tag lock is held for a read and a move (milliseconds), never during a pull.
readonly TAG_LOCK_SECONDS=60
# Ours, next to every pin we set: which pins this script may remove (unpin_others), and no other.
readonly LABEL_OWN_PIN=cdk-image-prefetcher.pinned=true

START="${EPOCHREALTIME:-$(date +%s.%N)}"
OUTCOME=failed
SUMMARY_IMAGE=-
SUMMARY_DIGESTS=""
WORK=""
HOST=""
TOKEN=""

say() { printf 'prefetch: %s\n' "$*"; }
err() { printf 'prefetch: error: %s\n' "$*" >&2; }

# The one-line summary, printed on every exit path (EXIT trap), then private files are removed.
finish() {
  local rc=$?
  [ -n "$WORK" ] && rm -rf -- "$WORK"
  local now="${EPOCHREALTIME:-$(date +%s.%N)}" secs
  secs="$(awk -v a="$START" -v b="$now" 'BEGIN { printf "%.1f", b - a }')"
  [ "$rc" -ne 0 ] && case "$OUTCOME" in pulled | present | nothing | skipped-*) OUTCOME=failed ;; esac
  say "summary image=${SUMMARY_IMAGE} digest=${SUMMARY_DIGESTS:--} outcome=${OUTCOME} seconds=${secs} exit=${rc}"
  exit "$rc"
}
trap finish EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

fail() { # fail CODE OUTCOME MESSAGE
  OUTCOME="$2"
  err "$3"
  exit "$1"
}

# The whole run skips (exit 0): the node is fine, the pull is not for it now.
skip() { # skip REASON MESSAGE
  OUTCOME="skipped-$1"
  say "skipped ($1): $2"
  exit "$EXIT_OK"
}

# --------------------------------------------------------------------------------------------
# Input validation. The SSM document enforces the same patterns before substitution; they are
# checked again because the script also runs stand-alone and because the document may change.
readonly RE_ACCOUNT='^[0-9]{12}$'
readonly RE_REGION='^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
readonly RE_REPOSITORY='^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$'
readonly RE_TAG='^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$'
readonly RE_TAG_LIST='^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}(,[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}){0,19}$'
readonly RE_DIGEST='^sha256:[a-f0-9]{64}$'
readonly RE_JITTER='^[0-9]{1,4}$'
readonly RE_EVENT_TIME='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
readonly RE_PERCENT='^([1-9]|[1-9][0-9]|100)$'
readonly RE_BOOL='^(true|false)$'
readonly RE_ATTEMPTS='^([1-9]|10)$'
readonly RE_COUNT='^[0-9]{1,9}$'

check() { # check NAME VALUE REGEX
  [[ "$2" =~ $3 ]] || fail "$EXIT_INPUT" bad-input "$1 is invalid (must match $3)"
}

# RE_TAG_LIST (the document's pattern), checked tag by tag: glibc takes ~20 ms to compile its
# bounded repetition of a group, on every run; this takes well under a millisecond.
check_tag_list() { # check_tag_list NAME VALUE
  local rest="$2," tag n=0
  while [ -n "$rest" ]; do
    tag="${rest%%,*}"
    rest="${rest#*,}"
    n=$((n + 1))
    { ((n <= 20)) && [[ "$tag" =~ $RE_TAG ]]; } || fail "$EXIT_INPUT" bad-input "$1 is invalid (must match $RE_TAG_LIST)"
  done
}

validate_inputs() {
  check accountId "$PREFETCH_ACCOUNT_ID" "$RE_ACCOUNT"
  check region "$PREFETCH_REGION" "$RE_REGION"
  check repositoryName "$PREFETCH_REPOSITORY" "$RE_REPOSITORY"
  local n=${#PREFETCH_REPOSITORY}
  ((n >= 2 && n <= 256)) || fail "$EXIT_INPUT" bad-input "repositoryName must be 2-256 characters, got $n"
  [ -z "$PREFETCH_IMAGE_TAGS" ] || check_tag_list imageTags "$PREFETCH_IMAGE_TAGS"
  [ -z "$PREFETCH_IMAGE_DIGEST" ] || check imageDigest "$PREFETCH_IMAGE_DIGEST" "$RE_DIGEST"
  [ -z "$PREFETCH_TAG_PREFIXES" ] || check_tag_list tagPrefixes "$PREFETCH_TAG_PREFIXES"
  check jitterSeconds "$PREFETCH_JITTER_SECONDS" "$RE_JITTER"
  ((10#$PREFETCH_JITTER_SECONDS <= 3600)) || fail "$EXIT_INPUT" bad-input "jitterSeconds must be at most 3600, got $PREFETCH_JITTER_SECONDS"
  if [ -n "$PREFETCH_EVENT_TIME" ]; then
    check eventTime "$PREFETCH_EVENT_TIME" "$RE_EVENT_TIME"
    EVENT_EPOCH="$(date -u -d "$PREFETCH_EVENT_TIME" +%s 2>/dev/null)" ||
      fail "$EXIT_INPUT" bad-input "eventTime is not a valid time: $PREFETCH_EVENT_TIME"
  fi
  [ -z "$PREFETCH_RECORD_TABLE" ] || check recordTable "$PREFETCH_RECORD_TABLE" '^[a-zA-Z0-9_.-]{3,255}$'
  [ -z "$PREFETCH_RECORD_KEY" ] || check recordKey "$PREFETCH_RECORD_KEY" '^[a-zA-Z0-9_.-]{1,255}$'
  check maxDiskUsagePercent "$PREFETCH_MAX_DISK_PERCENT" "$RE_PERCENT"
  check pinImages "$PREFETCH_PIN" "$RE_BOOL"
  check maxAttempts "$PREFETCH_MAX_ATTEMPTS" "$RE_ATTEMPTS"
  check executionTimeout "$PREFETCH_EXECUTION_TIMEOUT" "$RE_COUNT"
  ((10#$PREFETCH_EXECUTION_TIMEOUT >= 1 && 10#$PREFETCH_EXECUTION_TIMEOUT <= 172800)) ||
    fail "$EXIT_INPUT" bad-input "executionTimeout must be 1-172800, got $PREFETCH_EXECUTION_TIMEOUT"
  [ -z "$PREFETCH_LOCK_TIMEOUT_SECONDS" ] || check PREFETCH_LOCK_TIMEOUT_SECONDS "$PREFETCH_LOCK_TIMEOUT_SECONDS" "$RE_COUNT"
  [ -z "$PREFETCH_CONTAINERD_WAIT_SECONDS" ] || check PREFETCH_CONTAINERD_WAIT_SECONDS "$PREFETCH_CONTAINERD_WAIT_SECONDS" "$RE_COUNT"
  check PREFETCH_BACKOFF_BASE_MS "$PREFETCH_BACKOFF_BASE_MS" "$RE_COUNT"
  check PREFETCH_BACKOFF_MAX_MS "$PREFETCH_BACKOFF_MAX_MS" "$RE_COUNT"
  [ -z "$PREFETCH_SNAPSHOTTER" ] || check PREFETCH_SNAPSHOTTER "$PREFETCH_SNAPSHOTTER" '^[a-z0-9_.-]{1,64}$'
  [ -z "$PREFETCH_PLATFORM" ] || check PREFETCH_PLATFORM "$PREFETCH_PLATFORM" '^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$'
  check PREFETCH_PULL "$PREFETCH_PULL" '^(auto|cri|ctr)$'
  check PREFETCH_TOKEN_SOURCE "$PREFETCH_TOKEN_SOURCE" '^(auto|provider|cli)$'
  # The CRI pulls for the node's platform and its own snapshotter: any other asks for ctr.
  [ -z "$PREFETCH_PLATFORM" ] || [ "$PREFETCH_PULL" != auto ] || PREFETCH_PULL=ctr

  IFS=, read -r -a TAGS <<<"$PREFETCH_IMAGE_TAGS"
  IFS=, read -r -a PREFIXES <<<"$PREFETCH_TAG_PREFIXES"
  if [ -n "$PREFETCH_IMAGE_DIGEST" ] && ((${#TAGS[@]} != 1)); then
    fail "$EXIT_INPUT" bad-input "imageDigest requires exactly one tag in imageTags, got ${#TAGS[@]}"
  fi

  HOST="${PREFETCH_ACCOUNT_ID}.dkr.ecr.${PREFETCH_REGION}.amazonaws.com"
  [[ "$PREFETCH_REGION" == cn-* ]] && HOST="${HOST}.cn"
  IMAGE="${HOST}/${PREFETCH_REPOSITORY}"
  SUMMARY_IMAGE="$IMAGE"
  ((${#TAGS[@]} > 0)) && SUMMARY_IMAGE="${IMAGE}:$(IFS=,; echo "${TAGS[*]}")"
  if ((${#TAGS[@]} > 0 && ${#PREFIXES[@]} > 0)); then
    say "tagPrefixes ignored: explicit imageTags given"
  fi
  return 0
}

# --------------------------------------------------------------------------------------------
# containerd
CTR=(ctr)
# ctr 2.x asks the daemon for deprecations on every call (one more round trip) and prints each as a
# warning (cgroup v1, old config keys): noise in the command output, which SSM truncates.
export CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1
ctr_ns() { "${CTR[@]}" -n "$NAMESPACE" "$@"; }

detect_containerd() {
  local out="ctr not found on PATH"
  command -v ctr >/dev/null 2>&1 || wait_containerd || fail "$EXIT_CONTAINERD" containerd-unavailable "ctr not found on PATH"
  command -v jq >/dev/null 2>&1 || fail "$EXIT_FAIL" failed "jq not found on PATH"
  if ! out="$(ctr --connect-timeout 2s version 2>&1)" && ! wait_containerd; then
    fail "$EXIT_CONTAINERD" containerd-unavailable "containerd does not answer at ${CONTAINERD_ADDRESS:-the default socket}: ${out##*$'\n'}"
  fi
  # Client major version (reported): 2.x pulls in the daemon (transfer service) unless --local;
  # 1.6 and 1.7 pull in ctr.
  CTR_MAJOR="$(sed -n 's/^ *Version: *v\{0,1\}\([0-9]*\)\..*/\1/p' <<<"$out" | head -n1)"

  # The CRI's snapshotter, containerd root and registry host config path, from the effective
  # config. `containerd config dump` takes ~0.1 s, so its result is cached in /run (tmpfs), keyed
  # by the binary's and the config files' names, sizes and times.
  local dump="" cfg=() conf="${PREFETCH_CONTAINERD_CONFIG:-/etc/containerd/config.toml}" key cache parsed
  [ -n "$PREFETCH_CONTAINERD_CONFIG" ] && cfg=(--config "$PREFETCH_CONTAINERD_CONFIG")
  mkdir -p "$PREFETCH_RUN_DIR" 2>/dev/null
  cache="${PREFETCH_RUN_DIR}/containerd-config.cache"
  shopt -s nullglob
  key="$(stat -c '%n %s %Y' "$(command -v containerd || echo /dev/null)" "$conf" /etc/containerd/*.toml \
    /etc/containerd/*/*.toml 2>/dev/null | sha256sum)"
  shopt -u nullglob
  key="v2-${key%% *}" # v2: four values (discard_unpacked_layers added)
  if [ -r "$cache" ] && [ "$(head -n1 "$cache")" = "$key" ]; then
    parsed="$(tail -n +2 "$cache")"
  else
    if command -v containerd >/dev/null 2>&1; then
      dump="$(containerd ${cfg[@]+"${cfg[@]}"} config dump 2>/dev/null)" || dump=""
    fi
    [ -z "$dump" ] && [ -r "$conf" ] && dump="$(cat "$conf")"
    # Sections differ between 1.x ([plugins."io.containerd.grpc.v1.cri".containerd]) and 2.x
    # ([plugins.'io.containerd.cri.v1.images']); quotes are " in 1.x and ' in 2.x.
    parsed="$(awk '
    function val(line) { sub(/^[^=]*=[ \t]*/, "", line); gsub(/^["\047]|["\047][ \t]*$/, "", line); return line }
    /^[ \t]*\[/ { section = $0; gsub(/[ \t]/, "", section); next }
    section == "" && /^[ \t]*root[ \t]*=/ && root == "" { root = val($0) }
    /^[ \t]*snapshotter[ \t]*=/ && snap == "" &&
      (section ~ /io\.containerd\.grpc\.v1\.cri["\047]\.containerd\]$/ || section ~ /io\.containerd\.cri\.v1\.images["\047]\]$/) { snap = val($0) }
    /^[ \t]*config_path[ \t]*=/ && cpath == "" && section ~ /\.registry\]$/ { cpath = val($0) }
    /^[ \t]*discard_unpacked_layers[ \t]*=/ && discard == "" &&
      (section ~ /io\.containerd\.grpc\.v1\.cri["\047]\.containerd\]$/ || section ~ /io\.containerd\.cri\.v1\.images["\047]\]$/) { discard = val($0) }
    END { printf "%s\n%s\n%s\n%s\n", root, snap, cpath, discard }' <<<"$dump")"
    printf '%s\n%s\n' "$key" "$parsed" >"$cache.$$" 2>/dev/null && mv -f "$cache.$$" "$cache" 2>/dev/null
  fi
  { read -r CONTAINERD_ROOT; read -r CRI_SNAPSHOTTER; read -r CERTS_PATH; read -r CRI_DISCARD; } <<<"$parsed"
  : "${CONTAINERD_ROOT:=/var/lib/containerd}"
  SNAPSHOTTER="${PREFETCH_SNAPSHOTTER:-${CRI_SNAPSHOTTER:-overlayfs}}"
  [ "$SNAPSHOTTER" = "${CRI_SNAPSHOTTER:-overlayfs}" ] || [ "$PREFETCH_PULL" != auto ] || PREFETCH_PULL=ctr
  if [ -z "$PREFETCH_PLATFORM" ]; then
    case "$(uname -m)" in
      x86_64) PREFETCH_PLATFORM=linux/amd64 ;;
      aarch64 | arm64) PREFETCH_PLATFORM=linux/arm64 ;;
      *) PREFETCH_PLATFORM="linux/$(uname -m)" ;;
    esac
  fi
  say "containerd ctr=${CTR_MAJOR:-?}.x snapshotter=${SNAPSHOTTER} root=${CONTAINERD_ROOT} platform=${PREFETCH_PLATFORM}"
}

# Boot order: on EKS AL2023, nodeadm-run.service (After=cloud-final.service) starts containerd, and
# the SSM agent is not ordered against it: a joining node can receive the association before
# containerd answers, and State Manager does not retry a run that failed. So wait for containerd and
# its CRI plugin (the kubelet's image service; its status is "ok" once loaded), at most
# PREFETCH_CONTAINERD_WAIT_SECONDS (default a quarter of the execution timeout, at most 600 s).
# Sets `out` (the caller's) to the `ctr version` answer.
wait_containerd() {
  local limit="${PREFETCH_CONTAINERD_WAIT_SECONDS:-$((10#$PREFETCH_EXECUTION_TIMEOUT / 4 < 600 ? 10#$PREFETCH_EXECUTION_TIMEOUT / 4 : 600))}"
  local start=$SECONDS cri=""
  limit=$((10#$limit))
  ((limit > 0)) || return 1
  say "containerd does not answer at ${CONTAINERD_ADDRESS:-the default socket} (${out##*$'\n'}); waiting up to ${limit}s for it and its CRI plugin (a node still booting)"
  while ((SECONDS - start < limit)); do
    sleep 1
    out="$(ctr --connect-timeout 1s version 2>&1)" || continue
    cri="$(ctr plugins ls 2>/dev/null | awk '$2 == "cri" { print $NF }')"
    if [ "$cri" = ok ]; then
      say "containerd and its CRI plugin answered after $((SECONDS - start))s"
      return 0
    fi
  done
  [ -n "$cri" ] && out="containerd answers, its CRI plugin's status is ${cri}"
  out+=$'\n'"no answer within ${limit}s"
  return 1
}

# Local state, read without jq on the fast path (jq costs ~50 ms per start; the no-op run should
# stay well under half a second). Results go to globals: these run in the main shell.

# The platform manifest of DIGEST (itself, unless it is an index) -> MANIFEST_DIGEST, and its
# text in MANIFEST_DOC when DIGEST is that manifest (saves chain_id one ctr call).
platform_manifest() {
  local doc os="${PREFETCH_PLATFORM%%/*}" arch="${PREFETCH_PLATFORM#*/}"
  arch="${arch%%/*}"
  MANIFEST_DIGEST=""
  MANIFEST_DOC=""
  doc="$(ctr_ns content get "$1" 2>/dev/null)" || return 1
  if [[ "$doc" != *'"manifests"'* ]]; then
    MANIFEST_DIGEST="$1"
    MANIFEST_DOC="$doc"
    return 0
  fi
  MANIFEST_DIGEST="$(jq -r --arg os "$os" --arg arch "$arch" \
    '[.manifests[] | select(.platform.os == $os and .platform.architecture == $arch)][0].digest // empty' <<<"$doc")"
  [ -n "$MANIFEST_DIGEST" ]
}

# Chain ID of the image's layers (the name of its top snapshot) -> CHAIN_ID.
chain_id() { # chain_id MANIFEST_DIGEST [MANIFEST_TEXT]
  local manifest="${2:-}" config diffs diff re_config re_diffs
  CHAIN_ID=""
  [ -n "$manifest" ] || manifest="$(ctr_ns content get "$1" 2>/dev/null)" || return 1
  re_config='"config"[[:space:]]*:[[:space:]]*\{[^}]*"digest"[[:space:]]*:[[:space:]]*"(sha256:[a-f0-9]{64})"'
  if [[ "$manifest" =~ $re_config ]]; then
    config="${BASH_REMATCH[1]}"
  else
    config="$(jq -r '.config.digest // empty' <<<"$manifest")"
  fi
  [ -n "$config" ] || return 1
  config="$(ctr_ns content get "$config" 2>/dev/null)" || return 1
  re_diffs='"diff_ids"[[:space:]]*:[[:space:]]*\[([^]]*)\]'
  [[ "$config" =~ $re_diffs ]] || return 1
  diffs="${BASH_REMATCH[1]//[\",]/ }"
  for diff in $diffs; do
    [[ "$diff" =~ $RE_DIGEST ]] || return 1
    if [ -z "$CHAIN_ID" ]; then
      CHAIN_ID="$diff"
    else
      CHAIN_ID="$(printf '%s %s' "$CHAIN_ID" "$diff" | sha256sum)"
      CHAIN_ID="sha256:${CHAIN_ID%% *}"
    fi
  done
  [ -n "$CHAIN_ID" ]
}

# Is the image complete? Both references point at DIGEST and its layers are unpacked (a committed
# snapshot of the chain ID) for the CRI's snapshotter. Layer blobs are not required: the CRI may
# discard them after unpacking (discard_unpacked_layers on EKS AMIs).
# image_state DIGEST TAG... -> STATE: present (all refs) | unpacked (digest ref + snapshot, a tag
# ref missing or elsewhere) | missing; LABELED: 1 if every ref already has the wanted labels;
# STATE_REFS: the `ctr images ls` lines of those references (tag_info reads a tag from them).
image_state() {
  local digest="$1" name _type dg rest info tag
  local -A target=() labels=()
  shift
  # Only the references of DIGEST and TAGS (filters are alternatives): a node with hundreds of images
  # lists only these (ctr reads each listed image's content for its size). Quoted: a filter value
  # with '.', ':', '/' or '@' must be.
  local filters=("name==\"${IMAGE}@${digest}\"")
  for tag in "$@"; do filters+=("name==\"${IMAGE}:${tag}\""); done
  STATE=missing
  LABELED=1
  STATE_REFS="$(ctr_ns images ls "${filters[@]}" 2>/dev/null)"
  while read -r name _type dg rest; do
    [[ "$name" == "${IMAGE}"[@:]* ]] || continue
    target[$name]="$dg"
    labels[$name]="${rest##* }"
  done <<<"$STATE_REFS"
  [ "${target[${IMAGE}@${digest}]:-}" = "$digest" ] || return 0
  platform_manifest "$digest" || return 0
  chain_id "$MANIFEST_DIGEST" "$MANIFEST_DOC" || return 0
  info="$(ctr_ns snapshots --snapshotter "$SNAPSHOTTER" info "$CHAIN_ID" 2>/dev/null)" || return 0
  [[ "$info" == *'"Kind": "Committed"'* ]] || return 0
  STATE=present
  for name in "${IMAGE}@${digest}" "${@/#/${IMAGE}:}"; do
    [ "${target[$name]:-}" = "$digest" ] || STATE=unpacked
    [[ ",${labels[$name]:-}," == *",${LABEL_MANAGED},"* ]] || LABELED=""
    [ "$PREFETCH_PIN" = true ] && [[ ",${labels[$name]:-}," != *",${LABEL_PINNED},"* ]] && LABELED=""
    [ "$PREFETCH_PIN" = true ] && [[ ",${labels[$name]:-}," != *",${LABEL_OWN_PIN},"* ]] && LABELED=""
  done
  return 0
}

# Pins do not accumulate: after a run with pinImages, the images it made ready are this
# repository's pinned ones; pins it set on the repository's other images (earlier tags, a tag's
# previous digest) are removed, on both references. Only pins carrying LABEL_OWN_PIN: the CRI's
# pinned_images (the sandbox image) and pins set by anyone else stay.
unpin_others() {
  local name _type dg rest keep=",${SUMMARY_DIGESTS}," refs
  [ "$PREFETCH_PIN" = true ] || return 0
  [[ " ${RESULTS[*]:-} " == *" pulled "* || " ${RESULTS[*]:-} " == *" present "* ]] || return 0
  refs="$(ctr_ns images ls "name~=\"^${IMAGE//./[.]}[:@]\"" 2>/dev/null)"
  # A digest that a tag of the repository still points at stays pinned (the tag may be in use):
  # only digests no tag points at any more are unpinned (a tag moved, a tag deleted by hand).
  while read -r name _type dg rest; do
    [[ "$name" == "${IMAGE}:"* ]] && keep+="${dg},"
  done <<<"$refs"
  while read -r name _type dg rest; do
    [[ "$name" == "${IMAGE}"[@:]* && ",${rest##* }," == *",${LABEL_OWN_PIN},"* && "$keep" != *",${dg},"* ]] || continue
    if ctr_ns images label "$name" "${LABEL_PINNED%%=*}=" "${LABEL_OWN_PIN%%=*}=" >/dev/null; then
      say "unpinned ${name} (no prefetched tag points at ${dg} any more)"
    else
      say "could not unpin ${name}"
    fi
  done <<<"$refs"
}

# Labels the CRI sets (and pinning); adding them is local and idempotent.
label_refs() { # label_refs REF...
  local ref
  for ref in "$@"; do
    ctr_ns images label "$ref" "${WANTED_LABELS[@]}" >/dev/null ||
      fail "$EXIT_FAIL" failed "could not label $ref"
  done
}

# Make DIGEST ready as TAG...: the digest reference's labels, then the tags (forward only), each
# tag labelled in the same call that records its push time. Tags kept at a newer push are left alone.
make_ready() { # make_ready DIGEST TAG...
  local digest="$1"
  shift
  [ -n "$LABELED" ] || label_refs "${IMAGE}@${digest}"
  move_tags "$digest" "$@"
}

# Where a tag reference points on this node, and when the push it came from happened:
# tag_info REF -> TAG_TARGET (digest, or empty when there is no such reference), TAG_AT (epoch
# seconds of our pushed-at label, or empty when the reference was not set by us: the kubelet's pull).
# tag_info REF [LISTING]: read from LISTING (`ctr images ls` lines that include REF's, e.g. STATE_REFS)
# instead of asking containerd again.
tag_info() {
  local name _type dg rest list
  TAG_TARGET=""
  TAG_AT=""
  if (($# > 1)); then list="$2"; else list="$(ctr_ns images ls "name==$1" 2>/dev/null)"; fi
  while read -r name _type dg rest; do
    [ "$name" = "$1" ] || continue
    TAG_TARGET="$dg"
    [[ ",${rest##* }," =~ ,${LABEL_PUSHED_AT}=([0-9]{1,12}), ]] && TAG_AT="${BASH_REMATCH[1]}"
  done <<<"$list"
}

# Is the node's TAG already at a newer push than PUSHED_AT (to another digest)? Then moving it to
# DIGEST would turn it back: EventBridge does not deliver in order, and two pushes of one tag run as
# two commands. A reference without our label (set by the kubelet) has no known time: it is moved.
tag_is_newer() { # tag_is_newer TAG DIGEST [LISTING]
  tag_info "${IMAGE}:$1" ${3+"$3"}
  [ -n "$TAG_TARGET" ] && [ "$TAG_TARGET" != "$2" ] && [ -n "$TAG_AT" ] && [ -n "${PUSHED_AT:-}" ] && ((TAG_AT > PUSHED_AT))
}

# Tags only move forward: point each TAG at DIGEST, recording PUSHED_AT on the reference, unless the
# tag already points at a newer push. One lock per repository and tag around the read and the move,
# so that two runs for two pushes of the tag cannot interleave. KEPT_TAGS: the tags left where they
# were. A tag it points at DIGEST gets the wanted labels (and the push time) in one `ctr images label`
# call: with 2.x, `ctr images tag` goes through the transfer service, which updates the reference in
# place and copies no labels (containerd cmd/ctr/commands/images/tag.go; 1.x copies the source's).
move_tags() { # move_tags DIGEST TAG...
  local digest="$1" tag fd lock out add
  shift
  KEPT_TAGS=()
  for tag in "$@"; do
    lock="$(printf '%s' "${IMAGE}:${tag}" | sha256sum)"
    exec {fd}>"${PREFETCH_RUN_DIR}/locks/tag-${lock:0:32}.lock"
    flock -w "$TAG_LOCK_SECONDS" "$fd" || fail "$EXIT_FAIL" failed "could not lock ${IMAGE}:${tag} in ${TAG_LOCK_SECONDS}s"
    if tag_is_newer "$tag" "$digest"; then
      say "kept ${IMAGE}:${tag} at ${TAG_TARGET}: pushed at $(date -u -d "@${TAG_AT}" +%FT%TZ), after this push ($(date -u -d "@${PUSHED_AT}" +%FT%TZ))"
      KEPT_TAGS+=("$tag")
    else
      add=()
      if [ "$TAG_TARGET" != "$digest" ]; then
        out="$(ctr_ns images tag --force "${IMAGE}@${digest}" "${IMAGE}:${tag}" 2>&1)" ||
          fail "$EXIT_FAIL" failed "could not tag ${IMAGE}:${tag}: $out"
        add=("${WANTED_LABELS[@]}")
      elif [ -z "$LABELED" ]; then
        add=("${WANTED_LABELS[@]}")
      fi
      if [ -n "${PUSHED_AT:-}" ] && { [ -z "$TAG_AT" ] || ((TAG_AT < PUSHED_AT)) || [ "$TAG_TARGET" != "$digest" ]; }; then
        add+=("${LABEL_PUSHED_AT}=${PUSHED_AT}")
      fi
      if ((${#add[@]} > 0)); then
        ctr_ns images label "${IMAGE}:${tag}" "${add[@]}" >/dev/null ||
          fail "$EXIT_FAIL" failed "could not label ${IMAGE}:${tag}"
      fi
    fi
    exec {fd}>&-
  done
}

# --------------------------------------------------------------------------------------------
# Disk guard: containerd's filesystem must stay at or below maxDiskUsagePercent, counting the
# image's estimated footprint when known (compressed size x2: content store + unpacked layers).
disk_guard() { # disk_guard [NEED_BYTES]: 1 (and SKIP_MESSAGE) when the pull must not happen
  local need_k=$((${1:-0} * 2 / 1024)) dir="$CONTAINERD_ROOT" line used avail pct
  while [ ! -d "$dir" ] && [ "$dir" != / ]; do dir="$(dirname "$dir")"; done
  line="$(df -Pk "$dir" 2>/dev/null | awk 'NR == 2 { print $3, $4 }')" || line=""
  [ -n "$line" ] || { say "disk guard: cannot read usage of $dir, not checked"; return 0; }
  read -r used avail <<<"$line"
  pct=$(((used + need_k) * 100 / (used + avail) + ((used + need_k) * 100 % (used + avail) > 0)))
  if ((pct > 10#$PREFETCH_MAX_DISK_PERCENT)); then
    SKIP_MESSAGE="disk guard: $dir would be ${pct}% used (image estimate $((need_k / 1024)) MiB), above maxDiskUsagePercent=${PREFETCH_MAX_DISK_PERCENT}; not pulling"
    return 1
  fi
  say "disk guard: $dir ${pct}% used with the image estimate, limit ${PREFETCH_MAX_DISK_PERCENT}%"
}

# --------------------------------------------------------------------------------------------
# Retries. classify reads an error text and says auth | notfound | transient.
readonly RE_OTHER_403='https?://([^/:" ]+)[^ ]*:? 403 Forbidden'
classify() {
  case "$1" in
    # Throttling first: containerd 1.x retries a 429 itself, then tries /blobs/ for the manifest and
    # logs "response was http.StatusNotFound"; that is ECR saying "slow down", not "no such image".
    *"429 Too Many Requests"* | *TOOMANYREQUESTS* | *ThrottlingException* | *"Rate exceeded"* | *TooManyRequests*)
      echo transient ;;
    # A layer: ECR answers a layer request with a redirect to a presigned S3 URL, whose 403 means the
    # URL expired or the node's clock is skewed, not that the token was refused (the manifest was just
    # read with it): a retry asks ECR for a fresh URL. containerd names the URL it asked (ECR's
    # /blobs/), not the one it was redirected to; another host's 403 is S3's too.
    *"Request has expired"* | *RequestTimeTooSkewed* | *"X-Amz-"*"403 Forbidden"* | */blobs/sha256:*"403 Forbidden"*)
      echo transient ;;
    *"403 Forbidden"*)
      if [[ "$1" =~ $RE_OTHER_403 && "${BASH_REMATCH[1]}" != "$HOST" ]]; then echo transient; else echo auth; fi ;;
    # The CRI's snapshotter fetches layers itself and has no credentials for them (soci-snapshotter's
    # parallel pull mode when the PullImage did not go through its CRI keychain): ctr pulls instead,
    # without the snapshot annotations that make it fetch.
    *"failed to prepare extraction snapshot"*"no basic auth credentials"*) echo unpack-config ;;
    # A local "not found" (the content store or a snapshotter: a layer blob removed by GC or another
    # client between fetch and unpack) is not the registry's "no such tag": a retry fetches again.
    *"content digest"*"not found"* | *"failed to extract layer"* | *"failed to get reader"* | \
      *"failed to prepare extraction"* | *snapshot*"not found"* | *"does not exist: not found"*)
      echo transient ;;
    *401\ Unauthorized* | *AccessDenied* | *UnrecognizedClient* | *ExpiredToken* | \
      *InvalidSignature* | *"Unable to locate credentials"* | *"authorization failed"* | *"no basic auth"* | \
      *NotAuthorized* | *"not authorized"*)
      echo auth ;;
    *RepositoryNotFoundException* | *ImageNotFoundException* | *": not found"* | *"404 Not Found"* | \
      *MANIFEST_UNKNOWN* | *NAME_UNKNOWN*)
      echo notfound ;;
    # containerd 2.x transfer service: the snapshotter is not in its unpack_config. (Also the CRI
    # without the runtime.v1 image service, gRPC UNIMPLEMENTED: the caller pulls with ctr.)
    *"no unpack platforms defined"* | *"CRI PullImage: grpc-status 12:"*) echo unpack-config ;;
    *) echo transient ;;
  esac
}

sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }
rand_ms() { echo $(((RANDOM * 32768 + RANDOM) % ($1 + 1))); }

# Exponential backoff with equal jitter: attempt n waits base*2^(n-1)/2 + random(base*2^(n-1)/2).
backoff() { # backoff ATTEMPT
  local d=$((10#$PREFETCH_BACKOFF_BASE_MS << ($1 - 1)))
  ((d > 10#$PREFETCH_BACKOFF_MAX_MS)) && d=$((10#$PREFETCH_BACKOFF_MAX_MS))
  d=$((d / 2 + $(rand_ms $((d / 2)))))
  say "retrying in ${d} ms"
  sleep_ms "$d"
}

# with_retries WHAT CMD...: run CMD (stdout kept in $RETRY_OUT), retry transient errors.
with_retries() {
  local what="$1" attempt=1 errf="$WORK/stderr" kind last
  shift
  while :; do
    if RETRY_OUT="$("$@" 2>"$errf")"; then return 0; fi
    RETRY_ERR="$(tail -n 3 "$errf" | tr '\n' ' ')"
    # Throttling anywhere in the output makes it transient: on 1.x a 429 ends, after containerd's own
    # retries and a try of /blobs/, as "not found" ("trying next host - response was
    # http.StatusNotFound"). Otherwise the final error decides: ctr's own "ctr: ..." line when there is
    # one, not the info lines before it.
    last="$(grep '^ctr: ' "$errf" | tail -n 1)"
    if grep -qE '429 Too Many Requests|TOOMANYREQUESTS|ThrottlingException|Rate exceeded|TooManyRequests' "$errf"; then
      kind=transient
    else
      kind="$(classify "${last:-$RETRY_ERR}")"
    fi
    case "$kind" in
      auth) fail "$EXIT_AUTH" auth-failed "$what: authentication failed: $RETRY_ERR" ;;
      notfound) fail "$EXIT_NOT_FOUND" not-found "$what: not found: $RETRY_ERR" ;;
      unpack-config) return 2 ;; # the caller falls back to pulling in ctr
    esac
    say "$what: attempt ${attempt}/${PREFETCH_MAX_ATTEMPTS} failed: $RETRY_ERR"
    ((attempt >= 10#$PREFETCH_MAX_ATTEMPTS)) &&
      fail "$EXIT_NETWORK" registry-failed "$what: giving up after $attempt attempts"
    backoff "$attempt"
    attempt=$((attempt + 1))
  done
}

# --------------------------------------------------------------------------------------------
# ECR credentials, kept in shell variables and mode 600 files only.
# The kubelet's ecr-credential-provider first: a static Go binary that answers in ~25 ms where the
# AWS CLI (Python) takes ~0.5 s to start (test/node/token-cost.sh, both against the same endpoint),
# and a cold pull must cost no more than the kubelet's own. Both make one GetAuthorizationToken call
# with the node's role (no registryIds: the token is valid for every registry the role may pull
# from, in the region, so a central registry account's too: ECR API reference, GetAuthorizationToken);
# neither caches it between runs. The provider gets no environment from the kubelet on EKS nodes
# (amazon-eks-ami nodeadm/internal/kubelet/image-credential-provider.go writes a config without env).
ecr_token() {
  local source="$PREFETCH_TOKEN_SOURCE"
  if [ "$source" = auto ]; then
    if [ -x "$PREFETCH_ECR_CREDENTIAL_PROVIDER" ]; then
      source=provider
    elif command -v "$PREFETCH_AWS_CLI" >/dev/null 2>&1; then
      source=cli
    else
      fail "$EXIT_AUTH" auth-failed "no $PREFETCH_ECR_CREDENTIAL_PROVIDER and no aws CLI: cannot get an ECR token"
    fi
  fi
  if [ "$source" = provider ]; then
    [ -x "$PREFETCH_ECR_CREDENTIAL_PROVIDER" ] ||
      fail "$EXIT_AUTH" auth-failed "PREFETCH_TOKEN_SOURCE=provider: $PREFETCH_ECR_CREDENTIAL_PROVIDER is not an executable file"
    # The kubelet's credential provider: CredentialProviderRequest on stdin, response on stdout.
    with_retries "ecr-credential-provider" provider_password
    source=ecr-credential-provider
  else
    command -v "$PREFETCH_AWS_CLI" >/dev/null 2>&1 ||
      fail "$EXIT_AUTH" auth-failed "PREFETCH_TOKEN_SOURCE=cli: no aws CLI ($PREFETCH_AWS_CLI)"
    with_retries "aws ecr get-login-password" "$PREFETCH_AWS_CLI" ecr get-login-password --region "$PREFETCH_REGION"
    source="aws ecr get-login-password"
  fi
  TOKEN="${RETRY_OUT//[$'\r\n ']/}"
  [ -n "$TOKEN" ] || fail "$EXIT_AUTH" auth-failed "empty ECR token"
  say "credentials: ECR token obtained from ${source} (${#TOKEN} characters)"
}

# The request names the image; the provider takes the region from its host, and answers with auth
# keyed by that host (cloud-provider-aws cmd/ecr-credential-provider/main.go). v1 is the version
# current providers accept (1.37 accepts only v1); an older one answers "group version ... is not
# supported", and only then is the next version tried (another try would be another API call).
provider_password() {
  local v
  for v in v1 v1beta1 v1alpha1; do
    printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/%s","kind":"CredentialProviderRequest","image":"%s"}' "$v" "$IMAGE" |
      "$PREFETCH_ECR_CREDENTIAL_PROVIDER" 2>"$WORK/provider.err" |
      jq -er '.auth | to_entries[0].value.password' && return 0
    grep -q 'is not supported' "$WORK/provider.err" || break
  done
  grep -v '^I[0-9]' "$WORK/provider.err" >&2 # klog's info lines ("Getting creds for ...") are noise
  return 1
}

# insert_after ERE TEXT FILE: add TEXT after each line matching ERE. Bash builtins only: TEXT
# holds the token, which must not reach an external command's arguments (/proc/*/cmdline).
insert_after() {
  local line out=""
  while IFS= read -r line || [ -n "$line" ]; do
    out+="$line"$'\n'
    [[ "$line" =~ $1 ]] && out+="$2"$'\n'
  done <"$3"
  printf '%s' "$out" >"$3"
}

# The private copy as the edits below expect it: [host.'X'] tables written [host."X"] (TOML allows
# both quotes; the edits look for double ones), and no Authorization key left in the server's header
# tables (the token's replaces it: TOML refuses a key defined twice, and a stale one must not win).
# Bash builtins only, like insert_after.
tidy_hosts_toml() { # tidy_hosts_toml FILE SERVER
  local line out="" table="" re_sq="^[[:space:]]*\\[[[:space:]]*host\\.'([^']*)'(.*)$" re_table='^[[:space:]]*\[([^]]*)\]'
  local re_auth='^[[:space:]]*"?[Aa]uthorization"?[[:space:]]*='
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ $re_sq ]] && line="[host.\"${BASH_REMATCH[1]}\"${BASH_REMATCH[2]}"
    if [[ "$line" =~ $re_table ]]; then
      table="${BASH_REMATCH[1]//[[:space:]]/}"
    elif [[ "$line" =~ $re_auth ]] && [[ "$table" == header || "$table" == "host.\"$2\".header" ]]; then
      continue
    fi
    out+="$line"$'\n'
  done <"$1"
  printf '%s' "$out" >"$1"
}

# A private registry host config for HOST: the node's own (certs.d/HOST from the CRI's config_path,
# files copied so relative CA paths keep working) plus an Authorization header on the ECR host's
# own entry only (mirrors keep their own settings and never see the token).
write_hosts_dir() {
  local dir="$WORK/hosts.d/$HOST" src="" p file server top auth
  mkdir -p "$dir"
  IFS=: read -r -a paths <<<"$CERTS_PATH"
  # As containerd looks it up (remotes/docker/config HostDirFromRoot, root by root): HOST, else
  # _default (a node-wide mirror such as Spegel's).
  for p in ${paths[@]+"${paths[@]}"}; do
    [ -n "$p" ] && [ -d "$p/$HOST" ] && { src="$p/$HOST"; break; }
    [ -n "$p" ] && [ -d "$p/_default" ] && { src="$p/_default"; break; }
  done
  # -L: copies of the files, never links. A write below must not go through a link into the node's
  # own configuration (a symlinked hosts.toml would collect the token there, run after run).
  [ -n "$src" ] && cp -pRL "$src/." "$dir/"
  auth="Basic $(printf 'AWS:%s' "$TOKEN" | base64 -w0)"
  file="$dir/hosts.toml"
  if [ -s "$file" ]; then
    # Top-level part (before the first table) holds `server` and its TLS settings.
    top="$(awk '/^[ \t]*\[/ { exit } { print }' "$file")"
    server="$(sed -n 's/^[ \t]*server[ \t]*=[ \t]*["\x27]\([^"\x27]*\)["\x27].*/\1/p' <<<"$top" | head -n1)"
  else
    # No hosts.toml: Docker-style certs dir (*.crt CAs, *.cert/*.key client pairs) or nothing.
    local cas=() pairs=() f
    for f in "$dir"/*.crt; do [ -e "$f" ] && cas+=("\"$f\""); done
    for f in "$dir"/*.cert; do [ -e "$f" ] && [ -e "${f%.cert}.key" ] && pairs+=("[\"$f\", \"${f%.cert}.key\"]"); done
    top=""
    ((${#cas[@]})) && top+="ca = [$(IFS=,; echo "${cas[*]}")]"$'\n'
    ((${#pairs[@]})) && top+="client = [$(IFS=,; echo "${pairs[*]}")]"$'\n'
    printf '%s' "$top" >"$file"
  fi
  [ -n "${server:-}" ] || { server="https://${HOST}"; sed -i "1i server = \"${server}\"" "$file"; }
  tidy_hosts_toml "$file" "$server"
  # The token goes to the ECR host only: a node that routes HOST through another server (a
  # pull-through proxy) keeps it, without our header.
  if [[ ! "$server" =~ ^https://${HOST//./\\.}(:443)?/?$ ]]; then
    say "registry config: the node serves ${HOST} through ${server}; the ECR token is not sent there"
    chmod -R go-rwx "$WORK/hosts.d"
    HOSTS_DIR="$WORK/hosts.d"
    return 0
  fi
  # The same header on the root server entry (the ECR host too), else a 404 from the host entry
  # falls through to it and ends as a 401.
  if grep -qE '^[[:space:]]*\[header\]' "$file"; then
    insert_after '^[[:space:]]*\[header\]' "  Authorization = \"${auth}\"" "$file"
  else
    printf '\n[header]\n  Authorization = "%s"\n' "$auth" >>"$file"
  fi
  if grep -qF "[host.\"${server}\".header]" "$file"; then
    insert_after "^[[:space:]]*\\[host\\.\"${server//./\\.}\"\\.header\\]" "  Authorization = \"${auth}\"" "$file"
  elif grep -qF "[host.\"${server}\"]" "$file"; then
    printf '\n[host."%s".header]\n  Authorization = "%s"\n' "$server" "$auth" >>"$file"
  else
    # containerd 1.6 only reads hosts.toml files with a [host] table: list the server as a host,
    # with the top-level TLS settings, after any mirrors (which are tried first, as configured).
    {
      printf '\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' "$server"
      grep -E '^[ \t]*(ca|client|skip_verify)[ \t]*=' <<<"$top" || true
      printf '  [host."%s".header]\n    Authorization = "%s"\n' "$server" "$auth"
    } >>"$file"
  fi
  chmod -R go-rwx "$WORK/hosts.d"
  HOSTS_DIR="$WORK/hosts.d"
}

# --------------------------------------------------------------------------------------------
# Registry reads through ctr, with the private hosts dir.
fetch_object() { ctr_ns content fetch-object --hosts-dir "$HOSTS_DIR" "$1"; }
# ctr's progress table goes to a file, not through the shell.
ctr_pull() { ctr_ns "$@" >"$WORK/pull.out"; }
# To a file: a digest is computed over the exact bytes ($(...) would drop trailing newlines).
fetch_object_to() { fetch_object "$2" >"$1"; }

# A container image manifest has an image config and filesystem layers (OCI image spec,
# manifest.md and layer.md; Docker image manifest v2 schema 2). Artifacts stored the same way do not:
# cosign signatures and attestations (layers application/vnd.dev.cosign.* and dsse envelopes), SBOMs,
# BuildKit caches (config application/vnd.buildkit.cacheconfig.v0), Helm charts (config
# application/vnd.cncf.helm.config.v1+json), SOCI indexes (artifactType, empty config).
readonly RE_IMAGE_CONFIG='^application/vnd\.(oci\.image\.config\.v1\+json|docker\.container\.image\.v1\+json)$'
readonly RE_IMAGE_LAYER='^application/vnd\.(oci\.image\.layer\.(nondistributable\.)?v1\.tar(\+gzip|\+zstd)?|docker\.image\.rootfs\.(foreign\.)?diff\.tar\.gzip)$'
readonly RE_MANIFEST_TYPE='^application/vnd\.(oci\.image\.manifest\.v1\+json|docker\.distribution\.manifest\.v2\+json)$'
# is_image MANIFEST_JSON: 0 for a container image manifest; else 1 and the first odd media type in NOT_IMAGE.
is_image() {
  local rest="$1" re config type
  NOT_IMAGE=""
  re='"artifactType"[[:space:]]*:[[:space:]]*"([^"]*)"'
  [[ "$1" =~ $re ]] && { NOT_IMAGE="artifactType ${BASH_REMATCH[1]}"; return 1; }
  re='"config"[[:space:]]*:[[:space:]]*\{[^}]*"mediaType"[[:space:]]*:[[:space:]]*"([^"]*)"'
  [[ "$1" =~ $re ]] || { NOT_IMAGE="no config descriptor"; return 1; }
  config="${BASH_REMATCH[1]}"
  [[ "$config" =~ $RE_IMAGE_CONFIG ]] || { NOT_IMAGE="config $config"; return 1; }
  # Every other media type is the manifest's own or a layer's.
  re='"mediaType"[[:space:]]*:[[:space:]]*"([^"]*)"(.*)'
  while [[ "$rest" =~ $re ]]; do
    type="${BASH_REMATCH[1]}"
    rest="${BASH_REMATCH[2]}"
    [[ "$type" == "$config" || "$type" =~ $RE_MANIFEST_TYPE || "$type" =~ $RE_IMAGE_LAYER ]] ||
      { NOT_IMAGE="layer $type"; return 1; }
  done
  return 0
}

# Estimated image size (bytes of config + layers for our platform) from its manifest, in IMAGE_SIZE.
# Returns 1 with SKIP_REASON and SKIP_MESSAGE when the node must not pull it: no image for its
# platform in an index, or not a container image.
# (Not called in $(...): with_retries and fail must run in the main shell.)
image_size() { # image_size DIGEST MANIFEST_JSON
  local doc="$2" child os="${PREFETCH_PLATFORM%%/*}" arch="${PREFETCH_PLATFORM#*/}" rest re size
  arch="${arch%%/*}"
  if [[ "$doc" != *'"manifests"'* ]]; then
    if ! is_image "$doc"; then
      SKIP_REASON=not-an-image
      SKIP_MESSAGE="${IMAGE}@$1 is not a container image (${NOT_IMAGE}); not pulling"
      return 1
    fi
    # An image manifest: every "size" is a descriptor's (config, layers). Summed in bash: jq
    # costs ~50 ms a start, this is on every cold pull.
    IMAGE_SIZE=0
    rest="$doc"
    re='"size"[[:space:]]*:[[:space:]]*([0-9]{1,15})(.*)'
    while [[ "$rest" =~ $re ]]; do
      size="${BASH_REMATCH[1]}"
      rest="${BASH_REMATCH[2]}"
      IMAGE_SIZE=$((IMAGE_SIZE + 10#$size))
    done
    return 0
  fi
  # An index (multi-arch): the size of our platform's image manifest.
  child="$(jq -r --arg os "$os" --arg arch "$arch" \
    '[.manifests[] | select(.platform.os == $os and .platform.architecture == $arch)][0].digest // empty' <<<"$doc")"
  if [[ ! "$child" =~ $RE_DIGEST ]]; then
    SKIP_REASON=platform
    SKIP_MESSAGE="no ${PREFETCH_PLATFORM} image in ${IMAGE}@$1 (an index for other platforms); not pulling"
    return 1
  fi
  with_retries "fetch manifest ${child}" fetch_object "${IMAGE}@${child}"
  [[ "$RETRY_OUT" != *'"manifests"'* ]] || fail "$EXIT_FAIL" failed "nested index in ${IMAGE}@$1"
  image_size "$child" "$RETRY_OUT" || { SKIP_MESSAGE="${SKIP_MESSAGE/${IMAGE}@${child}/${IMAGE}@$1 (${child})}"; return 1; }
}

# --------------------------------------------------------------------------------------------
# One image: DIGEST and the TAGS that should point at it.
declare -a RESULTS=()
prefetch_one() { # prefetch_one DIGEST TAG...
  local digest="$1" tag lockfd manifest size out
  shift
  SUMMARY_DIGESTS="${SUMMARY_DIGESTS:+$SUMMARY_DIGESTS,}$digest"

  # Serialize with other runs for the same digest; the second run waits, then finds it present. If
  # the wait runs out, the holder is still at it and reports its own outcome: this run skips.
  exec {lockfd}>"${PREFETCH_RUN_DIR}/locks/${digest#sha256:}.lock"
  if ! flock -n "$lockfd"; then
    lock_wait
    say "another prefetch of ${digest} is running; waiting up to ${LOCK_WAIT}s"
    if ! flock -w "$LOCK_WAIT" "$lockfd"; then
      skip_image "$lockfd" locked "another run on this node still holds the lock on ${digest} after ${LOCK_WAIT}s; it completes the image"
      return 0
    fi
  fi

  image_state "$digest" "$@"
  if [ "$STATE" = missing ]; then
    [ -n "${HOSTS_DIR:-}" ] || prepare_registry
    with_retries "fetch manifest ${digest}" fetch_object "${IMAGE}@${digest}"
    manifest="$RETRY_OUT"
    if ! image_size "$digest" "$manifest"; then
      skip_image "$lockfd" "$SKIP_REASON" "$SKIP_MESSAGE"
      return 0
    fi
    size="$IMAGE_SIZE"
    if ! disk_guard "$size"; then
      skip_image "$lockfd" disk "$SKIP_MESSAGE"
      return 0
    fi
    say "pulling ${IMAGE}@${digest} ($((size / 1048576)) MiB compressed) snapshotter=${SNAPSHOTTER}"
    local pull=(images pull --hosts-dir "$HOSTS_DIR" --snapshotter "$SNAPSHOTTER"
      --platform "$PREFETCH_PLATFORM" --label "$LABEL_MANAGED")
    [ "$PREFETCH_PIN" = true ] && pull+=(--label "$LABEL_PINNED")
    local t0="${EPOCHREALTIME:-$(date +%s.%N)}"
    if cri_pull_usable && with_retries "pull ${IMAGE}@${digest} (CRI)" cri_pull "${IMAGE}@${digest}"; then
      # The CRI answers only once it has fetched the image and unpacked it for its snapshotter, made
      # the digest reference and dropped the layer blobs where discard_unpacked_layers says so
      # (containerd internal/cri/server/images/image_pull.go, PullImage: WithPullUnpack, then
      # createImageReference for the repo digest): the answer the kubelet trusts. No second look.
      PULLED_WITH="the CRI's PullImage"
      PULL_SECONDS="$(awk -v a="$t0" -v b="${EPOCHREALTIME:-$(date +%s.%N)}" 'BEGIN { printf "%.3f", b - a }')"
    else
      if { soci_lazy && ((${CTR_MAJOR:-0} >= 2)); } || ! with_retries "pull ${IMAGE}@${digest}" ctr_pull "${pull[@]}" "${IMAGE}@${digest}"; then
        soci_lazy || say "the transfer service does not unpack for ${SNAPSHOTTER} (not in its unpack_config); pulling with ctr --local"
        with_retries "pull ${IMAGE}@${digest}" ctr_pull "${pull[@]}" --local "${IMAGE}@${digest}" ||
          fail "$EXIT_FAIL" failed "pull ${IMAGE}@${digest} --local: $RETRY_ERR"
      fi
      image_state "$digest" "$@"
      PULL_SECONDS="$(awk -v a="$t0" -v b="${EPOCHREALTIME:-$(date +%s.%N)}" 'BEGIN { printf "%.3f", b - a }')"
      [ "$STATE" = missing ] && fail "$EXIT_FAIL" failed "pull of ${digest} finished but the image is not unpacked for ${SNAPSHOTTER}"
      discard_layers
    fi
    LABELED=""
    RESULTS+=(pulled)
    say "pulled and unpacked ${IMAGE}@${digest} in ${PULL_SECONDS}s (${PULLED_WITH:-ctr images pull})"
  else
    RESULTS+=(present)
  fi
  # Tag references only now that the content is complete and unpacked, and only forward.
  make_ready "$digest" "$@"
  say "ready ${IMAGE}@${digest} as $(printf '%s ' "${@/#/${IMAGE}:}")(${RESULTS[${#RESULTS[@]} - 1]})"
  exec {lockfd}>&-
}

# The kubelet's own pull: the CRI's PullImage, called over containerd's socket (gRPC is HTTP/2 with
# length-prefixed protobuf; curl speaks it). It takes the node's registry config (config_path) and
# snapshotter, unpacks each layer as it arrives on every containerd version (1.x `ctr images pull`
# downloads everything first) and drops layer blobs where discard_unpacked_layers says so: the same
# time and disk as the kubelet's pull. The CRI sends the credentials to the image's own host only
# (containerd CRI registryHosts); the token travels in the request body, from a mode 600 file.
# cri-api runtime/v1 api.proto: PullImageRequest { ImageSpec image = 1; AuthConfig auth = 2; },
# ImageSpec { string image = 1; }, AuthConfig { string username = 1; string password = 2; }.
CRI_PULL="" CRI_SOCK=""
# Where the kubelet sends its image requests: its imageServiceEndpoint when set (the last of its config
# file and drop-ins that sets it), else containerd's socket (the kubelet's default: the runtime's).
# On EKS AL2023 nodes with SOCI (nodeadm FastContainerImagePull) that is soci-snapshotter's socket,
# whose CRI keychain keeps each PullImage's credentials for the snapshotter's own registry requests
# (amazon-eks-ami nodeadm/internal/kubelet/config.go withImageServiceEndpoint; soci-snapshotter
# service/keychain/cri/v1): in its parallel pull mode a PullImage sent to containerd directly fails
# with "no basic auth credentials".
cri_socket() {
  local f e
  CRI_SOCK="${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}"
  for f in "$PREFETCH_KUBELET_CONFIG" "$PREFETCH_KUBELET_CONFIG".d/*.conf; do
    [ -r "$f" ] || continue
    e="$(jq -r '.imageServiceEndpoint // empty' "$f" 2>/dev/null)" || continue
    case "$e" in
      unix:///*) CRI_SOCK="${e#unix://}" ;;
      /*) CRI_SOCK="$e" ;;
    esac
  done
  CRI_SOCK="${CRI_SOCK#unix://}"
  [ "$CRI_SOCK" = "${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}" ] || say "the kubelet's image service: ${CRI_SOCK}"
}
# soci-snapshotter (the CRI's snapshotter "soci", AL2023 EKS AMIs with FastContainerImagePull) loads an
# image that has a SOCI index lazily, as FUSE mounts whose files are fetched when read, when the pull
# hands it the image's snapshot annotations (the CRI's PullImage with disable_snapshot_annotations =
# false; the 2.1+ transfer service with enable_remote_snapshot_annotations), unless its parallel pull
# mode is on (soci-snapshotter v0.16.1 snapshot/snapshot.go Prepare, skipRemoteSnapshotPrepare; lazy
# loading, pull_modes.soci_v2, is its default). A prefetched image must be on disk: where lazy loading
# may happen, ctr pulls client-side (1.x; 2.x with --local), which passes no annotations, and
# containerd unpacks every layer into soci's snapshots (test/node/soci.sh). The EKS AMI's soci config
# enables parallel_pull_unpack (amazon-eks-ami nodeadm/internal/containerd/snapshotter/
# soci-snapshotter.config.toml): there the CRI's PullImage pulls, in parallel.
SOCI_LAZY=""
soci_lazy() {
  [ "$SNAPSHOTTER" = soci ] || return 1
  if [ -z "$SOCI_LAZY" ]; then
    SOCI_LAZY=yes
    # [pull_modes.parallel_pull_unpack] enable = true
    if [ -r "$PREFETCH_SOCI_CONFIG" ] && awk '/^[ \t]*\[/ { s = $0; gsub(/[ \t"\047]/, "", s); next }
      s == "[pull_modes.parallel_pull_unpack]" && /^[ \t]*enable[ \t]*=[ \t]*true([ \t#]|$)/ { f = 1 }
      END { exit !f }' "$PREFETCH_SOCI_CONFIG"; then
      SOCI_LAZY=no
    else
      say "soci-snapshotter may load images lazily here (no parallel_pull_unpack in ${PREFETCH_SOCI_CONFIG}): pulling with ctr, every layer on disk"
    fi
  fi
  [ "$SOCI_LAZY" = yes ]
}
cri_pull_usable() {
  if [ -z "$CRI_PULL" ]; then
    CRI_PULL=no
    case "$PREFETCH_PULL" in
      cri) CRI_PULL=yes ;;
      auto) command -v curl >/dev/null 2>&1 && [[ "$(curl -V 2>/dev/null)" == *HTTP2* ]] && ! soci_lazy && CRI_PULL=yes ;;
    esac
    [ "$CRI_PULL" = no ] || cri_socket
  fi
  [ "$CRI_PULL" = yes ]
}
varint() { # varint N -> VARINT (printf %b escapes), VARINT_BYTES
  local n="$1" b
  VARINT=""
  while ((n > 127)); do
    printf -v b '\\x%02x' $(((n & 127) | 128))
    VARINT+="$b"
    n=$((n >> 7))
  done
  printf -v b '\\x%02x' "$n"
  VARINT+="$b"
  VARINT_BYTES=$((${#VARINT} / 4))
}
cri_pull() { # cri_pull REF
  local ref="$1" sock="$CRI_SOCK" v_ref v_tok v_spec v_auth n_spec n_auth n_msg
  local LC_ALL=C status msg
  varint "${#ref}"; v_ref="$VARINT"; n_spec=$((1 + VARINT_BYTES + ${#ref}))
  varint "${#TOKEN}"; v_tok="$VARINT"; n_auth=$((5 + 1 + VARINT_BYTES + ${#TOKEN}))
  varint "$n_spec"; v_spec="$VARINT"; n_msg=$((1 + VARINT_BYTES + n_spec))
  varint "$n_auth"; v_auth="$VARINT"; n_msg=$((n_msg + 1 + VARINT_BYTES + n_auth))
  # gRPC frame: no compression, 4-byte big-endian length. Builtins only: the token must not reach a
  # command line.
  local frame
  printf -v frame '\\x%02x\\x%02x\\x%02x\\x%02x' $((n_msg >> 24 & 255)) $((n_msg >> 16 & 255)) $((n_msg >> 8 & 255)) $((n_msg & 255))
  {
    printf '\x00%b' "$frame"
    printf '\x0a%b\x0a%b%s' "$v_spec" "$v_ref" "$ref"
    printf '\x12%b\x0a\x03AWS\x12%b%s' "$v_auth" "$v_tok" "$TOKEN"
  } >"$WORK/pull.req"
  if ! curl -sS --http2-prior-knowledge --unix-socket "$sock" -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary "@$WORK/pull.req" -D "$WORK/pull.h" -o "$WORK/pull.out" \
    http://localhost/runtime.v1.ImageService/PullImage; then
    echo "CRI PullImage: no answer from ${sock}" >&2
    return 1
  fi
  status="$(sed -n 's/^grpc-status: *\([0-9]*\).*/\1/p' "$WORK/pull.h" | tail -n 1)"
  [ "$status" = 0 ] && return 0
  msg="$(sed -n 's/^grpc-message: *//p' "$WORK/pull.h" | tail -n 1 | tr -d '\r')"
  printf 'CRI PullImage: grpc-status %s: %b\n' "${status:-none}" "${msg//%/\\x}" >&2
  return 1
}

# How long to wait for another run's lock -> LOCK_WAIT: PREFETCH_LOCK_TIMEOUT_SECONDS if set, else
# until 30 s before the execution timeout (a 20 GB pull on a slow disk outlasts any fixed number; the
# 30 s leave time to report the skip before SSM stops the script).
lock_wait() {
  if [ -n "$PREFETCH_LOCK_TIMEOUT_SECONDS" ]; then
    LOCK_WAIT=$((10#$PREFETCH_LOCK_TIMEOUT_SECONDS))
  else
    LOCK_WAIT=$((10#$PREFETCH_EXECUTION_TIMEOUT - SECONDS - 30))
  fi
  ((LOCK_WAIT > 0)) || LOCK_WAIT=1
}

# discard_unpacked_layers = true in the CRI's config (EKS AL2023): the CRI's own pulls keep no layer
# blob once unpacked: it drops the manifest's GC references to them (containerd
# internal/cri/server/images/image_pull.go, ChildGCLabelsFilterLayers). The same after a verified
# unpack (MANIFEST_DIGEST from image_state), then a GC (scheduled by removing an empty lease; it runs
# in the daemon, as after the CRI's pull), so that a prefetched image takes no more disk than the
# kubelet's pull. Blobs another image or an active pull's lease still references stay.
discard_layers() {
  [ "${CRI_DISCARD:-}" = true ] && [ -n "${MANIFEST_DIGEST:-}" ] || return 0
  local line refs=() lease
  line="$(ctr_ns content ls "digest==${MANIFEST_DIGEST}" 2>/dev/null | awk 'NR == 2 { print $NF }')"
  IFS=, read -r -a refs <<<"$line"
  local drop=()
  for line in ${refs[@]+"${refs[@]}"}; do [[ "$line" == containerd.io/gc.ref.content.l.* ]] && drop+=("${line%%=*}="); done
  ((${#drop[@]})) || return 0
  if ctr_ns content label "$MANIFEST_DIGEST" "${drop[@]}" >/dev/null &&
    lease="$(ctr_ns leases create 2>/dev/null)" && ctr_ns leases rm "${lease%% *}" >/dev/null 2>&1; then
    say "discarded ${#drop[@]} unpacked layer blobs (discard_unpacked_layers, as the CRI's pull)"
  else
    say "could not discard the unpacked layer blobs; they stay until the image is removed"
  fi
}

# One image skipped (the run goes on with the others): skip_image LOCK_FD REASON MESSAGE
skip_image() {
  local fd="$1"
  RESULTS+=("skipped-$2")
  say "skipped ($2): $3"
  exec {fd}>&-
}

# Jitter, then token and private hosts dir: everything that precedes the first ECR contact.
# Each node draws a slot in [0, jitterSeconds]. Without a push time the slot counts from now (the
# association). With one (a push), it counts from the push: SSM reaches the nodes of a big fleet
# over a ramp of 1, 2, 4, ... at a time, and a node reached late must not wait a whole jitter more.
# A node whose slot has already passed waits a random time up to the time since the push (at most
# the jitter), so that the nodes of the ramp's last waves do not all call ECR at once.
JITTERED=""
jitter() {
  [ -n "$JITTERED" ] && return 0
  JITTERED=1
  local total=$((10#$PREFETCH_JITTER_SECONDS * 1000)) ms since="" now
  ms="$(rand_ms "$total")"
  if [ -n "${EVENT_EPOCH:-}" ]; then
    now="${EPOCHREALTIME:-$(date +%s.%6N)}"
    now="${now/[.,]/}"
    since=$((now / 1000 - EVENT_EPOCH * 1000))
    ((since < 0)) && since=0 # clock skew: the push is "now"
    if ((ms > since)); then
      ms=$((ms - since))
    else
      ms="$(rand_ms $((since < total ? since : total)))"
    fi
    say "jitter: waiting ${ms} ms before contacting ECR (${since} ms since the push)"
  else
    say "jitter: waiting ${ms} ms before contacting ECR"
  fi
  sleep_ms "$ms"
}
prepare_registry() {
  jitter
  ecr_token
  write_hosts_dir
}

# --------------------------------------------------------------------------------------------
# Modes: each ends with a list of (digest, tags) pairs handed to prefetch_one.
mode_push() {
  local tag="${TAGS[0]}" digest="$PREFETCH_IMAGE_DIGEST"
  say "mode=push image=${IMAGE}:${tag} digest=${digest}"
  # The push's time orders it against other pushes of the tag (without one: now).
  PUSHED_AT="${EVENT_EPOCH:-$(date +%s)}"
  image_state "$digest" "$tag"
  # An older push delivered late: the node's tag already points at a newer one. Nothing to do.
  if tag_is_newer "$tag" "$digest" "$STATE_REFS"; then
    SUMMARY_DIGESTS="$digest"
    skip superseded "${IMAGE}:${tag} already points at ${TAG_TARGET}, pushed at $(date -u -d "@${TAG_AT}" +%FT%TZ), after this push of ${digest} ($(date -u -d "@${PUSHED_AT}" +%FT%TZ)); not pulling an older image"
  fi
  # Fast path: no jitter, no token, no registry request when it is already complete.
  if [ "$STATE" = present ]; then
    # The kubelet may have pulled it: record this push's time on the tag all the same.
    make_ready "$digest" "$tag"
    SUMMARY_DIGESTS="$digest"
    RESULTS+=(present)
    say "already present: ${IMAGE}:${tag} and ${IMAGE}@${digest}, unpacked for ${SNAPSHOTTER}"
    return 0
  fi
  if [ "$STATE" = missing ]; then
    disk_guard 0 || skip disk "$SKIP_MESSAGE"
    jitter
  fi
  prefetch_one "$digest" "$tag"
}

mode_tags() {
  local tag digest
  say "mode=tags image=${IMAGE} tags=${PREFETCH_IMAGE_TAGS}"
  disk_guard 0 || skip disk "$SKIP_MESSAGE"
  prepare_registry
  for tag in "${TAGS[@]}"; do
    # Tags move: resolve against the registry (one small request), then pull that digest.
    with_retries "resolve ${IMAGE}:${tag}" fetch_object_to "$WORK/manifest" "${IMAGE}:${tag}"
    digest="$(sha256sum <"$WORK/manifest")"
    digest="sha256:${digest%% *}"
    # What the registry says now is at least as new as any push before this moment.
    PUSHED_AT="$(date +%s)"
    say "resolved ${IMAGE}:${tag} -> ${digest}"
    prefetch_one "$digest" "$tag"
  done
}

# jq: does a tag start with one of the prefixes given as positional arguments (any tag without any)?
# shellcheck disable=SC2016 # jq, not shell
readonly JQ_MATCHES='def matches: ($ARGS.positional | length) == 0 or (. as $t | any($ARGS.positional[]; . as $p | $t | startswith($p)));'

# The newest image as the push leg recorded it: one DynamoDB GetItem (NewestImageRecord). Sets
# RECORD_PICK ("DIGEST PUSHED_AT TAG...") and returns 0; returns 1 (the caller searches the
# repository) when nothing is recorded yet, or the record cannot be read (no permission: a node role
# granted before the record existed), saying why.
read_record() {
  local attempt=1 out errf="$WORK/record.err" key
  key="{\"prefetcher\":{\"S\":\"${PREFETCH_RECORD_KEY}\"}}"
  while :; do
    if out="$("$PREFETCH_AWS_CLI" dynamodb get-item --region "$PREFETCH_REGION" --table-name "$PREFETCH_RECORD_TABLE" \
      --key "$key" --output json 2>"$errf")"; then
      break
    fi
    if [ "$(classify "$(cat "$errf")")" = transient ] && ((attempt < 10#$PREFETCH_MAX_ATTEMPTS)); then
      say "dynamodb get-item: attempt ${attempt}/${PREFETCH_MAX_ATTEMPTS} failed: $(tail -n 1 "$errf")"
      backoff "$attempt"
      attempt=$((attempt + 1))
      continue
    fi
    say "the newest-image record (${PREFETCH_RECORD_TABLE}) could not be read: $(tail -n 1 "$errf"); searching the repository instead"
    return 1
  done
  # The item must be of this repository (a prefetcher given another repository keeps its key), and
  # only its tags with one of the prefixes count (the tag filter may have changed since).
  RECORD_PICK="$(jq -r --arg repo "$PREFETCH_REPOSITORY" --args "$JQ_MATCHES"'
    .Item // empty | select(.digest.S and .pushedAt.S and .repositoryName.S == $repo)
    | [.digest.S, (.pushedAt.S | fromdateiso8601 | tostring)] + [(.tags.SS // [])[] | select(matches)]
    | select(length > 2) | join(" ")' ${PREFIXES[@]+"${PREFIXES[@]}"} <<<"$out" 2>/dev/null)" || RECORD_PICK=""
  if [ -z "$RECORD_PICK" ]; then
    say "no newest image of ${PREFETCH_REPOSITORY}${PREFETCH_TAG_PREFIXES:+ with a tag starting with ${PREFETCH_TAG_PREFIXES}} recorded yet in ${PREFETCH_RECORD_TABLE}; searching the repository"
    return 1
  fi
  say "newest image from the record: ${RECORD_PICK%% *}"
}

# The newest tagged image by imagePushedAt, among the tags with one of PREFIXES: every image of the
# repository, 1,000 a call (DescribeImages' largest page; the CLI's default is 100). Sets SEARCH_PICK.
search_newest() {
  with_retries "aws ecr describe-images" "$PREFETCH_AWS_CLI" ecr describe-images --region "$PREFETCH_REGION" \
    --registry-id "$PREFETCH_ACCOUNT_ID" --repository-name "$PREFETCH_REPOSITORY" \
    --filter tagStatus=TAGGED --page-size 1000 --output json
  # imagePushedAt: epoch seconds (CLI v1) or ISO 8601 with the client's UTC offset (CLI v2), so
  # compare instants, not strings (offsets differ across DST changes). Only container images (an
  # index, or an image config as the artifact media type), and no cosign signature, attestation or
  # SBOM tags.
  SEARCH_PICK="$(jq -r --args "$JQ_MATCHES"'
      def epoch: if type == "number" then . else
        capture("^(?<dt>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?<f>[.][0-9]+)?(?<tz>Z|[+-][0-9]{2}:?[0-9]{2})?$") as $c
        | ($c.dt + "Z" | fromdateiso8601) + ("0" + ($c.f // "") | tonumber)
          - (($c.tz // "Z") as $z | if $z == "Z" then 0 else
              ((if $z[0:1] == "-" then -1 else 1 end) * (($z[1:3] | tonumber) * 3600 + ($z[-2:] | tonumber) * 60)) end)
        end;
      def image: (.imageManifestMediaType // "" | test("index|manifest[.]list")) or
        (.artifactMediaType // "" | . == "" or test("^application/vnd[.](oci[.]image[.]config[.]v1[+]json|docker[.]container[.]image[.]v1[+]json)$"));
      def cosign: test("^sha256-[a-f0-9]{64}[.](sig|att|sbom)$");
      [.imageDetails[] | select(image) | .imageTags = [(.imageTags // [])[] | select(matches and (cosign | not))]
        | select(.imageTags | length > 0)]
      | sort_by(.imagePushedAt | epoch) | last // empty
      | [.imageDigest, (.imagePushedAt | epoch | floor | tostring)] + .imageTags | join(" ")' ${PREFIXES[@]+"${PREFIXES[@]}"} <<<"$RETRY_OUT")" ||
    fail "$EXIT_FAIL" failed "could not read the describe-images answer"
}

mode_newest() {
  say "mode=newest image=${IMAGE} tagPrefixes=${PREFETCH_TAG_PREFIXES:-*}"
  disk_guard 0 || skip disk "$SKIP_MESSAGE"
  jitter
  command -v "$PREFETCH_AWS_CLI" >/dev/null 2>&1 ||
    fail "$EXIT_FAIL" failed "no aws CLI: needed to find the newest image when imageTags is empty"
  local pick tag
  if [ -n "$PREFETCH_RECORD_TABLE" ] && [ -n "$PREFETCH_RECORD_KEY" ] && read_record; then
    pick="$RECORD_PICK"
  else
    search_newest
    pick="$SEARCH_PICK"
  fi
  if [ -z "$pick" ]; then
    OUTCOME=nothing
    say "no tagged image${PREFETCH_TAG_PREFIXES:+ with a tag starting with ${PREFETCH_TAG_PREFIXES}} in ${PREFETCH_REPOSITORY}: nothing to prefetch"
    exit "$EXIT_OK"
  fi
  local digest tags
  read -r digest PUSHED_AT tags <<<"$pick"
  [[ "$digest" =~ $RE_DIGEST ]] || fail "$EXIT_FAIL" failed "describe-images returned a bad digest"
  [[ "$PUSHED_AT" =~ ^[0-9]{1,12}$ ]] || fail "$EXIT_FAIL" failed "describe-images returned a bad imagePushedAt"
  read -r -a tags <<<"$tags"
  for tag in "${tags[@]}"; do
    [[ "$tag" =~ ^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$ ]] || fail "$EXIT_FAIL" failed "describe-images returned a bad tag"
  done
  SUMMARY_IMAGE="${IMAGE}:$(IFS=,; echo "${tags[*]}")"
  say "newest: ${digest} tags=$(IFS=,; echo "${tags[*]}")"
  image_state "$digest" "${tags[@]}"
  if [ "$STATE" = present ]; then
    make_ready "$digest" "${tags[@]}"
    SUMMARY_DIGESTS="$digest"
    RESULTS+=(present)
    say "already present: ${IMAGE}@${digest} as $(IFS=,; echo "${tags[*]}")"
    return 0
  fi
  prefetch_one "$digest" "${tags[@]}"
}

main() {
  validate_inputs
  # The labels of a ready reference: the CRI's own (kubelet image GC sees it as the CRI's), and pinImages'.
  WANTED_LABELS=("$LABEL_MANAGED")
  [ "$PREFETCH_PIN" = true ] && WANTED_LABELS+=("$LABEL_PINNED" "$LABEL_OWN_PIN")
  detect_containerd
  if ! mkdir -p "${PREFETCH_RUN_DIR}/locks" || ! chmod 700 "$PREFETCH_RUN_DIR"; then
    fail "$EXIT_FAIL" failed "cannot create ${PREFETCH_RUN_DIR}"
  fi
  # Private files of runs killed with SIGKILL (no trap ran): remove those whose process is gone.
  local d
  for d in "$PREFETCH_RUN_DIR"/run.*; do
    [ -d "$d" ] && ! kill -0 "${d##*.}" 2>/dev/null && rm -rf -- "$d"
  done
  WORK="${PREFETCH_RUN_DIR}/run.$$"
  mkdir -m 700 "$WORK" || fail "$EXIT_FAIL" failed "cannot create $WORK"

  if [ -n "$PREFETCH_IMAGE_DIGEST" ]; then
    mode_push
  elif ((${#TAGS[@]} > 0)); then
    mode_tags
  else
    mode_newest
  fi
  unpin_others
  # The run's outcome: pulled if any image was, else present if any was, else the first skip.
  case " ${RESULTS[*]:-} " in
    *" pulled "*) OUTCOME=pulled ;;
    *" present "*) OUTCOME=present ;;
    *" skipped-"*) OUTCOME="${RESULTS[0]}" ;;
    *) OUTCOME=present ;;
  esac
  exit "$EXIT_OK"
}

main "$@"
