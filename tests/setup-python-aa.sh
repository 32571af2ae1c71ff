#!/usr/bin/env bash
# Installs the reference implementation, Python AutoArchive 2.0.6, into a virtual environment for
# the differential tests (tests/tests/differential.rs). Idempotent: does nothing when the venv
# already holds aa 2.0.6. Quiet unless something goes wrong.
#   AA_PYTHON_VENV  where the venv goes (default: <workspace>/target/python-aa)
#   PYTHON          the interpreter that creates it (default: python3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${AA_PYTHON_VENV:-$here/../target/python-aa}
python=${PYTHON:-python3}
version=2.0.6

installed() {
    [ -x "$venv/bin/aa" ] && [ "$("$venv/bin/python" -c \
        'import importlib.metadata as m; print(m.version("autoarchive"))' 2>/dev/null)" = "$version" ]
}

installed && exit 0

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-python-aa: $python not found; install Python 3 with its venv module" >&2
    exit 1
fi
# A venv left half-made by an interrupted run is rebuilt rather than trusted.
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
if ! "$python" -m venv "$venv" >/dev/null; then
    echo "setup-python-aa: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "autoarchive==$version"
if ! installed; then
    echo "setup-python-aa: $venv/bin/aa does not report version $version after installation" >&2
    exit 1
fi
