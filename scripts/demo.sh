#!/usr/bin/env bash
# The main job on the shipped sample: train, evaluate, predict. Run from the repository root after `npm ci`.
set -euo pipefail
gp() { node dist/cli/main.js "$@"; }
gp doctor | head -n 40
gp train --config configs/sample.yaml --out runs/sample
gp eval --model runs/sample --data data/sample.dev.jsonl
printf '%s\n' '浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。' '我在北京的清华大学读书。' \
  | gp predict --model runs/sample -
