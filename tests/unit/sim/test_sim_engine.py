"""The engine loop on a virtual clock with a deterministic linear timing: exact, instant, noise-free."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from agents.sim.clock import VirtualClock
from agents.sim.engine import Engine, RequestTooLarge
from agents.sim.scheduler import SchedulerConfig
from agents.sim.sequence import FinishReason, Sequence
from agents.sim.timing import LinearTiming

TIMING = LinearTiming(prefill_base_s=0.010, prefill_per_token_s=0.0001, decode_base_s=0.010, decode_per_seq_s=0.0005)


def _engine(num_blocks: int = 10_000, speedup: float = 1.0, **config: object) -> tuple[Engine, VirtualClock]:
    clock = VirtualClock()
    engine = Engine(TIMING, SchedulerConfig(num_blocks=num_blocks, **config),  # type: ignore[arg-type]
                    speedup=speedup, clock=clock, sleep=clock.sleep)
    return engine, clock


async def _finish(seqs: list[Sequence]) -> None:
    for seq in seqs:
        while not seq.finished:
            seq.progress.clear()
            await seq.progress.wait()


def _e2e(seq: Sequence) -> float:
    assert seq.finished_at is not None
    return seq.finished_at - seq.arrival


def test_single_request_latency_is_prefill_plus_decode_steps() -> None:
    async def main() -> Sequence:
        engine, _ = _engine()
        engine.start()
        seq = engine.submit(100, 5)
        await _finish([seq])
        await engine.stop()
        return seq

    seq = asyncio.run(main())
    prefill = TIMING.prefill_seconds(100)
    decode = TIMING.decode_step_seconds(1, 0)
    assert seq.first_token == pytest.approx(prefill)
    assert _e2e(seq) == pytest.approx(prefill + 4 * decode)


def test_latency_grows_with_load() -> None:
    async def run(concurrency: int) -> float:
        engine, _ = _engine(max_num_seqs=8)
        engine.start()
        seqs = [engine.submit(200, 20) for _ in range(concurrency)]
        await _finish(seqs)
        await engine.stop()
        return statistics.median(_e2e(s) for s in seqs)

    unloaded = asyncio.run(run(1))
    loaded = asyncio.run(run(64))
    assert loaded > 2 * unloaded


def test_kv_cache_limit_queues_requests() -> None:
    async def main() -> tuple[list[Sequence], int]:
        engine, _ = _engine(num_blocks=20, block_size=16, preemption=False)  # room for 2 sequences of 150
        engine.start()
        seqs = [engine.submit(100, 50) for _ in range(6)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        peak_waiting = engine.num_waiting
        await _finish(seqs)
        await engine.stop()
        return seqs, peak_waiting

    seqs, peak_waiting = asyncio.run(main())
    assert peak_waiting >= 3
    queued = [s.first_scheduled - s.arrival for s in seqs if s.first_scheduled is not None]
    assert queued[0] == 0 and max(queued) > 0  # later requests waited for KV blocks to free up


def test_preemption_is_counted_and_everything_still_finishes() -> None:
    async def main() -> list[Sequence]:
        engine, _ = _engine(num_blocks=12, block_size=16)
        engine.start()
        seqs = [engine.submit(48, 60) for _ in range(3)]
        await _finish(seqs)
        await engine.stop()
        return seqs

    seqs = asyncio.run(main())
    assert sum(s.num_preemptions for s in seqs) > 0
    assert all(s.output_tokens == 60 and s.finish_reason is FinishReason.LENGTH for s in seqs)


def test_request_that_can_never_fit_is_refused() -> None:
    async def main() -> None:
        engine, _ = _engine(num_blocks=4, block_size=16)
        with pytest.raises(RequestTooLarge):
            engine.submit(60, 10)

    asyncio.run(main())


def test_speedup_divides_wall_time_not_simulated_latency() -> None:
    async def run(speedup: float) -> tuple[float, float]:
        clock = VirtualClock()
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            await clock.sleep(seconds)

        engine = Engine(TIMING, SchedulerConfig(num_blocks=1000), speedup=speedup, clock=clock, sleep=sleep)
        engine.start()
        seq = engine.submit(100, 10)
        await _finish([seq])
        await engine.stop()
        return _e2e(seq), sum(slept)

    sim1, wall1 = asyncio.run(run(1.0))
    sim10, wall10 = asyncio.run(run(10.0))
    assert sim10 == pytest.approx(sim1)
    assert wall10 == pytest.approx(wall1 / 10)


def test_slowdown_multiplies_step_time() -> None:
    async def run(slowdown: float) -> float:
        engine, _ = _engine()
        engine.slowdown = slowdown
        engine.start()
        seq = engine.submit(100, 10)
        await _finish([seq])
        await engine.stop()
        return _e2e(seq)

    assert asyncio.run(run(3.0)) == pytest.approx(3 * asyncio.run(run(1.0)))


def test_pause_stops_progress_until_resume() -> None:
    async def main() -> tuple[int, bool]:
        engine, _ = _engine()
        engine.start()
        engine.pause()
        seq = engine.submit(10, 5)
        for _ in range(50):
            await asyncio.sleep(0)
        tokens_while_paused = seq.output_tokens
        engine.resume()
        await _finish([seq])
        await engine.stop()
        return tokens_while_paused, seq.finished

    tokens, finished = asyncio.run(main())
    assert tokens == 0 and finished


def test_stop_aborts_unfinished_requests() -> None:
    async def main() -> Sequence:
        engine, _ = _engine()
        engine.pause()
        engine.start()
        seq = engine.submit(10, 5)
        await engine.stop()
        return seq

    assert asyncio.run(main()).finish_reason is FinishReason.ABORT


def test_wait_idle_returns_after_all_requests_finish() -> None:
    async def main() -> list[Sequence]:
        engine, _ = _engine()
        engine.start()
        seqs = [engine.submit(50, 8) for _ in range(5)]
        await asyncio.wait_for(engine.wait_idle(), timeout=10)
        await engine.stop()
        return seqs

    assert all(s.finish_reason is FinishReason.LENGTH for s in asyncio.run(main()))


def test_metrics_observer_sees_tokens_and_finishes() -> None:
    from agents.sim.metrics import ReplicaMetrics, cache_config_labels

    async def main() -> ReplicaMetrics:
        clock = VirtualClock()
        metrics = ReplicaMetrics("m", 4096, cache_config_labels(16, 1000, True, 4096), lambda: 0.0)
        engine = Engine(TIMING, SchedulerConfig(num_blocks=1000), observer=metrics, clock=clock, sleep=clock.sleep)
        engine.start()
        seqs = [engine.submit(30, 6) for _ in range(4)]
        await _finish(seqs)
        await engine.stop()
        return metrics

    m = asyncio.run(main())
    assert m.ttft.count == 4 and m.e2e.count == 4
    assert m.itl.count == 4 * 5  # every token after the first
    assert m.generation_tokens._value.get() == 24  # noqa: SLF001 - reading a counter's value
