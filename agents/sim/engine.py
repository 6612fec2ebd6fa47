"""The asyncio engine loop of one simulated replica: schedule a step, sleep its duration, apply it.

One task per replica and one sleep per engine step (never per token or per request), so a process can host
dozens of replicas. Step durations come from the timing source, multiplied by the `slow` fault factor and
divided by the speed-up.

Time: the engine keeps a virtual timeline in simulated seconds. Each step ends at start + duration, where a
step starts when the previous one ended (or now, if the engine was idle, and never before the arrival of
a request it admits). The loop sleeps until that end on the wall clock; when the host is late (timer
granularity, a busy CPU) the next steps run back to back until the timeline catches up, up to
`max_catchup_s` of wall time, beyond which the lag is accepted and recorded. Token timestamps are taken
from the timeline, so the latencies in /metrics are the model's, not the host's scheduling noise; the
recorded lag says how far the host fell behind.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

from agents.sim.clock import Clock, Sleep
from agents.sim.observer import EngineObserver, NullObserver
from agents.sim.scheduler import Scheduler, SchedulerConfig, StepPlan
from agents.sim.sequence import FinishReason, Sequence
from agents.sim.timing import Timing, step_seconds


class RequestTooLarge(ValueError):
    """The request could never fit in this replica's KV cache."""


@dataclass(slots=True)
class EngineStats:
    steps: int = 0
    busy_sim_s: float = 0.0  # simulated seconds spent in steps
    lag_max_s: float = 0.0  # largest wall-clock delay behind the timeline after a step
    lag_sum_s: float = 0.0

    @property
    def lag_mean_s(self) -> float:
        return self.lag_sum_s / self.steps if self.steps else 0.0


class Engine:
    def __init__(
        self,
        timing: Timing,
        config: SchedulerConfig,
        *,
        speedup: float = 1.0,
        observer: EngineObserver | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_catchup_s: float = 0.05,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.timing = timing
        self.scheduler = Scheduler(config)
        self.speedup = speedup
        self.observer: EngineObserver = observer if observer is not None else NullObserver()
        self.slowdown = 1.0  # the `slow` fault multiplies step durations by this
        self.stats = EngineStats()
        self._clock = clock
        self._sleep = sleep
        self._max_catchup = max_catchup_s * speedup
        self._wake = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._ids = itertools.count()
        self._task: asyncio.Task[None] | None = None

    # ----- control -----

    def now(self) -> float:
        """Current simulated time."""
        return self._clock() * self.speedup

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="sim-engine")
        return self._task

    async def stop(self) -> None:
        """Stop the loop now; unfinished requests end with finish reason `abort`."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for seq in [*self.scheduler.running, *self.scheduler.waiting]:
            self.abort(seq)

    def pause(self) -> None:
        """Hang: no more steps until resume()."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    # ----- requests -----

    def submit(
        self,
        prompt_tokens: int,
        max_tokens: int,
        *,
        stream: bool = False,
        block_hashes: tuple[int, ...] = (),
    ) -> Sequence:
        if prompt_tokens < 1 or max_tokens < 1:
            raise ValueError("prompt_tokens and max_tokens must be >= 1")
        if not self.scheduler.fits_ever(prompt_tokens + max_tokens):
            raise RequestTooLarge(f"{prompt_tokens + max_tokens} tokens exceed the KV cache")
        seq = Sequence(
            request_id=str(next(self._ids)),
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            arrival=self.now(),
            stream=stream,
            block_hashes=block_hashes,
        )
        self.scheduler.add(seq)
        self._idle.clear()
        self._wake.set()
        return seq

    def abort(self, seq: Sequence, reason: FinishReason = FinishReason.ABORT) -> None:
        if seq.finished:
            return
        self.scheduler.abort(seq, reason)
        seq.finished_at = self.now()
        self.observer.on_finish(seq)
        seq.progress.set()
        self._wake.set()  # the loop may have been waiting on a request that can now never fit

    @property
    def num_running(self) -> int:
        return len(self.scheduler.running)

    @property
    def num_waiting(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def kv_usage(self) -> float:
        return self.scheduler.pool.usage

    # ----- the loop -----

    async def run(self) -> None:
        deadline: float | None = None
        while True:
            if not self._resumed.is_set():
                await self._resumed.wait()
                deadline = None  # time stood still for the engine; do not try to catch up
            if not self.scheduler.has_work():
                deadline = None
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            plan = self.scheduler.schedule()
            for seq in plan.preempted:
                self.observer.on_preempt(seq)
            if not plan.scheduled:
                if plan.preempted:  # freed blocks; the next schedule() admits again
                    await asyncio.sleep(0)
                else:  # nothing can run until a request ends or arrives
                    self._wake.clear()
                    await self._wake.wait()
                continue
            deadline = await self._run_step(plan, deadline)

    async def _run_step(self, plan: StepPlan, deadline: float | None) -> float:
        now = self.now()
        start = now if deadline is None else max(deadline, now - self._max_catchup)
        for seq in plan.admitted:
            start = max(start, seq.arrival)
        for seq in plan.admitted:
            if seq.first_scheduled is None:
                seq.first_scheduled = start
            self.observer.on_admit(seq)
        duration = step_seconds(self.timing, plan.prefill_tokens, plan.decode_batch, plan.mean_context)
        end = start + duration * self.slowdown
        await self._sleep(max(0.0, (end - now) / self.speedup))
        lag = max(0.0, (self.now() - end) / self.speedup)
        stats = self.stats
        stats.steps += 1
        stats.busy_sim_s += end - start
        stats.lag_sum_s += lag
        stats.lag_max_s = max(stats.lag_max_s, lag)
        self._apply(plan, end)
        return end

    def _apply(self, plan: StepPlan, t: float) -> None:
        outcome = self.scheduler.complete(plan)
        observer = self.observer
        observer.on_step(plan.num_tokens)
        gaps: dict[float, int] = {}
        for seq in outcome.emitted:
            if seq.first_token is None:
                seq.first_token = t
                observer.on_first_token(seq, t - seq.arrival)
            else:
                gap = t - (seq.last_token or t)
                gaps[gap] = gaps.get(gap, 0) + 1
            seq.last_token = t
            if seq.stream:
                seq.progress.set()
        # Sequences decoding back to back share one gap: one observation per distinct value, not per token.
        for gap, count in gaps.items():
            observer.on_tokens(gap, count)
        for seq in outcome.finished:
            seq.finished_at = t
            observer.on_finish(seq)
            seq.progress.set()
