"""The course's data: tiny Shakespeare, the character tokenizer, splits and batches, the IMDB sample.

Every dataset is looked up in the data directory first (``helpers.settings.data_dir()``). Where it
is missing, the canonical file is downloaded, its sha256 checked, and only then written
(atomically) into the data directory, so a broken download never leaves a broken file behind.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import torch

from helpers.atomic_io import atomic_write_bytes, atomic_write_text
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
    ([1, 0, 2, 2], 'le')
    """

    def __init__(self, chars: list[str]):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("a CharTokenizer needs a list of distinct single characters")
        self.chars = list(chars)
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
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

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= int(i) < self.vocab_size]
        if bad:
            raise ValueError(f"ids {bad[:10]} are outside 0..{self.vocab_size - 1}")
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"type": "CharTokenizer", "chars": self.chars}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "CharTokenizer":
        payload = json.loads(text)
        if payload.get("type") != "CharTokenizer":
            raise ValueError("this JSON does not describe a CharTokenizer")
        return cls(payload["chars"])

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "CharTokenizer":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


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
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# --- chapter 08: the IMDB sample ---------------------------------------------------------------
# `datasets` is imported here, at module level, so a test can replace `datasets.load_dataset`.
import re  # noqa: E402

import datasets  # noqa: E402

IMDB_HUB_ID = "stanfordnlp/imdb"
IMDB_SIZES = {"train": 2000, "test": 500}
IMDB_SEED = 42
IMDB_LABELS = ["neg", "pos"]  # label 0 = negative, 1 = positive, as in the Hugging Face dataset

_BR_TAGS = re.compile(r"\s*(?:<br\s*/?>\s*)+", flags=re.IGNORECASE)
# U+0080..U+009F in the reviews are Windows-1252 bytes decoded as Latin-1 upstream: U+0097 was
# meant as "—", U+0085 as "…". Map each back through cp1252; the five bytes cp1252 leaves
# undefined become a space.
_C1_FIXES = {cp: bytes([cp]).decode("cp1252", errors="replace").replace("\ufffd", " ")
             for cp in range(0x80, 0xA0)}


def clean_review(text: str) -> str:
    """An IMDB review as plain text: each run of HTML line breaks (``<br /><br />``) becomes one
    space, and C1 control characters become the punctuation they stood for (U+0097 → "—")."""
    return _BR_TAGS.sub(" ", text.translate(_C1_FIXES)).strip()  # C1 first: \s matches U+0085


def _imdb_features() -> datasets.Features:
    return datasets.Features({"text": datasets.Value("string"),
                              "label": datasets.ClassLabel(names=IMDB_LABELS)})


def load_imdb(clean: bool = True) -> datasets.DatasetDict:
    """The IMDB sentiment sample: ``train`` (2,000 reviews) and ``test`` (500) of
    ``{"text", "label"}`` with label 1 = positive.

    From ``data_dir()/imdb/{train,test}.jsonl`` when both files exist (a balanced sample with no
    review in both splits, see that folder's README); otherwise from the Hugging Face hub
    (``stanfordnlp/imdb``), each split shuffled with seed 42 and cut to the same size, as the
    classic tutorial does. ``clean=True`` passes every text through :func:`clean_review`."""
    folder = data_dir() / "imdb"
    paths = {split: folder / f"{split}.jsonl" for split in IMDB_SIZES}
    if all(path.exists() for path in paths.values()):
        splits = {}
        for split, path in paths.items():
            with path.open(encoding="utf-8") as lines:
                rows = [json.loads(line) for line in lines if line.strip()]
            splits[split] = datasets.Dataset.from_list(rows, features=_imdb_features())
        imdb = datasets.DatasetDict(splits)
    else:
        hub = datasets.load_dataset(IMDB_HUB_ID)
        imdb = datasets.DatasetDict({
            split: hub[split].shuffle(seed=IMDB_SEED).select(range(size))
            for split, size in IMDB_SIZES.items()
        })
    if clean:
        imdb = imdb.map(lambda row: {"text": clean_review(row["text"])})
    return imdb
