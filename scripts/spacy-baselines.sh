#!/usr/bin/env bash
# The spaCy baseline of issue #7 on every corpus: export gp's view of the data to JSONL, train spaCy's
# `--pipeline ner --optimize efficiency` config from scratch (≤ MAX_MINUTES of training), predict the dev split and
# score it with gp's own metric code. See docs/baselines.md.
#
#   bash scripts/spacy-baselines.sh [--smoke] [OUT_ROOT] [CORPUS...]      (run from the repository root)
#
#   CORPUS          cluener resume weibo wnut17 (default: all four), data from ../shared/data
#   OUT_ROOT        default runs/spacy (runs/spacy-smoke with --smoke); one folder per corpus
#   --smoke         the samples in data/ instead (first 50 records of each), 20 steps, 30 s cap: checks the chain
#   SPACY_PYTHON    a Python with spaCy 3.8 (default: python3)
#   MAX_MINUTES     training cap per corpus (default 60)
#   GPU             GPU id, -1 for CPU (default -1)
#
# Per corpus it leaves in OUT_ROOT/CORPUS: train.jsonl, dev.jsonl (gp's reading of the splits), config.cfg,
# train.log, train/model-best, dev.pred.jsonl, summary.json (spaCy side), scores.txt and scores.json (gp's scorer).
set -euo pipefail

smoke=0
if [[ "${1:-}" == "--smoke" ]]; then
  smoke=1
  shift
fi
out_root="${1:-}"
if [[ -n "$out_root" && "$out_root" != cluener && "$out_root" != resume && "$out_root" != weibo && "$out_root" != wnut17 ]]; then
  shift
else
  out_root=""
fi
[[ -z "$out_root" ]] && out_root=$([[ $smoke == 1 ]] && echo runs/spacy-smoke || echo runs/spacy)
corpora=("$@")
[[ ${#corpora[@]} -eq 0 ]] && corpora=(cluener resume weibo wnut17)

py="${SPACY_PYTHON:-python3}"
max_minutes="${MAX_MINUTES:-60}"
gpu="${GPU:--1}"
data=../shared/data
"$py" -c 'import spacy' 2>/dev/null || { echo "error: $py has no spaCy; set SPACY_PYTHON (see docs/baselines.md)" >&2; exit 69; }

for corpus in "${corpora[@]}"; do
  # train file, dev file, language, read options (those of configs/CORPUS.yaml)
  case "$corpus:$smoke" in
    cluener:0) train=$data/cluener/train.json; dev=$data/cluener/dev.json; lang=zh; opts=(--format cluener) ;;
    resume:0) train=$data/resume/train.char.bmes; dev=$data/resume/dev.char.bmes; lang=zh; opts=(--format conll --scheme bmes --join none) ;;
    weibo:0) train=$data/weibo/weiboNER_2nd_conll.train; dev=$data/weibo/weiboNER_2nd_conll.dev; lang=zh; opts=(--format conll --scheme bio --join none --strip-token-digit) ;;
    wnut17:0) train=$data/wnut17/wnut17train.conll; dev=$data/wnut17/emerging.dev.conll; lang=en; opts=(--format conll --scheme bio --join space) ;;
    cluener:1) train=data/sample.train.jsonl; dev=data/sample.dev.jsonl; lang=zh; opts=(--format jsonl) ;;
    resume:1) train=data/resume.sample.bmes; dev=$train; lang=zh; opts=(--format conll --scheme bmes --join none) ;;
    weibo:1) train=data/weibo.sample.conll; dev=$train; lang=zh; opts=(--format conll --scheme bio --join none --strip-token-digit) ;;
    wnut17:1) train=data/wnut17.sample.conll; dev=$train; lang=en; opts=(--format conll --scheme bio --join space) ;;
    *) echo "error: unknown corpus $corpus (cluener, resume, weibo, wnut17)" >&2; exit 2 ;;
  esac
  dir="$out_root/$corpus"
  mkdir -p "$dir"
  echo "=== $corpus ($lang): $train / $dev → $dir"
  node --import tsx scripts/export-jsonl.ts "$train" "$dir/train.jsonl" "${opts[@]}"
  node --import tsx scripts/export-jsonl.ts "$dev" "$dir/dev.jsonl" "${opts[@]}"
  extra=()
  if [[ $smoke == 1 ]]; then
    for split in train dev; do
      head -n 50 "$dir/$split.jsonl" > "$dir/$split.50.jsonl" && mv "$dir/$split.50.jsonl" "$dir/$split.jsonl"
    done
    extra=(--max-steps 20 --eval-frequency 10)
    max_minutes=0.5
  fi
  "$py" scripts/spacy_baseline.py --train "$dir/train.jsonl" --dev "$dir/dev.jsonl" --lang "$lang" --out "$dir" \
    --max-minutes "$max_minutes" --gpu "$gpu" "${extra[@]}"
  # dev.jsonl is gp's reading of the dev split, so this is the score `gp eval` would compute for these predictions.
  node --import tsx scripts/score-jsonl.ts "$dir/dev.jsonl" "$dir/dev.pred.jsonl" | tee "$dir/scores.txt"
  node --import tsx scripts/score-jsonl.ts "$dir/dev.jsonl" "$dir/dev.pred.jsonl" --json > "$dir/scores.json"
done

echo "=== summary (dev micro P / R / F1, training seconds, how training stopped)"
for corpus in "${corpora[@]}"; do
  dir="$out_root/$corpus"
  node -e '
    const fs = require("fs");
    const [dir, corpus] = process.argv.slice(1);
    const s = JSON.parse(fs.readFileSync(`${dir}/scores.json`, "utf8")).micro;
    const t = JSON.parse(fs.readFileSync(`${dir}/summary.json`, "utf8")).training;
    console.log(`${corpus.padEnd(8)} P ${s.precision.toFixed(4)}  R ${s.recall.toFixed(4)}  F1 ${s.f1.toFixed(4)}  ${t.seconds.toFixed(0)} s  ${t.stopped_by}`);
  ' "$dir" "$corpus"
done
