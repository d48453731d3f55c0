"""Attention as chapters 04-05 build it: every implementation equals its PyTorch reference,
the causal mask hides the future, odd shapes work, and bad head counts are refused."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.model import (
    GPT,
    Block,
    CausalSelfAttention,
    FeedForward,
    GPTConfig,
    Head,
    MultiHeadAttention,
)

C, N_HEAD, BLOCK = 32, 4, 16
HS = C // N_HEAD
ATOL = 1e-5


@pytest.fixture
def config(tiny_config):
    """The shared tiny config with 4 heads of 8 and 2 layers, so heads split and merge and
    attention maps stack across layers."""
    return lambda **overrides: tiny_config(
        **{"block_size": BLOCK, "n_layer": 2, "n_head": N_HEAD, "n_embd": C, **overrides}
    )


def randomise_biases(module: nn.Module) -> nn.Module:
    """Non-zero biases (PyTorch starts some at zero), so a test would notice one not copied."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.5)
    return module.eval()


def list_to_fused(mha: MultiHeadAttention, attn: CausalSelfAttention) -> CausalSelfAttention:
    """Give the fused layer the list's weights: head i owns rows i*hs..(i+1)*hs of each third."""
    with torch.no_grad():
        attn.c_attn.weight.copy_(
            torch.cat(
                [
                    torch.cat([h.query.weight for h in mha.heads]),
                    torch.cat([h.key.weight for h in mha.heads]),
                    torch.cat([h.value.weight for h in mha.heads]),
                ]
            )
        )
        attn.c_attn.bias.zero_()  # the list's heads have no biases
        attn.c_proj.weight.copy_(mha.proj.weight)
        attn.c_proj.bias.copy_(mha.proj.bias)
    return attn


def torch_mha_from(in_weight, in_bias, out_proj: nn.Linear) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(C, N_HEAD, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(in_weight)  # rows: queries, keys, values, as in c_attn
        ref.in_proj_bias.copy_(in_bias)
        ref.out_proj.weight.copy_(out_proj.weight)
        ref.out_proj.bias.copy_(out_proj.bias)
    return ref


def causal_torch_mha(ref: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    T = x.shape[1]
    hidden = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # PyTorch: True = may not attend
    out, _ = ref(x, x, x, attn_mask=hidden, need_weights=False)
    return out


# --- equal to the PyTorch references ---------------------------------------------------------


@pytest.mark.parametrize("causal", [True, False])
def test_head_equals_scaled_dot_product_attention(causal):
    head = Head(C, HS, BLOCK, causal=causal).eval()
    x = torch.randn(3, BLOCK, C)
    with torch.no_grad():
        want = F.scaled_dot_product_attention(
            head.query(x), head.key(x), head.value(x), is_causal=causal
        )
        torch.testing.assert_close(head(x), want, atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("fused", [True, False])
def test_causal_self_attention_equals_scaled_dot_product_attention(fused, config):
    attn = randomise_biases(CausalSelfAttention(config(fused_attention=fused)))
    x = torch.randn(3, BLOCK, C)
    with torch.no_grad():
        q, k, v = attn.c_attn(x).split(C, dim=2)
        heads = [t.view(3, BLOCK, N_HEAD, HS).transpose(1, 2) for t in (q, k, v)]  # (B, nh, T, hs)
        y = (
            F.scaled_dot_product_attention(*heads, is_causal=True)
            .transpose(1, 2)
            .reshape(3, BLOCK, C)
        )
        torch.testing.assert_close(attn(x), attn.c_proj(y), atol=ATOL, rtol=ATOL)


def test_fused_attention_equals_nn_multihead_attention_with_copied_weights(config):
    attn = randomise_biases(CausalSelfAttention(config()))
    ref = torch_mha_from(attn.c_attn.weight, attn.c_attn.bias, attn.c_proj)
    x = torch.randn(2, BLOCK, C)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), causal_torch_mha(ref, x), atol=ATOL, rtol=ATOL)


def test_list_of_heads_equals_nn_multihead_attention_with_copied_weights():
    mha = randomise_biases(MultiHeadAttention(C, N_HEAD, BLOCK))
    in_weight = torch.cat(
        [
            torch.cat([getattr(h, name).weight for h in mha.heads])
            for name in ("query", "key", "value")
        ]
    )  # (3C, C)
    ref = torch_mha_from(in_weight, torch.zeros(3 * C), mha.proj)
    x = torch.randn(2, BLOCK, C)
    with torch.no_grad():
        torch.testing.assert_close(mha(x), causal_torch_mha(ref, x), atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("fused", [True, False])
def test_list_of_heads_equals_fused_with_the_same_weights(fused, config):
    mha = randomise_biases(MultiHeadAttention(C, N_HEAD, BLOCK))
    attn = list_to_fused(mha, CausalSelfAttention(config(fused_attention=fused)).eval())
    x = torch.randn(2, BLOCK, C)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), mha(x), atol=ATOL, rtol=ATOL)


