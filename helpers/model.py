"""The GPT as chapters 03-07 build it, piece by piece.

Module and parameter names mirror Hugging Face's GPT-2 (``wte``, ``wpe``, ``h``, ``ln_1``,
``attn.c_attn``, ``attn.c_proj``, ``mlp.c_fc``, ``ln_f``, ``lm_head``) so its weights copy over
one to one (``GPT.from_hf_gpt2``) and a test can compare logits exactly.

Shapes: B = batch, T = time (tokens), C = channels (n_embd), nh = heads, hs = head size = C // nh.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:  # the model needs no data at run time
    from helpers.data import CharTokenizer


class BigramLanguageModel(nn.Module):
    """Chapter 02: each token's logits for the next token are read straight from a table."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, vocab_size)
        self.block_size = None  # looks at one token only, so any context length works

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.token_embedding_table(idx)  # (B, T, vocab)
        return logits, lm_loss(logits, targets)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy of next-token predictions; None when there are no targets."""
    if targets is None:
        return None
    B, T, V = logits.shape
    return F.cross_entropy(logits.view(B * T, V), targets.reshape(B * T))


# ---------------------------------------------------------------------------------------------
# Chapter 04-05: attention, first as a list of single heads, then fused into one batched module
# ---------------------------------------------------------------------------------------------


class Head(nn.Module):
    """One head of self-attention: each token asks (query), advertises (key) and offers (value)."""

    def __init__(
        self,
        n_embd: int,
        head_size: int,
        block_size: int,
        dropout: float = 0.0,
        causal: bool = True,
    ):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.causal = causal
        self.register_buffer(
            "tril", torch.tril(torch.ones(block_size, block_size)), persistent=False
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T): scaled affinities
        if self.causal:  # a token may not look at the tokens after it
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = self.dropout(F.softmax(wei, dim=-1))  # (B, T, T), each row sums to 1
        return wei @ self.value(x)  # (B, T, T) @ (B, T, hs) -> (B, T, hs)


class MultiHeadAttention(nn.Module):
    """Several heads side by side, their outputs concatenated and projected back to n_embd."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        check_heads(n_embd, n_head)
        head_size = n_embd // n_head
        self.heads = nn.ModuleList(
            Head(n_embd, head_size, block_size, dropout) for _ in range(n_head)
        )
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, nh * hs) = (B, T, C)
        return self.dropout(self.proj(out))  # (B, T, C)


def check_heads(n_embd: int, n_head: int) -> None:
    if n_head < 1 or n_embd % n_head != 0:
        raise ValueError(
            f"n_embd ({n_embd}) must be divisible by n_head ({n_head}) so every head gets the "
            f"same size; try n_head in {[h for h in range(1, n_embd + 1) if n_embd % h == 0][:8]}"
        )


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm, as GPT-2 has them
    # how attention is computed, not what: True calls PyTorch's fused kernel (flash attention
    # where the hardware has it), False spells the maths out; both give the same numbers
    fused_attention: bool = True
    # GPT-2's tanh approximation of GELU ("gelu_new"), which a model must keep to equal Hugging
    # Face's GPT-2; "erf" is the exact GELU, PyTorch's default (nanoGPT uses it)
    gelu: str = "tanh"

    def __post_init__(self):
        check_heads(self.n_embd, self.n_head)
        if self.gelu not in ("tanh", "erf"):
            raise ValueError(f"gelu must be 'tanh' (GPT-2's) or 'erf' (exact), got {self.gelu!r}")
        if self.vocab_size < 1 or self.block_size < 1 or self.n_layer < 0:
            raise ValueError(f"vocab_size, block_size must be >= 1 and n_layer >= 0: {self}")

    def to_dict(self) -> dict:
        return asdict(self)


class LayerCache:
    """One layer's keys and values for the tokens seen so far, each (B, nh, T_past, hs)."""

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new tokens' keys and values; return all of them, (B, nh, T_past + T, hs)."""
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


class KVCache:
    """What generation keeps between steps: every layer's keys and values, and how many
    positions they cover. A token's key and value never change once computed (a token cannot
    see the future), so each new token needs only its own."""

    def __init__(self, n_layer: int):
        self.layers = [LayerCache() for _ in range(n_layer)]
        self.length = 0  # positions cached so far


