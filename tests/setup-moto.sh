#!/usr/bin/env bash
# Installs moto's S3-compatible server (`moto_server`, PyPI `moto[server]`) into a virtual
# environment for the object-store tests (tests/tests/destination_s3.rs). Idempotent: does
# nothing when the venv already runs moto_server and imports boto3. Quiet unless something goes
# wrong.
#   AA_MOTO_VENV  where the venv goes (default: <workspace>/target/moto-venv)
#   PYTHON        the interpreter that creates it (default: python3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${AA_MOTO_VENV:-$here/../target/moto-venv}
python=${PYTHON:-python3}

installed() {
    [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import boto3, moto.server' 2>/dev/null
}

installed && exit 0

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-moto: $python not found; install Python 3 with its venv module" >&2
    exit 1
fi
# A venv left half-made by an interrupted run is rebuilt rather than trusted.
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
if ! "$python" -m venv "$venv" >/dev/null; then
    echo "setup-moto: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "moto[server]"
if ! installed; then
    echo "setup-moto: $venv/bin/moto_server missing or boto3 not importable after installation" >&2
    exit 1
fi
