#!/usr/bin/env bash
# The dense-transfer benchmark (issue 21, the paper's claim 3): pretrains each method for the same wall-clock budget on
# Fashion-MNIST (the main job's recipe: batch 32, 2,048 instances), composes segmentation/detection scenes from
# Fashion-MNIST items, then fine-tunes every backbone (and a random one) for both tasks with the same options and writes
# OUT/transfer.md. Everything resumes: rerun it after a stop and it continues.
#   scripts/transfer-benchmark.sh [OUT] [BUDGET] [PARALLEL]
# OUT defaults to runs/transfer-benchmark, BUDGET to 5m of pretraining per method; PARALLEL=2 runs two processes side by
# side with one thread each (on this 2-core CPU one thread trains this width-16 network almost as fast as two).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/transfer-benchmark}
budget=${2:-5m}
parallel=${3:-2}
threads=$(( parallel > 1 ? 1 : 0 ))
mkdir -p "$out"

# name and pretrain arguments of each row; the two seeds of ConIC and λ = 0 test whether a difference is beyond noise.
rows=(
  "conic|--method conic"
  "simclr|--method simclr"
  "lambda0|--method conic --lambda 0"
  "instdisc|--method instdisc"
  "mocov2|--method mocov2"
  "byol|--method byol"
  "supervised|--method supervised"
  "conic-seed1|--method conic --seed 1"
  "lambda0-seed1|--method conic --lambda 0 --seed 1"
)

pretrain() {
  local name=$1; shift
  [[ -f "$out/pretrained/$name/checkpoint.bin" && -f "$out/pretrained/$name/done" ]] && return 0
  # --no-eval: the budget is all training; the transfer table measures the encoders.
  ./conic pretrain --resume --run "$out/pretrained/$name" --time-budget "$budget" --batch-size 32 --instances 2048 \
    --monitor-every 0 --no-eval --threads "$threads" "$@" > "$out/pretrained/$name.log" 2>&1
  touch "$out/pretrained/$name/done"
}

./conic --version > /dev/null   # builds once, before processes run side by side
mkdir -p "$out/pretrained"
for lane in $(seq 0 $(( parallel - 1 ))); do
  (
    for i in "${!rows[@]}"; do
      (( i % parallel == lane )) || continue
      IFS='|' read -r name args <<< "${rows[$i]}"
      # shellcheck disable=SC2086
      pretrain "$name" $args
    done
  ) &
done
wait

[[ -f "$out/scenes/classes.txt" ]] || ./conic make-scenes --out "$out/scenes" --train 1000 --val 300

entries=("random=none")
for row in "${rows[@]}"; do entries+=("${row%%|*}=$out/pretrained/${row%%|*}"); done
# The rows split over the lanes; each lane writes its own table (transfer.md in OUT/lane-N).
for lane in $(seq 0 $(( parallel - 1 ))); do
  lane_entries=()
  for i in "${!entries[@]}"; do (( i % parallel == lane )) && lane_entries+=("${entries[$i]}"); done
  list=$(IFS=,; echo "${lane_entries[*]}")
  ./conic transfer --runs "$list" --data "$out/scenes" --out "$out/lane-$lane" --epochs 8 --batch-size 32 --threads "$threads" \
    > "$out/lane-$lane.log" 2>&1 &
done
wait
cat "$out"/lane-*/transfer.md
