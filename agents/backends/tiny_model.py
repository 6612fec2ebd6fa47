"""Make a tiny random Llama checkpoint that real vLLM can load on CPU, with no download.

    <vllm-venv>/bin/python -m agents.backends.tiny_model OUTDIR [--seed N]

Writes a Hugging Face model directory: a byte-level BPE tokenizer (vocab 512) trained on built-in text and
saved through ``PreTrainedTokenizerFast`` with a chat template (so ``/v1/chat/completions`` works), a
``LlamaConfig`` with random bf16 weights in safetensors (about 0.7 MB), and a generation config. The output is
deterministic for a given seed, so test failures reproduce.

Only the vLLM venv (``.ci/setup-vllm.sh``) has transformers/tokenizers/torch; the imports are inside the
functions so that importing this module from the project's own venv stays cheap and harmless.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

VOCAB_SIZE = 512
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

# Kept tiny but valid for vLLM's CPU attention: head_dim = hidden_size / num_attention_heads must be >= 64
# (head_dim 16 crashes the CPU attention backend, see FACTS.md).
MODEL_SHAPE: dict[str, int] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 1024,
}

# One role marker per turn, then the generation prompt; the model is random, so the template only has to
# be well formed and round-trip through the tokenizer.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# Training text written for this project (no third-party corpus), varied enough that BPE finds real merges.
_CORPUS = """\
A fleet of model servers answers requests from clients in many regions. Each replica holds the weights of
one model variant and a cache of keys and values for the sequences it is decoding. The control plane decides
how many replicas run in each pool of accelerators, and the agent in each cluster starts, drains and stops
them until the observed state matches the desired state.
Latency has two parts that users feel: the time to the first token, which grows with the prompt and the
queue, and the time between tokens, which grows with the batch. A plan is good when both stay inside the
objective at the lowest price per hour. Spot capacity is cheaper but can vanish; on-demand capacity costs
more and stays. Quantized variants trade a little quality for memory, so more sequences fit in the cache.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. How vexingly quick
daft zebras jump! Sphinx of black quartz, judge my vow. 0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ?
User: hello, can you summarise the report? Assistant: certainly, here is a short summary of the report.
"""


def training_lines(repeat: int = 8) -> list[str]:
    """The built-in corpus as lines, repeated so pair counts are stable enough for BPE merges."""
    lines = [line for line in _CORPUS.splitlines() if line.strip()]
    return lines * repeat


def build_tokenizer() -> Any:
    """Train a byte-level BPE tokenizer and wrap it as a transformers ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    # Byte-level pre-tokenisation: every input byte has a token, so no text is ever unknown.
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS, PAD, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(training_lines(), trainer=trainer)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=MODEL_SHAPE["max_position_embeddings"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer: Any, seed: int) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` sized by ``MODEL_SHAPE``; seeded for determinism."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,  # halves the file; the model is random anyway
        **MODEL_SHAPE,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Stored in bf16 because that is what vLLM's CPU engine computes in: it would otherwise cast every
    # float32 tensor on load (with a warning per tensor).
    return model.to(torch.bfloat16).eval()


def make_tiny_model(outdir: Path, seed: int = 0) -> Path:
    """Write the tokenizer, config, weights (safetensors) and generation config to ``outdir``; return it."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed)
    tokenizer.save_pretrained(outdir)
    model.save_pretrained(outdir, safe_serialization=True)
    # A marker so callers (and humans) can tell what made this directory.
    (outdir / "llmfleet_tiny_model.json").write_text(
        json.dumps({"maker": "agents.backends.tiny_model", "seed": seed, **MODEL_SHAPE}, indent=2) + "\n"
    )
    return outdir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = make_tiny_model(args.outdir, seed=args.seed)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
