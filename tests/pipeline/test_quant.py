"""The quantisation simulation against bitsandbytes, and the bin-crossing diagnostic.

bitsandbytes is in the ``test`` extra (``make test`` installs it: a 43 MB wheel, these checks take about
a second on CPU). Codes and scales are compared, never bitsandbytes' CPU dequantiser or forward pass:
its AVX512 dequantise kernel indexes scales wrongly when in_features % 64 != 0 (the tiny model's 96).
"""

from __future__ import annotations

import pytest

from entity_unlearn.pipeline import quant as Q

torch = pytest.importorskip("torch")

SHAPES = [(96, 96), (256, 96), (96, 256), (7, 13), (33, 64), (100, 257)]


def weights(shape, seed=0, scale=0.02):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g) * scale
    w[0, : min(5, shape[1])] *= 20  # outliers set the block scales
    w[min(2, shape[0] - 1)] = 0  # an all-zero row
    return w


def unpack(packed, n):
    u = packed.reshape(-1).view(torch.uint8)
    out = torch.empty(u.numel() * 2, dtype=torch.uint8)
    out[0::2], out[1::2] = u >> 4, u & 0xF
    return out[:n]


def test_nf4_codebook_is_bitsandbytes_and_its_thresholds_are_the_cuda_kernels():
    F = pytest.importorskip("bitsandbytes.functional")
    code, bounds = Q._codebook()
    assert torch.equal(code, F.get_4bit_type("nf4", device="cpu").float())
    cuda = [-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984]
    cuda += [-0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668]
    cuda += [0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011]
    assert torch.equal(bounds, torch.tensor(cuda))  # the fp32 constants of csrc/kernels.cu dQuantizeNF4


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_nf4_codes_and_scales_equal_bitsandbytes(shape, dtype):
    F = pytest.importorskip("bitsandbytes.functional")
    w = weights(shape).to(getattr(torch, dtype))
    packed, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4")
    codes, absmax = Q.nf4_quantize(w)
    assert torch.equal(unpack(packed, w.numel()), codes)
    assert torch.equal(state.absmax, absmax)
    assert Q.nf4_dequantize(codes, absmax, w.shape).abs().max() <= w.float().abs().max()


@pytest.mark.parametrize("shape", SHAPES)
def test_int8_codes_scales_and_weights_equal_bitsandbytes(shape):
    F = pytest.importorskip("bitsandbytes.functional")
    w = weights(shape, seed=1)
    w[min(2, shape[0] - 1)] = 0.01  # bitsandbytes gives NaN codes for an all-zero row
    cb, scb, _ = F.int8_vectorwise_quant(w.to(torch.float16))
    q, absmax = Q.int8_quantize(w)
    assert torch.equal(cb, q) and torch.equal(scb, absmax)
    assert torch.equal(F.int8_vectorwise_dequant(cb, scb), Q.int8_dequantize(q, absmax))


def test_transformers_bitsandbytes_load_quantises_the_same_layers_to_the_same_codes(tmp_path):
    bnb = pytest.importorskip("bitsandbytes")
    pytest.importorskip("accelerate")
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=96, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(tmp_path)
    loaded = LlamaForCausalLM.from_pretrained(
        tmp_path, quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"), device_map="cpu"
    )
    ours = dict(Q.quantisable(model))
    theirs = {n: m for n, m in loaded.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert set(theirs) == set(ours) and len(ours) == 7
    for name, layer in theirs.items():  # read before any forward: bitsandbytes' CPU forward repacks the weight
        codes, absmax = Q.nf4_quantize(ours[name].weight)
        assert torch.equal(unpack(layer.weight.data, codes.numel()), codes) and torch.equal(layer.weight.quant_state.absmax, absmax)


def test_bin_crossing_share_counts_code_changes():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, tie_word_embeddings=True)
    before = LlamaForCausalLM(cfg)
    after = LlamaForCausalLM(cfg)
    after.load_state_dict(before.state_dict())
    assert Q.bin_crossing_share(before, after, "nf4")["code_changed"] == 0
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, layer in Q.quantisable(after):
            layer.weight.add_(torch.randn(layer.weight.shape, generator=g).sign() * 2e-4)
    nf4, int8 = Q.bin_crossing_share(before, after, "nf4"), Q.bin_crossing_share(before, after, "int8")
    assert nf4["weight_changed"] == 1.0 and nf4["weights"] == sum(m.weight.numel() for _, m in Q.quantisable(before))
    assert 0 < nf4["code_changed"] < 0.1 < int8["code_changed"] < 1  # an update far smaller than a 4-bit bin rarely crosses one
    # by hand on one weight: the first layer's codes
    name, layer = Q.quantisable(before)[0]
    manual = (Q.nf4_quantize(layer.weight)[0] != Q.nf4_quantize(dict(Q.quantisable(after))[name].weight)[0]).float().mean().item()
    assert 0 < manual < 0.1


def test_quantise_model_replaces_linear_weights_but_not_embeddings_or_norms():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Q.quantise_model_(model, "nf4")
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"{n}.weight" for n, _ in Q.quantisable(model)}
    for _name, layer in Q.quantisable(model):
        assert len(torch.unique(layer.weight[:1, :64])) <= 16  # one block: at most 16 distinct values
