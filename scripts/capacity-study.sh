#!/usr/bin/env bash
# Issue 30's study: what limits the encoder at a fixed wall-clock budget (docs/capacity/README.md). Every entry
# pretrains on Fashion-MNIST for the same --time-budget (evaluation included) and is evaluated on a held-out 10 % of
# the training images (--validation), never on the test split, so that the winner can become a default honestly.
# Rerunning it continues where it stopped (conic compare keeps each finished row); run it alone on the machine.
# Usage: scripts/capacity-study.sh [BUDGET] [conic compare options...]   e.g. scripts/capacity-study.sh 17m
# METHODS overrides the entries (conic compare --methods syntax: NAME[@BATCH][:SETTING=VALUE]...).
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-8m}
shift || true
methods=${METHODS:-conic,conic:width=32,conic:width=64,supervised,supervised:width=64,conic:instances=8192}
exec ./conic compare --time-budget "$budget" --validation 0.1 --instances 2048 --batch-size 32 --monitor-every 5 \
  --run "docs/capacity/$budget" --methods "$methods" "$@"
