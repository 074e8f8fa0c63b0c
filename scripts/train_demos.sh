#!/usr/bin/env bash
# Reproduce the shipped demo models from ../shared/data (read in place) on CPU, one run at a
# time on both cores: each demo is a list of checked-in recipes (recipes/*.toml for stage one,
# recipes/stage2/*.toml for stage two), trained in order, then exported. Every run writes
# resumable checkpoints: re-run the same command after an interruption and it continues.
# Usage: bash scripts/train_demos.sh [anime|shoes|handbags ...]   (default: all three)
#        NEUEDIT_DATA=/path/to/data bash scripts/train_demos.sh   (default: the recipes' ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

declare -A RECIPES=(
  [anime]="train-stage1:recipes/anime.toml train-stage1:recipes/anime-cond.toml train-stage1:recipes/anime-proj.toml train-stage1:recipes/anime-more.toml train-stage1:recipes/anime-fine.toml train-stage1:recipes/anime-eyes.toml train-stage2:recipes/stage2/anime.toml"
  [shoes]="train-stage1:recipes/shoes.toml train-stage1:recipes/shoes-fine.toml train-stage1:recipes/shoes-pose.toml train-stage1:recipes/shoes-colour.toml train-stage2:recipes/stage2/shoes.toml"
  [handbags]="train-stage1:recipes/handbags.toml train-stage1:recipes/handbags-more.toml train-stage1:recipes/handbags-fine.toml train-stage1:recipes/handbags-colour.toml train-stage2:recipes/stage2/handbags.toml"
)

setting() {  # $1 recipe, $2 table, $3 key -> the recipe's value
  python3 -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))[sys.argv[2]][sys.argv[3]])" "$@"
}

train() {  # $1 command, $2 recipe: train it (resuming its run when it has a checkpoint); sets $out
  out=$(setting "$2" run out)
  local args=(--config "$2")
  [ -f "$out/checkpoint.pt" ] && args+=(--resume)
  if [ -n "${NEUEDIT_DATA:-}" ]; then  # the recipes name ../shared/data/<domain>/...
    local root
    root=$(setting "$2" data root)
    args+=(--data "$NEUEDIT_DATA/${root#../shared/data/}")
  fi
  neuedit "$1" "${args[@]}"
}

ship() {  # $1 demo: export $out/bundle into neuedit/models/<demo> (ONNX graphs + the PyTorch weights, parity-checked)
  rm -rf "neuedit/models/$1"
  neuedit export "$out/bundle" --out "neuedit/models/$1"
}

for n in ${@:-anime shoes handbags}; do
  [ -n "${RECIPES[$n]:-}" ] || { echo "unknown demo $n" >&2; exit 2; }
  for item in ${RECIPES[$n]}; do
    train "${item%%:*}" "${item#*:}"
  done
  ship "$n"
  # stage two's semantic phases continue from the exported bundle (their recipes name neuedit/models/<n>),
  # each exported in its place (stage one included) before the next
  for recipe in recipes/stage2/$n-semantic.toml recipes/stage2/$n-semantic-[0-9].toml; do
    [ -f "$recipe" ] || continue
    train train-stage2 "$recipe"
    ship "$n"
  done
  # the photo encoder of the finished bundle (its recipes name neuedit/models/<n>; a phase continues
  # from the one before), exported with it
  for recipe in recipes/encoder/$n.toml recipes/encoder/$n-[0-9].toml; do
    [ -f "$recipe" ] || continue
    train train-encoder "$recipe"
  done
  [ -f "recipes/encoder/$n.toml" ] && ship "$n"
done
