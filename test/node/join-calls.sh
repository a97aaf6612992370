#!/bin/bash
# Benchmark (task `bench:join`, root; not a test): the AWS API requests one joining node makes to find
# and pull the newest image of a repository of JOIN_IMAGES images (default 1,000) in the local
# registry, before and after the newest-image record (issue "The right image, and only images").
#
#   before        the script of BEFORE_REF (default 19206d3, the last release without the record):
#                 aws ecr describe-images with the CLI's default page (100 images a request)
#   searchOnly    this script with nothing recorded yet: one GetItem, then the search, 1,000 a page
#   record        this script with the record written by the push leg: one GetItem, no search
#
# Requests are counted by the aws shim (test/node/fake-aws.sh), which logs one line per request the
# real CLI makes: the CLI pages DescribeImages itself (--page-size; default: the service's default
# maxResults, 100). Each run pulls the newest image for real from the local registry.
# Prints a table, then one JSON line.
# shellcheck source=test/node/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_reexec_in_namespace "$@"
set -uo pipefail

JOIN_IMAGES="${JOIN_IMAGES:-1000}"
BEFORE_REF="${BEFORE_REF:-19206d3}"
REPO=team/many

e2e_setup
before_script="$E2E_WORK/before.sh"
git -C "$E2E_REPO_ROOT" show "$BEFORE_REF:assets/prefetch-image.sh" >"$before_script" 2>/dev/null ||
  die "cannot read assets/prefetch-image.sh at $BEFORE_REF (a full clone is needed)"

log "pushing $JOIN_IMAGES images to $REPO (one shared layer, a config each)"
e2e_build_image small 0 0 "newest image" >/dev/null
base="https://$E2E_HOST/v2/$REPO"
curl_auth=(curl -sf --cacert "$E2E_WORK/registry/tls/ca.crt" -u "AWS:$E2E_TOKEN")
# upload_blob DIGEST < BYTES: the distribution API's two-step upload (POST a session, PUT the bytes).
upload_blob() {
  local loc
  loc="$("${curl_auth[@]}" -X POST -o /dev/null -D - "$base/blobs/uploads/" | sed -n 's/^[Ll]ocation: *\([^\r]*\).*/\1/p')"
  [[ "$loc" == http* ]] || loc="https://$E2E_HOST$loc"
  [[ "$loc" == *\?* ]] && loc="$loc&digest=$1" || loc="$loc?digest=$1"
  "${curl_auth[@]}" -X PUT -o /dev/null -H 'Content-Type: application/octet-stream' --data-binary @- "$loc"
}
# The layer: the one of the small image, uploaded once (monolithic upload, distribution API).
small_manifest="$(jq -r '.manifests[0].digest' "$E2E_WORK/images/small/index.json")"
small_manifest="$E2E_WORK/images/small/blobs/sha256/${small_manifest#sha256:}"
layer="$(jq -c '.layers[0]' "$small_manifest")"
layer_file="$E2E_WORK/images/small/blobs/sha256/$(jq -r '.digest' <<<"$layer" | cut -d: -f2)"
upload_blob "$(jq -r '.digest' <<<"$layer")" <"$layer_file" || die "layer upload failed"
config_template="$(cat "$E2E_WORK/images/small/blobs/sha256/$(jq -r '.config.digest' "$small_manifest" | cut -d: -f2)")"
image_list="$E2E_WORK/tmp/entries.jsonl"
: >"$image_list"
newest=""
for ((i = 1; i <= JOIN_IMAGES; i++)); do
  # A distinct config per image (its "created" time), so each image has its own digest.
  config="$(jq -c --arg c "2026-01-01T00:00:00Z" --arg n "$i" '.created = $c | .config.Labels.n = $n' <<<"$config_template")"
  config_digest="sha256:$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
  printf '%s' "$config" | upload_blob "$config_digest" || die "config upload $i failed"
  manifest="$(jq -c --arg d "$config_digest" --argjson s "${#config}" --argjson l "$layer" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s}, layers: [$l]}' <<<'{}')"
  digest="sha256:$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)"
  printf '%s' "$manifest" | "${curl_auth[@]}" -X PUT -o /dev/null -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @- "$base/manifests/build-$i" || die "manifest upload $i failed"
  pushed="$(date -u -d "2026-01-01 +$i minutes" +%Y-%m-%dT%H:%M:%S.000+00:00)"
  jq -cn --arg r "$REPO" --arg d "$digest" --arg t "build-$i" --arg p "$pushed" --arg a "$E2E_ACCOUNT" \
    '{registryId: $a, repositoryName: $r, imageDigest: $d, imageTags: [$t], imageSizeInBytes: 1000, imagePushedAt: $p,
      imageManifestMediaType: "application/vnd.oci.image.manifest.v1+json", artifactMediaType: "application/vnd.oci.image.config.v1+json"}' >>"$image_list"
  newest="$digest"
