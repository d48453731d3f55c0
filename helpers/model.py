"""The GPT as chapters 03-07 build it, piece by piece.

Module and parameter names mirror Hugging Face's GPT-2 (``wte``, ``wpe``, ``h``, ``ln_1``,
``attn.c_attn``, ``attn.c_proj``, ``mlp.c_fc``, ``ln_f``, ``lm_head``) so its weights copy over one to
one (``GPT.from_hf_gpt2``) and a test can compare logits exactly.

Shapes: B = batch, T = time (tokens), C = channels (n_embd), nh = heads, hs = head size = C // nh.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

KVCache = tuple[torch.Tensor, torch.Tensor]  # keys and values, each (B, nh, T_past, hs)


class BigramLanguageModel(nn.Module):
    """Chapter 02: each token's logits for the next token are read straight from a table."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, vocab_size)
        self.block_size = None  # looks at one token only, so any context length works

    def forward(self, idx, targets=None):
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

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0,
                 causal: bool = True):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.causal = causal
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
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
        self.heads = nn.ModuleList(Head(n_embd, head_size, block_size, dropout) for _ in range(n_head))
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
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

    def __post_init__(self):
        check_heads(self.n_embd, self.n_head)
        if self.vocab_size < 1 or self.block_size < 1 or self.n_layer < 0:
            raise ValueError(f"vocab_size, block_size must be >= 1 and n_layer >= 0: {self}")

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    """All heads at once: one Linear makes q, k and v for every head, reshapes split the heads.

    ``fused=True`` calls ``F.scaled_dot_product_attention`` (a fused kernel: flash or
    memory-efficient attention where available); ``fused=False`` spells the same maths out, which
    is what the attention explorer needs to see the weights.
    """

    def __init__(self, config: GPTConfig, fused: bool = True):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout = config.dropout
        self.fused = fused
        self.last_attention = None  # (B, nh, T, T) after an explicit forward with keep_attention

    def forward(self, x, past: KVCache | None = None, keep_attention: bool = False):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if past is not None:  # the cache holds keys and values of the tokens seen so far
            k = torch.cat([past[0], k], dim=2)  # (B, nh, T_past + T, hs)
            v = torch.cat([past[1], v], dim=2)
        present = (k, v)
        mask = causal_mask(T, k.shape[2], x.device)  # (T, T_all) True where a query may look
        dropout_p = self.dropout if self.training else 0.0
        if self.fused and not keep_attention:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        else:
            att = (q @ k.transpose(-2, -1)) * hs ** -0.5  # (B, nh, T, T_all)
            att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
            if keep_attention:
                self.last_attention = att.detach()
            y = self.attn_dropout(att) @ v  # (B, nh, T, T_all) @ (B, nh, T_all, hs) -> (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again: (B, T, C)
        return self.resid_dropout(self.c_proj(y)), present


def causal_mask(T: int, T_all: int, device) -> torch.Tensor:
    """(T, T_all) booleans: query i (the i-th of the T newest tokens) may see key j when j is not
    in its future. Without a cache T_all == T and this is the lower-triangular mask."""
    offset = T_all - T
    return torch.ones(T, T_all, dtype=torch.bool, device=device).tril(diagonal=offset)


class FeedForward(nn.Module):
    """Per token: widen 4x, a non-linearity, narrow back. Attention mixes tokens; this thinks."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new"
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """A pre-norm transformer block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(self, config: GPTConfig, fused: bool = True):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, fused=fused)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = FeedForward(config)

    def forward(self, x, past: KVCache | None = None, keep_attention: bool = False):
        a, present = self.attn(self.ln_1(x), past=past, keep_attention=keep_attention)
        x = x + a  # the residual stream carries x through untouched; blocks add to it
        x = x + self.mlp(self.ln_2(x))
        return x, present


