#!/usr/bin/env bash
# Installs moto's S3-compatible server (`moto_server`, PyPI `moto[server]`) into a virtual
# environment for the object-store tests (tests/tests/destination_s3.rs). Idempotent: does
# nothing when the venv already holds moto_server of the pinned version. Quiet unless something
# goes wrong.
#   AA_MOTO_VENV  where the venv goes (default: <workspace>/target/moto-venv)
#   PYTHON        the interpreter that creates it (default: python3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${AA_MOTO_VENV:-$here/../target/moto-venv}
python=${PYTHON:-python3}
# Pinned: the tests rely on its multipart rules (5 MiB minimum part, aborts, uploads listed).
version=5.2.5

installed() {
    [ -x "$venv/bin/moto_server" ] && [ "$("$venv/bin/python" -c \
        'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$version" ]
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
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "moto[server]==$version"
if ! installed; then
    echo "setup-moto: $venv/bin/moto_server of moto $version missing after installation" >&2
    exit 1
fi
