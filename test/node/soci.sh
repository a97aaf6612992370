#!/bin/bash
# A SOCI node (issue 15): the CRI's snapshotter is soci-snapshotter, as on EKS AL2023 AMIs with the
# nodeadm feature gate FastContainerImagePull. Sourced by run.sh before it enters its namespace
# (E2E_ONLY=soci: these cases alone; they need a containerd configured for soci from the start, so
# the other cases do not run in the same node). Uses run.sh's helpers and images (run_ssm, params,
# expect, ref_digest, blob_requests, IMG, DBIG, D1).
#
# What the node runs, from its sources:
# - containerd (awslabs/amazon-eks-ami nodeadm/internal/containerd/config2.template.toml, when
#   UseSOCISnapshotter): in [plugins.'io.containerd.cri.v1.images'] `snapshotter = "soci"`,
#   `disable_snapshot_annotations = false` (with discard_unpacked_layers = true, as without SOCI), and
#   [proxy_plugins.soci] type "snapshot", address /run/soci-snapshotter-grpc/soci-snapshotter-grpc.sock,
#   exports root /var/lib/soci-snapshotter-grpc. The same as soci-snapshotter's docs/kubernetes.md
#   ("containerd 2.x configuration").
# - soci-snapshotter-grpc (nodeadm/internal/containerd/snapshotter/soci-snapshotter.config.toml):
#   [content_store] type 'containerd', [cri_keychain] enable_keychain = true with image_service_path
#   containerd's socket, [pull_modes.parallel_pull_unpack] enable = true (16mb chunks, 20 downloads
#   and 12 unpacks per image, discard_unpacked_layers = true, unpigz for gzip). That is the "parallel"
#   mode here. The "lazy" mode is soci-snapshotter's default (pull_modes.soci_v2 enabled, parallel
#   pull off) with the CRI keychain and the containerd content store, as docs/kubernetes.md
#   configures it for Kubernetes: an image without a SOCI index is pulled by containerd
#   (snapshot/snapshot.go Prepare: ErrNoIndex, "defer to container runtime").
# - the kubelet (nodeadm/internal/kubelet/config.go withImageServiceEndpoint): imageServiceEndpoint
#   unix:///run/soci-snapshotter-grpc/soci-snapshotter-grpc.sock, the CRI keychain's proxy of
#   containerd's image service, which keeps each PullImage's credentials for the snapshotter's own
#   registry requests (service/keychain/cri/v1). crictl plays the kubelet on that socket.
# Registry trust: soci-snapshotter verifies the registry with Go's system roots; here SSL_CERT_FILE
# is the test CA (real nodes reach ECR's public certificate).
# shellcheck shell=bash disable=SC2154 # run.sh defines the helpers' variables

E2E_SOCI_SOCK=/run/soci-snapshotter-grpc/soci-snapshotter-grpc.sock
if [ -z "${E2E_IN_NAMESPACE:-}" ]; then
  # AL2023's containerd (the harness builds it from the Go module proxy like the other versions).
  export E2E_CONTAINERD="${E2E_CONTAINERD:-v2.2.9}"
  e2e_use_soci
fi

# Before containerd starts (lib.sh e2e_setup): the CRI's snapshotter becomes soci, soci-snapshotter
# starts first (nodeadm orders containerd.service after soci-snapshotter.service).
e2e_before_containerd() {
  local f=/etc/containerd/config.toml
  sed -i -E 's/^( *)snapshotter = "overlayfs"$/\1snapshotter = "soci"\n\1disable_snapshot_annotations = false/' "$f"
  grep -q '^ *snapshotter = "soci"$' "$f" || die "could not set the CRI's snapshotter to soci in $f"
  cat >>"$f" <<EOF
[proxy_plugins.soci]
  type = "snapshot"
  address = "$E2E_SOCI_SOCK"
  [proxy_plugins.soci.exports]
    root = "$E2E_WORK/soci"
EOF
  mkdir -p "${E2E_SOCI_SOCK%/*}"
  mount -t tmpfs -o mode=711 tmpfs "${E2E_SOCI_SOCK%/*}"
  # The kubelet's config as nodeadm writes it (/etc/kubernetes/kubelet/config.json), with the
  # image service endpoint of a SOCI node; only that key matters here.
  mkdir -p "$E2E_WORK/kubernetes/kubelet" /etc/kubernetes
  jq -n --arg e "unix://$E2E_SOCI_SOCK" '{kind: "KubeletConfiguration", apiVersion: "kubelet.config.k8s.io/v1beta1",
    containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock", imageServiceEndpoint: $e}' \
    >"$E2E_WORK/kubernetes/kubelet/config.json"
  mount --bind "$E2E_WORK/kubernetes" /etc/kubernetes
  soci_start parallel
}