# ---------------------------------------------------------------------------------------------
# Chapter 07: the whole GPT
# ---------------------------------------------------------------------------------------------


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, fused_attention: bool = True):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings
            wpe=nn.Embedding(config.block_size, config.n_embd),  # position embeddings
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config, fused=fused_attention) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
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

    def set_fused_attention(self, fused: bool) -> None:
        """Switch every block between F.scaled_dot_product_attention and the explicit path."""
        for block in self.transformer.h:
            block.attn.fused = fused

    def num_parameters(self, exclude_positions: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())  # tied weights are counted once
        return n - self.transformer.wpe.weight.numel() if exclude_positions else n

    def forward(self, idx, targets=None, past: list[KVCache] | None = None,
                return_cache: bool = False, keep_attention: bool = False):
        """Logits (B, T, vocab) and the loss when targets are given. With ``past`` (a KV cache
        from an earlier call) ``idx`` holds only the new tokens, placed after the cached ones."""
        B, T = idx.shape
        start = past[0][0].shape[2] if past else 0
        if start + T > self.config.block_size:
            raise ValueError(
                f"{start + T} tokens do not fit the context window of {self.config.block_size}; "
                f"crop the input to its last {self.config.block_size} tokens"
            )
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        presents = []
        for i, block in enumerate(self.transformer.h):
            x, present = block(x, past=past[i] if past else None, keep_attention=keep_attention)
            presents.append(present)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, vocab)
        loss = lm_loss(logits, targets)
        return (logits, loss, presents) if return_cache else (logits, loss)

    def attention_maps(self, idx) -> torch.Tensor:
        """Attention weights of every layer and head for one forward pass: (n_layer, B, nh, T, T)."""
        self.forward(idx, keep_attention=True)
        maps = torch.stack([b.attn.last_attention for b in self.transformer.h])
        for b in self.transformer.h:
            b.attn.last_attention = None
        return maps

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None):
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T) and return (B, T + new).

        The model only sees its last ``block_size`` tokens. With ``use_cache`` the keys and values
        of earlier tokens are kept, so each new token costs one position instead of the whole
        context. Learned absolute positions cannot slide: once the text outgrows the window the
        cache is rebuilt from the cropped window at every step, so cached and uncached runs see
        exactly the same inputs (and, with the same generator, pick the same tokens)."""
        check_prompt(idx)
        was_training = self.training
        self.eval()
        past = None
        for _ in range(max_new_tokens):
            window = idx[:, -self.config.block_size:]  # (B, <= block_size)
            if use_cache and past is not None and idx.shape[1] <= self.config.block_size:
                logits, _, past = self(idx[:, -1:], past=past, return_cache=True)  # one new position
            elif use_cache:
                logits, _, past = self(window, return_cache=True)  # (re)build the cache
            else:
                logits, _ = self(window)
            next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)
        self.train(was_training)
        return idx

    @classmethod
    def from_hf_gpt2(cls, hf_model) -> "GPT":
        """A GPT with the weights of a ``transformers.GPT2LMHeadModel``. HF's GPT-2 stores its
        projections as Conv1D, (in, out); nn.Linear stores (out, in), so those are transposed."""
        hf = hf_model.config
        if hf.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"only GPT-2's tanh GELU is supported, not {hf.activation_function!r}")
        if (hf.n_inner or 4 * hf.n_embd) != 4 * hf.n_embd:
            raise ValueError(f"this GPT has a 4x wide MLP; n_inner={hf.n_inner} is not supported")
        config = GPTConfig(vocab_size=hf.vocab_size, block_size=hf.n_positions, n_layer=hf.n_layer,
                           n_head=hf.n_head, n_embd=hf.n_embd, dropout=0.0, bias=True)
        model = cls(config)
        ours = model.state_dict()
        transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        theirs = {k: v for k, v in hf_model.state_dict().items()
                  if not k.endswith((".attn.bias", ".attn.masked_bias"))}  # mask buffers, not weights
        missing = set(ours) - set(theirs)
        if missing:
            raise ValueError(f"the Hugging Face model lacks {sorted(missing)[:5]}")
        with torch.no_grad():
            for key, value in ours.items():
                source = theirs[key].t() if key.endswith(transposed) else theirs[key]
                if source.shape != value.shape:
                    raise ValueError(f"{key}: shape {tuple(source.shape)} != ours {tuple(value.shape)}")
                value.copy_(source)
        if abs(hf.layer_norm_epsilon - 1e-5) > 1e-12:  # nn.LayerNorm's default, which ours use
            for m in model.modules():
                if isinstance(m, nn.LayerNorm):
                    m.eps = hf.layer_norm_epsilon
        return model


def check_prompt(idx: torch.Tensor) -> None:
    if idx.dim() != 2:
        raise ValueError(f"idx must be (batch, time) token ids, got shape {tuple(idx.shape)}")
    if idx.shape[1] == 0:
        raise ValueError("the prompt is empty: give at least one token (for text, e.g. '\\n')")


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None):
    """Set to -inf every logit outside the top-k and outside the nucleus (the smallest set of most
    likely tokens whose probabilities add up to at least top_p). logits: (B, vocab)."""
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, vocab)
        probs = F.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # probability mass ranked above each token
        drop_sorted = before >= top_p  # already enough mass without this token (the top one stays)
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None) -> torch.Tensor:
    """One token id per row of ``logits`` (B, vocab) -> (B, 1). temperature 0 means greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = F.softmax(filter_logits(logits.float() / temperature, top_k, top_p), dim=-1)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.cpu(), 1, generator=generator).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator)


def complete(model, tokenizer, prompt: str, max_new_tokens: int = 200, **sampling) -> str:
    """Text in, text out: encode ``prompt``, generate, decode. Sampling options as in generate."""
    if not prompt:
        raise ValueError("the prompt is empty: give at least one character (e.g. '\\n')")
    device = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)  # (1, T)
    return tokenizer.decode(model.generate(idx, max_new_tokens, **sampling)[0].tolist())