class CausalSelfAttention(nn.Module):
    """All heads at once: one Linear makes q, k and v for every head, reshapes split the heads.

    With ``config.fused_attention`` it calls ``F.scaled_dot_product_attention``. Without a cache
    that is ``is_causal=True`` and no mask tensor at all, which lets PyTorch pick its flash kernel
    (any explicit mask rules flash out). Otherwise the same maths is spelled out, which is also
    how :meth:`attention_weights` lets us look at the weights.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of every head: 3 x (B, nh, T, hs)."""
        B, T, C = x.shape
        nh = self.config.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        return (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x)  # (B, nh, T, hs) each
        T_past = 0
        if cache is not None:  # earlier tokens' keys and values come from the cache
            T_past = 0 if cache.k is None else cache.k.shape[2]
            k, v = cache.extend(k, v)  # (B, nh, T_past + T, hs)
        dropout_p = self.config.dropout if self.training else 0.0
        if self.config.fused_attention:
            if T_past == 0:  # a fresh sequence: the plain causal mask, flash-eligible
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            elif T == 1:  # one new token may look at every cached one: no mask needed
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            else:  # several new tokens after a cache: an explicit offset mask
                mask = causal_mask(T, T_past + T, x.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        else:
            att = attention_probabilities(q, k)  # (B, nh, T, T_past + T)
            y = (
                self.attn_dropout(att) @ v
            )  # (B, nh, T, T_all) @ (B, nh, T_all, hs) -> (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again: (B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights (B, nh, T, T) this layer gives input ``x`` (B, T, C): each row
        says how much a token takes from each earlier one."""
        q, k, _ = self.qkv(x)
        return attention_probabilities(q, k)


def attention_probabilities(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs)) with the future masked out; q (B, nh, T, hs), k (B, nh, T_all,
    hs) -> (B, nh, T, T_all). The last T keys belong to the same tokens as the queries."""
    T, T_all = q.shape[2], k.shape[2]
    att = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, nh, T, T_all)
    return F.softmax(att.masked_fill(~causal_mask(T, T_all, q.device), float("-inf")), dim=-1)


def causal_mask(T: int, T_all: int, device: torch.device | str) -> torch.Tensor:
    """(T, T_all) booleans: query i (the i-th of the T newest tokens) may see key j when j is not
    in its future. Without a cache T_all == T and this is the lower-triangular mask."""
    offset = T_all - T
    return torch.ones(T, T_all, dtype=torch.bool, device=device).tril(diagonal=offset)


class FeedForward(nn.Module):
    """Per token: widen 4x, a non-linearity, narrow back. Attention mixes tokens; this thinks."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh" if config.gelu == "tanh" else "none")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """A pre-norm transformer block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = FeedForward(config)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)  # the residual stream carries x; blocks add to it
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


# ---------------------------------------------------------------------------------------------
# Chapter 07: the whole GPT
# ---------------------------------------------------------------------------------------------


