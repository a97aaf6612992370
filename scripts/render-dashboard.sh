#!/usr/bin/env bash
# Redraws docs/dashboard.png (the README's picture of the dashboard) from the dashboard body the
# library synthesizes (scripts/dashboard-body.ts), with simulated fleet data (scripts/render-dashboard.py).
#   bash scripts/render-dashboard.sh        (or: npx projen docs:dashboard)
# Needs python3 with venv and PyPI on the first run; matplotlib is kept in
# $DASHBOARD_VENV (default ~/.cache/cdk-image-prefetcher/dashboard-venv), reinstalled when its pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

requirements=scripts/render-dashboard.requirements.txt
venv="${DASHBOARD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cdk-image-prefetcher/dashboard-venv}"
if ! cmp -s "$requirements" "$venv/requirements.txt" || [ ! -x "$venv/bin/python" ]; then
  echo "installing matplotlib into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npx ts-node --transpile-only --project tsconfig.dev.json scripts/dashboard-body.ts "$work/body.json"
"$venv/bin/python" scripts/render-dashboard.py "$work/body.json" docs/dashboard.png
