# kvdesk plan for vLLM: Llama-ish 8B on 2× 24 GiB GPU
# 64 sequence(s) × 32,768 tokens, KV cache K fp8 / V fp8
# kvdesk predicts 143.98 GiB of 48.00 GiB: Spills 95.98 GiB to system RAM — decode ~5.7× slower
# note: the numbers above use the 'generic' profile; recompute with --engine vllm for vLLM's own rules
# --kv-cache-memory-bytes is per GPU and makes vLLM ignore --gpu-memory-utilization
vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --max-model-len 32768 \
  --max-num-seqs 64 \
  --kv-cache-dtype fp8 \
  --gpu-memory-utilization 0.92 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --kv-cache-memory-bytes 21474836480 \
  --block-size 32 \
  --max-num-batched-tokens 8192 \
  --enforce-eager
