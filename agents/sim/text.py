"""Approximate tokenisation of prompts and deterministic pseudo-text for generated tokens.

The simulator has no tokenizer: a prompt's token count is estimated (about 4 characters per token, the usual
rule of thumb for English BPE vocabularies), consistently, so usage numbers and KV-cache pressure track prompt
size. Generated text is a fixed cycle of short words chosen by a seed, so equal requests give equal text.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

CHARS_PER_TOKEN = 4
# Every word is one simulated token; the leading space mimics how BPE vocabularies attach spaces.
_WORDS: tuple[str, ...] = tuple(
    " " + w
    for w in (
        "the of and to in is that for it as with was on be by at this are from or an have not which but "
        "they all were their can one more when there been has will if some what out other about into than "
        "time only could new these may first also any after two way most over such even our use"
    ).split()
)
# A step coprime with len(_WORDS) walks through every word before repeating.
_STRIDE = 7


def count_text_tokens(text: str) -> int:
    """Approximate BPE token count of a text: ceil(chars / 4), at least 1 for non-empty text."""
    return -(-len(text) // CHARS_PER_TOKEN)


def text_seed(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def token_ids_seed(ids: Sequence[int]) -> int:
    return zlib.crc32(",".join(map(str, ids[:256])).encode())


def token_text(seed: int, index: int) -> str:
    """Text of the `index`-th generated token of a request with this seed."""
    return _WORDS[(seed + index * _STRIDE) % len(_WORDS)]


def tokens_text(seed: int, start: int, stop: int) -> str:
    """Concatenated text of generated tokens [start, stop)."""
    return "".join(token_text(seed, i) for i in range(start, stop))
