#!/usr/bin/env bash
# Issue 9's GPU check in one run, for a machine with a GPU and torch + timm already installed (no
# set-up, no download: the models are randomly initialised, as forget time does not depend on
# trained weights). For each of timm's ResNet-18, ResNeXt-50 (32x4d) and Swin-T at 224x224 it
# prints and writes (JSON, to $OUT or results/benchmarks) the whole Alg. 2 at 10, 100 and 1,000
# codes against its floor, the split, the forget step's peak GPU memory, and how far the Fisher
# is from the loop of batch-1 backward passes at 10 codes (issue 9: at most 1e-4). The paper's
# RTX 3090 took 8.66 s, 21.0 s and 28.6 s at 1,000 classes; the issue asks for 0.5 s, 2 s, 2 s.
#
#   bash benchmarks/gpu_check.sh                         # on the GPU machine, from the repo root
#   DEVICE=cpu SIZE=32 CLASSES="10" REPEATS=1 bash benchmarks/gpu_check.sh   # a quick dry run here
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-results/benchmarks}
mkdir -p "$out"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
size=${SIZE:-224}
if [ "$device" = cuda ]; then
	nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$python" -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"
for model in resnet18 resnext50_32x4d swin_tiny_patch4_window7_224; do
	options=()
	if [ "$model" = swin_tiny_patch4_window7_224 ] && [ "$size" != 224 ]; then
		options=(--option "img_size=$size")
	fi
	# shellcheck disable=SC2086  # CLASSES is a list of numbers
	"$python" benchmarks/forget_time.py --device "$device" --model "timm:$model" \
		--input-shape 3 "$size" "$size" --classes ${CLASSES:-10 100 1000} --methods hooks \
		--repeats "${REPEATS:-3}" "${options[@]}" --json "$out/forget_time_${model}_${device}.json"
done
