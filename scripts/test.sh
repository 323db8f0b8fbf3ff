#!/usr/bin/env bash
# The tests: installs what the multi-process tests need (Open MPI) when it is missing, then runs `dotnet test`.
# Extra arguments go to `dotnet test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
install_open_mpi || echo "note: could not install Open MPI; the multi-process tests are skipped (outside CI)" >&2
exec dotnet test "$@"
