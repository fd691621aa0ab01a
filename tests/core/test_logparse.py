"""Engine-log parser on real startup-log excerpts (tests/data/logs, sources in SOURCES.md there)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvdesk.core.logparse import MAX_LOG_BYTES, parse_log

MIB, GIB = 1 << 20, 1 << 30
LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"
VALIDATION = Path(__file__).resolve().parents[1] / "data" / "validation"


def log(name: str):  # type: ignore[no-untyped-def]
    return parse_log((LOGS / name).read_text(encoding="utf-8"))


def mib(x: float) -> int:
    return round(x * MIB)


def test_llamacpp_b6209_rpc_split_over_two_devices() -> None:
    obs = log("llamacpp_b6209_rpc_llama31_70b.log")
    assert obs.engine == "llama.cpp" and obs.runs == 1
    gpus = obs.gpu_devices()
    assert [d.name for d in gpus] == ["RPC[172.31.27.42:50052]", "RPC[172.31.20.38:50052]"]
    assert [d.model_bytes for d in gpus] == [mib(18821.56), mib(18725.42)]
    assert [d.kv_bytes for d in gpus] == [mib(656), mib(624)]
    assert [d.compute_bytes for d in gpus] == [mib(588.01), mib(588.01)]
    assert obs.kv_bytes == 1280 * MIB and obs.k_bytes == obs.v_bytes == 640 * MIB
    (cache,) = obs.kv_caches
    assert (cache.cells, cache.layers, cache.seqs, cache.types["K"]) == (4096, 80, 1, "f16")
    assert obs.kv_bytes_per_token == 1280 * MIB / 4096  # 80 layers × 8 heads × 128 × 2 (K+V) × 2 B
    assert obs.model_bytes == mib(18821.56) + mib(18725.42) + mib(563.62)
    assert obs.settings["n_ctx"] == 4096 and obs.settings["flash_attn"] == 0


def test_llamacpp_iswa_two_caches_and_repack_not_counted_as_model() -> None:
    obs = log("llamacpp_2025q4_gemma2_2b_iswa.log")
    assert [c.kind for c in obs.kv_caches] == ["non-swa", "swa"]
    assert obs.kv_bytes == 832 * MIB and obs.k_bytes == 416 * MIB
    assert obs.kv_bytes_per_token == 416 * MIB / 8192  # only the full-attention cache grows per token
    assert obs.model_bytes == mib(1623.67)  # CPU_REPACK is a repacked copy
    cpu = {d.name: d for d in obs.devices}
    assert cpu["CPU_REPACK"].repack_bytes == mib(921.38)
    assert obs.settings["n_seq_max"] == 4 and obs.settings["kv_unified"] == "true"
    assert [d.name for d in obs.gpu_devices()] == ["CPU_Mapped", "CPU_REPACK", "CPU"]  # CPU-only run


def test_ik_llama_old_names_q8_and_mla() -> None:
    qwen = log("ikllama_2025_06_qwen3_235b_q8.log")
    assert qwen.k_bytes == qwen.v_bytes == mib(1997.5) and qwen.kv_bytes == 3995 * MIB
    (cuda0,) = qwen.gpu_devices()
    assert cuda0.kv_bytes == mib(3995.05) and cuda0.compute_bytes == mib(2502)
    cpu = next(d for d in qwen.devices if d.name == "CPU")
    assert cpu.model_bytes == mib(36422.69) + mib(37141.03) + mib(35082.59) + mib(630.59)  # four CPU lines
    mla = log("ikllama_2025_deepseek_r1_mla_3gpu.log")
    assert [d.name for d in mla.gpu_devices()] == ["CUDA0", "CUDA1", "CUDA2"]
    assert [d.kv_bytes // MIB for d in mla.gpu_devices()] == [450, 342, 306]
    assert mla.kv_caches[0].parts == {"c^KV": 1098 * MIB} and mla.k_bytes is None
    assert mla.settings["mla_attn"] == 3


def test_metal_mapped_weights_belong_to_the_metal_device() -> None:
    obs = log("llamacpp_b4227_metal_bge_small.log")
    (metal,) = obs.gpu_devices()
    assert metal.name == "Metal" and metal.model_bytes == mib(40.73) and metal.kv_bytes == 9 * MIB
    assert metal.compute_bytes == 16 * MIB
    assert obs.kv_bytes == 9 * MIB and obs.settings["n_ctx_per_seq"] == 512


def test_recurrent_state_and_prefixes() -> None:
    vk = log("llamacpp_2026_hybrid_recurrent_vulkan.log")
    assert vk.recurrent_bytes == mib(448.88)
    (rec,) = vk.kv_caches
    assert rec.kind == "recurrent" and rec.parts == {"R": mib(16.88), "S": 432 * MIB} and rec.layers == 64
    assert vk.kv_bytes == 512 * MIB  # no summary line in the excerpt: the KV buffer stands in
    (gpu,) = vk.gpu_devices()
    assert gpu.name == "Vulkan0" and gpu.compute_bytes == mib(568.18) and gpu.recurrent_bytes == mib(448.88)
    cuda = log("llamacpp_2026_hybrid_q8kv_cuda.log")
    assert cuda.k_bytes == 2176 * MIB and cuda.kv_caches[0].types == {"K": "q8_0", "V": "q8_0"}
    assert cuda.recurrent_bytes == mib(598.5) and cuda.kv_bytes == 4352 * MIB


def test_rs_seq_copies_and_dsa_indexer_cache_lines() -> None:
    """Lines of newer builds, as real logs print them (tests/data/llamacpp/kv_logs.json cases)."""
    raw = (Path(__file__).parents[1] / "data" / "llamacpp" / "kv_logs.json").read_text(encoding="utf-8")
    cases = {c["id"]: c for c in json.loads(raw)["cases"]}
    mtp = parse_log("\n".join(next(c for c in cases.values() if c["run"].get("rs_seq") == 6)["log"]))
    assert mtp.settings["rs_seq"] == 6 and mtp.recurrent_bytes == mib(351.75)
    dsa = parse_log("\n".join(cases["2026-glm5.2-dsa-768000-mla-vless"]["log"]))
    main, indexer = dsa.kv_caches
    assert (main.kind, main.layers, indexer.kind, indexer.layers) == ("", 78, "indexer", 21)
    assert indexer.size_bytes == mib(3937.50) and dsa.kv_bytes == mib(65812.50) + mib(3937.50)


def test_ollama_estimates_old_and_new_lines() -> None:
    old = log("ollama_0.5_offload_to_cuda_issue8098.log")
    assert old.engine == "ollama"
    assert old.ollama["memory.required.kv"] == 896 * MIB
    assert old.ollama["memory.required.full"] == round(3.7 * GIB)
    assert old.ollama["memory.available"] == [round(78.6 * GIB)] and old.ollama["memory.gpu_overhead"] == 0
    assert old.settings["ollama.parallel"] == 4 and old.settings["ollama.ctx-size"] == 8192
    mid = log("ollama_0.11_offload_issue11819.log")
    assert mid.ollama["memory.required.kv"] == 608 * MIB and mid.settings["ollama.layers.offload"] == 48
    new = log("ollama_new_engine_pr11090.log")
    assert [(d.name, d.model_bytes) for d in new.gpu_devices()] == [
        ("CUDA0", round(11.5 * GIB)),
        ("CUDA1", round(11.9 * GIB)),
    ]


def test_vllm_0_19_single_gpu() -> None:
    obs = log("vllm_0.19_llama31_8b_h100.log")
    assert obs.engine == "vllm"
    (w,) = obs.vllm_workers
    assert w.weights_bytes == round(14.99 * GIB) and w.available_kv_bytes == round(58.11 * GIB)
    assert w.non_kv_bytes == round(17.12 * GIB) and w.activation_bytes == round(1.89 * GIB)
    assert w.cuda_graph_bytes == round(0.91 * GIB) and w.total_gpu_bytes == round(79.19 * GIB)
    assert (obs.kv_tokens, obs.num_gpu_blocks, obs.max_concurrency, obs.concurrency_tokens) == (
        476016,
        29751,
        58.11,
        8192,
    )
    assert obs.settings["vllm.gpu_memory_utilization"] == 0.95
    assert obs.kv_bytes_per_token == pytest.approx(131072, rel=1e-4)  # Llama 3.1 8B: 128 KiB per token
    fp8 = log("vllm_0.19_llama31_8b_h100_kvfp8.log")
    assert fp8.kv_tokens == 952032 and fp8.kv_bytes_per_token == pytest.approx(65536, rel=1e-4)


def test_vllm_older_formats_and_workers() -> None:
    v0 = log("vllm_v0_bamba_tp2_pr10909.log")
    assert [w.name for w in v0.vllm_workers] == ["driver", "VllmWorkerProcess pid=1587462"]
    assert all(w.weights_bytes == round(18.4902 * GIB) for w in v0.vllm_workers)  # "GB" is GiB there
    assert [w.available_kv_bytes for w in v0.vllm_workers] == [round(34.78 * GIB), round(34.96 * GIB)]
    assert v0.num_gpu_blocks == 189945 and v0.max_concurrency == 2967.89 and v0.concurrency_tokens == 1024
    v08 = log("vllm_0.8_worker_profile_pr14447.log")
    assert len(v08.vllm_workers) == 2
    w = v08.vllm_workers[0]
    assert (w.weights_bytes, w.non_torch_bytes, w.activation_bytes) == (
        round(21.21 * GIB),
        round(0.20 * GIB),
        round(0.37 * GIB),
    )
    assert w.available_kv_bytes == round(1.57 * GIB) and w.requested_bytes == round(23.35 * GIB)
    v1 = log("vllm_v1_early_70b_w8a8_pr12569.log")
    assert v1.model_bytes == round(67.7229 * GIB) and v1.num_gpu_blocks == 1381 and v1.max_concurrency == 10.79


@pytest.mark.parametrize("entry", json.loads((VALIDATION / "engine_logs.json").read_text()), ids=lambda e: e["id"])
def test_validation_raw_lines_give_the_recorded_figures(entry: dict) -> None:  # type: ignore[type-arg]
    obs = parse_log("\n".join(entry["observed"]["raw_log_lines"]))
    want = entry["observed"]
    if want.get("kv_bytes") is not None:
        assert obs.kv_bytes == want["kv_bytes"]
    if want.get("k_bytes") is not None and obs.k_bytes is not None:
        assert obs.k_bytes == want["k_bytes"] and obs.v_bytes == want["v_bytes"]
    if want.get("kv_tokens") is not None:
        assert obs.kv_tokens == want["kv_tokens"]
    if want.get("max_concurrency") is not None:
        assert obs.max_concurrency == want["max_concurrency"]
    if want.get("num_gpu_blocks") is not None:
        assert obs.num_gpu_blocks == want["num_gpu_blocks"]
    assert obs.lines_matched > 0


def test_two_model_loads_keep_the_last() -> None:
    text = (LOGS / "llamacpp_b4227_metal_bge_small.log").read_text() * 2
    obs = parse_log(text)
    assert obs.runs == 2 and obs.kv_bytes == 9 * MIB and obs.gpu_devices()[0].model_bytes == mib(40.73)
    assert any("2 model loads" in w for w in obs.warnings)


# -- hostile input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x01\x02 garbage \xff",
        "llama_kv_cache: size = 99999999999999999999999 MiB (1 cells), K (f16): 1e309 MiB",
        "load_tensors: CUDA0 model buffer size = . MiB",
        "Available KV cache memory: 1.2.3 GiB\nGPU KV cache size: ,,,, tokens",
        'msg="offload to cuda" memory.required.full="[[[" memory.required.kv=',
        "x" * 100_000,
        "(" * 50_000 + "size = 1 MiB, K (f16): 1 MiB",
        "\x1b[31mllama_kv_cache: size =  16.00 MiB (  256 cells,   2 layers,  1/1 seqs), "
        "K (f16):   8.00 MiB, V (f16):   8.00 MiB\x1b[0m",
    ],
)
def test_garbage_never_crashes(text: str) -> None:
    obs = parse_log(text)
    assert obs.lines_read >= 0
    if "\x1b[31m" in text:
        assert obs.kv_bytes == 16 * MIB  # colour codes are stripped


def test_huge_input_is_cut() -> None:
    big = "noise line\n" * ((MAX_LOG_BYTES // 11) + 10)
    obs = parse_log(big)
    assert obs.truncated and any("cut" in w for w in obs.warnings)


def test_no_memory_lines_says_so() -> None:
    obs = parse_log("hello\nworld\n")
    assert obs.engine == "unknown" and obs.warnings == ["no llama.cpp, Ollama or vLLM memory lines found"]


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("llama_kv cache size=MiB()0123456789.,:KV f16 seqs cells GiB\n")), max_size=400
    )
)
def test_fuzz_log_like_text(text: str) -> None:
    parse_log(text)


def test_ollama_compute_graph_keeps_the_last_reserve() -> None:
    lines = [
        'time=2025-07-18T14:50:57.066Z level=INFO source=ggml.go:365 msg="model weights" buffer=CUDA0 size="11.5 GiB"',
        'time=2025-07-18T14:50:58.130Z level=INFO source=ggml.go:672 msg="compute graph" backend=CUDA0 '
        'buffer_type=CUDA0 size="300.0 MiB"',
        'time=2025-07-18T14:50:58.131Z level=INFO source=ggml.go:672 msg="compute graph" backend=CUDA0 '
        'buffer_type=CUDA0 size="512.0 MiB"',
    ]
    (gpu,) = parse_log("\n".join(lines)).gpu_devices()
    assert gpu.compute_bytes == 512 * MIB and gpu.model_bytes == round(11.5 * GIB)
