#!/usr/bin/env bash
# Runs checkov on template.yaml in its own virtual environment (.venv-checkov): checkov pins an old boto3 and
# other versions that would clash with the project's .venv. Offline: no platform look-ups, no downloads at scan time.
# Usage: infra/checkov/run.sh [extra checkov args]. Exit status is checkov's (non-zero when a check fails).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
PYTHON="${PYTHON:-python3}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"

if [[ ! -x "$VENV/bin/checkov" ]]; then
  echo "==> creating $VENV with checkov $CHECKOV_VERSION" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION"
fi

[[ -n "${CHECKOV_INSTALL_ONLY:-}" ]] && exit 0

cd "$ROOT"
# BC_SKIP_MAPPING: don't fetch the guideline mapping from the platform (no network here or in CI).
export BC_SKIP_MAPPING=TRUE CKV_NO_UPDATE_CHECK=TRUE
exec "$VENV/bin/checkov" --config-file infra/checkov/.checkov.yaml "$@"
