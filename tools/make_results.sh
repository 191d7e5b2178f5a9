#!/usr/bin/env bash
# Tables and figures under results/ from the committed results tables and each job's
# artefacts in results/runs/ (predictions, histories, resolved configs): no training.
# The output is byte-identical for the same rows and artefacts, so on a fresh clone
# `git status` stays clean. Everything is drawn into a staging folder first; committed
# files are replaced only once every table and figure has been redrawn, so a missing
# artefact (`microcal figures` names the jobs) leaves results/ as it was.
#   MICROCAL=path/to/microcal tools/make_results.sh   # use a built binary
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MICROCAL:-}" ]; then
  cargo build --release --quiet --bin microcal
  MICROCAL=target/release/microcal
fi
stage=$(mktemp -d results/.staging.XXXXXX)
trap 'rm -rf "$stage"' EXIT

# Rows are selected by the jobs each experiment file declares (--jobs-of), not by the
# experiment name in the row: a job that two files declare (seed_cnn_cv's folds are
# cv_leakage's CNN k-fold jobs) has one row, under the file that ran it first.
file() { echo "experiments/${1//-/_}.toml"; }
table() { # experiment name, grouping keys
  "$MICROCAL" report --jobs-of "$(file "$1")" --by "$2" >"$stage/$1.md"
  "$MICROCAL" report --jobs-of "$(file "$1")" --by "$2" --format csv >"$stage/$1.csv"
}
figures() { # experiment name, grouping keys
  "$MICROCAL" figures --jobs-of "$(file "$1")" --by "$2" --out "$stage/figures/$1" >/dev/null
}
table baseline model.kind
table seed-cnn model.kind
table seed-cnn-augment train.augment
table seed-cnn-cv data.split
table seed-wavelet-ml model.kind,model.classifier
table seed-wavelet-ml-stats model.kind,model.classifier
table wavelet-db-sweep model.wavelet.family,model.wavelet.level
table cv-leakage data.split,model.kind
table cnn-modern model.kind
table cnn-modern-cv data.split
table cnn-wavelet-hybrid model.kind

for exp in seed-cnn seed-cnn-augment seed-cnn-cv cv-leakage cnn-modern cnn-modern-cv cnn-wavelet-hybrid; do
  figures "$exp" model.kind,data.split
done
for exp in seed-wavelet-ml seed-wavelet-ml-stats; do
  figures "$exp" model.kind,model.classifier
done
figures wavelet-db-sweep model.wavelet.family,model.wavelet.level
# Searches: the best trials by validation AUC, the best configuration's row on Test (with
# its figures), and the optimisation history.
for exp in search-wavelet search-cnn search-modern; do
  "$MICROCAL" report --jobs-of "$(file "$exp")" --best 10 >"$stage/$exp-best.md"
  for format in markdown csv; do
    ext=$([ "$format" = markdown ] && echo md || echo csv)
    "$MICROCAL" report --jobs-of "$(file "$exp")" --filter search_role=result \
      --by search_trial --format "$format" >"$stage/$exp.$ext"
  done
  "$MICROCAL" figures --jobs-of "$(file "$exp")" --search-history --out "$stage/figures/$exp" >/dev/null
  "$MICROCAL" figures --jobs-of "$(file "$exp")" --filter search_role=result \
    --by search_trial --out "$stage/figures/$exp" >/dev/null
done
# A sample sheet of the seed-cnn job with the best test AUC (needs the images themselves).
job=$("$MICROCAL" report --jobs-of "$(file seed-cnn)" --by job_id --format csv | sed -n 2p | cut -d, -f1)
"$MICROCAL" figures --filter "job_id=$job" --by job_id \
  --out "$stage/samples" --samples "$job" >/dev/null
mv "$stage/samples/samples_$job.png" "$stage/figures/seed-cnn/"

# The page of every row (microcal report --format html), written from inside results/ so
# its links to each job's artefacts (runs/<job id>/) resolve beside it.
microcal_path=$(cd "$(dirname "$MICROCAL")" && pwd)/$(basename "$MICROCAL")
(cd results && "$microcal_path" report --results results.csv --format html) >"$stage/index.html"

# Everything was drawn: replace the committed copies.
for f in "$stage"/*.md "$stage"/*.csv "$stage"/index.html; do
  mv "$f" results/
done
rm -rf results/figures
mv "$stage/figures" results/figures
echo "results/*.md, results/*.csv, results/index.html and results/figures/ written"
