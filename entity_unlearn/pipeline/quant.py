"""Weight quantisation as an attack on unlearning (Zhang et al., ICLR 2025, arXiv 2410.16454).

Two ways to the same weights:

- ``simulate`` (torch only, any device): round-to-nearest onto bitsandbytes' NF4 codebook with a float32
  absmax per block of 64 consecutive elements of the flattened weight (no double quantisation), or
  LLM.int8's weight quantisation (fp16 weight, absmax per output row, round(w * 127 / absmax)). Checked
  to equal bitsandbytes' codes, scales and dequantised weights exactly (``tests/pipeline/test_quant.py``;
  bitsandbytes' own CPU dequantiser is wrong when in_features % 64 != 0, which the tiny model hits).
- ``bnb`` (CUDA): the model is loaded through transformers' bitsandbytes integration and each quantised
  layer's weight is dequantised by bitsandbytes itself.

Either way the dequantised weights are written as an ordinary checkpoint that the evaluator scores, so the
attack is weight-only: LLM.int8's forward pass also quantises activations (logits move by about 1e-2 on
the tiny model); its 4-bit forward dequantises and multiplies in the compute dtype, as here. Quantised are
the layers transformers quantises: every ``nn.Linear`` except the output head; embeddings and norms stay.
"""

from __future__ import annotations

MODES = ("nf4", "int8")
BLOCKSIZE = 64
# bitsandbytes functional.get_4bit_type("nf4"), verbatim (float32)
NF4_VALUES = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)


def _codebook(device=None):
    import torch

    code = torch.tensor(NF4_VALUES, dtype=torch.float32, device=device)
    return code, (code[:-1] + code[1:]) / 2  # thresholds: equal to bitsandbytes' CUDA dQuantizeNF4 constants; ties round down


def nf4_quantize(w, blocksize: int = BLOCKSIZE, absmax=None):
    """(uint8 codes 0..15 of the flattened weight, float32 absmax per block). ``absmax``: quantise on given scales."""
    import torch

    flat = w.detach().reshape(-1).float()
    n = flat.numel()
    blocks = -(-n // blocksize)
    padded = torch.nn.functional.pad(flat, (0, blocks * blocksize - n)).view(blocks, blocksize)
    if absmax is None:
        absmax = padded.abs().amax(dim=1)  # zero padding never changes a max of |x|
    scaled = (padded * (1.0 / absmax.clamp(min=1e-38)).unsqueeze(1)).clamp(-1, 1).reshape(-1)[:n]
    _, bounds = _codebook(flat.device)
    return torch.searchsorted(bounds, scaled).to(torch.uint8), absmax


def nf4_dequantize(codes, absmax, shape, blocksize: int = BLOCKSIZE, dtype=None):
    import torch

    code, _ = _codebook(absmax.device)
    values = torch.take(code, codes.reshape(-1).long()) * absmax.repeat_interleave(blocksize)[: codes.numel()]
    return values.reshape(shape).to(dtype or torch.float32)


def int8_quantize(w):
    """LLM.int8 weights (bitsandbytes Int8Params): fp16 weight, absmax per output row, round(w * 127 / absmax)."""
    import torch

    h = w.detach().to(torch.float16)
    absmax = h.abs().amax(dim=1).float()
    q = torch.round(h * (127.0 / absmax.clamp(min=1e-38).unsqueeze(-1))).to(torch.int8)  # an all-zero row: codes 0, not NaN
    return q, absmax


def int8_dequantize(q, absmax, dtype=None):
    import torch

    return (q * absmax.view(-1, 1) * 7.874015718698502e-3).to(dtype or torch.float32)  # 1/127 as bitsandbytes writes it


def roundtrip(w, mode: str):
    """The weight as the quantised model uses it: quantised, then dequantised (float32)."""
    if mode == "nf4":
        codes, absmax = nf4_quantize(w)
        return nf4_dequantize(codes, absmax, w.shape)
    if mode == "int8":
        return int8_dequantize(*int8_quantize(w))
    raise ValueError(f"quantisation mode {mode!r}: choose one of {MODES}")


def quantisable(model) -> list[tuple[str, object]]:
    """(name, Linear) of every layer transformers' bitsandbytes integration quantises: all but the output head."""
    import torch

    head = model.get_output_embeddings()
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]


def quantise_model_(model, mode: str):
    """In place: every quantisable weight replaced by its quantised-then-dequantised value (in its own dtype)."""
    import torch

    with torch.no_grad():
        for _, layer in quantisable(model):
            layer.weight.copy_(roundtrip(layer.weight, mode).to(layer.weight.dtype))
    return model


def codes(w, mode: str):
    return nf4_quantize(w)[0] if mode == "nf4" else int8_quantize(w)[0].reshape(-1)


def bin_crossing_share(before, after, mode: str) -> dict:
    """Share of quantised weights whose code differs between two models (before and after unlearning), each
    quantised on its own scales: what the quantisation attack sees. A small share means 4-bit maps the
    unlearned model back onto the model before unlearning. Also the share of weights that moved at all."""
    import torch

    total = crossed = moved = 0
    others = dict(quantisable(after))
    with torch.no_grad():
        for name, layer in quantisable(before):
            w0, w1 = layer.weight, others[name].weight
            total += w0.numel()
            crossed += int((codes(w0, mode) != codes(w1, mode)).sum())
            moved += int((w0 != w1).sum())
    return {
        "mode": mode,
        "weights": total,
        "code_changed": crossed / total if total else float("nan"),
        "weight_changed": moved / total if total else float("nan"),
    }


def bnb_dequantised(path: str, mode: str, device: str = "cuda"):
    """The model at ``path`` loaded through bitsandbytes (NF4 blocksize 64 without double quantisation, or
    LLM.int8) and returned as a plain float32 model holding bitsandbytes' dequantised weights. Needs CUDA and
    ``pip install 'entity-unlearn[quant]'``; bitsandbytes' CPU dequantiser is wrong at this package's sizes."""
    import accelerate  # noqa: F401  (transformers loads bitsandbytes models through it: fail here, by name, if missing)
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = (
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=False, bnb_4bit_compute_dtype=torch.bfloat16)
        if mode == "nf4"
        else BitsAndBytesConfig(load_in_8bit=True)
    )
    quantised = AutoModelForCausalLM.from_pretrained(path, quantization_config=config, device_map=device)
    plain = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    layers = dict(quantisable(plain))
    with torch.no_grad():
        for name, module in quantised.named_modules():
            if isinstance(module, bnb.nn.Linear4bit):
                weight = F.dequantize_4bit(module.weight.data, module.weight.quant_state)
            elif isinstance(module, bnb.nn.Linear8bitLt):
                weight = F.int8_vectorwise_dequant(module.weight.CB, module.weight.SCB)
            else:
                continue
            layers[name].weight.copy_(weight.float().cpu().reshape(layers[name].weight.shape))
    return plain
