"""vLLM's offline engine as the model adapter (``eval --backend vllm``), where vllm is installed (a GPU).

The engine gets the local path's token ids themselves (``TokensPrompt``), so prompts,
scored spans and stop tokens are exactly the local path's:

- ``score``: one request per continuation, ``prompt_logprobs=0`` (the log-probability
  of each prompt token) and one throw-away generated token; the continuation's
  tokens are the last ones. Min-K%++ needs the whole next-token distribution, which
  the engine does not return: its z-scores are NaN (missing), as for a served model.
- ``generate``: greedy (``temperature=0``), stopping at the stop tokens, cut to the
  first line as the local path does (``decode.answer_text``).

The engine schedules and batches every request itself (continuous batching, paged
KV cache, tensor parallel with ``--vllm-tp``). vllm is optional: nothing imports it
unless this backend is chosen.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

from .identity import file_hashes
from .model import ModelLoadError, TokenScores, check_checkpoint


class VLLMEngineLM:
    def __init__(self, path: str, dtype: str | None = None, tensor_parallel: int = 1, allow_pickle: bool = False, trust_remote_code: bool = False):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ModelLoadError("--backend vllm needs vllm installed (pip install vllm, on a machine with a GPU); or use --backend local") from exc
        check_checkpoint(path, allow_pickle)
        self.path = path
        self.engine = LLM(model=path, dtype=dtype or "auto", tensor_parallel_size=tensor_parallel, trust_remote_code=trust_remote_code, seed=0)
        self.tokenizer = self.engine.get_tokenizer()
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token_id is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device, self.dtype, self.pad_note = (
            "vllm",
            str(self.engine.llm_engine.model_config.dtype).replace("torch.", ""),
            "none (vllm: no padding)",
        )
        self.counters = {"sequences": 0}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(["vllm", file_hashes(self.path) or self.path, self.dtype], sort_keys=True).encode()).hexdigest()

    def score(self, groups, batch_groups: int = 16, progress: bool = False, bar=None) -> list[list[TokenScores]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        flat = [(g, list(ctx) + list(cont), len(cont)) for g, (ctx, conts) in enumerate(groups) for cont in conts]
        params = SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=0)
        outs = self.engine.generate([TokensPrompt(prompt_token_ids=ids) for _, ids, _ in flat], params, use_tqdm=progress and bar is None)
        result: list[list[TokenScores]] = [[] for _ in groups]
        for (g, ids, n), out in zip(flat, outs):
            picked = [entry[token].logprob for token, entry in zip(ids[-n:], out.prompt_logprobs[-n:])]
            result[g].append(TokenScores(tuple(picked), tuple(math.nan for _ in picked)))
        self.counters["sequences"] += len(flat)
        if bar is not None:
            bar.update(len(flat))
        return result

    def generate(
        self,
        contexts: Sequence[tuple[int, ...]],
        stop_ids: Sequence[int],
        max_new_tokens: int = 48,
        batch_size: int = 32,
        progress=False,
        bar=None,
        cut_at_newline: bool = True,
    ):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from .decode import answer_text

        params = SamplingParams(max_tokens=max_new_tokens, temperature=0, stop_token_ids=list(stop_ids), skip_special_tokens=True)
        outs = self.engine.generate([TokensPrompt(prompt_token_ids=list(c)) for c in contexts], params, use_tqdm=progress and bar is None)
        texts = []
        for out in outs:
            tokens = list(out.outputs[0].token_ids)
            cut = next((k for k, t in enumerate(tokens) if t in stop_ids), len(tokens))
            texts.append(answer_text(self.tokenizer, tokens[:cut], cut_at_newline))
        if bar is not None:
            bar.update(len(texts))
        return texts
