"""helpers.train: schedule, optimizer groups, checkpoints that survive crashes, resume, the CLI."""

import json
import math
from dataclasses import replace

import pytest
import torch

from helpers import train as train_module
from helpers.model import GPT, GPTConfig
from helpers.settings import Preset
from helpers.train import (History, learning_rate, load_checkpoint, make_optimizer, save_checkpoint,
                           train)

CFG = Preset(name="test", device="cpu", smoke=True, block_size=16, n_layer=1, n_head=2, n_embd=16,
             batch_size=4, max_iters=20, learning_rate=1e-2, min_lr=1e-3, warmup_iters=5,
             eval_interval=5, eval_iters=2)


def small_model(**overrides) -> GPT:
    torch.manual_seed(0)
    values = dict(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**values, **overrides}))


@pytest.fixture(scope="module")
def tokens(shakespeare, char_tokenizer):
    ids = torch.tensor(char_tokenizer.encode(shakespeare[:20_000]), dtype=torch.long)
    return {"train": ids[:18_000], "val": ids[18_000:]}


def test_schedule_warms_up_then_decays_to_min_lr():
    cfg = replace(CFG, max_iters=100, warmup_iters=10)
    lrs = [learning_rate(s, cfg) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # never rises after warmup
    assert lrs[100] == pytest.approx(cfg.min_lr)


def test_weight_decay_applies_to_matrices_only():
    model = small_model()
    decay, no_decay = make_optimizer(model, CFG).param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and decay["weight_decay"] == CFG.weight_decay
    assert all(p.dim() < 2 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0


def test_training_lowers_the_validation_loss(tokens):
    history = train(small_model(), tokens, replace(CFG, max_iters=60, eval_interval=20), progress=False)
    assert history.steps == [0, 20, 40, 60]
    assert history.val_loss[-1] < history.val_loss[0] - 0.3


def test_time_budget_stops_training(tokens):
    history = train(small_model(), tokens, replace(CFG, max_iters=10_000, time_budget=0.5), progress=False)
    assert history.stopped_by == "time_budget" and history.steps[-1] < 10_000


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, char_tokenizer):
    model = small_model().eval()
    save_checkpoint(tmp_path, model, tokenizer=char_tokenizer, step=7, history=History(val_loss=[2.0]))
    again, tok = load_checkpoint(tmp_path)
    idx = torch.randint(0, 65, (2, 16))
    assert torch.equal(model(idx)[0], again.eval()(idx)[0])
    assert tok.chars == char_tokenizer.chars
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["step"] == 7 and meta["best_val_loss"] == 2.0


def test_loading_into_a_model_of_another_shape_names_the_difference(tmp_path):
    save_checkpoint(tmp_path, small_model())
    with pytest.raises(ValueError, match="n_embd is 16 there but 32 here"):
        load_checkpoint(tmp_path, small_model(n_embd=32))


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m helpers.train"):
        load_checkpoint(tmp_path / "nothing")


def test_a_crash_mid_run_leaves_the_last_good_checkpoint(tmp_path, tokens, monkeypatch):
    real_get_batch, calls = train_module.get_batch, []

    def crashing_get_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) > 35:  # well after the checkpoints at steps 0, 5, 10 ...
            raise RuntimeError("simulated crash")
        return real_get_batch(*args, **kwargs)

    monkeypatch.setattr(train_module, "get_batch", crashing_get_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(small_model(), tokens, CFG, checkpoint_dir=tmp_path, progress=False)
    model, _ = load_checkpoint(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["step"] > 0 and math.isfinite(meta["best_val_loss"])
    assert not list(tmp_path.glob(".*tmp"))  # no half-written files


def test_resume_continues_the_schedule(tmp_path, tokens):
    first = train(small_model(), tokens, replace(CFG, max_iters=10), checkpoint_dir=tmp_path,
                  progress=False)
    resumed = train(small_model(), tokens, replace(CFG, max_iters=20), checkpoint_dir=tmp_path,
                    resume=True, progress=False)
    assert first.steps == [0, 5, 10]
    assert resumed.steps[:3] == first.steps and resumed.steps[-1] == 20  # history carried on


def test_cli_trains_and_writes_a_loadable_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    history = train_module.main(["--preset", "gpt", "--max-iters", "3", "--device", "cpu",
                                 "--out", str(tmp_path)])
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    model, tokenizer = load_checkpoint(tmp_path)
    assert tokenizer.vocab_size == 65 and history.steps[-1] == 3


def test_cli_overrides_the_evaluation_interval_and_lifts_the_time_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    history = train_module.main(["--preset", "gpt", "--max-iters", "3", "--device", "cpu",
                                 "--eval-interval", "1", "--time-budget", "0", "--out", str(tmp_path)])
    assert history.steps == [0, 1, 2, 3] and history.stopped_by == "max_iters"
