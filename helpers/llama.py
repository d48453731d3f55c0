"""The Llama as chapter 11 builds it from chapter 07's GPT, one change at a time.

Four changes turn the GPT into the architecture of today's open models (Touvron et al., 2023):
RMSNorm instead of LayerNorm (Zhang and Sennrich, 2019), rotary position embeddings instead of a
learned position table (Su et al., 2021), a SwiGLU feed-forward instead of GELU's (Shazeer, 2020)
and grouped-query attention, fewer key/value heads than query heads (Ainslie et al., 2023).
No biases anywhere; the output layer is tied to the token embedding or not, as the config says.

Module and parameter names mirror Hugging Face's ``LlamaForCausalLM`` (``model.embed_tokens``,
``model.layers.N.self_attn.q_proj``, ``mlp.gate_proj``, ``input_layernorm``, ``model.norm``,
``lm_head``), so its weights copy over key for key and a test can compare logits exactly.
``helpers.llama_weights`` loads SmolLM2-135M-Instruct's real weights into it.

Shapes: B = batch, T = time, C = n_embd, nh = query heads, nkv = key/value heads, hs = head size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.model import KVCache, LayerCache, causal_mask, lm_loss, sample_tokens


@dataclass
class LlamaConfig:
    vocab_size: int = 65
    block_size: int = 256  # the longest context it is used with (RoPE itself has no table)
    n_layer: int = 6
    n_head: int = 6  # query heads
    n_kv_head: int = 6  # key/value heads: n_head for plain multi-head attention, fewer for GQA
    n_embd: int = 384
    ffn_hidden: int = 1024  # SwiGLU's width (three matrices, so about 8/3 C for GPT's 4C budget)
    rope_theta: float = 10000.0  # the base of RoPE's frequencies
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    dropout: float = 0.0

    def __post_init__(self):
        if self.n_head < 1 or self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"n_embd ({self.n_embd}) must split into {self.n_head} heads of an even size "
                "(RoPE rotates pairs of numbers)"
            )
        if self.n_kv_head < 1 or self.n_head % self.n_kv_head:
            raise ValueError(
                f"n_head ({self.n_head}) must be a multiple of n_kv_head ({self.n_kv_head}): "
                "each key/value head serves a group of query heads of the same size"
            )

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_hf(cls, hf) -> LlamaConfig:
        """Our config from a ``transformers.LlamaConfig`` (or its ``config.json`` as a dict)."""
        get = hf.get if isinstance(hf, dict) else lambda k, d=None: getattr(hf, k, d)
        rope = get("rope_parameters") or {}
        return cls(
            vocab_size=get("vocab_size"),
            block_size=get("max_position_embeddings"),
            n_layer=get("num_hidden_layers"),
            n_head=get("num_attention_heads"),
            n_kv_head=get("num_key_value_heads") or get("num_attention_heads"),
            n_embd=get("hidden_size"),
            ffn_hidden=get("intermediate_size"),
            rope_theta=float(rope.get("rope_theta") or get("rope_theta") or 10000.0),
            norm_eps=get("rms_norm_eps"),
            tie_embeddings=bool(get("tie_word_embeddings", True)),
        )

    def to_hf(self):
        """The same shape as a ``transformers.LlamaConfig`` (eager attention, no biases)."""
        from transformers import LlamaConfig as HFLlamaConfig

        config = HFLlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.n_embd,
            intermediate_size=self.ffn_hidden,
            num_hidden_layers=self.n_layer,
            num_attention_heads=self.n_head,
            num_key_value_heads=self.n_kv_head,
            max_position_embeddings=self.block_size,
            rms_norm_eps=self.norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            tie_word_embeddings=self.tie_embeddings,
            attention_bias=False,
            mlp_bias=False,
        )
        config._attn_implementation = "eager"
        return config


class RMSNorm(nn.Module):
    """LayerNorm without the mean: divide by the root mean square, then a learned gain."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()  # the mean of squares in float32, also under bf16 autocast
        rms = torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., 1)
        return self.weight * (x32 * rms).to(x.dtype)  # (..., C)


