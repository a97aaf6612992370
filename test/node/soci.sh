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
  # Lazy loading mounts layers with FUSE. Without /dev/fuse (a container without the device) these
  # cases do not run, and say so: no count, not a pass.
  if [ ! -c /dev/fuse ]; then
    echo "skipped: no /dev/fuse (soci-snapshotter's lazy loading needs FUSE): the SOCI node cases did not run"
    exit 0
  fi
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
  # soci-snapshotter's config where nodeadm writes it (the script reads it too).
  mkdir -p "$E2E_WORK/soci-etc" /etc/soci-snapshotter-grpc
  mount --bind "$E2E_WORK/soci-etc" /etc/soci-snapshotter-grpc
  soci_start parallel
}

# soci_start MODE: soci-snapshotter-grpc with the MODE's config (parallel | lazy).
soci_start() {
  local d="$E2E_WORK/soci" cfg=/etc/soci-snapshotter-grpc/config.toml sock="$E2E_WORK/containerd/containerd.sock"
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
  # shellcheck disable=SC2153 # E2E_SOCI_DIR: lib.sh e2e_use_soci, before run.sh entered its namespace
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
  e2e_chain_id "$1" || return 1
  e2e_ctr snapshots --snapshotter soci info "$E2E_CHAIN" 2>/dev/null |
    jq -e '.Kind == "Committed" and ((.Labels // {}) | has("containerd.io/snapshot/remote") | not)' >/dev/null
}

