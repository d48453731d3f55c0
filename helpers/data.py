"""Chapter 01's data: tiny Shakespeare, the character tokenizer, splits and batches.

The corpus is looked up in the data directory first (``helpers.settings.data_dir()``). Where it
is missing, the canonical file is downloaded, its sha256 checked, and only then written
(atomically) into the data directory, so a broken download never leaves a broken file behind.
``load_splits`` does the opening every later chapter shares in one call. (Chapter 08's IMDB
sample is in ``helpers.imdb``.)
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers.atomic_io import atomic_write_bytes
from helpers.settings import data_dir

SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def fetch_verified(relative_path: str, url: str, sha256: str) -> Path:
    """Return ``data_dir()/relative_path``, downloading ``url`` there first if it is missing.

    A local copy whose checksum is wrong is reported and left as it is (it may be a learner's own
    edit); a download whose checksum is wrong is never written."""
    path = data_dir() / relative_path
    if path.exists():
        actual = sha256_of(path.read_bytes())
        if actual != sha256:
            raise ValueError(
                f"{path} has sha256 {actual}, but {sha256} was expected: the file is damaged or "
                f"not the canonical one. Delete it to download a fresh copy from {url}, or point "
                f"GPT_COURSE_DATA at a folder with the right file."
            )
        return path
    try:
        data = _download(url)
    except (urllib.error.URLError, OSError) as err:
        raise FileNotFoundError(
            f"{path} does not exist and it could not be downloaded from {url} ({err}). "
            f"Either connect to the internet, or put the file there yourself, or set the "
            f"GPT_COURSE_DATA environment variable to a folder that has {relative_path}."
        ) from err
    actual = sha256_of(data)
    if actual != sha256:
        raise ValueError(
            f"the download from {url} has sha256 {actual}, not the expected {sha256}; "
            f"nothing was written. Try again later, or place a verified copy at {path}."
        )
    atomic_write_bytes(path, data)
    return path


def load_tiny_shakespeare() -> str:
    """The tiny Shakespeare corpus (1,115,394 characters) as one string."""
    path = fetch_verified("tinyshakespeare/input.txt", SHAKESPEARE_URL, SHAKESPEARE_SHA256)
    return path.read_text(encoding="utf-8")


class CharTokenizer:
    """Maps each character of a fixed vocabulary to an integer id and back.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.encode("hell"), tok.decode([2, 1])
    ([1, 0, 2, 2], 'lh')
    """

    def __init__(self, chars: list[str]):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("a CharTokenizer needs a list of distinct single characters")
        self.chars = list(chars)
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The vocabulary is every character that occurs in ``text``, sorted."""
        if not text:
            raise ValueError("cannot build a vocabulary from an empty text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = [(i, ch) for i, ch in enumerate(text) if ch not in self.stoi]
        if unknown:
            shown = ", ".join(f"{ch!r} at {i}" for i, ch in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValueError(
                f"{len(unknown)} character(s) are not in the vocabulary: {shown}{more}. "
                f"Remove or replace them; the vocabulary has {self.vocab_size} characters "
                f"(see tokenizer.chars)."
            )
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= int(i) < self.vocab_size]
        if bad:
            raise ValueError(f"ids {bad[:10]} are outside 0..{self.vocab_size - 1}")
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> str:
        """The vocabulary as JSON; a checkpoint stores it beside the weights."""
        return json.dumps({"type": "CharTokenizer", "chars": self.chars}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CharTokenizer:
        payload = json.loads(text)
        if payload.get("type") != "CharTokenizer":
            raise ValueError("this JSON does not describe a CharTokenizer")
        return cls(payload["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# Characters that print as nothing visible (or break a label) get a visible stand-in.
_VISIBLE = {"\n": "⏎", " ": "␣", "\t": "⇥"}


def show_char(ch: str) -> str:
    """A character as a label can show it: newline ⏎, space ␣, tab ⇥, any other invisible
    character as its escape (``\\r``, ``\\x0b``); every other character as itself.

    >>> [show_char(c) for c in "a \\n"]
    ['a', '␣', '⏎']
    """
    if ch in _VISIBLE:
        return _VISIBLE[ch]
    return ch if ch.isprintable() else repr(ch)[1:-1]


def train_val_split(data: torch.Tensor, frac: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``frac`` of the sequence for training, the rest for validation (no shuffling:
    validation text is text the model has never seen, as it would be in use)."""
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac must be between 0 and 1 (exclusive), got {frac}")
    n = int(frac * len(data))
    if n == 0 or n == len(data):
        raise ValueError(f"a sequence of length {len(data)} is too short to split at {frac}")
    return data[:n], data[n:]


def get_batch(
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    device: str = "cpu",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``block_size`` tokens (x) and the same windows shifted one
    token to the right (y): y[b, t] is the token that follows x[b, :t+1]."""
    if data.dim() != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"block_size and batch_size must be >= 1, got {block_size}, {batch_size}")
    if block_size >= len(data):
        raise ValueError(
            f"block_size ({block_size}) must be smaller than the data ({len(data)} tokens): "
            f"each example needs block_size + 1 tokens. Use a smaller block_size or more data."
        )
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(block_size)  # (T,)
    x = data[ix[:, None] + offsets]  # (B, T)
    y = data[ix[:, None] + offsets + 1]  # (B, T)
    if device.startswith("cuda"):  # pinned memory lets the copy overlap with GPU work
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(
            device, non_blocking=True
        )
    return x.to(device), y.to(device)


@dataclass
class Splits:
    """Tiny Shakespeare ready to train on: the text, its tokenizer, and the token ids (1-D long
    tensors) split 90/10 into ``train`` and ``val``."""

    text: str
    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        """``{"train": ..., "val": ...}``, the form ``helpers.train.train`` takes."""
        return {"train": self.train, "val": self.val}


def load_splits(frac: float = 0.9) -> Splits:
    """Chapter 01's steps in one call: load tiny Shakespeare, build a :class:`CharTokenizer` on
    it, encode the whole text and split it with :func:`train_val_split`."""
    text = load_tiny_shakespeare()
    tokenizer = CharTokenizer.from_text(text)
    train, val = train_val_split(torch.tensor(tokenizer.encode(text), dtype=torch.long), frac)
    return Splits(text, tokenizer, train, val)
