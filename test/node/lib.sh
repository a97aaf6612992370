#!/bin/bash
# Shared harness for the node-side end-to-end tests (run.sh) and the benchmark (bench.sh).
#
# It runs a real node on loopback: containerd + runc with their own config, socket and
# root under a temp dir, an OCI registry with basic auth (the "ECR token" is a ~2 KB random
# string, htpasswd holds its first 72 characters because bcrypt only reads 72 bytes), and an
# `aws` shim first on PATH. Everything runs inside private mount and network namespaces
# (`unshare -m -n`: only a loopback interface, so no test traffic can leave the machine and
# port 443 is ours). /etc/hosts maps the real ECR host name ACCOUNT.dkr.ecr.REGION.amazonaws.com
# to 127.0.0.1, the registry serves TLS on 127.0.0.1:443 with a throwaway CA, and
# /etc/containerd is a bind mount of a test directory whose certs.d/HOST/hosts.toml trusts that
# CA: the node script reads the "system" containerd config and registry host config unmodified
# and pulls the ECR host name unmodified.
#
# Source it, then call e2e_reexec_in_namespace "$@" first thing, then e2e_setup.
# shellcheck disable=SC2034 # variables here are used by the scripts that source this file

E2E_ACCOUNT=123456789012
E2E_REGION=eu-west-1
E2E_HOST="${E2E_ACCOUNT}.dkr.ecr.${E2E_REGION}.amazonaws.com"
# Where ECR redirects layer downloads (presigned S3 URLs; s3-proxy.js plays it).
E2E_S3_HOST="prod-${E2E_REGION}-starport-layer-bucket.s3.${E2E_REGION}.amazonaws.com"
E2E_NS=k8s.io
E2E_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The node script under test (E2E_SCRIPT: another version, e.g. to measure what a change gained).
E2E_SCRIPT="${E2E_SCRIPT:-${E2E_REPO_ROOT}/assets/prefetch-image.sh}"
# The shell the script runs under (E2E_BASH: another bash, e.g. Amazon Linux 2's 4.2): the script is
# run as `$E2E_BASH SCRIPT`; without it, the rendered document is executed (its shebang, /bin/bash).
E2E_BASH="${E2E_BASH:-}"
E2E_RUN_WITH=(${E2E_BASH:+"$E2E_BASH"})

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# --------------------------------------------------------------------------------------
# Packages: CI machines only have what the project installs.
e2e_ensure_packages() {
  local missing=() cmd pkg
  local -A need=(
    [containerd]=containerd [runc]=runc [docker-registry]=docker-registry [skopeo]=skopeo
    [htpasswd]=apache2-utils [busybox]=busybox-static [pigz]=pigz [jq]=jq [openssl]=openssl
    [curl]=curl [unshare]=util-linux [flock]=util-linux [pgrep]=procps
  )
  for cmd in "${!need[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
  done
  # busybox must be the static one: it is copied into test images.
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  ((${#missing[@]} == 0)) && return 0
  [ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
  log "installing: ${missing[*]}"
  local pkgs
  pkgs="$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs; } >&2 \
    || die "apt-get install failed"
  # On a host with systemd the packages may start services on their default socket/port; we
  # never use those (own socket, own port), so they are left alone.
}


# --------------------------------------------------------------------------------------
# Tools built from the Go module proxy (Debian 12 has containerd 1.6 only and no crictl), once,
# into a cache that outlives the run: ${E2E_TOOLS_CACHE:-~/.cache/cdk-image-prefetcher}.
E2E_CRICTL_VERSION=v1.37.0
E2E_TOOLS_CACHE="${E2E_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cdk-image-prefetcher}"

# e2e_go_install DIR PACKAGE@VERSION...: static binaries into DIR, atomically.
e2e_go_install() {
  local dir="$1"
  shift
  command -v go >/dev/null 2>&1 || die "go is needed to build $*"
  log "building $* with go (once; cached in $dir)"
  rm -rf "$dir.tmp"
  GOBIN="$dir.tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "$@" >&2 || die "go install $* failed"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

# e2e_module_src MODULE@VERSION DEST: a module's source from the Go module proxy, copied writable to DEST.
e2e_module_src() {
  local src
  src="$(cd / && GOFLAGS=-mod=mod go mod download -json "$1" | jq -r '.Dir // empty')"
  [ -d "$src" ] || die "go mod download $1 failed"
  { mkdir -p "${2%/*}" && cp -r "$src" "$2" && chmod -R u+w "$2"; } || die "cannot copy $src to $2"
}

# e2e_go_build DIR SRC CGO GO_BUILD_ARG...: `go build` inside the module at SRC (`go install
# pkg@version` refuses modules with replace or exclude directives), binaries into DIR, atomically;
# SRC (a copy from e2e_module_src under DIR's parent) is removed.
e2e_go_build() {
  local dir="$1" src="$2" cgo="$3"
  shift 3
  rm -rf "$dir.tmp"
  (cd "$src" && CGO_ENABLED="$cgo" GOFLAGS=-mod=mod go build -o "$dir.tmp/" "$@") >&2 || die "go build $* in $src failed"
  rm -rf "$dir" "$src" && mv "$dir.tmp" "$dir"
}

# The containerd under test: Debian's 1.6 unless E2E_CONTAINERD names a 1.7 or 2.x release
# (vX.Y.Z), which is built from its module source (containerd, ctr and the runc shim; runc stays
# Debian's) and put first on PATH, where the node script finds it as it finds a node's. (`go
# install pkg@version` refuses 1.7: its go.mod has exclude directives; building inside the module
# honours them.)
e2e_use_containerd() {
  local v="${E2E_CONTAINERD:-system}" dir m
  [ "$v" = system ] && return 0
  [[ "$v" =~ ^v(1\.7|2\.[0-9]+)\.[0-9]+$ ]] || die "E2E_CONTAINERD: a containerd 1.7 or 2.x release like v2.2.9, got: $v"
  m=github.com/containerd/containerd
  [[ "$v" == v2.* ]] && m+=/v2
  dir="$E2E_TOOLS_CACHE/containerd-$v"
  { [ -x "$dir/containerd" ] && [ -x "$dir/ctr" ] && [ -x "$dir/containerd-shim-runc-v2" ]; } ||
    e2e_build_containerd "$v" "$m" "$dir"
  export PATH="$dir:$PATH"
}

e2e_build_containerd() { # e2e_build_containerd VERSION MODULE DIR
  local v="$1" m="$2" dir="$3"
  command -v go >/dev/null 2>&1 || die "go is needed to build containerd $v"
  log "building containerd $v with go (once; cached in $dir)"
  rm -rf "$dir.src"
  e2e_module_src "$m@$v" "$dir.src"
  e2e_go_build "$dir" "$dir.src" 0 -tags "no_btrfs no_devmapper no_zfs no_aufs" -ldflags "-X $m/version.Version=$v" \
    ./cmd/containerd ./cmd/ctr ./cmd/containerd-shim-runc-v2
}

# crictl, to ask the CRI plugin itself (ImageStatus) as the kubelet does.
e2e_use_crictl() {
  local dir="$E2E_TOOLS_CACHE/crictl-$E2E_CRICTL_VERSION"
  [ -x "$dir/crictl" ] || e2e_go_install "$dir" "sigs.k8s.io/cri-tools/cmd/crictl@$E2E_CRICTL_VERSION"
  E2E_CRICTL="$dir/crictl"
  export E2E_CRICTL
}

# soci-snapshotter (the snapshotter AL2023 EKS AMIs run with the FastImagePull feature gate), for
# soci.sh: soci-snapshotter-grpc and the soci CLI, built from the Go module proxy with cgo (its
# ztoc package links zlib statically: `-l:libz.a`, Debian's zlib1g-dev). The commands are their own
# module, github.com/awslabs/soci-snapshotter/cmd, which the proxy serves only as a pseudo-version
# (no tag of its own) and which replaces the root module with `../`: the two are laid out as in the
# repository. E2E_SOCI_CMD_VERSION is the cmd module at the v0.16.1 commit (the proxy gives both the
# same time, 2026-09-30T23:32:40Z).
E2E_SOCI_VERSION=v0.16.1
E2E_SOCI_CMD_VERSION=v0.0.0-20260930233240-61147fe7c929
e2e_use_soci() {
  local dir="$E2E_TOOLS_CACHE/soci-snapshotter-$E2E_SOCI_VERSION" m=github.com/awslabs/soci-snapshotter
  if [ ! -x "$dir/soci-snapshotter-grpc" ] || [ ! -x "$dir/soci" ]; then
    command -v go >/dev/null 2>&1 || die "go is needed to build soci-snapshotter $E2E_SOCI_VERSION"
    { command -v gcc >/dev/null 2>&1 && [ -f /usr/lib/"$(gcc -print-multiarch 2>/dev/null)"/libz.a ]; } || {
      log "installing gcc and zlib1g-dev (soci-snapshotter links zlib statically)"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev zlib1g-dev; } >&2 ||
        die "apt-get install gcc zlib1g-dev failed"
    }
    log "building soci-snapshotter $E2E_SOCI_VERSION with go (once; cached in $dir)"
    rm -rf "$dir.src"
    e2e_module_src "$m@$E2E_SOCI_VERSION" "$dir.src"
    rm -rf "$dir.src/cmd"
    e2e_module_src "$m/cmd@$E2E_SOCI_CMD_VERSION" "$dir.src/cmd"
    e2e_go_build "$dir" "$dir.src/cmd" 1 -ldflags "-X $m/version.Version=$E2E_SOCI_VERSION" ./soci-snapshotter-grpc ./soci
    rm -rf "$dir.src"
  fi
  E2E_SOCI_DIR="$dir"
  export E2E_SOCI_DIR
}

# The kubelet's ECR credential provider, as on EKS AMIs (/etc/eks/image-credential-provider/), built
# from the Go module proxy: k8s.io/cloud-provider-aws cmd/ecr-credential-provider. (`go install
# pkg@version` refuses it: its go.mod has a replace directive; it is built inside the module.)
E2E_ECR_PROVIDER_VERSION=v1.37.1
e2e_use_ecr_credential_provider() {
  local dir="$E2E_TOOLS_CACHE/ecr-credential-provider-$E2E_ECR_PROVIDER_VERSION" m=k8s.io/cloud-provider-aws
  if [ ! -x "$dir/ecr-credential-provider" ]; then
    command -v go >/dev/null 2>&1 || die "go is needed to build ecr-credential-provider $E2E_ECR_PROVIDER_VERSION"
    log "building ecr-credential-provider $E2E_ECR_PROVIDER_VERSION with go (once; cached in $dir)"
    rm -rf "$dir.src"
    e2e_module_src "$m@$E2E_ECR_PROVIDER_VERSION" "$dir.src"
    e2e_go_build "$dir" "$dir.src" 0 -ldflags "-X main.gitVersion=$E2E_ECR_PROVIDER_VERSION" ./cmd/ecr-credential-provider
  fi
  E2E_ECR_PROVIDER="$dir/ecr-credential-provider"
  export E2E_ECR_PROVIDER
}

# The ECR API endpoint (GetAuthorizationToken, fake-ecr-api.js) on plain HTTP, and the environment
# the real clients need to use it: static fake credentials, no instance metadata, the endpoint.
E2E_ECR_API=127.0.0.1:4566
e2e_start_ecr_api() { # e2e_start_ecr_api STATE_DIR
  export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
  export AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL_ECR="http://$E2E_ECR_API"
  unset AWS_PROFILE AWS_SESSION_TOKEN
  setpriv --pdeathsig KILL node "${E2E_REPO_ROOT}/test/node/fake-ecr-api.js" --listen "$E2E_ECR_API" \
    --state "$1" --region "$E2E_REGION" >>"$1/ecr-api.out" 2>&1 &
  E2E_PIDS+=("$!")
  e2e_poll curl -s -o /dev/null "http://$E2E_ECR_API/" || die "fake ECR API did not start: $(tail -5 "$1/ecr-api.out")"
}

# Re-run the calling script inside a private mount namespace (mounts vanish with it).
e2e_reexec_in_namespace() {
  [ "$(id -u)" = 0 ] || die "the node tests need root (containerd, runc, mounts)"
  if [ -z "${E2E_IN_NAMESPACE:-}" ]; then
    e2e_ensure_packages
    # Builds need the network: before entering the namespace.
    e2e_use_containerd
    e2e_use_crictl
    e2e_use_ecr_credential_provider
    export E2E_IN_NAMESPACE=1
    exec unshare -m -n --propagation private bash "$0" "$@"
  fi
}

# --------------------------------------------------------------------------------------
# Setup / teardown
E2E_PIDS=()
e2e_setup() {
  E2E_WORK="$(mktemp -d "${TMPDIR:-/tmp}/prefetch-e2e.XXXXXX")"
  chmod 755 "$E2E_WORK"
  trap e2e_teardown EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$E2E_WORK"/{bin,etc-containerd/certs.d,containerd,registry,images,state,locks,tmp}

  e2e_setup_ecr

  # /etc/containerd of this namespace: config.toml + certs.d, read by the script unmodified.
  mkdir -p /etc/containerd /run/containerd
  mount --bind "$E2E_WORK/etc-containerd" /etc/containerd
  # containerd creates /run/containerd/{fifo,s,runc}: keep them out of the host's /run.
  mount -t tmpfs -o mode=711 tmpfs /run/containerd
  e2e_write_containerd_config
  e2e_make_tls
  e2e_write_hosts_toml

  e2e_start_registry
  # A test that needs more on the node before containerd starts (soci.sh: its snapshotter) defines this.
  if declare -F e2e_before_containerd >/dev/null; then e2e_before_containerd; fi
  e2e_start_containerd
  export CONTAINERD_ADDRESS="$E2E_WORK/containerd/containerd.sock"
  export CONTAINERD_NAMESPACE="$E2E_NS"
  # The script keeps locks and private files under /run by default; keep the test's apart.
  export PREFETCH_RUN_DIR="$E2E_WORK/run"
}

# The "ECR" side every test shares: the aws shim first on PATH, a ~2 KB token like ECR's (base64
# text; htpasswd gets its first 72 characters), loopback up, and /etc/hosts mapping the ECR host name
# to the registry's address, 127.0.0.1:443.
e2e_setup_ecr() {
  install -m 755 "${E2E_REPO_ROOT}/test/node/fake-aws.sh" "$E2E_WORK/bin/aws"
  export AWS_SHIM_STATE="$E2E_WORK/state"
  export PATH="$E2E_WORK/bin:$PATH"
  E2E_TOKEN="$(openssl rand -base64 1536 | tr -d '\n')"
  printf '%s' "$E2E_TOKEN" >"$AWS_SHIM_STATE/token"
  chmod 600 "$AWS_SHIM_STATE/token"
  ip link set lo up
  E2E_REGISTRY="127.0.0.1:443"
  printf '127.0.0.1 localhost %s %s\n' "$E2E_HOST" "$E2E_S3_HOST" >"$E2E_WORK/hosts"
  mount --bind "$E2E_WORK/hosts" /etc/hosts
}

e2e_teardown() {
  local rc=$? pid
  set +e
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${E2E_PIDS[@]}"; do e2e_wait_gone "$pid"; done
  # Kill containers' shims we started (they belong to our containerd's state dir).
  if [ -n "${E2E_WORK:-}" ]; then
    local p
    for p in $(pgrep -f "containerd-shim.*-address ${E2E_WORK}/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    # Overlay mounts of containers/snapshots live in this namespace; unmount before removing.
    grep -o " ${E2E_WORK}/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    umount -l /run/containerd 2>/dev/null
    umount -l /etc/containerd 2>/dev/null
    if [ -z "${E2E_KEEP:-}" ]; then rm -rf "$E2E_WORK"; else log "kept $E2E_WORK"; fi
  fi
  exit "$rc"
}

e2e_wait_gone() {
  local i
  for i in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null
}

# A throwaway CA and a server certificate for the ECR host name.
e2e_make_tls() {
  local t="$E2E_WORK/registry/tls"
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=prefetch e2e CA" \
    -keyout "$t/ca.key" -out "$t/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$E2E_HOST" \
    -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:%s,IP:127.0.0.1\n' "$E2E_HOST" "$E2E_S3_HOST" >"$t/ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
    -days 2 -extfile "$t/ext" -out "$t/server.crt" 2>/dev/null
}

# containerd's version as vX.Y.Z and its major number.
e2e_containerd_version() {
  E2E_CONTAINERD_VERSION="$(containerd --version | awk '{ print $3 }')"
  E2E_CONTAINERD_VERSION="v${E2E_CONTAINERD_VERSION#v}"
  E2E_CONTAINERD_MAJOR="${E2E_CONTAINERD_VERSION:1:1}"
}

e2e_write_containerd_config() {
  local d="$E2E_WORK/containerd" f=/etc/containerd/config.toml
  e2e_containerd_version
  # Own root, state and sockets; the version line and the plugin sections depend on the version.
  printf 'version = %s\n' "$((E2E_CONTAINERD_MAJOR >= 2 ? 3 : 2))" >"$f"
  cat >>"$f" <<EOF
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = "$d/debug.sock"
[metrics]
  address = ""
EOF
  if [ "$E2E_CONTAINERD_MAJOR" -ge 2 ]; then
    # Shaped like the EKS AL2023 AMI's (version 3, discard_unpacked_layers, certs.d path). NRI is
    # off: it would put its socket in the host's /var/run/nri.
    cat >>"$f" <<EOF
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  discard_unpacked_layers = true
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry.k8s.io/pause:3.10"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["$d/cni-bin"]
  conf_dir = "$d/cni-conf"
EOF
  else
    cat >>"$f" <<EOF
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$d/cni-bin"
      conf_dir = "$d/cni-conf"
EOF
  fi
}

# The node's registry host config for the ECR host: trust the test CA (a relative path, as
# node configs often have). containerd 1.6 only parses hosts.toml files that have a [host]
# table, so the server is also listed as a host.
e2e_write_hosts_toml() {
  local d="/etc/containerd/certs.d/$E2E_HOST"
  mkdir -p "$d"
  cp "$E2E_WORK/registry/tls/ca.crt" "$d/ca.crt"
  cat >"$d/hosts.toml" <<EOF
server = "https://${E2E_HOST}"
ca = "ca.crt"

[host."https://${E2E_HOST}"]
  capabilities = ["pull", "resolve"]
  ca = "ca.crt"
EOF
}

# The registry: TLS on $E2E_REGISTRY, the ECR host name's address. With E2E_REGISTRY_PLAIN=ADDR it
# serves plain HTTP on ADDR instead (relative URLs), behind a proxy that terminates TLS (the fleet's).
e2e_start_registry() {
  local r="$E2E_WORK/registry" http url
  htpasswd -Bbc "$r/htpasswd" AWS "${E2E_TOKEN:0:72}" 2>/dev/null
  if [ -n "${E2E_REGISTRY_PLAIN:-}" ]; then
    http="  addr: ${E2E_REGISTRY_PLAIN}
  relativeurls: true"
    url="http://${E2E_REGISTRY_PLAIN}/v2/"
  else
    http="  addr: ${E2E_REGISTRY}
  tls:
    certificate: $r/tls/server.crt
    key: $r/tls/server.key"
    url="https://${E2E_HOST}/v2/"
  fi
  cat >"$r/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $r/data
  delete:
    enabled: true
http:
$http
auth:
  htpasswd:
    realm: e2e
    path: $r/htpasswd
EOF
  # The registry dies with the test even if the test is killed (no trap runs then).
  setpriv --pdeathsig KILL docker-registry serve "$r/config.yml" >>"$r/registry.log" 2>&1 &
  E2E_REGISTRY_PID=$!
  E2E_PIDS+=("$E2E_REGISTRY_PID")
  e2e_poll curl -s -o /dev/null --cacert "$r/tls/ca.crt" "$url" ||
    die "registry did not start: $(tail -5 "$r/registry.log")"
}

# e2e_poll COMMAND...: true once the command succeeds, polling every 50 ms for up to 5 s.
e2e_poll() {
  local i
  for i in $(seq 100); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

e2e_stop_registry() {
  kill "$E2E_REGISTRY_PID" 2>/dev/null
  e2e_wait_gone "$E2E_REGISTRY_PID"
}

e2e_start_containerd() {
  local d="$E2E_WORK/containerd"
  mkdir -p "$d/cni-bin" "$d/cni-conf"
  containerd --config /etc/containerd/config.toml >>"$d/containerd.log" 2>&1 &
  E2E_CONTAINERD_PID=$!
  E2E_PIDS+=("$E2E_CONTAINERD_PID")
  e2e_poll ctr -a "$d/containerd.sock" version ||
    die "containerd did not start: $(tail -5 "$d/containerd.log")"
}

e2e_stop_containerd() {
  kill "$E2E_CONTAINERD_PID" 2>/dev/null
  e2e_wait_gone "$E2E_CONTAINERD_PID"
}

# Number of requests the registry has served so far (access log lines).
e2e_registry_requests() {
  grep -c '"\(GET\|HEAD\) /v2/' "$E2E_WORK/registry/registry.log" || true
}

# --------------------------------------------------------------------------------------
# Test images, built without Docker: an OCI layout assembled with tar + sha256sum + jq.
#   e2e_build_image NAME MB_PER_LAYER N_LAYERS MARKER
# Layer 1 is a busybox rootfs (so `ctr run` works, printing MARKER), then N random layers.
# Writes the layout to $E2E_WORK/images/NAME.
e2e_build_image() {
  local name="$1" mb="$2" n="$3" marker="$4"
  local dir="$E2E_WORK/images/$name" tmp="$E2E_WORK/tmp/$name"
  rm -rf "$dir" "$tmp"
  mkdir -p "$dir/blobs/sha256" "$tmp/rootfs/bin" "$tmp/rootfs/etc"
  cp /bin/busybox "$tmp/rootfs/bin/busybox"
  ln -s busybox "$tmp/rootfs/bin/sh"
  ln -s busybox "$tmp/rootfs/bin/cat"
  printf '%s\n' "$marker" >"$tmp/rootfs/etc/marker"
  local layers=() diffs=() i
  tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$tmp/layer0.tar" .
  for ((i = 1; i <= n; i++)); do
    mkdir -p "$tmp/l$i/data"
    head -c "$((mb * 1024 * 1024))" /dev/urandom >"$tmp/l$i/data/blob$i"
    tar -C "$tmp/l$i" --numeric-owner --owner=0 --group=0 -cf "$tmp/layer$i.tar" .
    rm -rf "$tmp/l$i"
  done
  for ((i = 0; i <= n; i++)); do
    diffs+=("sha256:$(sha256sum <"$tmp/layer$i.tar" | cut -d' ' -f1)")
    pigz -0 -c "$tmp/layer$i.tar" >"$tmp/layer$i.tar.gz"
    rm -f "$tmp/layer$i.tar"
    local dg size
    dg="$(sha256sum <"$tmp/layer$i.tar.gz" | cut -d' ' -f1)"
    size="$(stat -c %s "$tmp/layer$i.tar.gz")"
    mv "$tmp/layer$i.tar.gz" "$dir/blobs/sha256/$dg"
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$size}")
  done
  local config cdg csize manifest
  config="$(jq -cn --arg m "$marker" --args '{
      architecture: "amd64", os: "linux",
      config: {Cmd: ["/bin/cat", "/etc/marker"], Env: ["PATH=/bin"], Labels: {marker: $m}},
      rootfs: {type: "layers", diff_ids: $ARGS.positional}
    }' "${diffs[@]}")"
  config="$(jq -c --arg a "$(e2e_goarch)" '.architecture = $a' <<<"$config")"
  cdg="$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
  csize="$(printf '%s' "$config" | wc -c)"
  printf '%s' "$config" >"$dir/blobs/sha256/$cdg"
  manifest="$(printf '%s\n' "${layers[@]}" | jq -cs --arg c "sha256:$cdg" --argjson s "$csize" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $s},
      layers: .
    }')"
  rm -rf "$tmp"
  e2e_write_layout "$dir" "$manifest" application/vnd.oci.image.manifest.v1+json
}

# e2e_write_layout DIR JSON MEDIA_TYPE: stores the top-level manifest or index as a blob, and the
# OCI layout files that point at it (ref name "latest"). Prints its digest.
e2e_write_layout() {
  local dir="$1" doc="$2" type="$3" dg size
  dg="$(printf '%s' "$doc" | sha256sum | cut -d' ' -f1)"
  size="$(printf '%s' "$doc" | wc -c)"
  printf '%s' "$doc" >"$dir/blobs/sha256/$dg"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  jq -cn --arg t "$type" --arg d "sha256:$dg" --argjson s "$size" '{schemaVersion: 2, manifests: [
      {mediaType: $t, digest: $d, size: $s,
       annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$dir/index.json"
  echo "sha256:$dg"
}

# e2e_build_index NAME IMAGE_FOR_THIS_PLATFORM OTHER_IMAGE: a multi-arch layout (an image index)
# whose entry for this machine's platform is the first image and whose linux/s390x entry is the
# second. Prints the index digest.
e2e_build_index() {
  local name="$1" mine="$2" other="$3" dir="$E2E_WORK/images/$1" entries=() src m
  rm -rf "$dir"
  mkdir -p "$dir/blobs/sha256"
  for src in "$mine" "$other"; do
    cp "$E2E_WORK/images/$src/blobs/sha256/"* "$dir/blobs/sha256/"
    entries+=("$(jq -c '.manifests[0] | del(.annotations)' "$E2E_WORK/images/$src/index.json")")
  done
  local index
  index="$(jq -cn --arg arch "$(e2e_goarch)" --argjson a "${entries[0]}" --argjson b "${entries[1]}" '{
      schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [($a + {platform: {os: "linux", architecture: $arch}}),
                  ($b + {platform: {os: "linux", architecture: "s390x"}})]}')"
  e2e_write_layout "$dir" "$index" application/vnd.oci.image.index.v1+json
}

e2e_goarch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# e2e_push NAME REPO TAG [PUSHED_AT]: push the layout, record it for the aws shim's
# describe-images (imagePushedAt defaults to now), print the manifest digest.
e2e_push() {
  local name="$1" repo="$2" tag="$3" pushed_at="${4:-$(date -u +%Y-%m-%dT%H:%M:%S.%3N+00:00)}"
  local auth="$E2E_WORK/tmp/auth.json" digest size
  [ -f "$auth" ] || {
    jq -n --arg h "$E2E_REGISTRY" --arg a "$(printf 'AWS:%s' "$E2E_TOKEN" | base64 -w0)" \
      '{auths: {($h): {auth: $a}}}' >"$auth"
    chmod 600 "$auth"
  }
  skopeo copy -q --multi-arch all --dest-tls-verify=false --dest-authfile "$auth" \
    --digestfile "$E2E_WORK/tmp/digest" \
    "oci:$E2E_WORK/images/$name:latest" "docker://$E2E_REGISTRY/$repo:$tag" >&2 \
    || die "skopeo push of $name to $repo:$tag failed"
  digest="$(cat "$E2E_WORK/tmp/digest")"
  size="$(du -sb "$E2E_WORK/images/$name/blobs" | cut -f1)"
  e2e_record_image "$repo" "$tag" "$digest" "$pushed_at" "$size"
  echo "$digest"
}

# The aws shim's view of ECR: $AWS_SHIM_STATE/images.json, a list of imageDetails entries.
e2e_record_image() {
  local repo="$1" tag="$2" digest="$3" pushed_at="$4" size="$5" f="$AWS_SHIM_STATE/images.json"
  [ -f "$f" ] || echo '[]' >"$f"
  jq --arg r "$repo" --arg t "$tag" --arg d "$digest" --arg p "$pushed_at" --argjson s "$size" '
    # a tag moves: take it off any other image of the repository
    map(if .repositoryName == $r then .imageTags -= [$t] else . end)
    | if any(.[]; .repositoryName == $r and .imageDigest == $d)
      then map(if .repositoryName == $r and .imageDigest == $d
               then .imageTags += [$t] | .imagePushedAt = $p else . end)
      else . + [{registryId: "'"$E2E_ACCOUNT"'", repositoryName: $r, imageDigest: $d,
                 imageTags: [$t], imageSizeInBytes: $s, imagePushedAt: $p,
                 imageManifestMediaType: "application/vnd.oci.image.manifest.v1+json"}]
      end' "$f" >"$f.new" && mv "$f.new" "$f"
}

# --------------------------------------------------------------------------------------
# containerd helpers
e2e_ctr() { CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1 ctr -a "$CONTAINERD_ADDRESS" -n "$E2E_NS" "$@"; }
# The CRI image service, as the kubelet calls it (crictl talks CRI v1 over the same socket).
e2e_crictl() {
  "$E2E_CRICTL" --config /dev/null --runtime-endpoint "unix://$CONTAINERD_ADDRESS" \
    --image-endpoint "unix://$CONTAINERD_ADDRESS" --timeout 10s "$@"
}
# e2e_cri_knows REF TAG_REF DIGEST_REF: the CRI's ImageStatus for REF finds an image that lists
# TAG_REF among its repoTags and DIGEST_REF among its repoDigests.
e2e_cri_knows() {
  e2e_crictl inspecti -o json "$1" 2>/dev/null |
    jq -e --arg t "$2" --arg d "$3" '.status | (.repoTags | index($t)) != null and (.repoDigests | index($d)) != null' >/dev/null
}

# Remove every image and every lease, and let GC drop content and snapshots (a cold node). The
# leases matter: a pull killed with SIGKILL leaves its lease behind (ctr's, gc.expire 24 h), which
# keeps the snapshots and blobs it made alive after their images are removed; a later pull then finds
# those snapshots and skips fetching their layers (containerd core/unpack/unpacker.go: "Unpack may
# skip fetching layers whose snapshots already exist"), which is not what a cold node does.
e2e_wipe_images() {
  local refs leases
  leases="$(e2e_ctr leases ls -q)"
  if [ -n "$leases" ]; then
    # shellcheck disable=SC2086 # one lease ID per word
    e2e_ctr leases rm --sync $leases >/dev/null
  fi
  refs="$(e2e_ctr images ls -q)"
  if [ -n "$refs" ]; then
    # shellcheck disable=SC2086 # one reference per word
    e2e_ctr images rm --sync $refs >/dev/null
  fi
  # content without an image (e.g. from an interrupted pull) is removed by GC too.
  e2e_ctr content ls -q | xargs -r ctr -a "$CONTAINERD_ADDRESS" -n "$E2E_NS" content rm >/dev/null 2>&1 || true
}

# e2e_image_usable REF [SNAPSHOTTER]: REF is what the CRI needs to report it (ImageStatus) and to
# start a container from it, read here independently of the node script: the manifest (this
# platform's, under an index) and the config blob, the committed snapshot named by the chain ID of
# the config's diff IDs, and the config's GC label `containerd.io/gc.ref.snapshot.<snapshotter>`
# that keeps that snapshot alive once no lease holds it. Layer blobs are not required: the CRI
# reads only the manifests and the config (containerd v2.2 internal/cri/store/image/image.go,
# getImage) and runs containers from the snapshot; with discard_unpacked_layers (EKS AL2023) its
# own pulls let GC drop the layer blobs after unpacking (internal/cri/server/images/image_pull.go,
# ChildGCLabelsFilterLayers).
e2e_image_usable() {
  local ref="$1" sn="${2:-overlayfs}"
  e2e_chain_id "$ref" || return 1
  e2e_ctr snapshots --snapshotter "$sn" info "$E2E_CHAIN" 2>/dev/null | jq -e '.Kind == "Committed"' >/dev/null || return 1
  e2e_ctr content ls "digest==$E2E_CONFIG" | grep -qF "containerd.io/gc.ref.snapshot.$sn=$E2E_CHAIN"
}

# e2e_chain_id REF: the config digest (E2E_CONFIG) and the chain ID of the layers (E2E_CHAIN) of REF's
# image for this platform, from the content store.
e2e_chain_id() {
  local target doc d
  E2E_CONFIG="" E2E_CHAIN=""
  target="$(e2e_ctr images ls | awk -v r="$1" 'NR > 1 && $1 == r { print $3 }')"
  [ -n "$target" ] || return 1
  doc="$(e2e_ctr content get "$target" 2>/dev/null)" || return 1
  if jq -e '.manifests' <<<"$doc" >/dev/null 2>&1; then
    d="$(jq -r --arg a "$(e2e_goarch)" \
      '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a)][0].digest // empty' <<<"$doc")"
    doc="$(e2e_ctr content get "$d" 2>/dev/null)" || return 1
  fi
  E2E_CONFIG="$(jq -r '.config.digest // empty' <<<"$doc")"
  [ -n "$E2E_CONFIG" ] || return 1
  for d in $(e2e_ctr content get "$E2E_CONFIG" 2>/dev/null | jq -r '.rootfs.diff_ids[]'); do
    if [ -z "$E2E_CHAIN" ]; then E2E_CHAIN="$d"; else E2E_CHAIN="sha256:$(printf '%s %s' "$E2E_CHAIN" "$d" | sha256sum | cut -d' ' -f1)"; fi
  done
  [ -n "$E2E_CHAIN" ]
}

# e2e_fill_store N: N more images in k8s.io, as a busy node holds (distinct manifests and configs
# over one shared busybox layer, named busy.example/app-I:v1), imported from one OCI archive.
e2e_fill_store() {
  local n="$1" dir="$E2E_WORK/tmp/busy" src="$E2E_WORK/images/busy-base" i base config layers cdg mdg entries=()
  [ -d "$src" ] || e2e_build_image busy-base 0 0 busy >/dev/null
  rm -rf "$dir" && mkdir -p "$dir/blobs/sha256"
  cp "$src/blobs/sha256/"* "$dir/blobs/sha256/"
  base="$(jq -r '.manifests[0].digest' "$src/index.json")"
  base="$(cat "$src/blobs/sha256/${base#sha256:}")"
  config="$(jq -r '.config.digest' <<<"$base")"
  config="$(cat "$src/blobs/sha256/${config#sha256:}")"
  layers="$(jq -c '.layers' <<<"$base")"
  # String edits, not jq (200 jq starts take seconds): the config gets a label "n".
  [[ "$config" == *'"Labels":{'* ]] || die "unexpected test image config: $config"
  for ((i = 1; i <= n; i++)); do
    local c m
    c="${config/'"Labels":{'/'"Labels":{"n":"'$i'",'}"
    cdg="$(printf '%s' "$c" | sha256sum | cut -d' ' -f1)"
    printf '%s' "$c" >"$dir/blobs/sha256/$cdg"
    m='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$cdg'","size":'${#c}'},"layers":'$layers'}'
    mdg="$(printf '%s' "$m" | sha256sum | cut -d' ' -f1)"
    printf '%s' "$m" >"$dir/blobs/sha256/$mdg"
    entries+=("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdg\",\"size\":${#m},\"annotations\":{\"io.containerd.image.name\":\"busy.example/app-$i:v1\",\"org.opencontainers.image.ref.name\":\"v1\"}}")
  done
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  printf '%s\n' "${entries[@]}" | jq -cs '{schemaVersion: 2, manifests: .}' >"$dir/index.json"
  tar -C "$dir" -cf "$dir.tar" . || die "cannot write $dir.tar"
  e2e_ctr images import "$dir.tar" >/dev/null || die "import of $n images failed"
  rm -rf "$dir" "$dir.tar"
}

# e2e_document OUT: the SSM document the tests run, into OUT: $PREFETCH_DOCUMENT_JSON if set, else the
# construct's synthesized document (examples/print-document.ts, which with PRINT_ROLLOUT_FILE also
# writes the default push rollout's settings), else built from assets/prefetch-image.sh exactly as
# the construct does (ssm-render.js).
e2e_document() {
  local out="$1"
  if [ -n "${PREFETCH_DOCUMENT_JSON:-}" ]; then
    cp "$PREFETCH_DOCUMENT_JSON" "$out"
    log "document: $PREFETCH_DOCUMENT_JSON"
  elif [ -f "$E2E_REPO_ROOT/examples/print-document.ts" ] &&
    (cd "$E2E_REPO_ROOT" && npx --no-install ts-node --project tsconfig.dev.json examples/print-document.ts >"$out" 2>"$E2E_WORK/doc.err") &&
    jq -e '.mainSteps[0].inputs.runCommand' "$out" >/dev/null 2>&1; then
    log "document: synthesized by examples/print-document.ts"
  else
    node "$E2E_REPO_ROOT/test/node/ssm-render.js" --print-document >"$out"
    log "document: built from assets/prefetch-image.sh by ssm-render.js"
  fi
}

# Run the node script as SSM would (the rendered document) or directly (env vars).
# e2e_render PARAMS_JSON OUTFILE: render the SSM document's runCommand with the parameters.
e2e_render() {
  node "${E2E_REPO_ROOT}/test/node/ssm-render.js" --params "$1" --out "$2"
}

# Check reporting shared by the test scripts: "ok"/"not ok" per check, then "N passed, N failed".
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
notok() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...: ok if the command succeeds
  local what="$1"
  shift
  if "$@"; then ok "$what"; else notok "$what"; fi
}
e2e_summary() { echo "$PASSED passed, $FAILED failed"; }
