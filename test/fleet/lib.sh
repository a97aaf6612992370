#!/bin/bash
# Shared functions of the local fleet test (run.sh), on top of the node harness (test/node/lib.sh).
#
# A fleet on loopback: N real containerd nodes on this machine, all in the test's one network
# namespace, each in its own mount namespace held by a `sleep infinity` process (so a node stays
# addressable with `nsenter -t HOLDER -m` while its containerd is down). Each node has its own
# /etc/containerd (config.toml and certs.d, bind-mounted), its own /run/containerd (tmpfs), its
# containerd root on its own small tmpfs (a real filesystem that can be filled up, and disk usage
# independent of the host's), and its own state dir, socket and PREFETCH_RUN_DIR. One
# docker-registry on plain HTTP 127.0.0.1:5000 sits behind throttle-proxy.js, which serves the
# real ECR host name with TLS on 127.0.0.1:443 and answers 429 above a request rate.
#
# Functions run by the harness take a node index; fleet_in runs a function of this file inside a
# node's mount namespace, with E2E_WORK set to the node's directory and CONTAINERD_ADDRESS to its
# socket, so that test/node/lib.sh's node functions (config writing, e2e_wipe_images,
# e2e_image_usable, ...) work on that node unchanged.
# shellcheck disable=SC2034 # variables here are used by the scripts that source this file
# shellcheck source=test/node/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../node/lib.sh"

FLEET_DIR="${E2E_REPO_ROOT}/test/fleet"
FLEET_NODE_DISK_MB="${FLEET_NODE_DISK_MB:-64}"
FLEET_HOLDERS=()    # node index -> pid holding its mount namespace
FLEET_CONTAINERD=() # node index -> pid of its containerd, empty while it is down
FLEET_UPSTREAM=127.0.0.1:5000

# --------------------------------------------------------------------------------------------
# Setup / teardown (the registry side; nodes come after, with fleet_start_node). Every long-lived
# process is started with a parent-death signal (setpriv --pdeathsig KILL): should the test itself
# be killed with SIGKILL (no trap runs), its nodes, registry and proxy go with it.
fleet_setup() {
  E2E_WORK="$(mktemp -d "${TMPDIR:-/tmp}/prefetch-fleet.XXXXXX")"
  chmod 755 "$E2E_WORK"
  trap fleet_teardown EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$E2E_WORK"/{bin,registry,images,state,tmp,nodes,runs}

  # The aws shim, the token and the ECR host name, as in e2e_setup; every node shares them (one ECR).
  e2e_setup_ecr
  # Mount points of the nodes' own /etc/containerd and /run/containerd (mounted in their namespaces).
  mkdir -p /etc/containerd /run/containerd
  e2e_make_tls
  # docker-registry on plain HTTP behind the throttling proxy (relative URLs: the proxy changes the scheme).
  E2E_REGISTRY_PLAIN="$FLEET_UPSTREAM" e2e_start_registry
  fleet_start_proxy
}

fleet_teardown() {
  local rc=$? i pid holder ns
  set +e
  # Every process in a node's mount namespace is ours (the holder, containerd, the node script and
  # its ctr calls): found by the namespace, killed by pid.
  for i in "${!FLEET_HOLDERS[@]}"; do
    holder="${FLEET_HOLDERS[$i]}"
    ns="$(readlink "/proc/$holder/ns/mnt" 2>/dev/null)" || continue
    for pid in $(fleet_pids_in_ns "$ns"); do kill -9 "$pid" 2>/dev/null; done
  done
  for i in "${!FLEET_HOLDERS[@]}"; do e2e_wait_gone "${FLEET_HOLDERS[$i]}"; done
  # The registry and the proxy (E2E_PIDS), mounts and the work dir: as the node harness does.
  (exit "$rc")
  e2e_teardown
}

fleet_pids_in_ns() { # fleet_pids_in_ns MNT_NS_LINK: pids whose mount namespace is that one
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done
}

