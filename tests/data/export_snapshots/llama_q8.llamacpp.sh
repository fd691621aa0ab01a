# kvdesk plan for llama.cpp: Llama-ish 8B on 1× 24 GiB GPU
# 4 sequence(s) × 8,192 tokens, KV cache K q8_0 / V q8_0
# kvdesk predicts 17.59 GiB of 24.00 GiB: Fits — 6.41 GiB headroom
# note: the numbers above use the 'generic' profile; recompute with --engine llama.cpp for llama.cpp's own rules
llama-server \
  -m 'Llama 3.1 8B Q4_K_M.gguf' \
  -c 32768 \
  -np 4 \
  -b 2048 \
  -ub 512 \
  -ctk q8_0 \
  -ctv q8_0 \
  -fa on \
  -ngl 999
