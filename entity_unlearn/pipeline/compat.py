"""Saved checkpoints that older transformers load too (issue 21): OpenUnlearning pins transformers 4.45.

transformers 5 saves a fast tokenizer as ``tokenizer_class: TokenizersBackend`` (a class 4.x does not know),
the chat template in a separate ``chat_template.jinja`` (4.x reads it only from ``tokenizer_config.json``)
and the extra special tokens under ``extra_special_tokens`` (4.x: ``additional_special_tokens``). tokenizers
0.19 (transformers 4.40) reads BPE merges only as ``"a b"`` strings, where tokenizers >= 0.20 writes
``["a", "b"]`` pairs. ``backport_tokenizer`` rewrites a saved folder so that transformers 4.40-4.45 and 5.x
all load the same tokenizer with the same chat template; the ids do not change. Checked by hand with
transformers 4.40.2 and 4.45.2 (see the closing note of issue 21); tests read the files as 4.x does.
"""

from __future__ import annotations

import json
from pathlib import Path

# Fast tokenizer classes transformers 5 writes under a name 4.x does not have; 4.x knows the generic class.
NEW_CLASS_NAMES = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def backport_tokenizer(folder: str | Path) -> dict:
    """Rewrite the tokenizer files in ``folder`` for transformers 4.40+; returns what changed (for records/tests)."""
    folder = Path(folder)
    changed: dict[str, object] = {}
    cfg_path = folder / "tokenizer_config.json"
    if not cfg_path.is_file():
        return changed
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("tokenizer_class") in NEW_CLASS_NAMES:
        changed["tokenizer_class"] = cfg["tokenizer_class"] = NEW_CLASS_NAMES[cfg["tokenizer_class"]]
    jinja = folder / "chat_template.jinja"
    if "chat_template" not in cfg and jinja.is_file():
        cfg["chat_template"] = jinja.read_text(encoding="utf-8")  # the .jinja file stays for 5.x, which prefers it
        changed["chat_template"] = "inline"
    extra = cfg.get("extra_special_tokens")
    if isinstance(extra, list) and "additional_special_tokens" not in cfg:
        changed["additional_special_tokens"] = cfg["additional_special_tokens"] = list(extra)
    if changed:
        cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    tok_path = folder / "tokenizer.json"
    if tok_path.is_file():
        tok = json.loads(tok_path.read_text(encoding="utf-8"))
        merges = (tok.get("model") or {}).get("merges")
        # a pair whose parts hold a space cannot be written as one "a b" string; such vocabularies keep pairs (4.45 reads them)
        if merges and all(isinstance(m, list) and len(m) == 2 and " " not in m[0] + m[1] for m in merges):
            tok["model"]["merges"] = [f"{a} {b}" for a, b in merges]
            tok_path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
            changed["merges"] = "strings"
    return changed