class Transformer(nn.Module):
    """The GPT without its output layer: token ids (B, T) in, the final LayerNorm's output
    (B, T, C) out. Chapter 09's reward model puts its own head on a copy of it."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embeddings
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token plus position embeddings of ``idx`` (B, T) at positions start .. start + T - 1."""
        if idx.dim() != 2:
            raise ValueError(
                f"idx must be (batch, time) token ids, got shape {tuple(idx.shape)}; "
                f"one sequence is idx[None] (shape (1, T))"
            )
        T = idx.shape[1]
        if start + T > self.config.block_size:
            raise ValueError(
                f"{start + T} tokens do not fit the context window of {self.config.block_size}; "
                f"crop the input to its last {self.config.block_size} tokens"
            )
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        if idx.dtype not in (torch.long, torch.int):
            raise TypeError(
                f"token ids must be integers (torch.long), got {idx.dtype}; encode text with "
                f"the tokenizer, e.g. torch.tensor([tokenizer.encode(text)])"
            )
        try:
            tokens = self.wte(idx)
        except IndexError as err:  # checked only on failure: no extra work per step
            raise ValueError(bad_token_message(idx, self.config.vocab_size)) from err
        return self.drop(tokens + self.wpe(pos))  # (B, T, C)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """With a ``cache`` (from :meth:`GPT.generate`) ``idx`` holds only the tokens after the
        cached ones, and the cache grows by them."""
        x = self.embed(idx, start=cache.length if cache else 0)  # (B, T, C)
        for i, block in enumerate(self.h):
            x = block(x, cache.layers[i] if cache else None)  # (B, T, C)
        if cache:
            cache.length += idx.shape[1]
        return self.ln_f(x)  # (B, T, C)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: reading a token in (wte) and writing it out (lm_head) share one matrix,
        # which saves vocab_size * n_embd parameters and trains better on small data.
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init: each block adds two projections to the residual stream, so their
        # weights shrink with depth to keep the stream's variance from growing with n_layer.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self, exclude_positions: bool = False) -> int:
        n = count_parameters(self)  # the tied matrix is one tensor, counted once
        return n - self.transformer.wpe.weight.numel() if exclude_positions else n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) for token ids ``idx`` (B, T), and the loss when ``targets``
        (B, T) are given (else None)."""
        logits = self.lm_head(self.transformer(idx))  # (B, T, vocab)
        return logits, lm_loss(logits, targets)

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head for ``idx`` (B, T): (n_layer, B, nh, T, T)."""
        x = self.transformer.embed(idx)  # (B, T, C)
        maps = []
        for block in self.transformer.h:
            maps.append(block.attn.attention_weights(block.ln_1(x)))  # (B, nh, T, T)
            x = block(x)
        return torch.stack(maps)

    def generate(self, idx: torch.Tensor, max_new_tokens: int, **sampling) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T) and return (B, T + new),
        with :func:`sample_tokens` below (temperature, top_k, top_p, use_cache, generator)."""
        return sample_tokens(self, self.transformer, idx, max_new_tokens, **sampling)

    @classmethod
    def from_hf_gpt2(cls, hf_model: nn.Module) -> GPT:
        """A GPT with the weights of a ``transformers.GPT2LMHeadModel``. HF's GPT-2 stores its
        projections as Conv1D, (in, out); nn.Linear stores (out, in), so those are transposed.
        Configurations this GPT cannot express are refused rather than copied wrongly."""
        hf = hf_model.config
        unsupported = {
            "activation_function": (
                hf.activation_function in ("gelu_new", "gelu_pytorch_tanh"),
                "only GPT-2's tanh GELU",
            ),
            "n_inner": ((hf.n_inner or 4 * hf.n_embd) == 4 * hf.n_embd, "only a 4x wide MLP"),
            "tie_word_embeddings": (
                getattr(hf, "tie_word_embeddings", True),
                "only an output layer tied to the token embedding",
            ),
            "scale_attn_weights": (
                getattr(hf, "scale_attn_weights", True),
                "attention always scales by 1/sqrt(head size)",
            ),
            "scale_attn_by_inverse_layer_idx": (
                not getattr(hf, "scale_attn_by_inverse_layer_idx", False),
                "no extra 1/layer scaling of attention",
            ),
            "add_cross_attention": (
                not getattr(hf, "add_cross_attention", False),
                "a decoder only, no cross-attention",
            ),
        }
        refused = [
            f"{name}={getattr(hf, name, None)!r} ({why})"
            for name, (ok, why) in unsupported.items()
            if not ok
        ]
        if refused:
            raise ValueError("this GPT cannot hold that Hugging Face model: " + "; ".join(refused))
        config = GPTConfig(
            vocab_size=hf.vocab_size,
            block_size=hf.n_positions,
            n_layer=hf.n_layer,
            n_head=hf.n_head,
            n_embd=hf.n_embd,
            dropout=0.0,
            bias=True,
            gelu="tanh",
        )
        model = cls(config)
        ours = model.state_dict()
        transposed = (
            "attn.c_attn.weight",
            "attn.c_proj.weight",
            "mlp.c_fc.weight",
            "mlp.c_proj.weight",
        )
        theirs = {
            k: v
            for k, v in hf_model.state_dict().items()
            if not k.endswith((".attn.bias", ".attn.masked_bias"))
        }  # mask buffers, not weights
        missing = set(ours) - set(theirs)
        if missing:
            raise ValueError(f"the Hugging Face model lacks {sorted(missing)[:5]}")
        with torch.no_grad():
            for key, value in ours.items():
                source = theirs[key].t() if key.endswith(transposed) else theirs[key]
                if source.shape != value.shape:
                    raise ValueError(
                        f"{key}: shape {tuple(source.shape)} != ours {tuple(value.shape)}"
                    )
                value.copy_(source)
        if abs(hf.layer_norm_epsilon - 1e-5) > 1e-12:  # nn.LayerNorm's default, which ours use
            for m in model.modules():
                if isinstance(m, nn.LayerNorm):
                    m.eps = hf.layer_norm_epsilon
        return model


