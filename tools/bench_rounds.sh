#!/usr/bin/env bash
# Times microcal, Keras and PyTorch on the reference CNN in alternated rounds, as the sittings
# in docs/benchmarks.md do: this host's speed moves by up to 2x within minutes, so only runs
# next to each other compare. Each round runs `microcal bench cnn`, then tools/bench_keras.py,
# then tools/bench_torch.py, each on the same images with the same repeats; a table row per
# run gives its images/s and microcal's over it (training, inference) in the same round.
#
#   tools/bench_rounds.sh ../shared/data/microcal [ROUNDS=3] [REPEATS=5]
#
# KERAS_PYTHON and TORCH_PYTHON name the virtual environments' interpreters (defaults
# /tmp/keras/bin/python and /tmp/torch/bin/python, made as docs/benchmarks.md says); one that
# is missing is left out. MICROCAL_SIMD chooses microcal's path as usual.
set -euo pipefail

data=${1:?usage: tools/bench_rounds.sh DATA [ROUNDS] [REPEATS]}
rounds=${2:-3}
repeats=${3:-5}
keras=${KERAS_PYTHON:-/tmp/keras/bin/python}
torch=${TORCH_PYTHON:-/tmp/torch/bin/python}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin microcal

# The last line of every benchmark reads `train_images_per_s=N infer_images_per_s=N ...`.
figures() { tail -n 1 | sed -E 's/.*train_images_per_s=([0-9.]+) infer_images_per_s=([0-9.]+).*/\1 \2/'; }

echo "$(uname -n), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, SIMD ${MICROCAL_SIMD:-best}, $(date -u '+%Y-%m-%d %H:%M') UTC"
echo
echo "| round | program | training images/s | inference images/s | microcal / it (training, inference) |"
echo "|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
    read -r mt mi < <(target/release/microcal bench cnn --data "$data" --repeats "$repeats" 2>/dev/null | figures)
    echo "| $round | microcal | $mt | $mi | |"
    for program in keras torch; do
        python=$keras script=tools/bench_keras.py
        [ "$program" = torch ] && python=$torch script=tools/bench_torch.py
        [ -x "$python" ] || continue
        read -r t i < <("$python" "$script" "$data" --repeats "$repeats" 2>/dev/null | figures)
        ratios=$(awk -v mt="$mt" -v mi="$mi" -v t="$t" -v i="$i" 'BEGIN { printf "%.2f, %.2f", mt / t, mi / i }')
        echo "| $round | $program | $t | $i | $ratios |"
    done
done
