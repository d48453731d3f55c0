import pytest
import torch

from helpers.data import CharTokenizer, load_tiny_shakespeare
from helpers.model import GPT, GPTConfig

# The shape every test model starts from: a GPT small enough to train for a few steps in a test.
TINY_SHAPE = dict(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)


@pytest.fixture(scope="session")
def shakespeare() -> str:
    return load_tiny_shakespeare()


@pytest.fixture(scope="session")
def char_tokenizer(shakespeare) -> CharTokenizer:
    return CharTokenizer.from_text(shakespeare)


@pytest.fixture
def tiny_config():
    """A factory: ``tiny_config(**overrides)`` is a GPTConfig of TINY_SHAPE with the overrides."""

    def make(**overrides) -> GPTConfig:
        return GPTConfig(**{**TINY_SHAPE, **overrides})

    return make


@pytest.fixture
def tiny_gpt(tiny_config):
    """A factory: ``tiny_gpt(**overrides)`` is a GPT of ``tiny_config(**overrides)`` initialised
    from seed 0, so two calls with the same overrides give the same weights."""

    def make(**overrides) -> GPT:
        torch.manual_seed(0)
        return GPT(tiny_config(**overrides))

    return make


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    """A data directory with nothing in it, and runs written under tmp_path too."""
    monkeypatch.setenv("GPT_COURSE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GPT_COURSE_RUNS", str(tmp_path / "runs"))
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_collection_modifyitems(items):
    """Every notebook cell (nbval) counts as slow: `make check` leaves the notebooks out,
    `make test` runs them."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
