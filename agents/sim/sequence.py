"""One generation request as the engine sees it: token counts, KV blocks held, and its timeline.

Times are simulated seconds from the engine's clock. Token bookkeeping follows vLLM: a sequence has
prompt + output tokens; `num_computed` of them are in the KV cache; when all are computed the model samples
one more output token. A preempted sequence loses its KV cache and recomputes prompt + output so far.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum


class FinishReason(str, Enum):
    STOP = "stop"
    LENGTH = "length"
    ABORT = "abort"
    ERROR = "error"


@dataclass(eq=False, slots=True)
class Sequence:
    request_id: str
    prompt_tokens: int
    max_tokens: int
    arrival: float
    stream: bool = False
    block_hashes: tuple[int, ...] = ()  # chained hashes of the prompt's full blocks, for prefix caching
    output_tokens: int = 0
    num_computed: int = 0
    blocks: int = 0
    num_preemptions: int = 0
    cached_tokens: int = 0  # prompt tokens served from the prefix cache at the latest admission
    first_scheduled: float | None = None
    first_token: float | None = None
    last_token: float | None = None
    finished_at: float | None = None
    finish_reason: FinishReason | None = None
    # Set when there is something new for the HTTP handler: tokens (streaming only) or the finish.
    progress: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def num_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None
