#!/usr/bin/env bash
# One device run that checks and times the GPU decoders (about 9 minutes on an H100/H200 with 16 cores): the
# real-world corpus through nvdec and nvjpeg against the CPU path (corpus_gpu.py: equal or handed over, per file),
# where their time goes (gpu_decode.py), the CPU workers' decoding threads (decode_threads.py), the whole table with
# the exactness checks (e2e_gpu.py), then i3d features' clips/s against the model's (features.py: CPU workers through
# the slots, and NVDEC threads with their features against the CPU run's) and the Inception
# I3D's features against a one-window loop (inception_features.py), mmaction2's I3D family (family.py), the torch
# TV-L1 against OpenCV's (flow_torch.py) and two-stream features end to end with it (two_stream.py).
#
# The lent GPU image has torch, torchvision and OpenCV but neither PyNvVideoCodec nor the sample videos. Here, once:
#   mkdir -p .samples .whl && cp $(i3d samples) .samples/ && python benchmarks/corpus_gpu.py write .corpus
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       -d .whl PyNvVideoCodec==2.2.4
#   printf '/.samples/\n/.whl/\n/.corpus/\n' >> .git/info/exclude
# then run this script there with .samples, .whl and .corpus (the real-world corpus, 1 MB) carried; results land in
# $OUT (or ./gpu_session).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_session}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD/src" I3D_INFER_SAMPLES="$PWD/.samples" PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
    command -v cc gcc || echo "no C compiler (Triton builds its launcher with one)"
} 2>&1 | tee "$out/machine.txt"
python3 benchmarks/corpus_gpu.py check .corpus --json "$out/corpus.json" 2>&1 | grep -v "INVALID INDEX" \
    | tee "$out/corpus.txt"
python3 benchmarks/gpu_decode.py --videos 64 --threads 1 8 16 2>&1 | grep -v "INVALID INDEX" | tee "$out/gpu_decode.txt"
# the same readers with a 10x shorter GIL switch interval: do threads back from decode calls wait for the GIL?
python3 benchmarks/gpu_decode.py --videos 64 --threads 8 16 --rows "nvdec copy" "nvdec reader b64" "nvjpeg reader" \
    --switch-interval 0.0005 2>&1 | grep -v "INVALID INDEX" | tee "$out/gpu_decode_switch.txt"
# the CPU decode workers' threads on these cores: their share (the evaluation's), FFmpeg's choice, + cv2's pool cut
python3 benchmarks/decode_threads.py --videos 160 --rounds 3 2>&1 | tee "$out/decode_threads.txt"
python3 benchmarks/e2e_gpu.py --videos 320 --determinism 32 --json "$out/e2e.json" 2>&1 | grep -v "INVALID INDEX" \
    | tee "$out/e2e.log"
# i3d features: clips/s of the whole extraction (15 decode workers, chunks through shared-memory slots, batches of 8
# clips across videos) vs the model; then with NVDEC decode threads, its features against the CPU decoders' run's
python3 benchmarks/features.py speed --device cuda --precision fp16 --videos 48 --batch-size 8 --workers 15 \
    2>&1 | tee "$out/features.txt"
timeout 60 python3 benchmarks/features.py speed --device cuda --precision fp16 --videos 24 --batch-size 8 \
    --workers 15 --decoder nvdec --compare-with opencv 2>&1 | grep -v "INVALID INDEX" | tee "$out/features_nvdec.txt"
# Inception I3D RGB features (synthetic weights): i3d features' pipeline (fused fp16, batches of 32 windows, 15
# workers) against a one-window-at-a-time eager fp32 loop, the THUMOS recipe's 16-frame windows every 4 frames
python3 benchmarks/inception_features.py --device cuda --precision fp16 --window 16 --stride 4 --batch-size 32 \
    --workers 15 --repeats 3 2>&1 | tee "$out/inception_features.txt"
# mmaction2's I3D family: eager fp32 vs the fast engine in fp16, one full-size clip, per variant (with the error)
python3 benchmarks/family.py --device cuda --precision fp16 --repeats 5 2>&1 | tee "$out/family.txt"
# TV-L1 in torch on the GPU at 602x256 (bikes.mp4), batches of 1, 16, 64 pairs, against OpenCV's CPU TV-L1 on the
# same pairs (all cores), with the differences and the flow network's logits on each flow
# (features_nvdec and these last two steps are bounded by timeout: the whole call stays under the 10-minute limit)
timeout 75 python3 benchmarks/flow_torch.py --device cuda --pairs 64 --batches 1 16 64 --max-batches 1 2>&1 \
    | tee "$out/flow_torch.txt"
# two-stream i3d features end to end (the sample videos whole, 16-frame windows every 4): RGB only vs RGB + flow
# with the torch TV-L1 on the GPU (decoding then in the process: CUDA does not survive fork)
timeout 75 python3 benchmarks/two_stream.py --frames 0 --device cuda --batch-size 32 --flows torch 2>&1 \
    | tee "$out/two_stream.txt"
