#!/usr/bin/env bash
# Reproduce the shipped demo models from ../shared/data (read in place) on CPU, one run at a
# time on both cores. Stage one is a checked-in recipe (recipes/<name>.toml); every run writes
# resumable checkpoints: re-run the same command after an interruption and it continues.
# Usage: bash scripts/train_demos.sh [anime|shoes|handbags ...]   (default: all three)
#        NEUEDIT_DATA=/path/to/data bash scripts/train_demos.sh   (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${NEUEDIT_DATA:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

resume() { [ -f "$1/checkpoint.pt" ] && echo --resume || true; }

stage1() {  # $1 recipe (recipes/$1.toml), $2 its run folder, $3 its data folder
  neuedit train-stage1 --config "recipes/$1.toml" --data "$3" $(resume "$2")
}
stage2() {  # $1 name, $2 stage-one run folder, $3 data folder, rest: extra flags
  # edit pairs with a known target (the default objective), about 10 minutes on 2 cores
  neuedit train-stage2 --stage1 "$2/bundle" --data "$3" --name "$1" --iterations 1500 --batch 16 \
    --out "runs/$1-s2" --sample-every 250 --ckpt-every 250 $(resume "runs/$1-s2") "${@:4}"
}
ship() {  # ONNX graphs + the PyTorch weights (for --init-from), parity-checked
  rm -rf "neuedit/models/$1"
  neuedit export "runs/$1-s2/bundle" --out "neuedit/models/$1"
}

for n in ${@:-anime shoes handbags}; do
  case $n in
    anime)  # two phases: the image model, then conditioning (starts from phase one's bundle)
      stage1 anime runs/anime-s1 "$DATA/anime-faces"
      stage1 anime-cond runs/anime-cond "$DATA/anime-faces"
      stage2 anime runs/anime-cond "$DATA/anime-faces/images" --limit 16000 ;;
    shoes|handbags)
      stage1 "$n" "runs/$n-s1" "$DATA/$n/train"
      stage2 "$n" "runs/$n-s1" "$DATA/$n/train" --layout pair --pair-image left --edges pairs ;;
    *) echo "unknown demo $n" >&2; exit 2 ;;
  esac
  ship "$n"
done
