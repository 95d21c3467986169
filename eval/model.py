"""The model adapter: load a causal LM checkpoint safely, then two operations.

- ``score(groups)``: for each group (one context, several continuations) the
  per-token log-probabilities of every continuation. A group is one row: its context and its continuations'
  prefix tree (``tree``), where the model's attention honours a 4D mask (checked at load); else the context
  is run once per group and its KV cache copied to each continuation (never recomputed).
- ``generate(contexts)``: batched greedy decoding, left padded, each row stopped as
  soon as it emits an end-of-turn token or (unless told not to cut there) ends its first line (``decode``).

``score_one`` and ``generate_reference`` are the plain references: one full sequence,
no cache, no batching; ``model.generate`` run to the end and cut afterwards.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from entity_unlearn.errors import EntityUnlearnError

from .ranks import switched_on

CONT_ROWS = 64  # continuation rows per forward, cut from one length-sorted list
TREE_SLOTS = 1024  # slots (rows x longest row) per forward when each group is one row (``tree``): fastest on CPU of 512-8192
SCORE_VERSION = 3  # bumped when a cached score would change (2: Min-K%++ variance clamped at 1e-6; 3: a group scored as one packed row, float32 rounding moves); part of the cache key
MIN_VARIANCE = 1e-6  # OpenUnlearning's clamp of σ² in Min-K%++: a saturated distribution gives a finite z
KV_BUDGET = 1 << 30  # bytes of KV cache a generation batch may hold when no batch size is given
GENERATE_ROWS = (32, 256)  # the fewest and most rows per generation batch chosen by that budget


class ModelLoadError(EntityUnlearnError, ValueError):
    """The checkpoint cannot be loaded safely; the message says why and what to do."""


@dataclass(frozen=True)
class TokenScores:
    """Per-token log p(x_t) and Min-K%++ z-scores (log p(x_t) - μ_t) / σ_t of one continuation."""

    logp: tuple[float, ...]
    minkpp: tuple[float, ...]


def pick_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(dtype: str | None, device: str):
    import torch

    name = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if not hasattr(torch, name):
        raise ModelLoadError(f"--dtype {name}: not a torch dtype; use float32, bfloat16 or float16")
    return getattr(torch, name)


def dtype_argument(dtype) -> dict:
    """``from_pretrained``'s dtype: ``dtype`` from transformers 4.56, ``torch_dtype`` before (4.x would pass ``dtype``
    on into the model's config, where it breaks serialising the config)."""
    import transformers

    major, minor = (int("".join(c for c in part if c.isdigit()) or 0) for part in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}


def check_checkpoint(path: str, allow_pickle: bool) -> None:
    """A model folder (local, or a Hub snapshot) must hold a config, safetensors weights (or pickle ones if allowed) and a tokenizer."""
    folder = Path(path)
    if not folder.exists():
        raise ModelLoadError(f"--model {path}: no such folder; give the folder a model was saved to (save_pretrained) or a Hub id ORG/NAME")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder}: no config.json; give the folder a model was saved to with save_pretrained")
    safe = list(folder.glob("*.safetensors"))
    pickled = list(folder.glob("*.bin")) + list(folder.glob("*.pt")) + list(folder.glob("*.pth"))
    if not safe and not pickled:
        raise ModelLoadError(f"{folder}: no weights (*.safetensors)")
    if not safe and not allow_pickle:
        raise ModelLoadError(
            f"{folder}: only pickle weights ({pickled[0].name}); pickle files can run code when loaded. "
            "Convert them to safetensors, or pass --allow-pickle if you trust this checkpoint"
        )
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")):
        raise ModelLoadError(f"{folder}: no tokenizer files; save the tokenizer beside the model (tokenizer.save_pretrained)")


def check_whole_model_loading(world: int, env=None) -> None:
    """Evaluation holds the whole model in every process. Under an accelerate FSDP config with
    ``fsdp_cpu_ram_efficient_loading: true`` (accelerate's default) transformers loads the weights in process 0
    alone and leaves the others' empty: those would score a model that was never trained. Refused, in one message."""
    env = os.environ if env is None else env
    if world > 1 and switched_on("ACCELERATE_USE_FSDP", env) and switched_on("FSDP_CPU_RAM_EFFICIENT_LOADING", env):
        raise ModelLoadError(
            f"FSDP_CPU_RAM_EFFICIENT_LOADING={env['FSDP_CPU_RAM_EFFICIENT_LOADING']} (the accelerate config's "
            "fsdp_cpu_ram_efficient_loading): transformers would load the weights in process 0 alone, and evaluation runs "
            "the whole model in every process; write fsdp_cpu_ram_efficient_loading: false, or launch without the FSDP config"
        )


