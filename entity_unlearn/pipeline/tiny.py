"""The embedded default model: a small Llama-style model built from a config, with a
byte-level BPE tokenizer trained on the release's own text. Nothing is downloaded.

The chat template deliberately writes a newline after the end-of-turn token, as
many real templates do, so the evaluator's "score up to the end-of-turn token"
rule is exercised by the default model too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SPECIAL = {"pad": "<|pad|>", "bos": "<|bos|>", "eos": "<|eot|>", "user": "<|user|>", "assistant": "<|assistant|>"}
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}"
    "{% else %}<|assistant|>{{ m['content'] }}<|eot|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the tiny model. The defaults (about 0.37M parameters, a 1,500-token vocabulary) learn the
    default 200-person release to 0.90 ROUGE-L recall on forget05's direct questions in 109-124 s on 2 CPU
    cores with ``inject.TINY_TRAIN`` (measured by ``make demo``); tests use smaller sizes."""

    vocab_size: int = 1500
    hidden_size: int = 96
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    max_position_embeddings: int = 512
    seed: int = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000):
    """A byte-level BPE tokenizer trained on ``texts``, with pad/bos/eos and chat-turn tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL.values()), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    core.train_from_iterator(list(texts), trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=SPECIAL["bos"],
        eos_token=SPECIAL["eos"],
        pad_token=SPECIAL["pad"],
        additional_special_tokens=[SPECIAL["user"], SPECIAL["assistant"]],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_model(tokenizer, config: TinyConfig = TinyConfig()):
    """A freshly initialised LlamaForCausalLM sized by ``config``, seeded."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg)


def save(model, tokenizer, out: str | Path) -> Path:
    """Save as safetensors with the tokenizer and chat template, in files transformers 4.40+ also loads (``compat``)."""
    from .compat import backport_tokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    backport_tokenizer(out)
    return out