def count_parameters(model: nn.Module) -> int:
    """The number of numbers a model learns. ``parameters()`` yields a shared (tied) tensor once."""
    return sum(p.numel() for p in model.parameters())


def bad_token_message(idx: torch.Tensor, vocab_size: int) -> str:
    """Which token id is outside 0 .. vocab_size - 1, where, and what to do about it."""
    bad = ((idx < 0) | (idx >= vocab_size)).nonzero()[0].tolist()  # first (row, position)
    value = idx[tuple(bad)].item()
    return (
        f"token id {value} at (row {bad[0]}, position {bad[1]}) is outside this model's "
        f"vocabulary of {vocab_size} ids (0 to {vocab_size - 1}): encode the text with the "
        f"tokenizer the model was built for, or build the model with "
        f"GPTConfig(vocab_size=tokenizer.vocab_size)"
    )


def check_prompt(idx: torch.Tensor) -> None:
    if idx.dim() != 2:
        raise ValueError(f"idx must be (batch, time) token ids, got shape {tuple(idx.shape)}")
    if idx.shape[1] == 0:
        raise ValueError("the prompt is empty: give at least one token (for text, e.g. '\\n')")


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the nucleus (the smallest set of most
    likely tokens whose probabilities add up to at least top_p). logits: (B, vocab)."""
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_p is not None and top_p < 1.0:  # 1.0 keeps every token (float sums may not reach 1)
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, vocab)
        probs = F.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # probability mass ranked above each token
        drop_sorted = before >= top_p  # already enough mass without this token (the top one stays)
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of ``logits`` (B, vocab) -> (B, 1). temperature 0 means greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = F.softmax(filter_logits(logits.float() / temperature, top_k, top_p), dim=-1)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.cpu(), 1, generator=generator).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator)


def complete(
    model: GPT, tokenizer: CharTokenizer, prompt: str, max_new_tokens: int = 200, **sampling
) -> str:
    """Text in, text out: encode ``prompt``, generate, decode. Sampling options as in generate."""
    if not prompt:
        raise ValueError("the prompt is empty: give at least one character (e.g. '\\n')")
    device = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)  # (1, T)
    return tokenizer.decode(model.generate(idx, max_new_tokens, **sampling)[0].tolist())


@torch.no_grad()
def sample_tokens(
    model: nn.Module,
    trunk: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    stop_token: int | None = None,
) -> torch.Tensor:
    """The sampling loop of every decoder in the course (GPT here, Llama in chapter 11): append
    up to ``max_new_tokens`` tokens to ``idx`` (B, T), each drawn by ``sample_next`` from
    ``model.lm_head`` applied to the last hidden state that ``trunk(idx, cache)`` returns, and
    stop early once every row has produced ``stop_token``.

    The model only sees its last ``block_size`` tokens. With ``use_cache`` the keys and values
    of earlier tokens are kept, so each new token costs one position instead of the whole
    context. Positions cannot slide under a cache: once the text outgrows the window the cache
    is rebuilt from the cropped window at every step, so cached and uncached runs see exactly
    the same inputs (and, with the same generator, pick the same tokens)."""
    check_prompt(idx)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    block_size = model.config.block_size
    was_training = model.training
    model.eval()
    cache, done = None, torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        if cache is not None and idx.shape[1] <= block_size:
            h = trunk(idx[:, -1:], cache)  # one new position: (B, 1, C)
        else:  # the first step, no cache, or a window that slid: read the whole window
            cache = KVCache(model.config.n_layer) if use_cache else None
            h = trunk(idx[:, -block_size:], cache)  # (B, T, C)
        logits = model.lm_head(h[:, -1, :])  # (B, vocab): only the last position is needed
        next_id = sample_next(logits, temperature, top_k, top_p, generator)  # (B, 1)
        idx = torch.cat([idx, next_id], dim=1)
        if stop_token is not None:
            done |= next_id[:, 0] == stop_token
            if done.all():
                break
    model.train(was_training)
    return idx
