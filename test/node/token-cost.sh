#!/bin/bash
# What getting an ECR token costs the node script, per cold pull, with the REAL clients: the
# kubelet's ecr-credential-provider (k8s.io/cloud-provider-aws, built from the Go module proxy) and
# the AWS CLI v1 (awscli from PyPI, in a venv; the CLI v2 that EKS AMIs ship is not on PyPI), both
# against fake-ecr-api.js on loopback, with static fake credentials and no instance metadata.
# Prints the median, min and max wall time of N runs (E2E_TOKEN_RUNS, default 15) of each:
#   provider  the CredentialProviderRequest the script sends, answered by the provider
#   cli       aws ecr get-login-password --region R (endpoint from AWS_ENDPOINT_URL_ECR)
# A real node adds, to both, the instance-metadata credential lookup (IMDSv2: a token PUT, then the
# role's credentials; each process does it again, nothing is cached between runs) and a real
# round trip to api.ecr.REGION.amazonaws.com: what this measures is the client's own cost.
# Usage (root: runs in a private network namespace): bash test/node/token-cost.sh
set -euo pipefail
# shellcheck source=test/node/lib.sh
source "$(dirname "$0")/lib.sh"

E2E_AWSCLI_VERSION=1.46.3
if [ -z "${E2E_IN_NAMESPACE:-}" ]; then
  [ "$(id -u)" = 0 ] || die "needs root (a private network namespace)"
  e2e_use_ecr_credential_provider
  venv="$E2E_TOOLS_CACHE/awscli-venv"
  if [ "$("$venv/bin/aws" --version 2>&1 | sed -n 's|^aws-cli/\([^ ]*\).*|\1|p')" != "$E2E_AWSCLI_VERSION" ]; then
    log "installing awscli $E2E_AWSCLI_VERSION from PyPI (once; cached in $venv)"
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q "awscli==$E2E_AWSCLI_VERSION"; } >&2 || die "pip install awscli failed"
  fi
  export E2E_IN_NAMESPACE=1 E2E_AWS="$venv/bin/aws"
  exec unshare -n bash "$0" "$@"
fi

ip link set lo up
E2E_WORK="$(mktemp -d "${TMPDIR:-/tmp}/prefetch-token.XXXXXX")"
trap 'for p in "${E2E_PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$E2E_WORK"' EXIT
openssl rand -base64 1536 | tr -d '\n' >"$E2E_WORK/token"
e2e_start_ecr_api "$E2E_WORK"
export HOME="$E2E_WORK" # no ~/.aws config or cache of the caller's
image="${E2E_HOST}/app"
request="$(printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"%s"}' "$image")"
want="$(cat "$E2E_WORK/token")"

provider() { "$E2E_ECR_PROVIDER" <<<"$request" 2>/dev/null | jq -r '.auth | to_entries[0].value.password'; }
cli() { "$E2E_AWS" ecr get-login-password --region "$E2E_REGION"; }

# Both must return the token before they are timed.
[ "$(provider)" = "$want" ] || die "the provider did not return the token: $("$E2E_ECR_PROVIDER" <<<"$request" 2>&1 | tail -3)"
[ "$(cli)" = "$want" ] || die "the CLI did not return the token: $(cli 2>&1 | tail -3)"

runs="${E2E_TOKEN_RUNS:-15}"
for what in provider cli; do
  times=()
  for ((i = 0; i < runs; i++)); do
    a="$(date +%s%N)"
    "$what" >/dev/null
    b="$(date +%s%N)"
    times+=("$(((b - a) / 1000000))")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v w="$what" -v n="$runs" '{ t[NR] = $1 }
    END { m = (n % 2) ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
          printf "%-8s median %5.0f ms  min %5d ms  max %5d ms  (%d runs)\n", w, m, t[1], t[n], n }'
done
printf 'GetAuthorizationToken requests: %s, registryIds sent: %s\n' "$(wc -l <"$E2E_WORK/api.log")" \
  "$(sort -u "$E2E_WORK/ecr-api.log" | tr '\n' ' ')"
