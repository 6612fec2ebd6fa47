"""Accelerator speed learned from reported TPOT (scheduler.speed_calibration)."""

from __future__ import annotations

import math

import pytest

from scheduler.hardware import builtin_gpu_specs
from scheduler.known_models import BF16, LLAMA_3_1_8B, LLAMA_3_3_70B
from scheduler.model_spec import RequestShape
from scheduler.perf_model import PerfModel
from scheduler.speed_calibration import (
    MIN_REQUESTS,
    SLOWEST,
    SMOOTHING,
    LatencySample,
    SpeedModels,
    calibrated_gpus,
    rounded,
    update_speeds,
    window_speed,
)

CHAT = RequestShape(prompt_tokens=1000, output_tokens=200)


def sample(speed: float, requests: float = 100.0, accelerator: str = "H100") -> LatencySample:
    return LatencySample(accelerator, requests, speed)


def test_first_window_is_taken_as_is() -> None:
    assert update_speeds({}, [sample(0.85)]) == pytest.approx({"H100": 0.85})


def test_later_windows_blend_in_log_space() -> None:
    got = update_speeds({"H100": 0.9}, [sample(0.8)])["H100"]
    assert got == pytest.approx(math.exp((1 - SMOOTHING) * math.log(0.9) + SMOOTHING * math.log(0.8)))


def test_samples_pool_per_accelerator_weighted_by_requests() -> None:
    got = update_speeds({}, [sample(0.8, 300), sample(0.9, 100), sample(0.7, 50, "L4"), None])
    assert got["H100"] == pytest.approx(math.exp((300 * math.log(0.8) + 100 * math.log(0.9)) / 400))
    assert got["L4"] == pytest.approx(0.7)


def test_accelerators_without_a_sample_keep_their_estimate() -> None:
    assert update_speeds({"H100": 0.9, "L4": 0.8}, [sample(0.9, accelerator="L4")])["H100"] == 0.9


def test_window_speed_bisects_to_the_largest_factor_that_explains_the_latency() -> None:
    def expected_at(speed: float) -> float:  # a replica whose TPOT is 10 ms at full speed, 1/speed slower
        return 10.0 / speed

    assert window_speed(10.0 / 0.8, expected_at) == pytest.approx(0.8)
    assert window_speed(10.0 / 0.805, expected_at) == pytest.approx(0.8)  # rounds towards slower
    assert window_speed(9.0, expected_at) == 1.0  # faster than the datasheet: capped
    assert window_speed(50.0, expected_at) == SLOWEST  # slower than the grid reaches
    assert window_speed(15.0, lambda s: math.inf if s < 0.7 else 10.0 / s) == pytest.approx(0.66, abs=0.04)


def test_a_window_with_too_few_requests_or_no_latency_says_nothing() -> None:
    models = SpeedModels(PerfModel())
    args = (LLAMA_3_1_8B, BF16, "H100", 1, CHAT, 1.0)
    assert models.sample(*args, observed_tpot_p95_ms=20.0, requests=MIN_REQUESTS - 1) is None
    assert models.sample(*args, observed_tpot_p95_ms=0.0, requests=100) is None
    assert models.sample(LLAMA_3_3_70B, BF16, "L4", 1, CHAT, 1.0, 20.0, 100) is None  # does not fit


def test_rounded_drops_full_speed_and_rounds_down() -> None:
    assert rounded({"H100": 0.859, "L4": 1.0, "A10G": 0.9}) == {"A10G": 0.9, "H100": 0.85}


def test_calibrated_gpus_scale_speed_not_memory() -> None:
    gpus = builtin_gpu_specs()
    got = calibrated_gpus(gpus, {"H100": 0.8})
    assert got["H100"].bandwidth_gb_s == pytest.approx(gpus["H100"].bandwidth_gb_s * 0.8)
    assert got["H100"].bf16_tflops == pytest.approx(gpus["H100"].bf16_tflops * 0.8)
    assert got["H100"].memory_gib == gpus["H100"].memory_gib
    assert got["L4"] == gpus["L4"]


@pytest.mark.parametrize("truth", [0.62, 0.85, 0.95, 1.15])
@pytest.mark.parametrize("load", [0.2, 0.5, 0.8])
def test_learns_the_speed_of_an_accelerator_from_its_latency(truth: float, load: float) -> None:
    """Replicas on an H100 that runs at `truth` x its datasheet, loaded to a share of what they can process:
    the speed learned from their TPOT is within one grid step below the truth (capped at 1)."""
    actual = PerfModel(gpus=calibrated_gpus(builtin_gpu_specs(), {"H100": truth}))
    rps = load * actual.max_throughput(LLAMA_3_1_8B, BF16, "H100", 1, CHAT).rps
    observed = actual.latency_at(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, rps).tpot_p95_ms
    got = SpeedModels(PerfModel()).sample(LLAMA_3_1_8B, BF16, "H100", 1, CHAT, rps, observed, 100)
    assert got is not None
    learned = update_speeds({}, [got])["H100"]
    assert min(truth, 1.0) - 0.011 <= learned <= min(truth, 1.0) + 1e-9


def test_capacity_on_calibrated_gpus_falls_with_speed() -> None:
    """What the planner gets from the learned factor: a slower accelerator sustains fewer requests."""
    base = PerfModel().max_throughput(LLAMA_3_1_8B, BF16, "H100", 1, CHAT).rps
    slow = PerfModel(gpus=calibrated_gpus(builtin_gpu_specs(), {"H100": 0.8}))
    assert slow.max_throughput(LLAMA_3_1_8B, BF16, "H100", 1, CHAT).rps < 0.9 * base
