"""Property tests of the performance model's capacity: it honours the SLO it is given, and loosening an
SLO or adding hardware never lowers it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.known_models import AWQ_INT4, BF16, FP8, LLAMA_3_1_8B, LLAMA_3_3_70B
from scheduler.model_spec import RequestShape, Slo
from scheduler.perf_model import PerfModel

MODEL = PerfModel()
COMBOS = [
    (LLAMA_3_1_8B, BF16, "L4", 1),
    (LLAMA_3_1_8B, AWQ_INT4, "A10G", 1),
    (LLAMA_3_1_8B, FP8, "H100", 1),
    (LLAMA_3_1_8B, BF16, "A100-80GB", 2),
    (LLAMA_3_3_70B, FP8, "H100", 2),
    (LLAMA_3_3_70B, BF16, "A100-80GB", 4),
    (LLAMA_3_3_70B, AWQ_INT4, "L40S", 1),
]
shapes = st.builds(RequestShape, st.integers(1, 16_000), st.integers(1, 4_000))
slos = st.builds(Slo, st.floats(10, 30_000), st.floats(2, 500))


@settings(max_examples=300, deadline=None)
@given(combo=st.sampled_from(COMBOS), shape=shapes, slo=slos)
def test_capacity_meets_its_slo(combo: tuple, shape: RequestShape, slo: Slo) -> None:
    cap = MODEL.replica_capacity(*combo, shape, slo)
    if cap.feasible:
        assert cap.rps > 0
        assert cap.ttft_ms <= slo.ttft_p95_ms * (1 + 1e-9)
        assert cap.tpot_ms <= slo.tpot_p95_ms * (1 + 1e-9)
        assert cap.batch >= 1
    else:
        assert cap.rps == 0 and cap.reason


@settings(max_examples=200, deadline=None)
@given(combo=st.sampled_from(COMBOS), shape=shapes, slo=slos, looser=st.floats(1.0, 5.0))
def test_looser_slo_never_lowers_capacity(combo: tuple, shape: RequestShape, slo: Slo, looser: float) -> None:
    tight = MODEL.replica_capacity(*combo, shape, slo)
    loose = MODEL.replica_capacity(*combo, shape, Slo(slo.ttft_p95_ms * looser, slo.tpot_p95_ms * looser))
    assert loose.rps >= tight.rps * (1 - 1e-6)
    assert loose.feasible or not tight.feasible
