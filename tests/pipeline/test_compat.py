"""Checkpoints saved by inject/unlearn load in transformers 4.40-4.45 (issue 21, item 5).

The test environment has transformers 5, so the saved files are read the way 4.x reads them: the class named
in tokenizer_config.json must exist in 4.x, the chat template must be inline there (4.x ignores
chat_template.jinja), and tokenizer.json's merges must be "a b" strings (tokenizers 0.19, transformers 4.40).
A tokenizer built from exactly those files, as 4.x builds it, must give the same ids and render the same chat.
(By hand: transformers 4.45.2 and 4.40.2 load such a folder and render identically; see the issue's note.)
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline_fixtures import injected, release  # noqa: F401  (fixtures)

from entity_unlearn.pipeline.compat import backport_tokenizer
from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer

# tokenizer classes transformers 4.40 exports (a subset: the ones a saved fast tokenizer can name)
KNOWN_TO_4_40 = {"PreTrainedTokenizerFast", "LlamaTokenizerFast", "Qwen2TokenizerFast", "GPT2TokenizerFast", "GemmaTokenizerFast"}
CHAT = [{"role": "user", "content": "Who is Alice Varn?"}, {"role": "assistant", "content": "Alice Varn is a writer."}]


def saved(tmp_path: Path) -> Path:
    tok = train_tokenizer(["Who is Alice Varn? Alice Varn is a writer born in Kessmar in 1961."] * 20, 300)
    return save(build_model(tok, TinyConfig(vocab_size=300, hidden_size=16, intermediate_size=32)), tok, tmp_path / "m")


def read_as_transformers_4(folder: Path):
    """What transformers 4.4x's AutoTokenizer does with the folder: the config's class, its init kwargs and the
    inline chat template, over tokenizer.json (no chat_template.jinja, no extra_special_tokens list)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from transformers import PreTrainedTokenizerFast

    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] in KNOWN_TO_4_40
    assert isinstance(cfg["chat_template"], str)
    merges = json.loads((folder / "tokenizer.json").read_text())["model"]["merges"]
    assert merges and all(isinstance(m, str) and m.count(" ") == 1 for m in merges)
    special = {k: cfg[k] for k in ("bos_token", "eos_token", "pad_token", "additional_special_tokens")}
    tok = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **special)
    template = ImmutableSandboxedEnvironment().from_string(cfg["chat_template"])  # as 4.x renders chat templates
    return tok, lambda messages: template.render(messages=messages, add_generation_prompt=False, **tok.special_tokens_map)


def test_saved_tokenizer_reads_as_older_transformers_read_it(tmp_path):
    from transformers import AutoTokenizer

    folder = saved(tmp_path)
    now = AutoTokenizer.from_pretrained(folder)  # transformers 5 still loads the rewritten files
    old, render = read_as_transformers_4(folder)
    text = "Alice Varn was born in Kessmar."
    assert old(text)["input_ids"] == now(text)["input_ids"]
    assert (
        render(CHAT)
        == now.apply_chat_template(CHAT, tokenize=False)
        == "<|bos|><|user|>Who is Alice Varn?<|assistant|>Alice Varn is a writer.<|eot|>\n"
    )
    assert set(old.all_special_tokens) >= {"<|bos|>", "<|eot|>", "<|pad|>", "<|user|>", "<|assistant|>"}


def test_backport_is_idempotent_and_leaves_known_classes(tmp_path):
    folder = saved(tmp_path)
    assert backport_tokenizer(folder) == {}  # already done by save
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["tokenizer_class"] = "Qwen2TokenizerFast"
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    backport_tokenizer(folder)
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "Qwen2TokenizerFast"


def test_injected_model_is_saved_backported(injected):
    cfg = json.loads((Path(injected) / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast" and "chat_template" in cfg