def rope_cos_sin(
    positions: torch.Tensor, head_size: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every position's angles, each (T, hs): pair i of a head turns by
    position * theta^(-2i/hs), slow for the last pairs, fast for the first."""
    inv_freq = theta ** -(torch.arange(0, head_size, 2, device=positions.device) / head_size)
    angles = positions.float()[:, None] * inv_freq[None, :]  # (T, hs/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, hs): pair i is (i, i + hs/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x_i, x_{i+hs/2}) of ``x`` (B, nh, T, hs) by its position's angle."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, nh, T, hs/2) each
    rotated = torch.cat([-x2, x1], dim=-1)  # the pair turned by 90 degrees
    return (x * cos + rotated * sin).to(x.dtype)  # (B, nh, T, hs)


class Attention(nn.Module):
    """Causal self-attention with RoPE on queries and keys and n_kv_head key/value heads, each
    shared by n_head / n_kv_head query heads. The cache keeps only the n_kv_head heads."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        C, hs = config.n_embd, config.head_size
        self.q_proj = nn.Linear(C, config.n_head * hs, bias=False)
        self.k_proj = nn.Linear(C, config.n_kv_head * hs, bias=False)
        self.v_proj = nn.Linear(C, config.n_kv_head * hs, bias=False)
        self.o_proj = nn.Linear(config.n_head * hs, C, bias=False)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        nh, nkv, hs = self.config.n_head, self.config.n_kv_head, self.config.head_size
        q = self.q_proj(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # positions enter here only
        T_past = 0
        if cache is not None:
            T_past = 0 if cache.k is None else cache.k.shape[2]
            k, v = cache.extend(k, v)  # (B, nkv, T_past + T, hs)
        if nkv < nh:  # (B, nh, T_all, hs): kv head j serves query heads j*g .. j*g + g - 1
            k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        dropout_p = self.config.dropout if self.training else 0.0
        if T_past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:  # new tokens after cached ones: each sees the cache and the new tokens before it
            mask = causal_mask(T, T_past + T, x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh * hs)
        return self.resid_dropout(self.o_proj(y))  # (B, T, C)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)): one branch decides, per hidden unit, how much of the other
    passes. Three matrices instead of GPT's two."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        C, H = config.n_embd, config.ffn_hidden
        self.gate_proj = nn.Linear(C, H, bias=False)
        self.up_proj = nn.Linear(C, H, bias=False)
        self.down_proj = nn.Linear(H, C, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))


class LlamaBlock(nn.Module):
    """GPT's pre-norm block with RMSNorm: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.n_embd, config.norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))  # (B, T, C)


class LlamaModel(nn.Module):
    """Token ids (B, T) in, the final RMSNorm's output (B, T, C) out. No position table: RoPE
    turns queries and keys inside attention instead."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(LlamaBlock(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.length if cache else 0
        positions = torch.arange(start, start + idx.shape[1], device=idx.device)  # (T,)
        cos, sin = rope_cos_sin(positions, self.config.head_size, self.config.rope_theta)
        x = self.drop(self.embed_tokens(idx))  # (B, T, C)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, cache.layers[i] if cache else None)
        if cache:
            cache.length += idx.shape[1]
        return self.norm(x)


class Llama(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.tie_weights()
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def tie_weights(self) -> None:
        """Share the token embedding with the output layer when the config says so (again after
        ``load_state_dict(..., assign=True)``, which puts a new tensor in the embedding)."""
        if self.config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # a tied matrix counts once

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) for ``idx`` (B, T), and the loss given ``targets`` (B, T)."""
        logits = self.lm_head(self.model(idx))  # (B, T, vocab)
        return logits, lm_loss(logits, targets)

    def generate(self, idx: torch.Tensor, max_new_tokens: int, **sampling) -> torch.Tensor:
        """Append up to ``max_new_tokens`` tokens to ``idx`` (B, T) with
        ``helpers.model.sample_tokens`` (temperature, top_k, top_p, use_cache, generator,
        stop_token), the loop ``GPT.generate`` uses too."""
        return sample_tokens(self, self.model, idx, max_new_tokens, **sampling)

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> Llama:
        """A Llama with the weights of a ``transformers.LlamaForCausalLM`` (same names)."""
        model = cls(LlamaConfig.from_hf(hf_model.config))
        model.load_weights(hf_model.state_dict())
        return model

    def load_weights(self, state_dict: dict[str, torch.Tensor], assign: bool = False) -> None:
        """Load Hugging Face-named weights; a tied model needs no ``lm_head.weight``. With
        ``assign`` the tensors themselves become the parameters (no copy: for a model built on
        the meta device). Missing or unexpected names, or wrong shapes, are refused."""
        state_dict = dict(state_dict)
        if self.config.tie_embeddings:
            state_dict.pop("lm_head.weight", None)
        expected = set(self.state_dict()) - (
            {"lm_head.weight"} if self.config.tie_embeddings else set()
        )
        missing, unexpected = expected - set(state_dict), set(state_dict) - expected
        if missing or unexpected:
            raise ValueError(
                f"weights do not fit this Llama: missing {sorted(missing)[:4]}, "
                f"unexpected {sorted(unexpected)[:4]}"
            )
        self.load_state_dict(state_dict, strict=False, assign=assign)
        self.tie_weights()


def kv_cache_bytes_per_token(config: LlamaConfig, bytes_per_number: int = 2) -> int:
    """What the KV cache stores for every token of context: a key and a value vector per
    key/value head per layer (bf16 by default: 2 bytes a number)."""
    return 2 * config.n_layer * config.n_kv_head * config.head_size * bytes_per_number


def llama_like(gpt_config, n_kv_head: int | None = None) -> LlamaConfig:
    """A Llama of chapter 07's GPT shape (layers, heads, width, context, dropout) with the
    SwiGLU width that gives it (within a few hundred) the GPT's parameter count: the Llama has no
    position table and no biases, so its MLP gets what they held."""
    from helpers.model import GPT

    C, L = gpt_config.n_embd, gpt_config.n_layer
    target = GPT(gpt_config).num_parameters()
    shape = dict(
        vocab_size=gpt_config.vocab_size,
        block_size=gpt_config.block_size,
        n_layer=L,
        n_head=gpt_config.n_head,
        n_kv_head=n_kv_head or gpt_config.n_head,
        n_embd=C,
        dropout=gpt_config.dropout,
    )
    without_mlp = Llama(LlamaConfig(**shape, ffn_hidden=1)).num_parameters() - 3 * C * L
    return LlamaConfig(**shape, ffn_hidden=round((target - without_mlp) / (3 * C * L)))
