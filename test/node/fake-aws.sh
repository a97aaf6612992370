#!/bin/bash
# `aws` shim for the node tests: plays the AWS CLI calls the node script makes.
#   aws ecr get-login-password --region R            -> prints $AWS_SHIM_STATE/token
#   aws ecr describe-images --region R --registry-id A --repository-name N
#       --filter tagStatus=TAGGED [--page-size P] --output json
#                                                    -> {"imageDetails": [...]} from images.json
#   aws dynamodb get-item --region R --table-name T --key '{"prefetcher":{"S":K}}' --output json
#                                                    -> {"Item": ...} from record.json ({T: {K: item}}), or {}
# api.log gets one line per AWS API request the real CLI would make: the CLI pages DescribeImages
# by itself, P images a request (--page-size; without it the service's default maxResults, 100:
# ECR API reference, DescribeImages), so a call for N images is ceil(N/P) requests.
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

service="${1:-}"
[ "$service" = ecr ] || [ "$service" = dynamodb ] || { echo "aws shim: unsupported: $*" >&2; exit 252; }
op="${2:-}"
shift 2
region="" registry="" repo="" filter="" output="" page=100 table="" key=""
while (($#)); do
  case "$1" in
    --region) region="$2"; shift 2 ;;
    --registry-id) registry="$2"; shift 2 ;;
    --repository-name) repo="$2"; shift 2 ;;
    --filter) filter="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    --page-size) page="$2"; shift 2 ;;
    --table-name) table="$2"; shift 2 ;;
    --key) key="$2"; shift 2 ;;
    *) echo "aws shim: unknown option $1" >&2; exit 252 ;;
  esac
done
((page >= 1 && page <= 1000)) || { echo "aws: error: DescribeImages maxResults must be 1 to 1000" >&2; exit 252; }
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

case "$service $op" in
  "dynamodb get-item")
    echo "dynamodb GetItem" >>"$state/api.log"
    f="$state/record.json"
    [ -f "$f" ] || echo '{}' >"$f"
    k="$(jq -r '.prefetcher.S' <<<"$key")"
    if ! jq -e --arg t "$table" 'has($t)' "$f" >/dev/null; then
      echo "An error occurred (ResourceNotFoundException) when calling the GetItem operation: Requested resource not found" >&2
      exit 254
    fi
    jq --arg t "$table" --arg k "$k" '.[$t][$k] as $i | if $i == null then {} else {Item: $i} end' "$f" ;;
  "ecr get-login-password")
    echo "ecr GetAuthorizationToken" >>"$state/api.log"

    if [ "$mode" = wrong-token ]; then
      head -c 1500 /dev/urandom | base64 -w0
    else
      cat "$state/token"
    fi
    echo ;;
  "ecr describe-images")
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
    out="$(jq --arg r "$repo" '{imageDetails: [.[] | select(.repositoryName == $r and (.imageTags | length) > 0)]}' "$f")"
    n="$(jq '.imageDetails | length' <<<"$out")"
    for ((i = 0; i < (n > 0 ? (n + page - 1) / page : 1); i++)); do echo "ecr DescribeImages" >>"$state/api.log"; done
    printf '%s\n' "$out" ;;
  *)
    echo "aws shim: unsupported operation $service $op" >&2
    exit 252 ;;
esac
