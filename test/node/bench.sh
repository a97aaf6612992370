#!/bin/bash
# Benchmark (task `bench`, root; not a test): cold vs prefetched container start, and what the
# node script costs over a bare `ctr images pull`, on the loopback node of lib.sh with a 1 GiB
# image (BENCH_LAYERS x BENCH_LAYER_MB MiB random layers, default 4 x 256, plus a busybox layer).
#
# Measures (seconds, wall clock):
#   coldStartSeconds        bare `ctr images pull` + `ctr run --rm`, nothing cached (median)
#   prefetchedStartSeconds  `ctr run --rm` after the script prefetched the image (median)
#   scriptColdSeconds       the script, image absent (median of BENCH_ROUNDS)
#   ctrPullColdSeconds      bare `ctr images pull` of the same digest (median of BENCH_ROUNDS),
#                           measured alternately with the script, image and content removed between
#   rerunSeconds            the script, image present (median of BENCH_ROUNDS)
#   criPullColdSeconds      `crictl pull` of the same digest, the kubelet's path (median of BENCH_ROUNDS)
#   scriptDiskMiB, criDiskMiB  containerd's content store + snapshots after each cold pull (median)
#   busyStoreRerunSeconds   the script, image present, with BENCH_BUSY_IMAGES (200) other images in
#                           the store (median of 5)
#   scriptCriTimeRatio = scriptCold / criPullCold, scriptCriDiskRatio = scriptDisk / criDisk
#   scriptCriTimeRatioPaired: the median of each round's script / CRI pull (scriptCriTimeRatioRounds)
#   scriptOwnSeconds        the script minus the CRI pull of a 4 MiB image, paired (median of
#                           BENCH_SMALL_ROUNDS, 11); scriptCriTimeRatioFromOwn = (criPullCold + it) / criPullCold
#   speedup = coldStart / prefetchedStart, overheadRatio = scriptCold / ctrPullCold
# Prints a table, then one JSON line. Both pulls use the same credentials mechanism (a hosts dir
# with the Authorization header), snapshotter and platform, so the ratio is the script's overhead.
# Fairness: before each start measurement a small busybox container runs (a node already runs
# pods, so the runc shim and binaries are warm for both cold and prefetched starts); after each
# wipe, `sync` flushes the previous pull's writes outside the timing; the script and the bare pull
# alternate which goes first in each round.
# shellcheck source=test/node/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_reexec_in_namespace "$@"
set -uo pipefail

BENCH_LAYERS="${BENCH_LAYERS:-4}"
BENCH_LAYER_MB="${BENCH_LAYER_MB:-256}"
BENCH_ROUNDS="${BENCH_ROUNDS:-5}"
BENCH_BUSY_IMAGES="${BENCH_BUSY_IMAGES:-200}"
BENCH_SMALL_ROUNDS="${BENCH_SMALL_ROUNDS:-11}"
REPO=bench/big

