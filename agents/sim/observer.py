"""What the engine reports as it runs; the Prometheus metrics implement it, tests may record it."""

from __future__ import annotations

from typing import Protocol

from agents.sim.sequence import Sequence


class EngineObserver(Protocol):
    def on_step(self, num_tokens: int) -> None: ...

    def on_admit(self, seq: Sequence) -> None: ...

    def on_preempt(self, seq: Sequence) -> None: ...

    def on_first_token(self, seq: Sequence, ttft: float) -> None: ...

    def on_tokens(self, inter_token_latency: float, count: int) -> None:
        """`count` sequences produced a token `inter_token_latency` seconds after their previous one."""
        ...

    def on_finish(self, seq: Sequence) -> None: ...


class NullObserver:
    def on_step(self, num_tokens: int) -> None:
        pass

    def on_admit(self, seq: Sequence) -> None:
        pass

    def on_preempt(self, seq: Sequence) -> None:
        pass

    def on_first_token(self, seq: Sequence, ttft: float) -> None:
        pass

    def on_tokens(self, inter_token_latency: float, count: int) -> None:
        pass

    def on_finish(self, seq: Sequence) -> None:
        pass
