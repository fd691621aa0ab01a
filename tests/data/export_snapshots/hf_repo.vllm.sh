# kvdesk plan for vLLM: Llama-ish 8B on 1× 24 GiB GPU
# 4 sequence(s) × 8,192 tokens, KV cache K auto / V auto
# kvdesk predicts 19.47 GiB of 24.00 GiB: Fits — 4.53 GiB headroom
# note: the numbers above use the 'generic' profile; recompute with --engine vllm for vLLM's own rules
vllm serve meta-llama/Llama-3.1-8B \
  --max-model-len 8192 \
  --max-num-seqs 4 \
  --kv-cache-dtype auto \
  --gpu-memory-utilization 0.9 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1
