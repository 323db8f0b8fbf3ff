#!/usr/bin/env bash
# The main job: pretrain ConIC on Fashion-MNIST with the default settings, evaluate it (kNN, linear probe,
# raw-pixel floor) and write runs/conic/report.md. Extra arguments go to `conic pretrain` (see --help).
# Rerunning it continues a stopped run (--resume), or only re-evaluates a finished one.
set -euo pipefail
cd "$(dirname "$0")/.."

data=/usr/share/datasets/fashion-mnist
if [[ " $* " != *" --data "* && ! -d "$data" ]]; then
  if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
    echo "Fashion-MNIST is missing: installing Debian's dataset-fashion-mnist package" >&2
    apt-get install -y dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y dataset-fashion-mnist >/dev/null; }
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    echo "Fashion-MNIST is missing: installing Debian's dataset-fashion-mnist package (sudo)" >&2
    sudo apt-get install -y dataset-fashion-mnist >/dev/null 2>&1 || { sudo apt-get update >/dev/null && sudo apt-get install -y dataset-fashion-mnist >/dev/null; }
  else
    echo "error: $data: Fashion-MNIST not found. On Debian/Ubuntu run 'sudo apt-get install dataset-fashion-mnist'," >&2
    echo "       or download the four *-ubyte.gz files into a folder and run: $0 --data FOLDER" >&2
    exit 1
  fi
fi

exec ./conic pretrain --resume "$@"
