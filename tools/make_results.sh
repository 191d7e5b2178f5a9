#!/usr/bin/env bash
# Tables and figures under results/ from results/results.csv (after
# `microcal-run experiments/*.toml`). Each experiment gets a Markdown and a CSV summary;
# the main experiments get figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin microcal
microcal=target/release/microcal

table() { # name, grouping keys
  "$microcal" report --filter "experiment=$1" --by "$2" >"results/$1.md"
  "$microcal" report --filter "experiment=$1" --by "$2" --format csv >"results/$1.csv"
}
table baseline model.kind
table seed-cnn model.kind
table seed-cnn-augment train.augment
table seed-cnn-cv data.split
table seed-wavelet-ml model.kind,model.classifier
table seed-wavelet-ml-stats model.kind,model.classifier
table wavelet-db-sweep model.wavelet.family,model.wavelet.level
table cv-leakage data.split,model.kind

rm -rf results/figures
for exp in seed-cnn seed-cnn-augment seed-cnn-cv cv-leakage; do
  "$microcal" figures --filter "experiment=$exp" --by model.kind,data.split --out "results/figures/$exp" >/dev/null
done
for exp in seed-wavelet-ml seed-wavelet-ml-stats; do
  "$microcal" figures --filter "experiment=$exp" --by model.kind,model.classifier --out "results/figures/$exp" >/dev/null
done
# A sample sheet of the first seed-cnn job's test images.
job=$("$microcal" report --filter experiment=seed-cnn --by job_id --format csv | sed -n 2p | cut -d, -f1)
[ -n "$job" ] && "$microcal" figures --filter experiment=seed-cnn --by model.kind,data.split --out results/figures/seed-cnn --samples "$job" >/dev/null
echo "results/*.md, results/*.csv and results/figures/ written"