fleet_start_proxy() {
  local t="$E2E_WORK/registry/tls"
  setpriv --pdeathsig KILL node "$FLEET_DIR/throttle-proxy.js" --listen "$E2E_REGISTRY" --upstream "$FLEET_UPSTREAM" \
    --cert "$t/server.crt" --key "$t/server.key" --stats "$E2E_WORK/registry/proxy-stats.json" \
    >>"$E2E_WORK/registry/proxy.log" 2>&1 &
  E2E_PIDS+=("$!")
  e2e_poll fleet_proxy stats || die "throttle proxy did not start: $(tail -5 "$E2E_WORK/registry/proxy.log")"
}

# fleet_proxy reset [QUERY] | stats: zero the counters and set the limits (QUERY: limit=N and/or
# manifestLimit=N, requests let through per second; none by default) / print the counters (JSON:
# requests, forwarded, throttled, peakRequestsPerSecond, ...).
fleet_proxy() {
  local ca="$E2E_WORK/registry/tls/ca.crt"
  case "$1" in
    reset) curl -sf --cacert "$ca" -X POST "https://${E2E_HOST}/_fleet/reset?${2:-}" ;;
    stats) curl -sf --cacert "$ca" "https://${E2E_HOST}/_fleet/stats" ;;
    *) die "fleet_proxy: reset [QUERY] | stats" ;;
  esac
}

# The SSM document the nodes run, chosen like test/node/run.sh does: $PREFETCH_DOCUMENT_JSON, else
# the construct's synthesized document (examples/print-document.ts), else the one ssm-render.js
# builds from assets/prefetch-image.sh.
fleet_document() { # fleet_document OUT_FILE ROLLOUT_FILE: the document, and the default push rollout's settings
  PRINT_ROLLOUT_FILE="$2" e2e_document "$1"
}

# --------------------------------------------------------------------------------------------
# Nodes
fleet_node_dir() { printf '%s/nodes/node%02d' "$E2E_WORK" "$1"; }
fleet_node_name() { printf 'node%02d' "$1"; }

# fleet_in NODE FUNCTION ARGS...: run a function of this file (or of test/node/lib.sh) inside the
# node's mount namespace, as that node (E2E_WORK, CONTAINERD_ADDRESS).
fleet_in() {
  local i="$1" d
  shift
  d="$(fleet_node_dir "$i")"
  # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
  nsenter -t "${FLEET_HOLDERS[$i]}" -m -- env E2E_WORK="$d" CONTAINERD_ADDRESS="$d/containerd/containerd.sock" \
    bash -c 'source "$0" && "$@"' "$FLEET_DIR/lib.sh" "$@"
}

# A node: its directories, the process holding its mount namespace with the node's mounts, its
# containerd config and registry host config (test/node/lib.sh's, written inside the namespace).
fleet_start_node() { # fleet_start_node NODE
  local i="$1" d
  d="$(fleet_node_dir "$i")"
  mkdir -p "$d"/{etc-containerd/certs.d,containerd/root,containerd/cni-bin,containerd/cni-conf,run,registry/tls}
  # e2e_write_hosts_toml copies the CA from $E2E_WORK/registry/tls.
  cp "$E2E_WORK/registry/tls/ca.crt" "$d/registry/tls/ca.crt"
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's
  unshare -m --propagation private setpriv --pdeathsig KILL bash -c 'mount --bind "$1/etc-containerd" /etc/containerd &&
    mount -t tmpfs -o mode=711 tmpfs /run/containerd &&
    mount -t tmpfs -o "size=$2" tmpfs "$1/containerd/root" && exec sleep infinity' node-holder "$d" "${FLEET_NODE_DISK_MB}m" &
  FLEET_HOLDERS[i]=$!
  disown "$!" # reaped all the same; no "Killed" job report at teardown
  e2e_poll fleet_held "$i" || die "node $i: its namespace holder did not start"
  fleet_in "$i" e2e_write_containerd_config || die "node $i: cannot write its containerd config"
  fleet_in "$i" e2e_write_hosts_toml || die "node $i: cannot write its registry host config"
}

