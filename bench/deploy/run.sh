#!/usr/bin/env bash
# bench/deploy: the two benchmarks of issue 5, one after the other:
#   routing.sh  kiln server endpoint (2 weighted routes + 10% shadow) vs kiln serve
#   score.sh    kiln score vs mlflow models predict (batch scoring)
# Each writes its own results file (routing_results.md, score_results.md).
set -euo pipefail
cd "$(dirname "$0")"
./routing.sh
./score.sh
