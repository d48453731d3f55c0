"""helpers.train: schedule, optimizer groups, time budgets, checkpoints that survive crashes,
faithful resume, the CLI."""

import json
import math
import sys
import time
from dataclasses import replace
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from helpers import train as train_module
from helpers import train_cli
from helpers.checkpoint import read_checkpoint_meta
from helpers.data import get_batch
from helpers.train import (
    History,
    TrainConfig,
    learning_rate,
    load_checkpoint,
    make_optimizer,
    plan_steps,
    preset,
    save_checkpoint,
    train,
)


@pytest.fixture
def cfg(tiny_config) -> TrainConfig:
    """A training run of the tiny GPT that takes a fraction of a second."""
    return TrainConfig(
        name="test",
        device="cpu",
        smoke=True,
        model=tiny_config(),
        batch_size=4,
        max_iters=20,
        learning_rate=1e-2,
        min_lr=1e-3,
        warmup_iters=5,
        eval_interval=5,
        eval_iters=2,
    )


@pytest.fixture(scope="module")
def tokens(shakespeare, char_tokenizer):
    ids = torch.tensor(char_tokenizer.encode(shakespeare[:20_000]), dtype=torch.long)
    return {"train": ids[:18_000], "val": ids[18_000:]}


def test_schedule_warms_up_then_decays_to_min_lr(cfg):
    cfg = replace(cfg, max_iters=100, warmup_iters=10)
    lrs = [learning_rate(s, cfg) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert all(a >= b for a, b in pairwise(lrs[10:]))  # never rises after warmup
    assert lrs[100] == pytest.approx(cfg.min_lr)


def test_weight_decay_applies_to_matrices_only(cfg, tiny_gpt):
    model = tiny_gpt()
    decay, no_decay = make_optimizer(model, cfg).param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and decay["weight_decay"] == cfg.weight_decay
    assert all(p.dim() < 2 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0


def test_train_takes_the_steps_of_the_plain_loop_chapter_07_writes(tokens, cfg, tiny_gpt):
    """Chapter 07 writes the loop in the open (the schedule, AdamW's two groups, clipping, the
    seeded batch stream) and checks that train() takes exactly its steps."""
    cfg = replace(cfg, grad_clip=0.05)  # low enough that clipping acts on every step
    model, reference = tiny_gpt(), tiny_gpt()
    optimizer = make_optimizer(model, cfg)
    batches = torch.Generator().manual_seed(1337)  # train()'s default seed
    for step in range(8):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        x, y = get_batch(tokens["train"], cfg.block_size, cfg.batch_size, generator=batches)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
    train(reference, tokens, cfg, stop_after=8, progress=False)
    pairs = zip(model.parameters(), reference.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_training_lowers_the_validation_loss(tokens, cfg, tiny_gpt):
    history = train(
        tiny_gpt(), tokens, replace(cfg, max_iters=60, eval_interval=20), progress=False
    )
    assert history.steps == [0, 20, 40, 60]
    assert history.val_loss[-1] < history.val_loss[0] - 0.3


def test_a_time_budget_becomes_a_step_count_and_the_schedule_follows_the_step_only(
    tokens, cfg, tiny_gpt
):
    """The budget fixes max_iters before training (timing throw-away steps that leave no trace);
    the run is then exactly the run with that max_iters and no budget."""
    budgeted = train(
        tiny_gpt(dropout=0.1),
        tokens,
        replace(cfg, max_iters=10_000, eval_interval=7, time_budget=0.3),
        progress=False,
    )
    n = budgeted.max_iters
    assert 1 <= n < 10_000 and budgeted.seconds_per_step > 0 and budgeted.steps[-1] == n
    planned = replace(cfg, max_iters=n, eval_interval=7)
    assert budgeted.lr == [learning_rate(s, planned) for s in budgeted.steps]
    plain = train(tiny_gpt(dropout=0.1), tokens, planned, progress=False)
    assert plain.steps == budgeted.steps and plain.val_loss == budgeted.val_loss


def test_plan_steps_fits_the_budget_and_never_exceeds_max_iters(cfg):
    cfg = replace(cfg, max_iters=1000, time_budget=10.0)
    assert plan_steps(cfg, 0.05) == 200
    assert plan_steps(cfg, 0.001) == 1000
    assert plan_steps(cfg, 60.0) == 1


def test_tokens_per_second_counts_training_steps_only(tokens, monkeypatch, cfg, tiny_gpt):
    def slow_evaluation(*args, **kwargs):
        time.sleep(0.3)
        return {"train": 1.0, "val": 1.0}

    monkeypatch.setattr(train_module, "estimate_loss", slow_evaluation)
    history = train(tiny_gpt(), tokens, replace(cfg, max_iters=5, eval_interval=1), progress=False)
    tokens_per_step = cfg.batch_size * cfg.block_size
    assert history.elapsed[-1] > 1.5  # six slow evaluations ...
    assert history.tokens_per_second > 4 * tokens_per_step / 0.3  # ... none of them counted
    assert history.first_step_seconds > 0


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, char_tokenizer, tiny_gpt):
    model = tiny_gpt().eval()
    save_checkpoint(
        tmp_path, model, tokenizer=char_tokenizer, step=7, history=History(val_loss=[2.0])
    )
    again, tok = load_checkpoint(tmp_path)
    idx = torch.randint(0, 65, (2, 16))
    assert torch.equal(model(idx)[0], again.eval()(idx)[0])
    assert tok.chars == char_tokenizer.chars
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["step"] == 7 and meta["best_val_loss"] == 2.0


def test_loading_into_a_model_of_another_shape_names_the_difference(tmp_path, tiny_gpt):
    save_checkpoint(tmp_path, tiny_gpt())
    with pytest.raises(ValueError, match="n_embd is 16 there but 32 here"):
        load_checkpoint(tmp_path, tiny_gpt(n_embd=32))


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m helpers.train"):
        load_checkpoint(tmp_path / "nothing")


def test_a_crash_mid_run_leaves_the_last_good_checkpoint(
    tmp_path, tokens, monkeypatch, cfg, tiny_gpt
):
    real_get_batch, calls = train_module.get_batch, []

    def crashing_get_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) > 35:  # well after the checkpoints at steps 0, 5, 10 ...
            raise RuntimeError("simulated crash")
        return real_get_batch(*args, **kwargs)

    monkeypatch.setattr(train_module, "get_batch", crashing_get_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_gpt(), tokens, cfg, checkpoint_dir=tmp_path, progress=False)
    model, _ = load_checkpoint(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["step"] > 0 and math.isfinite(meta["best_val_loss"])
    assert read_checkpoint_meta(tmp_path / "last")["step"] >= meta["step"]  # latest state too
    assert not list(tmp_path.rglob(".*tmp"))  # no half-written files


def cli(tmp_path, *args):
    return train_cli.main(["--preset", "gpt", "--device", "cpu", "--out", str(tmp_path), *args])


def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """Dropout on, so the random streams must be restored too, not just weights and optimizer."""
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    common = ["--max-iters", "20", "--eval-interval", "5", "--dropout", "0.2"]
    whole = cli(tmp_path / "whole", *common)
    stopped = cli(tmp_path / "parts", *common, "--stop-after", "12")
    assert stopped.stopped_by == "stop_after" and stopped.steps == [0, 5, 10]
    assert read_checkpoint_meta(tmp_path / "parts" / "last")["step"] == 12  # saved at the stop
    resumed = cli(tmp_path / "parts", *common, "--resume")
    assert resumed.steps == whole.steps == [0, 5, 10, 15, 20]
    assert resumed.val_loss == pytest.approx(whole.val_loss, abs=1e-6)
    assert resumed.train_loss == pytest.approx(whole.train_loss, abs=1e-6)
    a = load_file(tmp_path / "whole" / "last" / "model.safetensors")
    b = load_file(tmp_path / "parts" / "last" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)
    best = read_checkpoint_meta(tmp_path / "parts")  # the best weights stay where chapter 07 looks
    assert best["best_val_loss"] == pytest.approx(min(whole.val_loss))


def test_a_training_state_from_another_step_is_an_error_naming_both_steps(
    tmp_path, tokens, cfg, tiny_gpt
):
    train(tiny_gpt(), tokens, replace(cfg, max_iters=10), checkpoint_dir=tmp_path, progress=False)
    state_file = tmp_path / "last" / "training_state.pt"
    state = torch.load(state_file, weights_only=True)
    torch.save({**state, "step": 5}, state_file)
    with pytest.raises(ValueError, match="from step 5 but model.safetensors is from step 10"):
        train(
            tiny_gpt(),
            tokens,
            replace(cfg, max_iters=10),
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )


def test_a_config_needs_a_model_shape_or_a_context_length(cfg):
    assert TrainConfig(name="b", device="cpu", smoke=True, context_length=8).block_size == 8
    assert cfg.block_size == 16
    with pytest.raises(ValueError, match="either model"):
        TrainConfig(name="b", device="cpu", smoke=True)
    with pytest.raises(ValueError, match="not both"):
        replace(cfg, context_length=8)


def test_describe_shows_the_chosen_fields_only(cfg):
    text = cfg.describe("batch_size", "model.n_embd")
    assert text.splitlines() == ["batch_size   = 4", "model.n_embd = 16"]
    assert "model.n_layer" in cfg.describe() and "warmup_iters" in cfg.describe()
    with pytest.raises(ValueError, match="no field 'batch'"):
        cfg.describe("batch")


def test_cli_trains_and_writes_a_loadable_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    history = train_cli.main(
        ["--preset", "gpt", "--max-iters", "3", "--device", "cpu", "--out", str(tmp_path)]
    )
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    model, tokenizer = load_checkpoint(tmp_path)
    assert tokenizer.vocab_size == 65 and history.steps[-1] == 3


def test_cli_overrides_the_evaluation_interval_and_lifts_the_time_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    history = train_cli.main(
        [
            "--preset",
            "gpt",
            "--max-iters",
            "3",
            "--device",
            "cpu",
            "--eval-interval",
            "1",
            "--time-budget",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    assert history.steps == [0, 1, 2, 3] and history.stopped_by == "max_iters"


def test_cli_writes_one_line_per_evaluation_to_a_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    cli(tmp_path, "--max-iters", "4", "--eval-interval", "2")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 0/4", "step 2/4", "step 4/4"]


@pytest.mark.parametrize("name", ["bigram", "attention", "gpt"])
def test_presets_shrink_in_smoke_mode(monkeypatch, name):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "0")
    full = preset(name, device="cpu")
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    smoke = preset(name, device="cpu")
    assert smoke.smoke and not full.smoke
    assert smoke.max_iters < full.max_iters and smoke.eval_iters < full.eval_iters
    assert name in full.describe()
    assert (full.model is None) == (name == "bigram")  # the bigram is not a GPT


def test_gpu_preset_is_the_published_shape(monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "0")
    gpu = preset("gpt", device="cuda")
    shape = gpu.model
    assert (shape.n_layer, shape.n_head, shape.n_embd, shape.block_size, shape.dropout) == (
        6,
        6,
        384,
        256,
        0.2,
    )


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="bigram"):
        preset("giant", device="cpu")


def test_the_same_weights_get_the_same_validation_loss_whatever_the_training_batch(
    tokens, cfg, tiny_gpt
):
    """Evaluation draws eval_batch_size rows, not the training batch: chapter 10's 2 ranks x B
    and 1 process x 2B are measured on the same text (step 0: the same initial weights)."""
    runs = [
        train(tiny_gpt(), tokens, replace(cfg, batch_size=b, max_iters=0), progress=False)
        for b in (4, 8)
    ]
    assert runs[0].val_loss == runs[1].val_loss and runs[0].train_loss == runs[1].train_loss


def test_evaluation_batch_is_the_single_process_training_batch_of_each_preset(monkeypatch):
    for smoke in ("0", "1"):
        monkeypatch.setenv("GPT_COURSE_SMOKE", smoke)
        for name in ("bigram", "attention", "gpt"):
            for device in ("cpu", "cuda"):
                cfg = preset(name, device)
                assert cfg.eval_batch_size == cfg.batch_size, (name, device, smoke)


def test_steps_never_wait_for_the_device(tokens, monkeypatch, cfg, tiny_gpt):
    """The loss stays on the device and the clock is read only around stretches of steps: twice
    the steps with the same number of evaluations make no more .item() calls or synchronizes."""
    counts = {"item": 0, "synchronize": 0}
    real_item, real_synchronize = torch.Tensor.item, train_module.synchronize

    def counted_item(tensor):
        if sys._getframe(1).f_globals.get("__name__", "").startswith("helpers"):
            counts["item"] += 1
        return real_item(tensor)

    def counted_synchronize(device):
        counts["synchronize"] += 1
        real_synchronize(device)

    monkeypatch.setattr(torch.Tensor, "item", counted_item)
    monkeypatch.setattr(train_module, "synchronize", counted_synchronize)
    seen = []
    for steps in (10, 20):
        counts.update(item=0, synchronize=0)
        run = replace(cfg, max_iters=steps, eval_interval=steps // 2)
        history = train(tiny_gpt(), tokens, run, progress=False)
        assert history.steps == [0, steps // 2, steps]
        seen.append(dict(counts))
    assert seen[0] == seen[1], seen
    assert seen[0]["item"] == 3 * 2  # one per split at each of the 3 evaluations


def test_every_run_reports_its_mfu_and_precision(tokens, cfg, tiny_gpt):
    history = train(tiny_gpt(), tokens, replace(cfg, max_iters=4), progress=False)
    assert history.precision == "fp32" and 0 < history.mfu < 1


class LearnersModel(torch.nn.Module):
    """A model as a chapter writes it: no config, no block_size, forward(idx, targets)."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(65, 65)

    def forward(self, idx, targets=None):
        logits = self.table(idx)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def test_train_takes_any_module_that_returns_logits_and_loss(tokens):
    cfg = TrainConfig(
        name="own", device="cpu", smoke=True, context_length=8, max_iters=20, eval_interval=10,
        eval_iters=2, batch_size=8, eval_batch_size=8, learning_rate=1e-1, min_lr=1e-1,
    )  # fmt: skip
    history = train(LearnersModel(), tokens, cfg, progress=False)
    assert history.val_loss[-1] < history.val_loss[0] and history.mfu is not None
