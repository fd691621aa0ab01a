# kvdesk plan for llama.cpp: Hybrid MLA + state on 1× Apple M3 Max
# 2 sequence(s) × 32,768 tokens, KV cache K q8_0 / V q4_0
# kvdesk predicts 5.86 GiB of 48.00 GiB: Fits — 42.14 GiB headroom
# note: the numbers above use the 'generic' profile; recompute with --engine llama.cpp for llama.cpp's own rules
# replace MODEL.gguf with the path of the model's GGUF file
llama-server \
  -m MODEL.gguf \
  -c 65536 \
  -np 2 \
  -b 2048 \
  -ub 1024 \
  -ctk q8_0 \
  -ctv q4_0 \
  -fa on \
  -ngl 999 \
  --kv-unified \
  --swa-full \
  -fitt 1024
