#!/usr/bin/env bash
# The tests: installs what the multi-process tests need (Open MPI) when it is missing — in CI also what the other
# tool-dependent tests need — then runs `dotnet test`, and once more the tests of the arithmetic fallbacks with the
# verdicts of a CPU whose bfloat16 and AVX-512 oneDNN convolutions are wrong (AMD Zen 5) forced, so that those paths
# are tested on any machine. The second run leaves out what cannot differ there (TwoRanksWithHalfTheBatch fixes its
# arithmetic) or is covered there already (FaultTests kill and resume under the fallbacks too), to keep CI well under
# 30 minutes on the slower CPUs. Extra arguments go to both `dotnet test` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
install_open_mpi || echo "note: could not install Open MPI; the multi-process tests are skipped (outside CI)" >&2
if [[ -n "${CI:-}" ]]; then
  install_test_tools || { echo "error: could not install the tools the tests use" >&2; exit 1; }
fi
dotnet test "$@"
echo "again with CONIC_ARITHMETIC=reject-bf16,reject-onednn (the fallbacks of AMD Zen 5):" >&2
CONIC_ARITHMETIC=reject-bf16,reject-onednn dotnet test --no-build \
  --filter "(FullyQualifiedName~ArithmeticCheckTests|FullyQualifiedName~DistributedTests|FullyQualifiedName~FaultTests|FullyQualifiedName~EndToEndTests|FullyQualifiedName~ModelTests|FullyQualifiedName~TimeBudgetTests)&FullyQualifiedName!~TwoRanksWithHalfTheBatch&FullyQualifiedName!~KilledRunResumesToTheWeightsOfAnUninterruptedRun" "$@"
