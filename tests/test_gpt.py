"""The chapter-07 GPT: exact against Hugging Face GPT-2, sampling, KV cache, learning."""

import math

import pytest
import torch

from helpers.model import GPT, KVCache, complete, filter_logits, sample_next

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_and_ours():
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(
        vocab_size=101,
        n_positions=48,
        n_embd=64,
        n_layer=3,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    with torch.no_grad():  # random, not-small biases and gains, so a missed copy would show
        for name, p in hf.named_parameters():
            if name.endswith(("bias", "ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.normal_(0.0, 0.5)
    return hf, GPT.from_hf_gpt2(hf).eval()


def test_logits_equal_hugging_face_gpt2_with_the_same_weights(hf_and_ours):
    hf, ours = hf_and_ours
    idx = torch.randint(0, 101, (3, 48))
    with torch.no_grad():
        expected = hf(idx).logits
        got, _ = ours(idx)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert ours.config.block_size == 48 and ours.config.n_layer == 3


def test_explicit_attention_path_gives_the_same_logits(hf_and_ours):
    _, ours = hf_and_ours
    idx = torch.randint(0, 101, (2, 20))
    with torch.no_grad():
        fused, _ = ours(idx)
        ours.config.fused_attention = False  # every layer reads the one shared config
        explicit, _ = ours(idx)
        ours.config.fused_attention = True
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)


def test_loss_at_init_is_about_ln_vocab(tiny_gpt):
    torch.manual_seed(0)
    model = tiny_gpt(block_size=32)
    idx = torch.randint(0, 65, (8, 32))
    targets = torch.randint(0, 65, (8, 32))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(65)) < 0.1


def test_residual_projections_get_the_scaled_init(tiny_gpt):
    model = tiny_gpt(n_layer=8, n_embd=64)
    std = model.transformer.h[0].attn.c_proj.weight.std().item()
    assert std == pytest.approx(0.02 / math.sqrt(16), rel=0.1)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied


def test_one_step_lowers_the_loss_on_a_fixed_batch(tiny_gpt):
    torch.manual_seed(0)
    model = tiny_gpt(block_size=32)
    idx = torch.randint(0, 65, (4, 32))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    _, before = model(idx[:, :-1], idx[:, 1:])
    before.backward()
    opt.step()
    _, after = model(idx[:, :-1], idx[:, 1:])
    assert after.item() < before.item()


def test_a_few_hundred_steps_overfit_a_tiny_text(tiny_gpt):
    torch.manual_seed(0)
    text = "to be or not to be, that is the question. " * 4
    chars = sorted(set(text))
    ids = torch.tensor([[chars.index(c) for c in text]])  # (1, T)
    model = tiny_gpt(vocab_size=len(chars), block_size=ids.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        _, loss = model(ids[:, :-1], ids[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def test_cached_and_uncached_generation_pick_the_same_tokens(tiny_gpt):
    torch.manual_seed(0)
    model = tiny_gpt(block_size=16).eval()
    prompt = torch.randint(0, 65, (2, 5))
    runs = [
        model.generate(
            prompt,
            40,
            temperature=1.0,
            top_k=20,
            use_cache=use_cache,
            generator=torch.Generator().manual_seed(3),
        )
        for use_cache in (True, False)
    ]
    assert runs[0].shape == (2, 45)  # 40 new tokens, well past the 16-token window
    assert torch.equal(runs[0], runs[1])


def cached_logits(model, idx, split: int):
    """Logits of idx[:, split:] when idx[:, :split] went through the model first, into a cache."""
    cache = KVCache(model.config.n_layer)
    model.transformer(idx[:, :split], cache)
    assert cache.length == split
    return model.lm_head(model.transformer(idx[:, split:], cache))


@pytest.mark.parametrize(
    "path, split",
    [
        ("no cache: is_causal=True, no mask tensor", 0),
        ("one new token after a cache: no mask at all", 11),
        ("several new tokens after a cache: an offset mask", 8),
    ],
)
def test_each_fused_attention_path_equals_the_explicit_maths(path, split, tiny_gpt):
    torch.manual_seed(0)
    model = tiny_gpt().eval()
    idx = torch.randint(0, 65, (2, 12))
    with torch.no_grad():
        model.config.fused_attention = False
        explicit, _ = model(idx)
        model.config.fused_attention = True
        got = model(idx)[0] if split == 0 else cached_logits(model, idx, split)
    torch.testing.assert_close(got, explicit[:, split:], atol=1e-5, rtol=1e-5)


def test_without_a_cache_attention_passes_no_mask_so_flash_can_run(monkeypatch, tiny_gpt):
    """PyTorch's flash kernel refuses any attn_mask: training must call SDPA with is_causal."""
    import torch.nn.functional as F

    calls = []
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    model = tiny_gpt(n_layer=2)
    _, loss = model(torch.randint(0, 65, (2, 12)), torch.randint(0, 65, (2, 12)))
    loss.backward()
    assert len(calls) == 2 and all(c.get("is_causal") and c.get("attn_mask") is None for c in calls)


def test_top_p_of_one_keeps_every_token_even_where_float_sums_fall_short():
    torch.manual_seed(0)
    logits = torch.randn(64, 5000) * 8  # peaked rows: the cumulative sum rounds below 1.0
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()


def test_from_hf_gpt2_refuses_what_it_cannot_hold():
    cfg = dict(vocab_size=11, n_positions=8, n_embd=16, n_layer=1, n_head=2)
    for bad, match in (
        (dict(tie_word_embeddings=False), "tie_word_embeddings"),
        (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse"),
        (dict(scale_attn_weights=False), "scale_attn_weights"),
        (dict(activation_function="relu"), "activation_function"),
    ):
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg, **bad))
        with pytest.raises(ValueError, match=match):
            GPT.from_hf_gpt2(hf)


def test_long_prompts_are_cropped_to_the_context(tiny_gpt):
    model = tiny_gpt(block_size=16).eval()
    out = model.generate(
        torch.randint(0, 65, (1, 50)), 3, generator=torch.Generator().manual_seed(0)
    )
    assert out.shape == (1, 53)


def test_empty_prompts_and_unknown_characters_are_clear_errors(char_tokenizer, tiny_gpt):
    model = tiny_gpt()
    with pytest.raises(ValueError, match="prompt is empty"):
        model.generate(torch.zeros((1, 0), dtype=torch.long), 5)
    with pytest.raises(ValueError, match="prompt is empty"):
        complete(model, char_tokenizer, "", 5)
    with pytest.raises(ValueError, match="'é' at 3"):
        complete(model, char_tokenizer, "Roméo", 5)


def test_top_k_and_top_p_never_sample_outside_their_set():
    probs = torch.tensor([[0.05, 0.4, 0.1, 0.3, 0.15]])
    logits = probs.log()
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [
        [False, True, False, True, False]
    ]
    # nucleus 0.75: 0.4 + 0.3 = 0.7 < 0.75, so 0.15 joins; 0.85 is enough
    assert torch.isfinite(filter_logits(logits, top_p=0.75)).tolist() == [
        [False, True, False, True, True]
    ]
    assert torch.isfinite(filter_logits(logits, top_p=0.3)).tolist() == [
        [False, True, False, False, False]
    ]
    gen = torch.Generator().manual_seed(0)
    draws = {
        sample_next(logits.expand(4000, -1), 1.0, top_k=3, top_p=0.7, generator=gen)[i].item()
        for i in range(4000)
    }
    assert draws == {1, 3}  # both filters: top-3 is {1, 3, 4}; its nucleus at 0.7 is {1, 3}


def test_temperature_zero_is_greedy_and_bad_settings_are_errors():
    logits = torch.tensor([[0.1, 2.0, 0.3]])
    assert sample_next(logits, temperature=0).item() == 1
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, top_p=0.0)
    with pytest.raises(ValueError, match="top_k"):
        filter_logits(logits, top_k=0)


def test_attention_maps_are_causal_distributions(tiny_gpt):
    model = tiny_gpt(n_layer=2).eval()
    maps = model.attention_maps(torch.randint(0, 65, (1, 10)))
    assert maps.shape == (2, 1, 2, 10, 10)  # (n_layer, B, nh, T, T)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 1, 2, 10))
    assert torch.all(maps.triu(diagonal=1) == 0)


def test_inputs_longer_than_the_context_are_a_clear_error(tiny_gpt):
    model = tiny_gpt(block_size=8)
    with pytest.raises(ValueError, match="context window of 8"):
        model(torch.zeros((1, 9), dtype=torch.long))


def test_gelu_is_a_config_field_tanh_by_default(tiny_config):
    """tanh is GPT-2's (and Hugging Face's) GELU; erf is the exact one, PyTorch's default."""
    x = torch.linspace(-4, 4, 101)
    tanh = GPT(tiny_config()).transformer.h[0].mlp.gelu
    erf = GPT(tiny_config(gelu="erf")).transformer.h[0].mlp.gelu
    assert torch.equal(tanh(x), torch.nn.functional.gelu(x, approximate="tanh"))
    assert torch.equal(erf(x), torch.nn.functional.gelu(x))
    with pytest.raises(ValueError, match="gelu must be 'tanh'"):
        tiny_config(gelu="relu")