done
jq -s '.' "$image_list" >"$AWS_SHIM_STATE/images.json"
newest_at="$(date -u -d "2026-01-01 +$JOIN_IMAGES minutes" +%Y-%m-%dT%H:%M:%SZ)"

# join SCRIPT [PARAMS...]: one join, images wiped first; prints "GetAuthorizationToken DescribeImages GetItem outcome".
join() {
  local script="$1"
  shift
  e2e_wipe_images
  : >"$AWS_SHIM_STATE/api.log"
  env PREFETCH_ACCOUNT_ID="$E2E_ACCOUNT" PREFETCH_REGION="$E2E_REGION" PREFETCH_REPOSITORY="$REPO" \
    PREFETCH_JITTER_SECONDS=0 "$@" bash "$script" >"$E2E_WORK/join.out" 2>&1 || { cat "$E2E_WORK/join.out" >&2; die "join failed"; }
  grep -q "newest.*$newest" "$E2E_WORK/join.out" || { cat "$E2E_WORK/join.out" >&2; die "the join did not pick the newest image"; }
  local n
  for n in GetAuthorizationToken DescribeImages GetItem; do printf '%s ' "$(grep -c "$n" "$AWS_SHIM_STATE/api.log" || true)"; done
  sed -n 's/.*summary .*outcome=\([^ ]*\).*/\1/p' "$E2E_WORK/join.out"
}

log "joining: before (the script of $BEFORE_REF)"
read -r b_token b_describe b_get b_outcome <<<"$(join "$before_script")"
log "joining: nothing recorded yet"
echo '{"prefetch-record": {}}' >"$AWS_SHIM_STATE/record.json"
read -r s_token s_describe s_get s_outcome <<<"$(join "$E2E_SCRIPT" PREFETCH_RECORD_TABLE=prefetch-record PREFETCH_RECORD_KEY=Join)"
log "joining: with the record"
jq -n --arg d "$newest" --arg t "build-$JOIN_IMAGES" --arg p "$newest_at" --arg r "$REPO" \
  '{"prefetch-record": {Join: {prefetcher: {S: "Join"}, digest: {S: $d}, tags: {SS: [$t]}, pushedAt: {S: $p}, repositoryName: {S: $r}}}}' \
  >"$AWS_SHIM_STATE/record.json"
read -r r_token r_describe r_get r_outcome <<<"$(join "$E2E_SCRIPT" PREFETCH_RECORD_TABLE=prefetch-record PREFETCH_RECORD_KEY=Join)"

printf '\n%-34s %8s %14s %8s %10s\n' "AWS requests per join ($JOIN_IMAGES images)" "token" "DescribeImages" "GetItem" "outcome"
printf '%-34s %8s %14s %8s %10s\n' "before ($BEFORE_REF)" "$b_token" "$b_describe" "$b_get" "$b_outcome"
printf '%-34s %8s %14s %8s %10s\n' "nothing recorded yet" "$s_token" "$s_describe" "$s_get" "$s_outcome"
printf '%-34s %8s %14s %8s %10s\n' "with the record" "$r_token" "$r_describe" "$r_get" "$r_outcome"
jq -cn --argjson n "$JOIN_IMAGES" --arg ref "$BEFORE_REF" \
  --argjson bt "$b_token" --argjson bd "$b_describe" --argjson bg "$b_get" \
  --argjson st "$s_token" --argjson sd "$s_describe" --argjson sg "$s_get" \
  --argjson rt "$r_token" --argjson rd "$r_describe" --argjson rg "$r_get" \
  '{images: $n, before: {ref: $ref, getAuthorizationToken: $bt, describeImages: $bd, getItem: $bg},
    searchOnly: {getAuthorizationToken: $st, describeImages: $sd, getItem: $sg},
    record: {getAuthorizationToken: $rt, describeImages: $rd, getItem: $rg}}'