e2e_setup
# The token as on an EKS node: the real ecr-credential-provider (built from the Go module proxy)
# against a fake ECR API on loopback, so the script's cold time includes getting it.
e2e_start_ecr_api "$AWS_SHIM_STATE"
log "building a $((BENCH_LAYERS * BENCH_LAYER_MB)) MiB image (${BENCH_LAYERS} x ${BENCH_LAYER_MB} MiB random layers)"
e2e_build_image big "$BENCH_LAYER_MB" "$BENCH_LAYERS" "bench ready" >/dev/null
e2e_build_image warm 1 0 "warm" >/dev/null
log "pushing"
DIGEST="$(e2e_push big "$REPO" v1)"
WARM_DIGEST="$(e2e_push warm bench/warm v1)"
IMG="$E2E_HOST/$REPO"
BIG_LAYER="$(jq -r '.layers[-1].digest' "$E2E_WORK/images/big/blobs/sha256/${DIGEST#sha256:}")"

# Credentials for the bare pulls: the same mechanism the script uses, prepared outside the timing.
HOSTS="$E2E_WORK/tmp/bench-hosts"
mkdir -p "$HOSTS/$E2E_HOST"
cp -pR "/etc/containerd/certs.d/$E2E_HOST/." "$HOSTS/$E2E_HOST/"
printf '\n[header]\n  Authorization = "Basic %s"\n[host."https://%s".header]\n  Authorization = "Basic %s"\n' \
  "$(printf 'AWS:%s' "$E2E_TOKEN" | base64 -w0)" "$E2E_HOST" "$(printf 'AWS:%s' "$E2E_TOKEN" | base64 -w0)" \
  >>"$HOSTS/$E2E_HOST/hosts.toml"
chmod -R go-rwx "$HOSTS"

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

bare_pull() {
  e2e_ctr images pull --hosts-dir "$HOSTS" --snapshotter overlayfs --platform "linux/$(e2e_goarch)" \
    "$IMG@$DIGEST" >/dev/null || die "bare pull failed"
}
script_pull() {
  env PREFETCH_ACCOUNT_ID="$E2E_ACCOUNT" PREFETCH_REGION="$E2E_REGION" PREFETCH_REPOSITORY="$REPO" \
    PREFETCH_IMAGE_TAGS=v1 PREFETCH_IMAGE_DIGEST="$DIGEST" PREFETCH_JITTER_SECONDS=0 \
    PREFETCH_ECR_CREDENTIAL_PROVIDER="$E2E_ECR_PROVIDER" "${E2E_BASH:-bash}" "$E2E_SCRIPT" >"$E2E_WORK/script.out" 2>&1 || { cat "$E2E_WORK/script.out" >&2; die "script failed"; }
  tail -n 1 "$E2E_WORK/script.out" >&2
  # The script's own pull step (the CRI's PullImage or ctr; 0 when the image was present).
  SCRIPT_PULL="$(sed -n 's/.*pulled and unpacked .* in \([0-9.]*\)s (.*/\1/p' "$E2E_WORK/script.out")"
  : "${SCRIPT_PULL:=0}"
}
# The kubelet's pull: the CRI's PullImage (crictl), with the node's registry config (config_path).
cri_pull() {
  "$E2E_CRICTL" --config /dev/null --runtime-endpoint "unix://$CONTAINERD_ADDRESS" \
    --image-endpoint "unix://$CONTAINERD_ADDRESS" --timeout 600s pull --creds "AWS:$E2E_TOKEN" \
    "$IMG@$DIGEST" >/dev/null || die "crictl pull failed"
}
# MiB of containerd's content store and overlayfs snapshots (what a pull leaves on disk), once the
# garbage collector has run (both the CRI and the script leave discarded layers to it).
disk_mib() {
  local r="$E2E_WORK/containerd/root" lease
  lease="$(e2e_ctr leases create)" && e2e_ctr leases rm --sync "${lease%% *}" >/dev/null
  du -sk "$r/io.containerd.content.v1.content" "$r/io.containerd.snapshotter.v1.overlayfs" 2>/dev/null |
    awk '{ k += $1 } END { printf "%d", k / 1024 }'
}

# A busybox-only container, as the pods already running on a node.
warm_runtime() {
  if [ -z "$(e2e_ctr images ls -q "name==$E2E_HOST/bench/warm@$WARM_DIGEST")" ]; then
    e2e_ctr images pull --hosts-dir "$HOSTS" "$E2E_HOST/bench/warm@$WARM_DIGEST" >/dev/null || die "warm pull failed"
  fi
  local out
  out="$(e2e_ctr run --rm "$E2E_HOST/bench/warm@$WARM_DIGEST" "warm-$RANDOM" 2>&1)" || die "warm run failed: $out"
}
# Remove the big image and its content (GC), then flush writes, outside any timing.
wipe() {
  # --sync waits for the garbage collector: the image's content and snapshots are gone after it.
  # Every reference to the image: ours and the CRI's image-ID reference (sha256:<config>), which the
  # CRI plugin adds for each image in k8s.io. (ctr applies --sync to the last reference only, so
  # list existing ones.)
  local refs
  mapfile -t refs < <(e2e_ctr images ls | awk -v d="$DIGEST" 'NR > 1 && $3 == d { print $1 }')
  ((${#refs[@]} == 0)) || e2e_ctr images rm --sync "${refs[@]}" >/dev/null
  ! e2e_ctr content ls -q | grep -qF "$BIG_LAYER" || die "wipe left the image's content behind"
  warm_runtime
  sync
}
run_container() {
  local out
  out="$(e2e_ctr run --rm "$1" "bench-$RANDOM" 2>&1)"
  [ "$out" = "bench ready" ] || die "container output: $out"
}

# Each round: a cold start (bare pull, timed alone and with the container run that follows) and
# a prefetch (the script cold, the script again, then a timed container run), in alternating order.
e2e_wipe_images
script_times=() ctr_times=() rerun_times=() extra_times=() cold_times=() prefetched_times=()
cri_times=() script_disk=() cri_disk=()
for ((i = 1; i <= BENCH_ROUNDS; i++)); do
  log "round $i/$BENCH_ROUNDS: bare ctr pull + run, CRI pull, and script cold + script rerun + run"
  for what in $( ((i % 2)) && echo "script ctr cri" || echo "cri ctr script"); do
    wipe
    if [ "$what" = cri ]; then
      t="$(now)"; cri_pull; cri_times+=("$(since "$t")")
      cri_disk+=("$(disk_mib)")
    elif [ "$what" = script ]; then
      t="$(now)"; script_pull; script_times+=("$(since "$t")")
      script_disk+=("$(disk_mib)")
      extra_times+=("$(awk -v a="${script_times[-1]}" -v b="$SCRIPT_PULL" 'BEGIN { printf "%.3f", a - b }')")
      t="$(now)"; script_pull; rerun_times+=("$(since "$t")")
      warm_runtime
      sync
      t="$(now)"; run_container "$IMG:v1"; prefetched_times+=("$(since "$t")")
    else
      t="$(now)"; bare_pull; ctr_times+=("$(since "$t")")
      run_container "$IMG@$DIGEST"; cold_times+=("$(since "$t")")
    fi
  done
done

# The script's own cost, apart from the big pull's round-to-round noise (a second or more on a shared
# machine, more than the 5 % the ratio is held to): a 4 MiB image, the script and the CRI's pull in
# alternation, and the median of each round's difference.
log "small image: the script's own cost over the CRI's pull, $BENCH_SMALL_ROUNDS rounds"
e2e_build_image small 4 1 "small ready" >/dev/null
big=("$REPO" "$IMG" "$DIGEST" "$BIG_LAYER")
REPO=bench/small IMG="$E2E_HOST/bench/small"
DIGEST="$(e2e_push small "$REPO" v1)"
BIG_LAYER="$(jq -r '.layers[-1].digest' "$E2E_WORK/images/small/blobs/sha256/${DIGEST#sha256:}")"
small_diffs=()
for ((i = 1; i <= BENCH_SMALL_ROUNDS; i++)); do
  for what in $( ((i % 2)) && echo "script cri" || echo "cri script"); do
    wipe
    t="$(now)"
    if [ "$what" = script ]; then script_pull; s_t="$(since "$t")"; else cri_pull; c_t="$(since "$t")"; fi
  done
  small_diffs+=("$(awk -v a="$s_t" -v b="$c_t" 'BEGIN { printf "%.3f", a - b }')")
done
overhead="$(median "${small_diffs[@]}")"
REPO="${big[0]}" IMG="${big[1]}" DIGEST="${big[2]}" BIG_LAYER="${big[3]}"

# A busy store: the no-op path with BENCH_BUSY_IMAGES other images.
log "busy store: $BENCH_BUSY_IMAGES more images, then 5 reruns of the script"
e2e_fill_store "$BENCH_BUSY_IMAGES"
script_pull
busy_times=()
for ((i = 1; i <= 5; i++)); do
  t="$(now)"; script_pull; busy_times+=("$(since "$t")")
done
busy="$(median "${busy_times[@]}")"

cri_cold="$(median "${cri_times[@]}")"
sdisk="$(median "${script_disk[@]}")"
cdisk="$(median "${cri_disk[@]}")"
cri_ratio="$(awk -v a="$(median "${script_times[@]}")" -v b="$cri_cold" 'BEGIN { printf "%.3f", a / b }')"
# The same from the script's own overhead (its time outside its pull step, the CRI's PullImage):
# (CRI pull + that) / CRI pull, less exposed to round-to-round noise on a shared machine.
cri_ratio_extra="$(awk -v c="$cri_cold" -v e="$(median "${extra_times[@]}")" 'BEGIN { printf "%.3f", (c + e) / c }')"
disk_ratio="$(awk -v a="$sdisk" -v b="$cdisk" 'BEGIN { printf "%.3f", a / b }')"
# Paired: script / CRI pull within each round (both pulls close in time), then the median: slow drift
# of a shared machine's load cancels out of each round's ratio.
round_ratios=()
for ((i = 0; i < ${#script_times[@]}; i++)); do
  round_ratios+=("$(awk -v a="${script_times[$i]}" -v b="${cri_times[$i]}" 'BEGIN { printf "%.3f", a / b }')")
done
cri_ratio_paired="$(median "${round_ratios[@]}")"
# The ratio the script's own cost gives on this image's CRI pull.
cri_ratio_overhead="$(awk -v c="$cri_cold" -v o="$overhead" 'BEGIN { printf "%.3f", (c + o) / c }')"
cold_start="$(median "${cold_times[@]}")"
prefetched_start="$(median "${prefetched_times[@]}")"
script_cold="$(median "${script_times[@]}")"
ctr_cold="$(median "${ctr_times[@]}")"
rerun="$(median "${rerun_times[@]}")"
# The script's time outside its own ctr pull: its overhead, independent of how noisy pulls are.
extra="$(median "${extra_times[@]}")"
adjusted="$(awk -v c="$ctr_cold" -v e="$extra" 'BEGIN { printf "%.3f", (c + e) / c }')"
speedup="$(awk -v a="$cold_start" -v b="$prefetched_start" 'BEGIN { printf "%.1f", a / b }')"
ratio="$(awk -v a="$script_cold" -v b="$ctr_cold" 'BEGIN { printf "%.3f", a / b }')"
size_mb=$((BENCH_LAYERS * BENCH_LAYER_MB))

printf '\n| measure (%s MiB image, containerd %s, loopback) | seconds |\n|---|---|\n' "$size_mb" "$(containerd --version | awk '{ print $3 }')"
printf '| cold start: bare ctr pull + ctr run (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${cold_times[*]}" "$cold_start"
printf '| prefetched start: ctr run after the script (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${prefetched_times[*]}" "$prefetched_start"
printf '| speedup | %sx |\n' "$speedup"
printf '| script, cold (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${script_times[*]}" "$script_cold"
printf '| bare ctr images pull, cold (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${ctr_times[*]}" "$ctr_cold"
printf '| overhead ratio script / ctr pull | %s |\n' "$ratio"
printf '| script time outside its ctr pull (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${extra_times[*]}" "$extra"
printf '| overhead ratio from that: (ctr pull + script-only time) / ctr pull | %s |\n' "$adjusted"
printf '| script rerun, image present (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${rerun_times[*]}" "$rerun"
printf '| CRI pull (crictl), cold (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${cri_times[*]}" "$cri_cold"
printf '| time ratio script / CRI pull | %s |\n' "$cri_ratio"
printf '| time ratio script / CRI pull in each round (median of %s: %s) | %s |\n' "$BENCH_ROUNDS" "${round_ratios[*]}" "$cri_ratio_paired"
printf '| time ratio from the script-only time: (CRI pull + script-only time) / CRI pull | %s |\n' "$cri_ratio_extra"
printf '| the script'"'"'s own cost: script - CRI pull, 4 MiB image (median of %s: %s) | %s |\n' "$BENCH_SMALL_ROUNDS" "${small_diffs[*]}" "$overhead"
printf '| time ratio from that cost: (CRI pull + cost) / CRI pull | %s |\n' "$cri_ratio_overhead"
printf '| disk after the script / after the CRI pull, MiB (%s / %s) | %s / %s |\n' "${script_disk[*]}" "${cri_disk[*]}" "$sdisk" "$cdisk"
printf '| disk ratio script / CRI pull | %s |\n' "$disk_ratio"
printf '| script rerun with %s other images (median of 5: %s) | %s |\n\n' "$BENCH_BUSY_IMAGES" "${busy_times[*]}" "$busy"
jq -cn --argjson imageMiB "$size_mb" --argjson layers "$BENCH_LAYERS" --argjson rounds "$BENCH_ROUNDS" \
  --argjson cold "$cold_start" --argjson pre "$prefetched_start" --argjson speedup "$speedup" \
  --argjson sc "$script_cold" --argjson cc "$ctr_cold" --argjson ratio "$ratio" --argjson rerun "$rerun" \
  --argjson extra "$extra" --argjson adjusted "$adjusted" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --argjson cri "$cri_cold" --argjson criRatio "$cri_ratio" --argjson sdisk "$sdisk" --argjson cdisk "$cdisk" \
  --argjson diskRatio "$disk_ratio" --argjson criRatioExtra "$cri_ratio_extra" --argjson criRatioPaired "$cri_ratio_paired" --argjson overhead "$overhead" --argjson criRatioOverhead "$cri_ratio_overhead" \
  --argjson criRatioRounds "$(printf '%s\n' "${round_ratios[@]}" | jq -s -c .)" --argjson busyN "$BENCH_BUSY_IMAGES" --argjson busy "$busy" \
  --arg containerd "$(containerd --version | awk '{ print $3 }')" '{
    imageMiB: $imageMiB, layers: $layers, rounds: $rounds, containerd: $containerd,
    coldStartSeconds: $cold, prefetchedStartSeconds: $pre, speedup: $speedup,
    scriptColdSeconds: $sc, ctrPullColdSeconds: $cc, overheadRatio: $ratio, rerunSeconds: $rerun,
    scriptOnlySeconds: $extra, overheadRatioScriptOnly: $adjusted, loadAverage: $load,
    criPullColdSeconds: $cri, scriptCriTimeRatio: $criRatio, scriptCriTimeRatioPaired: $criRatioPaired, scriptCriTimeRatioRounds: $criRatioRounds,
    scriptCriTimeRatioScriptOnly: $criRatioExtra, scriptOwnSeconds: $overhead, scriptCriTimeRatioFromOwn: $criRatioOverhead, scriptDiskMiB: $sdisk, criDiskMiB: $cdisk,
    scriptCriDiskRatio: $diskRatio, busyStoreImages: $busyN, busyStoreRerunSeconds: $busy,
    targets: {speedup: ($speedup >= 50), overheadRatio: ($ratio <= 1.05), rerunSeconds: ($rerun <= 0.5),
      scriptCriTimeRatio: ($criRatio <= 1.05), scriptCriTimeRatioPaired: ($criRatioPaired <= 1.05), scriptCriTimeRatioFromOwn: ($criRatioOverhead <= 1.05), scriptCriDiskRatio: ($diskRatio <= 1), busyStoreRerunSeconds: ($busy <= 0.3)}
  }'
