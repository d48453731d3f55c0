import doctest
import hashlib
import subprocess
import sys
import urllib.error

import pytest
import torch

from helpers import data
from helpers.data import CharTokenizer, get_batch, load_splits, show_char, train_val_split

CONTENT = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"


def test_tiny_shakespeare_has_the_known_size_and_vocabulary(shakespeare, char_tokenizer):
    assert len(shakespeare) == 1_115_394
    assert char_tokenizer.vocab_size == 65


def test_round_trip_on_the_whole_text(shakespeare, char_tokenizer):
    assert char_tokenizer.decode(char_tokenizer.encode(shakespeare)) == shakespeare


def test_unknown_characters_are_named_with_their_positions(char_tokenizer):
    with pytest.raises(ValueError) as err:
        char_tokenizer.encode("Roméo 🙂!")
    assert "'é' at 3" in str(err.value) and "'🙂' at 6" in str(err.value)


def test_tokenizer_round_trips_through_json(char_tokenizer):
    """A checkpoint stores the tokenizer as this JSON (helpers.checkpoint)."""
    again = CharTokenizer.from_json(char_tokenizer.to_json())
    assert again.chars == char_tokenizer.chars
    assert again.encode("To be, or not to be") == char_tokenizer.encode("To be, or not to be")


def test_show_char_makes_invisible_characters_visible_and_leaves_the_rest():
    assert [show_char(c) for c in "a \n\t"] == ["a", "␣", "⏎", "⇥"]
    assert [show_char(c) for c in "\r\x0b"] == ["\\r", "\\x0b"]
    assert [show_char(c) for c in "Zé!$"] == ["Z", "é", "!", "$"]


def test_load_splits_is_chapter_01s_opening_in_one_call(shakespeare, char_tokenizer):
    splits = load_splits()
    assert splits.text == shakespeare and splits.tokenizer.chars == char_tokenizer.chars
    ids = torch.tensor(char_tokenizer.encode(shakespeare))
    n = int(0.9 * len(ids))
    assert splits.train.dtype == torch.long and torch.equal(splits.train, ids[:n])
    assert torch.equal(splits.val, ids[n:])
    assert splits.as_dict().keys() == {"train", "val"}


def test_the_docstring_examples_hold():
    assert doctest.testmod(data).failed == 0


def test_chapter_01s_data_does_not_import_the_datasets_library():
    code = "import sys, helpers.data; print('datasets' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_decode_rejects_ids_outside_the_vocabulary(char_tokenizer):
    with pytest.raises(ValueError, match="outside 0..64"):
        char_tokenizer.decode([0, 65])


def fake_download(payload: bytes, calls: list):
    def download(url, timeout=30.0):
        calls.append(url)
        return payload

    return download


def test_download_is_verified_then_written_and_cached(empty_data_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_download", fake_download(CONTENT, calls))
    monkeypatch.setattr(data, "SHAKESPEARE_SHA256", hashlib.sha256(CONTENT).hexdigest())
    assert data.load_tiny_shakespeare() == CONTENT.decode()
    assert (empty_data_dir / "tinyshakespeare" / "input.txt").read_bytes() == CONTENT
    assert data.load_tiny_shakespeare() == CONTENT.decode()
    assert calls == [data.SHAKESPEARE_URL]  # the second call read the cached copy
    assert not list((empty_data_dir / "tinyshakespeare").glob(".*tmp"))  # no temp files left


def test_a_download_with_the_wrong_checksum_is_never_written(empty_data_dir, monkeypatch):
    monkeypatch.setattr(data, "_download", fake_download(CONTENT, []))
    with pytest.raises(ValueError, match="nothing was written"):
        data.load_tiny_shakespeare()
    assert not (empty_data_dir / "tinyshakespeare").exists() or not any(
        (empty_data_dir / "tinyshakespeare").iterdir()
    )


def test_offline_without_a_copy_names_the_setting_and_the_url(empty_data_dir, monkeypatch):
    def offline(url, timeout=30.0):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(FileNotFoundError) as err:
        data.load_tiny_shakespeare()
    assert "GPT_COURSE_DATA" in str(err.value) and data.SHAKESPEARE_URL in str(err.value)


def test_a_local_copy_with_the_wrong_checksum_is_reported_and_left_alone(empty_data_dir):
    path = empty_data_dir / "tinyshakespeare" / "input.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(CONTENT)
    with pytest.raises(ValueError, match="sha256"):
        data.load_tiny_shakespeare()
    assert path.read_bytes() == CONTENT


def test_split_is_ninety_ten_and_unshuffled():
    seq = torch.arange(100)
    train, val = train_val_split(seq)
    assert len(train) == 90 and len(val) == 10
    assert torch.equal(torch.cat([train, val]), seq)
    with pytest.raises(ValueError):
        train_val_split(seq, frac=1.0)


@pytest.mark.parametrize("block_size,batch_size", [(1, 1), (8, 4), (99, 3)])
def test_batches_have_the_right_shape_and_are_shifted_by_one(block_size, batch_size):
    seq = torch.arange(100)
    x, y = get_batch(seq, block_size, batch_size)
    assert x.shape == y.shape == (batch_size, block_size)
    assert torch.equal(y, x + 1)  # on 0, 1, 2, ... the next token is always x + 1
    assert torch.equal(x[:, 1:], x[:, :-1] + 1)  # each row is a contiguous window


def test_batches_repeat_with_the_same_generator():
    seq = torch.arange(1000)
    a = get_batch(seq, 8, 4, generator=torch.Generator().manual_seed(1))
    b = get_batch(seq, 8, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(block_size=100, batch_size=2), "must be smaller than the data"),
        (dict(block_size=0, batch_size=2), ">= 1"),
        (dict(block_size=8, batch_size=0), ">= 1"),
    ],
)
def test_bad_batch_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_batch(torch.arange(100), **kwargs)


def test_get_batch_wants_a_flat_sequence():
    with pytest.raises(ValueError, match="1-D"):
        get_batch(torch.zeros(10, 10, dtype=torch.long), 4, 2)