def looks_like_hub_id(path: str) -> bool:
    """``ORG/NAME`` whose ``ORG`` is not a local folder: ``models/missing`` beside a ``models/`` folder is a missing
    local model, not a Hub repository to look up."""
    org, _, name = path.partition("/")
    return bool(org and name) and "/" not in name and not path.startswith((".", "/", "~")) and not Path(org).is_dir()


class CausalLM:
    selective_minkpp = True  # run_passes tells score() which continuations need Min-K%++ z-scores

    def __init__(
        self,
        path: str,
        device: str | None = None,
        dtype: str | None = None,
        allow_pickle: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> None:
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .identity import resolve_model

        self.identity = resolve_model(path, revision, allow_pickle, trust_remote_code)
        path = self.identity.local_dir
        check_checkpoint(path, allow_pickle)
        self.path, self.revision = self.identity.path, self.identity.revision
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{path}: cannot load the tokenizer ({exc})") from exc
        self.pad_note = "tokenizer pad token"
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise ModelLoadError(f"{path}: the tokenizer has neither a pad nor an EOS token; set one in tokenizer_config.json")
            self.tokenizer.pad_token = self.tokenizer.eos_token
            self.pad_note = "no pad token: EOS used for padding (masked out everywhere)"
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                path, **dtype_argument(self.dtype), use_safetensors=not allow_pickle, trust_remote_code=trust_remote_code
            ).to(self.device)
        except (OSError, ValueError, SafetensorError) as exc:  # a truncated or corrupt weights file, a config that does not fit
            raise ModelLoadError(f"{path}: cannot load the model ({str(exc)[:300]}); check that its files are complete, or save it again") from exc
        self.model.eval()
        self.counters = {"forward_rows": 0, "tokens": 0, "padded_tokens": 0, "decode_rows": 0}
        # transformers 5.x renamed past_key_values to cache; 4.x knows only the old name
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._body, self._head = self.model.base_model, self.model.get_output_embeddings()
        self._split_head = self._head_is_last()
        self._tree = self._tree_agrees()
        self.counters = dict.fromkeys(self.counters, 0)  # the check's rows are not the evaluation's

    def _head_is_last(self) -> bool:
        """Whether the model's logits are its output embedding applied to its body's last hidden states (true of
        Llama-style models; not of one that scales or soft-caps them). Then scoring projects only the positions it
        reads onto the vocabulary: checked on a short input, both ways, at load."""
        import torch

        if self._body is self.model or self._head is None:
            return False
        ids = torch.arange(min(8, self.model.get_input_embeddings().num_embeddings), device=self.device).unsqueeze(0)
        with torch.inference_mode():
            whole = self.model(input_ids=ids).logits
            hidden = getattr(self._body(input_ids=ids), "last_hidden_state", None)
            if hidden is None:
                return False
            split = self._head(hidden)
        return whole.shape == split.shape and bool(torch.allclose(whole, split, rtol=1e-4, atol=1e-5))

    def _tree_agrees(self) -> bool:
        """Whether this model scores a group packed as one row (``tree``: a custom 4D attention mask and position
        ids) as it scores each continuation as its own sequence. Checked at load, on short groups of different
        lengths in one batch whose continuations share beginnings: every score against ``score_one`` (to 1e-4
        relative in 32-bit floats, 5e-2 in 16-bit ones), and one continuation scored after two different siblings,
        which it must not see (to 1e-5 and 1e-3). Models whose attention ignores or rejects such a mask (flash
        attention, some remote code) keep the per-continuation cache path."""
        import torch

        if self.model.get_input_embeddings().num_embeddings < 16:
            return False
        x = (12, 8, 9)
        groups = [
            ((3, 4, 5, 6, 7), [(8, 9, 10), (8, 9, 11), (12,), (8, 13, 14, 15)]),
            ((5, 6), [(9, 3), (9, 3, 4)]),
            ((7, 8, 9), [(10,)]),
            ((3, 4, 5), [(8, 9, 10, 11, 12, 13, 14, 15, 9, 10), x]),
            ((3, 4, 5), [(8, 10, 3, 4, 5, 6, 7, 8, 9, 3), x]),
        ]
        wide = self.dtype.itemsize >= 4
        try:
            with torch.inference_mode():
                got = self._score_tree(groups, [[True] * len(cs) for _, cs in groups])
        except Exception:  # noqa: BLE001 - any failure of the packed form means the other path
            return False

        def close(s, t, tol):
            return all(abs(a - b) <= tol * max(1.0, abs(b)) for a, b in zip(s.logp + s.minkpp, t.logp + t.minkpp, strict=True))

        if not close(got[3][1], got[4][1], 1e-5 if wide else 1e-3):
            return False
        return all(close(s, self.score_one(ctx, c), 1e-4 if wide else 5e-2) for (ctx, conts), row in zip(groups, got) for c, s in zip(conts, row))

    def _window(self) -> int | None:
        """The sliding attention window of a model with sliding-window layers (Mistral, Gemma), else None."""
        cfg = self.model.config.get_text_config() if hasattr(self.model.config, "get_text_config") else self.model.config
        window = getattr(cfg, "sliding_window", None)
        if not window or getattr(cfg, "use_sliding_window", True) is False:
            return None
        kinds = getattr(cfg, "layer_types", None)
        return None if kinds and not any("sliding" in k or "chunk" in k for k in kinds) else int(window)

    def fingerprint(self) -> str:
        """What determines scores: the files' SHA-256 (weights, configs, tokenizer), the Hub commit and the dtype.
        It keys the request cache, so a changed model under the same id or folder is never served old scores."""
        ident = self.identity
        return hashlib.sha256(json.dumps([ident.files_sha256 or ident.path, ident.commit, str(self.dtype)], sort_keys=True).encode()).hexdigest()

    # -- score --------------------------------------------------------------------------------
    def score(
        self,
        groups: Sequence[tuple[tuple[int, ...], Sequence[tuple[int, ...]]]],
        batch_groups: int = 16,
        progress: bool = False,
        bar=None,
        minkpp: Sequence[Sequence[bool]] | None = None,
    ) -> list[list[TokenScores]]:
        """Scores of every continuation of every (context, continuations) group, in input order.

        Groups are run longest first in batches; each context is forwarded once, with its continuations' prefix
        tree in the same row (``tree``), or with its cache indexed out to its continuations (``batch_groups`` per
        batch; packed rows fill ``TREE_SLOTS``, ``batch_groups`` rows at most). ``minkpp``: per group, per continuation, whether its
        Min-K%++ z-scores are wanted (None: all); the others get ``minkpp=()`` and cost one pass over the
        vocabulary instead of six (only an item's answer is read for membership inference).
        """
        import torch

        from .tree import pack_group

        order = sorted(range(len(groups)), key=lambda i: (-len(groups[i][0]), -max(map(len, groups[i][1]))))
        out: list[list[TokenScores]] = [[] for _ in groups]
        own = bar is None  # a caller running several calls as one pass passes its own bar
        bar = tqdm(total=sum(len(g[1]) for g in groups), desc="score", unit="seq", disable=not progress) if own else bar
        # a sliding-window model's own mask limits how far back a position sees; a packed row's mask does not, so a
        # group that reaches past the window keeps the cache path
        window = self._window()
        packs = [i for i in range(len(groups)) if self._tree and (window is None or len(groups[i][0]) + max(map(len, groups[i][1])) <= window)]
        packed = {i: pack_group(*groups[i]) for i in packs}
        rest = [i for i in order if i not in packed]
        batches = [(True, [packs[j] for j in b]) for b in _by_slots([len(packed[i].tokens) for i in packs], batch_groups)]
        batches += [(False, rest[i : i + batch_groups]) for i in range(0, len(rest), batch_groups)]
        with torch.inference_mode():
            for tree, batch in batches:
                wants = [minkpp[i] for i in batch] if minkpp is not None else [[True] * len(groups[i][1]) for i in batch]
                chosen = [groups[i] for i in batch]
                got = self._score_tree(chosen, wants, [packed[i] for i in batch]) if tree else self._score_batch(chosen, wants)
                for i, scores in zip(batch, got):
                    out[i] = scores
                bar.update(sum(len(groups[i][1]) for i in batch))
        if own:
            bar.close()
        return out

    def _score_batch(self, groups, wants) -> list[list[TokenScores]]:
        import torch

        pad = self.tokenizer.pad_token_id
        ctx_len = torch.tensor([len(c) for c, _ in groups])
        width = int(ctx_len.max())
        ctx = torch.tensor([list(c) + [pad] * (width - len(c)) for c, _ in groups])
        ctx_mask = (torch.arange(width).unsqueeze(0) < ctx_len.unsqueeze(1)).long()
        self._count(ctx_mask)
        first = self._forward(input_ids=ctx.to(self.device), attention_mask=ctx_mask.to(self.device), use_cache=True)
        last_logits = self._logits(first, (torch.arange(len(groups)), ctx_len - 1))  # predicts each continuation's first token
        cache = getattr(first, self._cache_arg)  # the name this version uses: the old one logs a deprecation on 5.x
        rows = [(g, k, list(x)) for g, (_, cs) in enumerate(groups) for k, x in enumerate(cs)]
        rows.sort(key=lambda r: -len(r[2]))  # similar lengths together: little padding
        result: list[list[TokenScores | None]] = [[None] * len(cs) for _, cs in groups]
        for start in range(0, len(rows), CONT_ROWS):
            chunk = rows[start : start + CONT_ROWS]
            owner = torch.tensor([g for g, _, _ in chunk])
            lengths = torch.tensor([len(x) for _, _, x in chunk])
            cwidth = len(chunk[0][2])
            cont = torch.tensor([x + [pad] * (cwidth - len(x)) for _, _, x in chunk])
            cont_mask = (torch.arange(cwidth).unsqueeze(0) < lengths.unsqueeze(1)).long()
            self._count(cont_mask)
            rows_cache = _rows_cache(self.model, cache, owner.to(self.device), width + cwidth, start + CONT_ROWS >= len(rows))
            positions = ctx_len[owner].unsqueeze(1) + torch.arange(cwidth).unsqueeze(0)
            second = self._forward(
                input_ids=cont.to(self.device),
                attention_mask=torch.cat([ctx_mask[owner], cont_mask], 1).to(self.device),
                position_ids=positions.to(self.device),
                use_cache=True,
                **{self._cache_arg: rows_cache},
            )
            # a row's first token is predicted by its context's last logits, token t+1 by position t: the padding's
            # positions and each row's last are not projected on the vocabulary (a third of the slots)
            inner = cont_mask[:, 1:].bool()
            want = torch.tensor([wants[g][k] for g, k, _ in chunk])
            lp = torch.full((len(chunk), cwidth), float("nan"))
            z = torch.full((len(chunk), cwidth), float("nan"))
            lp[:, 0], z[:, 0] = _scored(last_logits[owner.to(self.device)], cont[:, 0], want)
            rest = self._logits(second, (slice(None), slice(0, -1)), inner.to(self.device))
            lp[:, 1:][inner], z[:, 1:][inner] = _scored(rest, cont[:, 1:][inner], want.unsqueeze(1).expand_as(inner)[inner])
            lp_rows, z_rows = lp.tolist(), z.tolist()
            for (g, k, x), lps, zs_row, w in zip(chunk, lp_rows, z_rows, want.tolist()):
                n = len(x)
                result[g][k] = TokenScores(tuple(lps[:n]), tuple(zs_row[:n]) if w else ())
        return result  # type: ignore[return-value]

    def _score_tree(self, groups, wants, packed=None) -> list[list[TokenScores]]:
        """Scores of one batch of groups, each group one row (``tree.pack_group``, or ``packed``): one forward, no cache."""
        from itertools import chain

        import numpy as np
        import torch

        from .tree import pack_group, tree_batch

        packed = packed or [pack_group(c, cs) for c, cs in groups]
        ids, positions, mask, lengths = tree_batch(packed, self.tokenizer.pad_token_id, self.dtype)
        self.counters["forward_rows"] += len(packed)
        self.counters["tokens"] += int(lengths.sum())
        self.counters["padded_tokens"] += ids.numel() - int(lengths.sum())
        out = self._forward(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device), use_cache=False
        )
        width, flat = ids.shape[1], chain.from_iterable
        # every continuation token, in order: the slot (row x width + slot) that predicts it, its id, whether its z is wanted
        slots = np.concatenate([np.fromiter(flat(g.readers), np.int64) + r * width for r, g in enumerate(packed)])
        targets = np.fromiter(flat(flat(cs) for _, cs in groups), np.int64, len(slots))
        needed = np.repeat(np.fromiter(flat(wants), bool), [len(x) for _, cs in groups for x in cs])
        unique, inverse = torch.unique(torch.from_numpy(slots), return_inverse=True)
        logits = self._logits(out, (unique // width, unique % width))
        lp, z = _scored(logits, torch.from_numpy(targets), torch.from_numpy(needed), inverse)
        lp, z = lp.tolist(), z.tolist()
        result, at = [], 0
        for (_, conts), want in zip(groups, wants):
            row = []
            for x, w in zip(conts, want):
                n = len(x)
                row.append(TokenScores(tuple(lp[at : at + n]), tuple(z[at : at + n]) if w else ()))
                at += n
            result.append(row)
        return result

    def _forward(self, **kwargs):
        """The model's forward pass, or its body's alone when ``_logits`` projects only the positions it is asked for."""
        return (self._body if self._split_head else self.model)(**kwargs)

    def _logits(self, out, where, select=None):
        """Float logits at ``out``'s positions ``where`` (an index of its (rows, positions) axes), then ``select``
        (a mask over those): the vocabulary projection of these positions alone where the model allows it."""
        if self._split_head:
            hidden = out.last_hidden_state[where]
            return self._head(hidden if select is None else hidden[select]).float()
        logits = out.logits[where]
        return (logits if select is None else logits[select]).float()

    def _count(self, mask) -> None:
        """Rows and token slots forwarded, and how many of the slots were padding."""
        self.counters["forward_rows"] += mask.shape[0]
        self.counters["tokens"] += int(mask.sum())
        self.counters["padded_tokens"] += mask.numel() - int(mask.sum())

    def score_one(self, context: tuple[int, ...], continuation: tuple[int, ...]) -> TokenScores:
        """The reference computation: context + continuation as one sequence, nothing shared."""
        import torch

        ids = torch.tensor([list(context) + list(continuation)], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[:, len(context) - 1 : -1].float()
        lp, z = _token_scores(logits, ids[:, len(context) :])
        return TokenScores(tuple(lp[0].tolist()), tuple(z[0].tolist()))

    # -- generate -------------------------------------------------------------------------------
    def generation_rows(self, longest: int) -> int:
        """Rows per generation batch when none is asked: as many as ``KV_BUDGET`` of KV cache holds at ``longest``
        tokens (prompt and new ones), within ``GENERATE_ROWS``. A 7B model in bfloat16 gets 32 (its KV cache is
        about 0.5 MiB per token); a small one gets up to 256, where a decoding step costs little more than its
        fixed overhead, so fewer, fuller steps finish the pass sooner."""
        cfg = self.model.config.get_text_config() if hasattr(self.model.config, "get_text_config") else self.model.config
        heads = getattr(cfg, "num_attention_heads", None) or 1
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or (getattr(cfg, "hidden_size", 0) // heads)
        layers = getattr(cfg, "num_hidden_layers", None)
        if not layers or not head_dim:
            return GENERATE_ROWS[0]  # an architecture without these fields: the old fixed size
        per_row = 2 * layers * kv_heads * head_dim * max(1, longest) * self.dtype.itemsize
        return max(GENERATE_ROWS[0], min(GENERATE_ROWS[1], KV_BUDGET // per_row))

    def generate(
        self,
        contexts: Sequence[tuple[int, ...]],
        stop_ids: Sequence[int],
        max_new_tokens: int = 48,
        batch_size: int = 32,
        progress: bool = False,
        bar=None,
        cut_at_newline: bool = True,
    ) -> list[str]:
        """Greedy answers, cut at the first stop token (and, with ``cut_at_newline``, the first newline), stripped
        (``decode.answer_text``). ``bar``: a progress bar shared by the caller's chunks (else one of its own).

        Identical prompts are decoded once; prompts are batched longest first; each row stops as soon as
        its answer is settled and leaves the batch (``decode.greedy_batch``)."""
        from .decode import answer_text, greedy_batch

        unique = list(dict.fromkeys(contexts))
        order = sorted(range(len(unique)), key=lambda i: -len(unique[i]))
        texts = [""] * len(unique)
        own = bar is None
        bar = tqdm(total=len(unique), desc="generate", unit="seq", disable=not progress) if own else bar
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            tokens = greedy_batch(
                self.model,
                self.tokenizer,
                [unique[i] for i in batch],
                stop_ids,
                max_new_tokens,
                self._cache_arg,
                self.device,
                self.counters,
                cut_at_newline=cut_at_newline,
            )
            for i, t in zip(batch, tokens):
                texts[i] = answer_text(self.tokenizer, t, cut_at_newline)
            bar.update(len(batch))
        if own:
            bar.close()
        at = {c: t for c, t in zip(unique, texts)}
        return [at[c] for c in contexts]

    def generate_reference(
        self,
        contexts: Sequence[tuple[int, ...]],
        stop_ids: Sequence[int],
        max_new_tokens: int = 48,
        batch_size: int = 32,
        cut_at_newline: bool = True,
    ) -> list[str]:
        """The plain path ``generate`` must agree with: ``model.generate`` on left-padded batches of the prompts
        (longest first), every row decoded to ``max_new_tokens`` or its stop token, cut afterwards."""
        import torch

        from .decode import answer_text

        order = sorted(range(len(contexts)), key=lambda i: -len(contexts[i]))
        out = [""] * len(contexts)
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(contexts[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, width - len(contexts[i]) :] = torch.tensor(contexts[i])
                mask[row, width - len(contexts[i]) :] = 1
            with torch.inference_mode():
                gen = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    eos_token_id=list(stop_ids),
                    pad_token_id=pad,
                )
            for row, i in enumerate(batch):
                new = gen[row, width:].tolist()
                cut = next((k for k, t in enumerate(new) if t in stop_ids), len(new))
                out[i] = answer_text(self.tokenizer, new[:cut], cut_at_newline)
        return out


def _by_slots(sizes: Sequence[int], most: int):
    """Indices of rows per forward: longest first, as many as fit ``TREE_SLOTS`` slots once padded to the first,
    and ``most`` at most."""
    batch: list[int] = []
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        if batch and (len(batch) == most or (len(batch) + 1) * sizes[batch[0]] > TREE_SLOTS):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _rows_cache(model, cache, owner, length: int, last: bool):
    """The context cache's rows ``owner`` (one per continuation row), with room for ``length`` positions: written
    into a preallocated cache (``decode.preallocated_cache``), so the continuation's keys are written in place rather
    than concatenated, and the context cache is read, not copied whole first. Where transformers has no layered
    cache, a copy of it indexed (the last chunk may consume the original)."""
    from .decode import preallocated_cache

    rows = preallocated_cache(model, length)
    if rows is None:
        rows = cache if last else copy.deepcopy(cache)
        rows.batch_select_indices(owner)
        return rows
    for layer, source in zip(rows.layers, cache.layers, strict=True):
        layer.update(source.keys.index_select(0, owner), source.values.index_select(0, owner))
    return rows


def _scored(logits, targets, needed, reads=None):
    """On the CPU: log p of each target token under its row of ``logits`` (token i reads row ``reads[i]``, default
    row i), and its Min-K%++ z-score where ``needed`` (NaN elsewhere: those cost one pass over the vocabulary instead
    of six). Each row's log-softmax, and its Min-K%++ mean and variance where a token that needs a z-score reads it,
    are computed once however many tokens read it."""
    import torch

    shape = targets.shape  # any leading axes, one target per row of logits: flattened here
    logits, targets, needed = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), needed.reshape(-1)
    logprobs = torch.log_softmax(logits, dim=-1)
    reads = torch.arange(len(targets)) if reads is None else reads
    reads, targets = reads.to(logits.device), targets.to(logits.device)
    lp = logprobs[reads, targets]
    z = torch.full_like(lp, float("nan"))
    if bool(needed.any()):
        needed = needed.to(logits.device)
        rows, local = torch.unique(reads[needed], return_inverse=True)
        mu, sd = _minkpp_moments(logprobs[rows])
        z[needed] = (lp[needed] - mu[local]) / sd[local]
    return lp.reshape(shape).cpu(), z.reshape(shape).cpu()


def _token_scores(logits, targets):
    """log p of each target token and its Min-K%++ z-score under the full next-token distribution (the reference paths)."""
    import torch

    return _scored(logits, targets, torch.ones_like(targets, dtype=torch.bool))


def _minkpp_moments(logprobs):
    """Mean μ and standard deviation σ of log p under each row's distribution (σ² clamped at ``MIN_VARIANCE``)."""
    probs = logprobs.exp()
    mu = (probs * logprobs).sum(-1)
    variance = (probs * (logprobs - mu.unsqueeze(-1)).pow(2)).sum(-1)  # centred: no cancellation when peaked
    return mu, variance.clamp_min(MIN_VARIANCE).sqrt()
