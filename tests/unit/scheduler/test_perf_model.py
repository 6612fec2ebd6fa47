"""Unit tests of the GPU performance model: memory, timing, capacity under an SLO, profiles, calibration."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from scheduler.calibration import evaluate, published_rows, summarise
from scheduler.efficiency import Efficiency
from scheduler.hardware import builtin_gpu_specs
from scheduler.known_models import AWQ_INT4, BF16, FP8, LLAMA_3_1_8B, LLAMA_3_3_70B
from scheduler.model_spec import RequestShape, Slo
from scheduler.perf_model import PerfModel
from scheduler.profiles import MeasuredProfile, ProfileKey

CHAT = RequestShape(prompt_tokens=1000, output_tokens=200)
TYPICAL_SLO = Slo(ttft_p95_ms=1000, tpot_p95_ms=50)


@pytest.fixture(scope="module")
def model() -> PerfModel:
    return PerfModel()


# ----- memory -----


def test_70b_bf16_does_not_fit_one_l4_but_fits_two_h100(model: PerfModel) -> None:
    assert not model.fits(LLAMA_3_3_70B, BF16, "L4", 1)
    assert not model.fits(LLAMA_3_3_70B, BF16, "H100", 1)
    assert model.fits(LLAMA_3_3_70B, BF16, "H100", 2)
    assert model.kv_cache_tokens(LLAMA_3_3_70B, BF16, "L4", 1) == 0


def test_8b_fits_one_l4_in_bf16(model: PerfModel) -> None:
    assert model.fits(LLAMA_3_1_8B, BF16, "L4", 1)


def test_fit_problem_says_why(model: PerfModel) -> None:
    assert "KV room" in (model.fit_problem(LLAMA_3_3_70B, BF16, "L4", 1) or "")
    assert "unknown accelerator" in (model.fit_problem(LLAMA_3_1_8B, BF16, "TPU-v9", 1) or "")
    assert "tensor-parallel" in (model.fit_problem(LLAMA_3_1_8B, BF16, "H100", 3) or "")
    assert model.fit_problem(LLAMA_3_1_8B, BF16, "H100", 1) is None


def test_kv_tokens_shrink_with_a_bigger_variant(model: PerfModel) -> None:
    int4 = model.kv_cache_tokens(LLAMA_3_1_8B, AWQ_INT4, "L4", 1)
    bf16 = model.kv_cache_tokens(LLAMA_3_1_8B, BF16, "L4", 1)
    assert int4 > bf16 > 0


def test_kv_tokens_grow_with_tensor_parallelism(model: PerfModel) -> None:
    tp2 = model.kv_cache_tokens(LLAMA_3_3_70B, BF16, "H100", 2)
    tp4 = model.kv_cache_tokens(LLAMA_3_3_70B, BF16, "H100", 4)
    assert tp4 > 2 * tp2 > 0


def test_kv_tokens_match_the_bytes_per_token(model: PerfModel) -> None:
    # Llama-3.1-8B: 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 128 KiB per token.
    eff = model.efficiency
    free = 80 * 2**30 * eff.gpu_memory_utilization - eff.runtime_overhead_gib * 2**30 - 8.03e9 * 2
    assert model.kv_cache_tokens(LLAMA_3_1_8B, BF16, "H100", 1) == int(free // (128 * 1024))


def test_max_batch_is_kv_limited_then_capped(model: PerfModel) -> None:
    long_context = model.max_batch(LLAMA_3_1_8B, BF16, "L4", 1, 8192)
    assert long_context == model.kv_cache_tokens(LLAMA_3_1_8B, BF16, "L4", 1) // 8192
    assert model.max_batch(LLAMA_3_1_8B, BF16, "H100", 1, 100) == model.efficiency.max_num_seqs


# ----- timing -----


def test_decode_step_grows_with_batch_and_context(model: PerfModel) -> None:
    def step(batch: int, context: int) -> float:
        return model.decode_step_seconds(LLAMA_3_1_8B, BF16, "H100", 1, batch, context)

    assert step(1, 1000) < step(16, 1000) < step(128, 1000) < step(256, 1000)
    assert step(64, 500) < step(64, 2000) < step(64, 8000)


def test_decode_is_memory_bound_at_batch_one(model: PerfModel) -> None:
    # One token per step reads all 16 GB of bf16 weights: on an L4 (300 GB/s) that takes > 50 ms.
    step = model.decode_step_seconds(LLAMA_3_1_8B, BF16, "L4", 1, 1, 100)
    assert 16e9 / 300e9 < step < 2 * 16e9 / 300e9


def test_prefill_scales_with_prompt_tokens(model: PerfModel) -> None:
    def prefill(tokens: int) -> float:
        return model.prefill_seconds(LLAMA_3_1_8B, BF16, "H100", 1, tokens)

    assert prefill(1000) < prefill(2000) < prefill(4000)
    # Compute-bound: doubling a mid-sized prompt roughly doubles the time (attention adds a little more).
    assert 1.8 < prefill(4000) / prefill(2000) < 2.4


def test_fp8_is_faster_than_bf16_on_h100(model: PerfModel) -> None:
    assert model.prefill_seconds(LLAMA_3_1_8B, FP8, "H100", 1, 2000) < model.prefill_seconds(
        LLAMA_3_1_8B, BF16, "H100", 1, 2000
    )
    assert model.decode_step_seconds(LLAMA_3_1_8B, FP8, "H100", 1, 32, 1000) < model.decode_step_seconds(
        LLAMA_3_1_8B, BF16, "H100", 1, 32, 1000
    )


def test_fp8_prefill_gains_nothing_without_fp8_tensor_cores(model: PerfModel) -> None:
    # A100 has no fp8 tensor cores: fp8 weights are upcast and the math runs in bf16.
    fp8 = model.prefill_seconds(LLAMA_3_1_8B, FP8, "A100-80GB", 1, 4000)
    bf16 = model.prefill_seconds(LLAMA_3_1_8B, BF16, "A100-80GB", 1, 4000)
    assert fp8 == pytest.approx(bf16, rel=0.01)


def test_tensor_parallelism_speeds_up_but_sublinearly(model: PerfModel) -> None:
    tp2 = model.prefill_seconds(LLAMA_3_3_70B, BF16, "H100", 2, 2000)
    tp4 = model.prefill_seconds(LLAMA_3_3_70B, BF16, "H100", 4, 2000)
    assert tp2 / 2 < tp4 < tp2


# ----- capacity under an SLO -----


def test_capacity_is_sane_for_8b_on_h100(model: PerfModel) -> None:
    cap = model.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, TYPICAL_SLO)
    assert cap.feasible
    assert 1 < cap.rps < 100
    assert cap.output_tokens_per_s == pytest.approx(cap.rps * CHAT.output_tokens)
    assert cap.ttft_ms <= TYPICAL_SLO.ttft_p95_ms + 1e-6
    assert cap.tpot_ms <= TYPICAL_SLO.tpot_p95_ms + 1e-6
    assert 1 <= cap.batch <= model.efficiency.max_num_seqs
    assert cap.reason in {"tpot", "ttft", "kv-cache", "max-num-seqs", "compute"}


def test_capacity_rises_with_a_looser_tpot_slo(model: PerfModel) -> None:
    rates = [
        model.replica_capacity(LLAMA_3_1_8B, BF16, "A100-80GB", 1, CHAT, Slo(2000, tpot)).rps
        for tpot in (20, 30, 50, 80)
    ]
    assert all(r > 0 for r in rates)
    assert rates == sorted(rates) and rates[0] < rates[-1]


def test_capacity_rises_with_a_looser_ttft_slo(model: PerfModel) -> None:
    tight = model.replica_capacity(LLAMA_3_1_8B, AWQ_INT4, "A10G", 1, CHAT, Slo(400, 200))
    loose = model.replica_capacity(LLAMA_3_1_8B, AWQ_INT4, "A10G", 1, CHAT, Slo(2000, 200))
    assert 0 < tight.rps < loose.rps
    assert tight.reason == "ttft"


def test_impossible_slo_is_infeasible_with_a_reason(model: PerfModel) -> None:
    cap = model.replica_capacity(LLAMA_3_1_8B, BF16, "L4", 1, CHAT, Slo(ttft_p95_ms=1000, tpot_p95_ms=5))
    assert not cap.feasible
    assert cap.rps == 0 and cap.output_tokens_per_s == 0
    assert cap.reason.startswith("tpot")
    ttft = model.replica_capacity(LLAMA_3_1_8B, BF16, "L4", 1, CHAT, Slo(ttft_p95_ms=10, tpot_p95_ms=500))
    assert not ttft.feasible and ttft.reason.startswith("ttft")


def test_model_that_does_not_fit_has_no_capacity(model: PerfModel) -> None:
    cap = model.replica_capacity(LLAMA_3_3_70B, BF16, "L4", 1, CHAT, TYPICAL_SLO)
    assert not cap.feasible and cap.rps == 0
    assert "KV room" in cap.reason


def test_request_longer_than_kv_cache_is_infeasible(model: PerfModel) -> None:
    huge = RequestShape(prompt_tokens=100_000, output_tokens=1000)
    cap = model.replica_capacity(LLAMA_3_1_8B, BF16, "L4", 1, huge, Slo(600_000, 500))
    assert not cap.feasible and "KV cache" in cap.reason


def test_capacity_is_monotone_in_bandwidth() -> None:
    base = builtin_gpu_specs()["A100-80GB"]
    rates = []
    for bandwidth in (1000.0, 1500.0, 2039.0, 3000.0):
        model = PerfModel(gpus={"X": replace(base, name="X", bandwidth_gb_s=bandwidth)})
        rates.append(model.replica_capacity(LLAMA_3_1_8B, BF16, "X", 1, CHAT, TYPICAL_SLO).rps)
    assert all(a < b for a, b in zip(rates, rates[1:]))


def test_capacity_is_monotone_in_flops() -> None:
    base = builtin_gpu_specs()["A100-80GB"]
    rates = []
    for tflops in (150.0, 312.0, 600.0):
        model = PerfModel(gpus={"X": replace(base, name="X", bf16_tflops=tflops)})
        rates.append(model.replica_capacity(LLAMA_3_1_8B, BF16, "X", 1, CHAT, TYPICAL_SLO).rps)
    assert all(a < b for a, b in zip(rates, rates[1:]))


def test_bigger_gpu_serves_more(model: PerfModel) -> None:
    l4 = model.replica_capacity(LLAMA_3_1_8B, BF16, "L4", 1, CHAT, Slo(2000, 100)).rps
    a100 = model.replica_capacity(LLAMA_3_1_8B, BF16, "A100-80GB", 1, CHAT, Slo(2000, 100)).rps
    h100 = model.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, Slo(2000, 100)).rps
    assert 0 < l4 < a100 < h100


def test_capacity_stays_below_offline_max_throughput(model: PerfModel) -> None:
    loose = Slo(ttft_p95_ms=60_000, tpot_p95_ms=10_000)
    cap = model.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, loose)
    offline = model.max_throughput(LLAMA_3_1_8B, BF16, "H100", 1, CHAT)
    assert cap.feasible
    assert cap.output_tokens_per_s <= offline.output_tokens_per_s * (1 + 1e-6)
    assert cap.output_tokens_per_s > 0.8 * offline.output_tokens_per_s


def test_capacity_is_memoised(model: PerfModel) -> None:
    first = model.replica_capacity(LLAMA_3_1_8B, FP8, "H100", 1, CHAT, TYPICAL_SLO)
    assert model.replica_capacity(LLAMA_3_1_8B, FP8, "H100", 1, CHAT, TYPICAL_SLO) is first


# ----- measured profiles -----


def test_measured_profile_overrides_when_it_meets_the_slo() -> None:
    key = ProfileKey(LLAMA_3_1_8B.name, BF16.name, "H100", 1)
    model = PerfModel(profiles={key: MeasuredProfile(rps=7.5, ttft_p95_ms=300, tpot_p95_ms=25)})
    cap = model.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, TYPICAL_SLO)
    assert cap.feasible and cap.rps == 7.5 and cap.reason == "measured"
    other_gpu = model.replica_capacity(LLAMA_3_1_8B, BF16, "A100-80GB", 1, CHAT, TYPICAL_SLO)
    assert other_gpu.reason != "measured"


def test_measured_profile_scales_the_model_for_a_tighter_slo() -> None:
    plain = PerfModel()
    measured_slo = Slo(1000, 50)
    predicted = plain.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, measured_slo).rps
    key = ProfileKey(LLAMA_3_1_8B.name, BF16.name, "H100", 1)
    profile = MeasuredProfile(rps=predicted / 2, ttft_p95_ms=1000, tpot_p95_ms=50)
    tight = Slo(500, 25)
    scaled = PerfModel(profiles={key: profile}).replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, tight)
    unscaled = plain.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, tight).rps
    assert scaled.rps == pytest.approx(unscaled / 2)


def test_measured_profile_for_another_shape_is_ignored() -> None:
    key = ProfileKey(LLAMA_3_1_8B.name, BF16.name, "H100", 1)
    profile = MeasuredProfile(rps=1.0, ttft_p95_ms=100, tpot_p95_ms=10, shape=RequestShape(100, 100))
    model = PerfModel(profiles={key: profile})
    cap = model.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, TYPICAL_SLO)
    assert cap.reason != "measured"


# ----- calibration against published throughput -----


def test_every_published_row_is_within_2x() -> None:
    results = evaluate(Efficiency(), published_rows())
    assert len(results) == 50
    outside = [r for r in results if abs(math.log(r.ratio)) > math.log(2)]
    assert outside == []
    summary = summarise(results)
    assert 0.8 < summary.geomean_ratio < 1.25


def test_efficiency_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Efficiency(prefill_mfu=1.5)
    with pytest.raises(ValueError):
        Efficiency(max_num_seqs=0)


def test_latency_grows_with_load(model: PerfModel) -> None:
    points = [model.latency_at(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, rps) for rps in (0.1, 5.0, 15.0, 20.0)]
    assert all(p.stable for p in points)
    assert [p.ttft_p95_ms for p in points] == sorted(p.ttft_p95_ms for p in points)
    assert [p.tpot_p95_ms for p in points] == sorted(p.tpot_p95_ms for p in points)
    assert points[0].tpot_mean_ms <= points[0].tpot_p95_ms
    assert not model.latency_at(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, 10_000.0).stable


def test_latency_at_capacity_matches_capacity(model: PerfModel) -> None:
    cap = model.replica_capacity(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, TYPICAL_SLO)
    point = model.latency_at(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, cap.rps)
    assert point.tpot_p95_ms == pytest.approx(cap.tpot_ms)
    assert point.ttft_p95_ms == pytest.approx(cap.ttft_ms)