# The holder has made the node's mounts and sleeps.
fleet_held() { [ "$(cat "/proc/${FLEET_HOLDERS[$1]}/comm" 2>/dev/null)" = sleep ]; }

fleet_start_containerd() { # fleet_start_containerd NODE
  local i="$1" d
  d="$(fleet_node_dir "$i")"
  nsenter -t "${FLEET_HOLDERS[$i]}" -m -- setpriv --pdeathsig KILL containerd --config /etc/containerd/config.toml >>"$d/containerd/containerd.log" 2>&1 &
  FLEET_CONTAINERD[i]=$!
  disown "$!"
}

fleet_wait_containerd() { # fleet_wait_containerd NODE
  e2e_poll fleet_in "$1" e2e_ctr version ||
    die "node $1: containerd did not start: $(tail -5 "$(fleet_node_dir "$1")/containerd/containerd.log")"
}

# A crash: SIGKILL leaves the socket behind, as a containerd that died does, so ctr is refused at
# once (on 1.x a missing socket makes ctr wait its 10 s dial timeout for the daemon to appear).
fleet_crash_containerd() { # fleet_crash_containerd NODE
  local pid="${FLEET_CONTAINERD[$1]}"
  kill -9 "$pid" 2>/dev/null
  e2e_wait_gone "$pid"
  FLEET_CONTAINERD[$1]=""
}

# Fill the node's containerd filesystem (its root tmpfs) to 100% / free it again.
fleet_fill_disk() { # (in the node)
  local root="$E2E_WORK/containerd/root"
  fallocate -l "$(df -B1 --output=avail "$root" | tail -n1)" "$root/fill"
}
fleet_free_disk() { rm -f "$E2E_WORK/containerd/root/fill"; } # (in the node)
fleet_disk_percent() { df --output=pcent "$E2E_WORK/containerd/root" | tail -n1 | tr -d ' %'; } # (in the node)

# Warm: the node's containerd has both references the kubelet may ask for, HOST/REPO:TAG and
# HOST/REPO@DIGEST, on the pushed digest, and the image is usable by the CRI (test/node/lib.sh's
# e2e_image_usable: this platform's manifest and config, the committed snapshot of its layers).
fleet_warm() { # (in the node) fleet_warm IMAGE TAG DIGEST
  local image="$1" tag="$2" digest="$3" refs
  refs="$(e2e_ctr images ls | awk -v t="$image:$tag" -v d="$image@$digest" 'NR > 1 && ($1 == t || $1 == d) { print $1 "=" $3 }' | LC_ALL=C sort | tr '\n' ' ')"
  [ "$refs" = "$image:$tag=$digest $image@$digest=$digest " ] && e2e_image_usable "$image:$tag"
}

# The dispatcher's node list (target order): name, holder pid, the environment the agent would run
# the script with. Extra NODE=VAR=VALUE arguments add a variable to one node's environment.
fleet_nodes_json() { # fleet_nodes_json COUNT [NODE=VAR=VALUE...]
  local n="$1" i d extra kv
  shift
  for ((i = 0; i < n; i++)); do
    d="$(fleet_node_dir "$i")"
    extra="{}"
    for kv in "$@"; do
      [ "${kv%%=*}" = "$i" ] || continue
      kv="${kv#*=}"
      extra="$(jq -c --arg k "${kv%%=*}" --arg v "${kv#*=}" '. + {($k): $v}' <<<"$extra")"
    done
    jq -cn --arg name "$(fleet_node_name "$i")" --argjson pid "${FLEET_HOLDERS[$i]}" --argjson extra "$extra" \
      --arg path "$PATH" --arg shim "$AWS_SHIM_STATE" --arg sock "$d/containerd/containerd.sock" --arg run "$d/run" '
      {name: $name, pid: $pid, env: ({PATH: $path, HOME: "/root", LANG: "C.UTF-8", AWS_SHIM_STATE: $shim,
        CONTAINERD_ADDRESS: $sock, PREFETCH_RUN_DIR: $run} + $extra)}'
  done | jq -s .
}
