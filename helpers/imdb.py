"""Chapter 08's data: the IMDB sentiment sample, its reviews cleaned of HTML line breaks.

``load_imdb`` looks in the data directory (``helpers.settings.data_dir()/imdb``) first and asks
the Hugging Face hub only when the local files are missing. ``datasets`` is imported at module
level, so a test can replace ``datasets.load_dataset``; chapter 01 never imports this module.
"""

from __future__ import annotations

import json
import re

import datasets

from helpers.settings import data_dir

IMDB_HUB_ID = "stanfordnlp/imdb"
IMDB_SIZES = {"train": 2000, "test": 500}
IMDB_SEED = 42
IMDB_LABELS = ["neg", "pos"]  # label 0 = negative, 1 = positive, as in the Hugging Face dataset

_BR_TAGS = re.compile(r"\s*(?:<br\s*/?>\s*)+", flags=re.IGNORECASE)
# U+0080..U+009F in the reviews are Windows-1252 bytes decoded as Latin-1 upstream: U+0097 was
# meant as "—", U+0085 as "…". Map each back through cp1252; the five bytes cp1252 leaves
# undefined become a space.
_C1_FIXES = {
    cp: bytes([cp]).decode("cp1252", errors="replace").replace("\ufffd", " ")
    for cp in range(0x80, 0xA0)
}


def clean_review(text: str) -> str:
    """An IMDB review as plain text: each run of HTML line breaks (``<br /><br />``) becomes one
    space, and C1 control characters become the punctuation they stood for (U+0097 → "—")."""
    return _BR_TAGS.sub(" ", text.translate(_C1_FIXES)).strip()  # C1 first: \s matches U+0085


def _imdb_features() -> datasets.Features:
    return datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=IMDB_LABELS)}
    )


def load_imdb(clean: bool = True) -> datasets.DatasetDict:
    """The IMDB sentiment sample: ``train`` (2,000 reviews) and ``test`` (500) of
    ``{"text", "label"}`` with label 1 = positive.

    From ``data_dir()/imdb/{train,test}.jsonl`` when both files exist (a balanced sample with no
    review in both splits, see that folder's README); otherwise from the Hugging Face hub
    (``stanfordnlp/imdb``), each split shuffled with seed 42 and cut to the same size.
    ``clean=True`` passes every text through :func:`clean_review`."""
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
        imdb = datasets.DatasetDict(
            {
                split: hub[split].shuffle(seed=IMDB_SEED).select(range(size))
                for split, size in IMDB_SIZES.items()
            }
        )
    if clean:
        imdb = imdb.map(lambda row: {"text": clean_review(row["text"])})
    return imdb
