# kvdesk plan for llama.cpp: Llama-ish 8B on 1× 24 GiB GPU
# 4 sequence(s) × 8,192 tokens, KV cache K q4_0 / V q4_0
# kvdesk predicts 16.59 GiB of 24.00 GiB: Fits — 7.41 GiB headroom
# note: the numbers above use the 'generic' profile; recompute with --engine llama.cpp for llama.cpp's own rules
llama-server \
  -m '/models/Tom'"'"'s "best" $(rm -rf ~)/m q4.gguf' \
  -c 32768 \
  -np 4 \
  -b 2048 \
  -ub 512 \
  -ctk q4_0 \
  -ctv q4_0 \
  -fa on \
  -ngl 999
