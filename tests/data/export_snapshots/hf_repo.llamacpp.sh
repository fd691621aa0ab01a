# kvdesk plan for llama.cpp: Llama-ish 8B on 1× 24 GiB GPU
# 4 sequence(s) × 8,192 tokens, KV cache K auto / V auto
# kvdesk predicts 19.47 GiB of 24.00 GiB: Fits — 4.53 GiB headroom
# note: the numbers above use the 'generic' profile; recompute with --engine llama.cpp for llama.cpp's own rules
# replace MODEL.gguf with the path of the model's GGUF file
llama-server \
  -m MODEL.gguf \
  -c 32768 \
  -np 4 \
  -b 2048 \
  -ub 512 \
  -ngl 999
