import pytest
import torch

from helpers.data import CharTokenizer, load_tiny_shakespeare


@pytest.fixture(scope="session")
def shakespeare() -> str:
    return load_tiny_shakespeare()


@pytest.fixture(scope="session")
def char_tokenizer(shakespeare) -> CharTokenizer:
    return CharTokenizer.from_text(shakespeare)


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
