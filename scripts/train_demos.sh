#!/usr/bin/env bash
# Reproduce the shipped demo models from ../shared/data (read in place) on CPU.
# Each stage writes resumable checkpoints: re-run a line with --resume after an interruption.
# Usage: bash scripts/train_demos.sh [anime|shoes|handbags ...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${NEUEDIT_DATA:-../shared/data}
RUNS=${RUNS:-runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

stage1_anime() {
  neuedit train-stage1 --data "$DATA/anime-faces" --schema anime_faces --name anime \
    --preset demo --iterations 2000 --out "$RUNS/anime-s1" --sample-every 250 --ckpt-every 250 "$@"
}
stage1_pairs() {  # shoes / handbags: photos on the LEFT of the pair files, no labels
  neuedit train-stage1 --data "$DATA/$1/train" --layout pair --pair-image left --schema empty --name "$1" \
    --preset demo --iterations 1200 --out "$RUNS/$1-s1" --sample-every 250 --ckpt-every 250 "${@:2}"
}
stage2() {  # $1 name, $2 data folder, rest: extra flags
  neuedit train-stage2 --stage1 "$RUNS/$1-s1/bundle" --data "$2" --name "$1" --preset demo \
    --iterations 400 --batch 16 --p-real 0.75 --out "$RUNS/$1-s2" --sample-every 100 --ckpt-every 100 "${@:3}"
}
ship() {
  rm -rf "neuedit/models/$1"
  neuedit export "$RUNS/$1-s2/bundle" --out "neuedit/models/$1" --serve-only
}

for name in "${@:-anime shoes handbags}"; do
  for n in $name; do
    case $n in
      anime) stage1_anime; stage2 anime "$DATA/anime-faces/images" ;;
      shoes|handbags) stage1_pairs "$n"; stage2 "$n" "$DATA/$n/train" --layout pair --pair-image left --edges pairs ;;
      *) echo "unknown demo $n" >&2; exit 2 ;;
    esac
    ship "$n"
  done
done