# soci_start MODE: soci-snapshotter-grpc with the MODE's config (parallel | lazy).
soci_start() {
  local d="$E2E_WORK/soci" cfg="$E2E_WORK/soci-config.toml" sock="$E2E_WORK/containerd/containerd.sock"
  mkdir -p "$d"
  cat >"$cfg" <<EOF
debug = false

[content_store]
type = 'containerd'
containerd_address = '$sock'

[cri_keychain]
enable_keychain = true
image_service_path = '$sock'
EOF
  if [ "$1" = parallel ]; then
    cat >>"$cfg" <<EOF

[pull_modes.parallel_pull_unpack]
enable = true
concurrent_download_chunk_size = "16mb"
discard_unpacked_layers = true
max_concurrent_downloads = -1
max_concurrent_downloads_per_image = 20
max_concurrent_unpacks = -1
max_concurrent_unpacks_per_image = 12

[pull_modes.parallel_pull_unpack.decompress_streams."gzip"]
path = '$(command -v unpigz)'
args = ['-d', '-c']
EOF
  fi
  SSL_CERT_FILE="$E2E_WORK/registry/tls/ca.crt" setpriv --pdeathsig KILL "$E2E_SOCI_DIR/soci-snapshotter-grpc" \
    --address "$E2E_SOCI_SOCK" --root "$d" --config "$cfg" --log-level debug >>"$E2E_WORK/soci.log" 2>&1 &
  E2E_SOCI_PID=$!
  E2E_PIDS+=("$E2E_SOCI_PID")
  e2e_poll test -S "$E2E_SOCI_SOCK" || die "soci-snapshotter did not start: $(tail -5 "$E2E_WORK/soci.log")"
  SOCI_MODE="$1"
}

soci_stop() {
  kill "$E2E_SOCI_PID" 2>/dev/null
  e2e_wait_gone "$E2E_SOCI_PID"
  rm -f "$E2E_SOCI_SOCK"
}

# crictl as the kubelet of an EKS SOCI node calls it: through soci-snapshotter's socket.
kubelet_crictl() {
  "$E2E_CRICTL" --config /dev/null --runtime-endpoint "unix://$CONTAINERD_ADDRESS" \
    --image-endpoint "unix://$E2E_SOCI_SOCK" --timeout 60s "$@"
}
kubelet_knows() { # kubelet_knows REF TAG_REF DIGEST_REF
  kubelet_crictl inspecti -o json "$1" 2>/dev/null |
    jq -e --arg t "$2" --arg d "$3" '.status | (.repoTags | index($t)) != null and (.repoDigests | index($d)) != null' >/dev/null
}
# The chain ID's snapshot in soci is a local one (not a lazily loaded FUSE mount: no
# containerd.io/snapshot/remote label, snapshot/snapshot.go remoteLabel).
soci_snapshot_local() { # soci_snapshot_local REF
  local chain
  chain="$(soci_chain_id "$1")" || return 1
  e2e_ctr snapshots --snapshotter soci info "$chain" 2>/dev/null |
    jq -e '.Kind == "Committed" and ((.Labels // {}) | has("containerd.io/snapshot/remote") | not)' >/dev/null
}
soci_chain_id() { # soci_chain_id REF -> the chain ID of the image's layers
  local config chain="" d
  config="$(e2e_ctr images ls | awk -v r="$1" 'NR > 1 && $1 == r { print $3 }')"
  [ -n "$config" ] || return 1
  config="$(e2e_ctr content get "$config" | jq -r '.config.digest')"
  for d in $(e2e_ctr content get "$config" | jq -r '.rootfs.diff_ids[]'); do
    if [ -z "$chain" ]; then chain="$d"; else chain="sha256:$(printf '%s %s' "$chain" "$d" | sha256sum | cut -d' ' -f1)"; fi
  done
  echo "$chain"
}