def test_attention_maps_are_causal_and_rows_sum_to_one(config):
    model = GPT(config()).eval()
    maps = model.attention_maps(torch.randint(0, 65, (2, BLOCK)))  # (n_layer, B, nh, T, T)
    assert maps.shape == (2, 2, N_HEAD, BLOCK, BLOCK)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, N_HEAD, BLOCK))
    assert (maps.triu(diagonal=1) == 0).all()


# --- the causal mask hides the future ----------------------------------------------------------


VECTOR_MODULES = [
    "Head",
    "MultiHeadAttention",
    "CausalSelfAttention",
    "CausalSelfAttention(explicit)",
    "Block",
]


def vector_modules(config) -> dict[str, nn.Module]:
    """Modules that map (B, T, C) to (B, T, ·), by name (VECTOR_MODULES)."""
    torch.manual_seed(0)
    modules = {
        "Head": Head(C, HS, BLOCK).eval(),
        "MultiHeadAttention": MultiHeadAttention(C, N_HEAD, BLOCK).eval(),
        "CausalSelfAttention": CausalSelfAttention(config()).eval(),
        "CausalSelfAttention(explicit)": CausalSelfAttention(config(fused_attention=False)).eval(),
        "Block": Block(config()).eval(),
    }
    assert list(modules) == VECTOR_MODULES
    return modules


@pytest.mark.parametrize("name", VECTOR_MODULES)
@pytest.mark.parametrize("t", [0, 5, BLOCK - 1])
def test_changing_a_future_token_leaves_earlier_outputs_alone(name, t, config):
    module = vector_modules(config)[name]
    x = torch.randn(2, BLOCK, C)
    changed = x.clone()
    changed[:, t] += torch.randn(2, C)
    with torch.no_grad():
        before, after = module(x), module(changed)
    torch.testing.assert_close(before[:, :t], after[:, :t], atol=0, rtol=0)  # exactly equal
    assert not torch.allclose(before[:, t], after[:, t]), "the changed token's own output must move"


@pytest.mark.parametrize("t", [0, 7, BLOCK - 1])
def test_gpt_logits_before_a_changed_token_do_not_change(t, config):
    model = GPT(config()).eval()
    idx = torch.randint(0, 65, (2, BLOCK))
    changed = idx.clone()
    changed[:, t] = (idx[:, t] + 1) % 65
    with torch.no_grad():
        (before, _), (after, _) = model(idx), model(changed)
    torch.testing.assert_close(before[:, :t], after[:, :t], atol=0, rtol=0)
    assert not torch.allclose(before[:, t], after[:, t])


def test_without_the_mask_every_position_sees_the_future():
    head = Head(C, HS, BLOCK, causal=False).eval()
    x = torch.randn(1, BLOCK, C)
    changed = x.clone()
    changed[:, -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(head(x)[:, 0], head(changed)[:, 0])


# --- shapes at the edges -----------------------------------------------------------------------


@pytest.mark.parametrize("name", VECTOR_MODULES)
@pytest.mark.parametrize("B,T", [(1, 1), (1, BLOCK), (3, 1), (2, 7)])
def test_shapes_for_odd_sizes(name, B, T, config):
    module = vector_modules(config)[name]
    with torch.no_grad():
        out = module(torch.randn(B, T, C))
    width = HS if name == "Head" else C
    assert out.shape == (B, T, width)
    assert torch.isfinite(out).all()


def test_feed_forward_keeps_the_shape_and_works_per_token(config):
    ffn = FeedForward(config()).eval()
    x = torch.randn(2, 5, C)
    changed = x.clone()
    changed[:, 2] += 1.0
    with torch.no_grad():
        before, after = ffn(x), ffn(changed)
    assert before.shape == (2, 5, C)
    moved = (before - after).abs().amax(dim=(0, 2)) > 0  # (T,)
    assert moved.tolist() == [False, False, True, False, False]


@pytest.mark.parametrize("B,T", [(1, 1), (1, BLOCK), (4, 3)])
def test_gpt_logits_shape_for_odd_sizes(B, T, config):
    model = GPT(config()).eval()
    logits, loss = model(torch.randint(0, 65, (B, T)), torch.randint(0, 65, (B, T)))
    assert logits.shape == (B, T, 65) and loss.dim() == 0


def test_gpt_refuses_more_tokens_than_its_context(config):
    with pytest.raises(ValueError, match="context window"):
        GPT(config())(torch.zeros(1, BLOCK + 1, dtype=torch.long))


# --- bad head counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("n_embd,n_head", [(30, 4), (32, 5), (32, 0)])
def test_width_not_divisible_by_heads_is_a_clear_error(n_embd, n_head):
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=n_embd, n_head=n_head)
    with pytest.raises(ValueError, match="divisible by n_head"):
        MultiHeadAttention(n_embd, n_head, BLOCK)


def test_the_error_suggests_head_counts_that_work():
    with pytest.raises(ValueError) as err:
        MultiHeadAttention(30, 4, BLOCK)
    assert "[1, 2, 3, 5, 6, 10, 15, 30]" in str(err.value)