not_in_out() { ! grep -qF -- "$1" "$OUT"; }
cri_check() { # cri_check DESCRIPTION COMMAND...: check, with the command's output when it fails
  local what="$1" out
  shift
  if out="$("$@" 2>&1)"; then ok "$what"; else notok "$what"; tail -n 5 <<<"$out" | sed 's/^/#   /'; fi
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
  grep -E 'snapshotter=|image service|lazily|pulled and unpacked' "$OUT" | sed 's/^/#   /'
  if [ "$mode" = parallel ]; then
    check "[$mode] ... with the CRI's PullImage through the kubelet's image service (soci's socket)" \
      grep -q "the kubelet's image service: $E2E_SOCI_SOCK" "$OUT"
    check "[$mode] ... pulled with the CRI's PullImage" grep -q "pulled and unpacked .*(the CRI's PullImage)" "$OUT"
  else
    check "[$mode] ... with ctr, not the CRI's PullImage (soci may load lazily)" grep -q "pulled and unpacked .*(ctr images pull)" "$OUT"
  fi
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

  [ "$mode" = parallel ] && soci_kubelet_config "$mode"
  soci_indexed "$mode"

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

# The kubelet's config elsewhere: the endpoint in a drop-in (nodeadm writes the user's kubelet config
# to config.json.d/40-nodeadm.conf), or no kubelet config at all (containerd's socket: in parallel mode
# soci has no credentials for that pull, so ctr pulls instead).
soci_kubelet_config() { # soci_kubelet_config MODE
  local mode="$1" k="$E2E_WORK/kubelet-alt"
  mkdir -p "$k/config.json.d"
  echo '{"kind": "KubeletConfiguration", "maxPods": 29}' >"$k/config.json"
  jq '{kind, imageServiceEndpoint}' /etc/kubernetes/kubelet/config.json >"$k/config.json.d/40-nodeadm.conf"
  e2e_wipe_images
  run_ssm "$(params imageTags=v1 imageDigest="$D1")" PREFETCH_KUBELET_CONFIG="$k/config.json"
  expect "[$mode] the kubelet's endpoint set in a drop-in: pulled through it" $? 0 \
    "pulled and unpacked .*(the CRI's PullImage)"
  # (An image no PullImage through soci's socket has named: its CRI keychain keeps credentials per
  # image reference, and would lend them to this pull.)
  e2e_wipe_images
  run_ssm "$(params imageTags=v3 imageDigest="$D3")" PREFETCH_KUBELET_CONFIG="$E2E_WORK/no-such-file"
  expect "[$mode] no kubelet config: soci has no credentials for the CRI's PullImage on containerd's socket; ctr pulls" \
    $? 0 "pulled and unpacked .*(ctr images pull)"
  check "[$mode] ... at once (no retries of the CRI's PullImage)" not_in_out "attempt 1/"
  check "[$mode] ... usable by the CRI" e2e_image_usable "$IMG:v3" soci
  check "[$mode] ... ImageStatus on the kubelet's endpoint finds it" kubelet_knows "$IMG@$D3" "$IMG:v3" "$IMG@$D3"
}

# An image with a SOCI index (SOCI index manifest v2, `soci convert`: an image index holding the image
# and its SOCI index; layers of 10 MiB and more get a zTOC). What the prefetch leaves in soci.
soci_indexed() { # soci_indexed MODE
  local mode="$1" before out layers
  if [ -z "${DSOCI:-}" ]; then
    rm -rf "$E2E_WORK/images/big-soci"
    "$E2E_SOCI_DIR/soci" convert --standalone --format oci-dir "$E2E_WORK/images/big" "$E2E_WORK/images/big-soci" >"$E2E_WORK/tmp/convert.log" 2>&1 ||
      die "soci convert failed: $(tail -3 "$E2E_WORK/tmp/convert.log")"
    # The converted layout's index names no reference; skopeo copies by name.
    jq -c '.manifests[0].annotations["org.opencontainers.image.ref.name"] = "latest"' "$E2E_WORK/images/big-soci/index.json" >"$E2E_WORK/tmp/index.json" &&
      mv "$E2E_WORK/tmp/index.json" "$E2E_WORK/images/big-soci/index.json"
    DSOCI="$(e2e_push big-soci "$REPO" big-soci)"
    [ -n "$DSOCI" ] || { notok "[$mode] push of the SOCI-enabled image"; return 0; }
    echo "# SOCI-enabled image: $DSOCI"
  fi
  e2e_wipe_images
  before="$(blob_requests)"
  run_ssm "$(params imageTags=big-soci imageDigest="$DSOCI")"
  expect "[$mode] prefetch of an image with a SOCI index" $? 0 "outcome=pulled"
  echo "# [$mode] the prefetch made $(($(blob_requests) - before)) blob requests"
  check "[$mode] ... usable by the CRI" e2e_image_usable "$IMG:big-soci" soci
  check "[$mode] ... ImageStatus on the kubelet's endpoint finds it" kubelet_knows "$IMG@$DSOCI" "$IMG:big-soci" "$IMG@$DSOCI"
  check "[$mode] ... the snapshot is local" soci_snapshot_local "$IMG:big-soci"
  before="$(blob_requests)"
  out="$(e2e_ctr run --snapshotter soci --rm "$IMG:big-soci" "soci-$mode-$RANDOM" 2>&1)"
  check "[$mode] ... a container starts from it ($out)" test "$out" = "big image"
  read_layer
  check "[$mode] ... and reads a 40 MiB file of a layer with a zTOC without a registry request ($(($(blob_requests) - before)) blob requests)" \
    test "$(blob_requests)" = "$before"
  [ "$mode" = lazy ] || return 0
  # Why ctr pulls there: the CRI's PullImage (PREFETCH_PULL=cri) leaves it lazily loaded.
  e2e_wipe_images
  layers="$(grep -c '"remote snapshot successfully prepared' "$E2E_WORK/soci.log")"
  run_ssm "$(params imageTags=big-soci imageDigest="$DSOCI")" PREFETCH_PULL=cri
  expect "[$mode] the CRI's PullImage of it (PREFETCH_PULL=cri)" $? 0 "outcome=pulled"
  layers=$(($(grep -c '"remote snapshot successfully prepared' "$E2E_WORK/soci.log") - layers))
  check "[$mode] ... leaves it lazily loaded ($layers layers mounted from the registry)" lazily_loaded "$IMG:big-soci" "$layers"
  before="$(blob_requests)"
  read_layer
  check "[$mode] ... whose files come from the registry when read ($(($(blob_requests) - before)) blob requests for a 40 MiB file)" \
    test "$(blob_requests)" -gt "$before"
}
lazily_loaded() { ! soci_snapshot_local "$1" && (($2 > 0)); }
# A container reads one 40 MiB file of the big image's last layer (its checksum, to stdout).
read_layer() { e2e_ctr run --snapshotter soci --rm "$IMG:big-soci" "soci-read-$RANDOM" /bin/busybox md5sum /data/blob4 >/dev/null 2>&1; }
