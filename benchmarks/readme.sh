#!/usr/bin/env bash
# Re-measure every row of the README's benchmark table, one job at a time under the CPU lock,
# each script timing its own reference in the same run. Logs go to $OUT (default /tmp/convlens-readme-<time>).
#   bash benchmarks/readme.sh            # all rows (~57 min on the 2-core machines; the CIFAR-10 fast recipe adds ~15)
#   bash benchmarks/readme.sh graph cnn  # the rows whose name is given
#   bash benchmarks/readme.sh cnn-avx2-pairs fast-fashion-avx2   # issue 15's 2a and 2b (~18 min): on an AVX2-only CPU
#                                        # the cap changes nothing, elsewhere it imitates one (docs/speed.md)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${OUT:-/tmp/convlens-readme-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
AVX2=(env ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
declare -A ROWS=(
  [fashion]="$PY benchmarks/fashion_mnist.py --only dnn,cnn"
  [cnn-avx2]="${AVX2[*]} $PY benchmarks/fashion_mnist.py --only cnn --compile no --precision 32-true"
  [cnn-avx2-pairs]="${AVX2[*]} $PY benchmarks/fashion_mnist.py --only cnn --compile no --precision 32-true --reference as-written --pairs 2"
  [cnn-avx2-2ep]="${AVX2[*]} $PY benchmarks/fashion_mnist.py --only cnn --compile no --precision 32-true --convlens-epochs 2"
  [best]="$PY benchmarks/fashion_mnist.py --only best"
  [best-avx2]="${AVX2[*]} $PY benchmarks/fashion_mnist.py --only best --precision 32-true --best-epochs 9"
  [fast-fashion]="$PY benchmarks/fashion_mnist.py --only fast"
  [fast-fashion-avx2]="${AVX2[*]} $PY benchmarks/fashion_mnist.py --only fast --precision 32-true"
  [transfer]="$PY benchmarks/transfer.py --skip-fashion"
  [transfer-fashion]="$PY benchmarks/transfer.py --only-fashion"
  [features]="$PY benchmarks/features.py --rounds 5 --end-to-end"
  [features-avx2]="${AVX2[*]} $PY benchmarks/features.py --rounds 5"
  [explain]="env CONVLENS_THREADS=1 $PY benchmarks/explain.py --repeats 5"
  [graph]="$PY benchmarks/graph.py --only cora,citeseer,karate,mutag"
  [cifar-throughput]="$PY benchmarks/cifar10.py --only throughput --throughput-images 3000"
  [cifar-fast]="$PY benchmarks/cifar10.py --only peak,fast"
  [shapes]="$PY benchmarks/shapes_table.py --model tv/resnet18"
)
ORDER=(fashion cnn-avx2 cnn-avx2-2ep best best-avx2 fast-fashion fast-fashion-avx2 transfer transfer-fashion features features-avx2 explain graph cifar-throughput shapes)
[ $# -gt 0 ] && ORDER=("$@")
for row in "${ORDER[@]}"; do
  cmd=${ROWS[$row]:?"no row named $row (rows: ${!ROWS[*]})"}
  echo "== $row: $cmd" | tee "$OUT/$row.log"
  start=$(date +%s)
  flock /tmp/convlens-cpu.lock $cmd 2>&1 | grep -v -e USDT -e cpp_extension -e 'warnings.warn' | tee -a "$OUT/$row.log"
  echo "== $row: $(( $(date +%s) - start )) s" | tee -a "$OUT/$row.log"
done
echo "logs: $OUT"