cri_check() { # cri_check DESCRIPTION COMMAND...: check, with the command's output when it fails
  local what="$1" out
  shift
  if out="$("$@" 2>&1)"; then ok "$what"; else notok "$what"; sed 's/^/#   /' <<<"$out" | tail -n 5; fi
}

soci_cases() { # soci_cases MODE
  local mode="$1" before out
  echo "# SOCI node, mode $mode: the CRI's snapshotter is soci (soci-snapshotter $E2E_SOCI_VERSION, containerd $E2E_CONTAINERD_VERSION)"
  [ "$SOCI_MODE" = "$mode" ] || { soci_stop; soci_start "$mode"; }
  e2e_wipe_images

  # The prefetch, as SSM runs it.
  before="$(blob_requests)"
  run_ssm "$(params imageTags=big imageDigest="$DBIG")"
  expect "[$mode] prefetch on a SOCI node" $? 0 "outcome=pulled"
  grep -E 'snapshotter=|pulled and unpacked' "$OUT" | sed 's/^/#   /'
  echo "# [$mode] the prefetch made $(($(blob_requests) - before)) blob requests"
  check "[$mode] usable by the CRI: committed snapshot of the chain ID in soci, kept by the config's GC label" \
    e2e_image_usable "$IMG:big" soci
  check "[$mode] the snapshot is local (no lazy loading for a prefetched image)" soci_snapshot_local "$IMG:big"
  check "[$mode] ImageStatus on containerd's socket finds the tag and the digest" \
    e2e_cri_knows "$IMG:big" "$IMG:big" "$IMG@$DBIG"
  check "[$mode] ImageStatus on the kubelet's endpoint (soci's socket) finds the tag" \
    kubelet_knows "$IMG:big" "$IMG:big" "$IMG@$DBIG"
  check "[$mode] ... and the digest (a digest-pinned pod)" \
    kubelet_knows "$IMG@$DBIG" "$IMG:big" "$IMG@$DBIG"

  # The kubelet's pull of the same image is a no-op: no layer from the registry.
  before="$(blob_requests)"
  cri_check "[$mode] the kubelet's PullImage of the prefetched digest succeeds" kubelet_crictl pull --creds "AWS:$E2E_TOKEN" "$IMG@$DBIG"
  check "[$mode] ... and fetches no blob ($(($(blob_requests) - before)) blob requests)" test "$(blob_requests)" = "$before"
  before="$(blob_requests)"
  out="$(e2e_ctr run --snapshotter soci --rm "$IMG:big" "soci-$mode-$RANDOM" 2>&1)"
  check "[$mode] a container starts from the prefetched image on soci ($out)" test "$out" = "big image"
  check "[$mode] ... without a registry request" test "$(blob_requests)" = "$before"

  # Where the CRI's PullImage cannot be used (PREFETCH_PULL=ctr stands for a node without curl's
  # HTTP/2): ctr pulls for soci.
  e2e_wipe_images
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" PREFETCH_PULL=ctr
  expect "[$mode] prefetch with ctr on a SOCI node" $? 0 "outcome=pulled"
  check "[$mode] ... usable by the CRI" e2e_image_usable "$IMG:v1" soci
  check "[$mode] ... ImageStatus on the kubelet's endpoint finds it" kubelet_knows "$IMG@$D1" "$IMG:v1" "$IMG@$D1"
  before="$(blob_requests)"
  cri_check "[$mode] ... the kubelet's PullImage succeeds" kubelet_crictl pull --creds "AWS:$E2E_TOKEN" "$IMG@$D1"
  check "[$mode] ... and fetches no blob ($(($(blob_requests) - before)) blob requests)" test "$(blob_requests)" = "$before"

  # The other order: the kubelet pulled first, the prefetch finds it present.
  e2e_wipe_images
  before="$(blob_requests)"
  cri_check "[$mode] the kubelet's own pull on soci works" kubelet_crictl pull --creds "AWS:$E2E_TOKEN" "$IMG@$D2"
  echo "# [$mode] the kubelet's pull made $(($(blob_requests) - before)) blob requests"
  before="$(blob_requests)"
  run_ssm "$(params imageTags=v2 imageDigest="$D2")"
  expect "[$mode] a prefetch after the kubelet's pull finds it present" $? 0 "outcome=present"
  check "[$mode] ... without a blob request" test "$(blob_requests)" = "$before"
}
