# kvdesk plan for Ollama: Llama-ish 8B on 1× 24 GiB GPU
# 4 sequence(s) × 8,192 tokens, KV cache K q4_0 / V q4_0
# kvdesk predicts 16.59 GiB of 24.00 GiB: FITS — 7.41 GiB headroom
# note: the numbers above use the 'generic' profile; recompute with --engine ollama for Ollama's own rules
# 1. the server settings (global for every model this server runs):
OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q4_0 OLLAMA_NUM_PARALLEL=4 ollama serve &
# 2. a model whose context is the plan's, per request:
cat > Modelfile <<'KVDESK_EOF'
FROM /models/Tom's "best" $(rm -rf ~)/m q4.gguf
PARAMETER num_ctx 8192
KVDESK_EOF
ollama create llama-ish-8b-8k -f Modelfile
