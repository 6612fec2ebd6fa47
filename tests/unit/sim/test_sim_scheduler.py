"""The continuous-batching scheduler alone: budgets, KV-cache limits, preemption, prefix caching."""

from __future__ import annotations

from agents.sim.scheduler import Scheduler, SchedulerConfig
from agents.sim.sequence import FinishReason, Sequence


def _seq(prompt: int, max_tokens: int, hashes: tuple[int, ...] = ()) -> Sequence:
    return Sequence(request_id="r", prompt_tokens=prompt, max_tokens=max_tokens, arrival=0.0, block_hashes=hashes)


def _run_to_end(s: Scheduler, limit: int = 10_000) -> int:
    steps = 0
    while s.has_work() and steps < limit:
        s.complete(s.schedule())
        steps += 1
    return steps


def test_first_step_prefills_then_one_token_per_step() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=100, block_size=16))
    seq = _seq(40, 3)
    s.add(seq)
    plan = s.schedule()
    assert plan.prefill_tokens == 40 and plan.decode_batch == 0
    assert s.complete(plan).emitted == [seq]
    plan = s.schedule()
    assert plan.prefill_tokens == 0 and plan.decode_batch == 1 and plan.mean_context == 41
    s.complete(plan)
    outcome = s.complete(s.schedule())
    assert outcome.finished == [seq] and seq.finish_reason is FinishReason.LENGTH
    assert seq.output_tokens == 3 and s.pool.used == 0 and not s.has_work()


def test_chunked_prefill_respects_token_budget() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=1000, max_num_batched_tokens=100))
    long = _seq(250, 1)
    s.add(long)
    chunks = []
    while not long.finished:
        plan = s.schedule()
        chunks.append(plan.prefill_tokens)
        s.complete(plan)
    assert chunks == [100, 100, 50]


def test_without_chunked_prefill_a_prompt_is_prefilled_whole() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=1000, max_num_batched_tokens=100, chunked_prefill=False))
    s.add(_seq(250, 1))
    assert s.schedule().prefill_tokens == 250


def test_max_num_seqs_caps_the_batch_and_the_rest_wait() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=10_000, max_num_seqs=4))
    for _ in range(10):
        s.add(_seq(10, 5))
    s.complete(s.schedule())
    assert len(s.running) == 4 and len(s.waiting) == 6


def test_kv_cache_limit_queues_requests() -> None:
    # 10 blocks of 16 tokens = 160 tokens; each request needs 64 prompt tokens = 4 blocks.
    s = Scheduler(SchedulerConfig(num_blocks=10, block_size=16, preemption=False))
    for _ in range(5):
        s.add(_seq(64, 8))
    s.complete(s.schedule())
    # Reserving prompt + max_tokens (72 tokens = 5 blocks) admits exactly two.
    assert len(s.running) == 2 and len(s.waiting) == 3
    assert _run_to_end(s) > 0 and s.pool.used == 0


def test_optimistic_allocation_preempts_newest_under_kv_pressure() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=10, block_size=16, preemption=True))
    seqs = [_seq(48, 40) for _ in range(3)]  # 3 x 3 blocks admitted; growth needs more than the pool holds
    for seq in seqs:
        s.add(seq)
    preempted = 0
    while s.has_work():
        plan = s.schedule()
        preempted += len(plan.preempted)
        s.complete(plan)
    assert preempted > 0
    assert seqs[-1].num_preemptions > 0 and seqs[0].num_preemptions == 0  # the newest goes first
    assert all(seq.output_tokens == 40 for seq in seqs)


def test_no_preemption_mode_never_preempts() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=10, block_size=16, preemption=False))
    for _ in range(3):
        s.add(_seq(48, 40))
    while s.has_work():
        plan = s.schedule()
        assert not plan.preempted
        s.complete(plan)


def test_prefix_cache_hit_skips_computing_shared_blocks() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=100, block_size=16))
    hashes = (11, 22, 33)  # three full blocks of prompt
    first = _seq(50, 1, hashes)
    s.add(first)
    assert s.schedule().prefill_tokens == 50
    _run_to_end(s)
    second = _seq(50, 1, hashes)
    s.add(second)
    plan = s.schedule()
    assert second.cached_tokens == 48 and plan.prefill_tokens == 2


def test_prefix_cache_never_skips_the_last_prompt_token() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=100, block_size=16))
    s.add(_seq(32, 1, (1, 2)))
    _run_to_end(s)
    again = _seq(32, 1, (1, 2))
    s.add(again)
    assert s.schedule().prefill_tokens == 1 and again.cached_tokens == 31


def test_abort_frees_blocks_and_marks_the_sequence() -> None:
    s = Scheduler(SchedulerConfig(num_blocks=100))
    seq = _seq(64, 10)
    s.add(seq)
    s.complete(s.schedule())
    assert s.pool.used > 0
    s.abort(seq)
    assert s.pool.used == 0 and seq.finish_reason is FinishReason.ABORT and not s.has_work()
