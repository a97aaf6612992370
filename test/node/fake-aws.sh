#!/bin/bash
# `aws` shim for the node tests: plays the two AWS CLI calls the node script makes.
#   aws ecr get-login-password --region R            -> prints $AWS_SHIM_STATE/token
#   aws ecr describe-images --region R --registry-id A --repository-name N
#       --filter tagStatus=TAGGED --output json      -> {"imageDetails": [...]} from images.json
# Failure modes, chosen by files in $AWS_SHIM_STATE (so a test can flip them between runs):
#   mode = auth      -> AccessDeniedException, exit 254 (as the CLI v2 does for service errors)
#   mode = throttle  -> ThrottlingException for the first N calls (N in throttle-count), then OK
#   mode = down      -> "Could not connect to the endpoint URL", exit 255
#   mode = wrong-token -> get-login-password prints a token the registry rejects
# Every call is appended to calls.log (arguments only; the shim never logs the token).
set -euo pipefail
state="${AWS_SHIM_STATE:?}"
printf '%s\n' "$*" >>"$state/calls.log"
mode="$(cat "$state/mode" 2>/dev/null || true)"

[ "${1:-}" = ecr ] || { echo "aws shim: unsupported: $*" >&2; exit 252; }
op="${2:-}"
shift 2
region="" registry="" repo="" filter="" output=""
while (($#)); do
  case "$1" in
    --region) region="$2"; shift 2 ;;
    --registry-id) registry="$2"; shift 2 ;;
    --repository-name) repo="$2"; shift 2 ;;
    --filter) filter="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    *) echo "aws shim: unknown option $1" >&2; exit 252 ;;
  esac
done
[ -n "$region" ] || { echo "aws: error: --region is required by the node script" >&2; exit 252; }

case "$mode" in
  auth)
    echo "An error occurred (AccessDeniedException) when calling the ${op} operation: User is not authorized" >&2
    exit 254 ;;
  down)
    echo "Could not connect to the endpoint URL: \"https://api.ecr.${region}.amazonaws.com/\"" >&2
    exit 255 ;;
  throttle)
    n="$(cat "$state/throttle-count" 2>/dev/null || echo 0)"
    if ((n > 0)); then
      echo $((n - 1)) >"$state/throttle-count"
      echo "An error occurred (ThrottlingException) when calling the ${op} operation (reached max retries: 2): Rate exceeded" >&2
      exit 254
    fi ;;
esac

case "$op" in
  get-login-password)
    if [ "$mode" = wrong-token ]; then
      head -c 1500 /dev/urandom | base64 -w0
    else
      cat "$state/token"
    fi
    echo ;;
  describe-images)
    if [ "$filter" != tagStatus=TAGGED ] || [ "$output" != json ] || [ -z "$registry" ] || [ -z "$repo" ]; then
      echo "aws shim: unexpected describe-images arguments" >&2
      exit 252
    fi
    f="$state/images.json"
    [ -f "$f" ] || echo '[]' >"$f"
    if ! jq -e --arg r "$repo" 'any(.[]; .repositoryName == $r)' "$f" >/dev/null; then
      echo "An error occurred (RepositoryNotFoundException) when calling the DescribeImages operation: The repository with name '$repo' does not exist in the registry with id '$registry'" >&2
      exit 254
    fi
    jq --arg r "$repo" '{imageDetails: [.[] | select(.repositoryName == $r and (.imageTags | length) > 0)]}' "$f" ;;
  *)
    echo "aws shim: unsupported ecr operation $op" >&2
    exit 252 ;;
esac
