"""KV cache against recomputing the whole context, for 500 new tokens after a 256-token prompt.

The model has the chapter-07 GPU shape (6 layers, 6 heads, 384 wide) with a 1,024-token window,
so all 756 positions fit and the cache can do its job (past the window, a model with learned
positions must recompute anyway; see chapter 07). The prompt is the start of the validation text;
same seed, so the tokens must be identical.

    python bench/kv_cache.py [--new-tokens 500] [--prompt 256]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from helpers.data import load_splits
from helpers.mfu import describe_mfu, mfu, model_flops_per_token, peak_flops
from helpers.model import GPT
from helpers.settings import hardware
from helpers.train import preset


def timed_generate(model, prompt, new_tokens: int, use_cache: bool):
    start = time.perf_counter()
    out = model.generate(
        prompt,
        new_tokens,
        top_k=10,
        use_cache=use_cache,
        generator=torch.Generator().manual_seed(0),
    )
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=500)
    parser.add_argument("--prompt", type=int, default=256)
    args = parser.parse_args()
    shakespeare = load_splits()
    torch.manual_seed(0)
    shape = replace(
        preset("gpt", "cuda").model,
        block_size=1024,
        dropout=0.0,  # GPU preset's shape
        vocab_size=shakespeare.tokenizer.vocab_size,
    )
    model = GPT(shape).eval()
    prompt = shakespeare.val[None, : args.prompt]  # (1, T)
    cached, t_cached = timed_generate(model, prompt, args.new_tokens, use_cache=True)
    recomputed, t_recomputed = timed_generate(model, prompt, args.new_tokens, use_cache=False)
    print(f"{hardware()}, {torch.get_num_threads()} threads")
    print(
        f"{args.new_tokens} new tokens after a {args.prompt}-token prompt, "
        f"{shape.n_layer}x{shape.n_head}x{shape.n_embd} GPT"
    )
    # MFU counts the useful work only: one forward pass per new token (a third of a training
    # step's 6N + 12LTd, at the longest context reached), however much the recompute path redoes
    context = args.prompt + args.new_tokens
    forward_flops = model_flops_per_token(model, context) / 3
    peak, source = peak_flops("cpu")
    for label, seconds in (("KV cache:  ", t_cached), ("recompute: ", t_recomputed)):
        rate = args.new_tokens / seconds
        print(
            f"{label} {seconds:7.2f} s ({rate:6.1f} tokens/s, "
            f"{describe_mfu(mfu(rate, forward_flops, peak))})"
        )
    print(f"(MFU over the {source}, {peak / 1e9:.0f} GFLOP/s)")
    same = torch.equal(cached, recomputed)
    print(f"speed-up:   {t_recomputed / t_cached:7.1f}x, identical tokens: {same}")


if __name__ == "__main__":
    main()
