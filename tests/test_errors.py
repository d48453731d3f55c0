"""Bad input gets a message that says what went wrong and what to do: the public entry points of
the training engine (model, generate, presets, configs, train, checkpoints, the command line),
each given bad arguments, missing or damaged files and wrong types."""

from dataclasses import replace

import pytest
import torch

from helpers import train_cli
from helpers.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from helpers.model import GPTConfig
from helpers.presets import TrainConfig, preset
from helpers.train import train


def test_a_token_id_past_the_vocabulary_names_the_id_its_position_and_the_fix(tiny_gpt):
    idx = torch.tensor([[1, 2, 3], [4, 70, 5]])
    with pytest.raises(ValueError, match=r"token id 70 at \(row 1, position 1\).*vocab_size="):
        tiny_gpt()(idx)
    with pytest.raises(ValueError, match="token id -1 at"):
        tiny_gpt()(torch.tensor([[-1, 2]]))


def test_token_ids_of_the_wrong_type_or_shape_say_how_to_make_them(tiny_gpt):
    with pytest.raises(TypeError, match="must be integers"):
        tiny_gpt()(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"idx\[None\]"):
        tiny_gpt()(torch.tensor([1, 2, 3]))


def test_generate_refuses_a_negative_length(tiny_gpt):
    with pytest.raises(ValueError, match="max_new_tokens"):
        tiny_gpt().generate(torch.tensor([[1]]), -3)


def test_a_config_refuses_impossible_values(tiny_config):
    with pytest.raises(ValueError, match="gelu"):
        tiny_config(gelu="relu")
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=32, n_head=6)
    cfg = TrainConfig(name="t", device="cpu", smoke=True, context_length=8)
    for bad, words in (
        (dict(batch_size=0), "batch_size=0"),
        (dict(eval_interval=0), "eval_interval=0"),
        (dict(max_iters=-1), "max_iters=-1"),
        (dict(grad_accum_steps=1.5), "grad_accum_steps=1.5"),
        (dict(learning_rate=-1e-3), "learning rates must be >= 0"),
        (dict(autocast_dtype="bf16"), "'bfloat16', 'float16' or None"),
        (dict(time_budget=-5.0), "positive number of seconds"),
    ):
        with pytest.raises(ValueError, match=words):
            replace(cfg, **bad)


def test_presets_name_the_choices():
    with pytest.raises(ValueError, match="choose one of attention, bigram, gpt"):
        preset("giant", "cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        preset("gpt", "gpu")


def test_train_refuses_wrong_inputs_with_the_fix(tiny_gpt, tmp_path):
    cfg = TrainConfig(name="t", device="cpu", smoke=True, model=tiny_gpt().config, max_iters=1)
    ids = torch.randint(0, 65, (500,))
    data = {"train": ids, "val": ids}
    with pytest.raises(ValueError, match="'train' and 'val'"):
        train(tiny_gpt(), {"train": ids}, cfg)
    with pytest.raises(TypeError, match="torch.long"):
        train(tiny_gpt(), {"train": ids.float(), "val": ids}, cfg)
    with pytest.raises(TypeError, match="TrainConfig"):
        train(tiny_gpt(), data, {"max_iters": 1})
    with pytest.raises(TypeError, match="torch.nn.Module"):
        train("gpt", data, cfg)
    with pytest.raises(ValueError, match="needs the checkpoint_dir"):
        train(tiny_gpt(), data, cfg, resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        train(tiny_gpt(), data, cfg, checkpoint_dir=tmp_path / "file")
    with pytest.raises(TypeError, match="has none"):
        train(torch.nn.Linear(2, 2), data, cfg, checkpoint_dir=tmp_path / "run")


def test_a_damaged_checkpoint_is_named_and_the_good_one_stays_readable(tmp_path, tiny_gpt):
    save_checkpoint(tmp_path, tiny_gpt())
    save_checkpoint(tmp_path / "last", tiny_gpt())
    best = tmp_path / "model.safetensors"
    best.write_bytes(best.read_bytes()[:40])  # cut short, as by an interrupted copy
    for load in (read_checkpoint_meta, load_checkpoint):
        with pytest.raises(ValueError, match=r"model.safetensors is damaged.*last"):
            load(tmp_path)
    model, _ = load_checkpoint(tmp_path / "last")  # the other weights are intact
    assert model.config == tiny_gpt().config


def test_a_damaged_training_state_is_named(tmp_path, tiny_gpt):
    cfg = TrainConfig(
        name="t", device="cpu", smoke=True, model=tiny_gpt().config, max_iters=2,
        eval_interval=1, eval_iters=1, batch_size=2, eval_batch_size=2,
    )  # fmt: skip
    ids = torch.randint(0, 65, (500,))
    data = {"train": ids, "val": ids}
    train(tiny_gpt(), data, cfg, checkpoint_dir=tmp_path, progress=False)
    (tmp_path / "last" / "training_state.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"training_state.pt is damaged"):
        train(tiny_gpt(), data, cfg, checkpoint_dir=tmp_path, resume=True, progress=False)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--max-iters", "-1"], "--max-iters must be >= 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--eval-interval", "0"], "--eval-interval must be >= 1"),
        (["--dropout", "1.5"], "--dropout must be in"),
        (["--time-budget", "-1"], "--time-budget must be >= 0"),
        (["--preset", "giant"], "invalid choice"),
        (["--device", "tpu"], "invalid choice"),
        (["--max-iters", "ten"], "invalid int value"),
        ([], "--out"),
    ],
)
def test_the_command_line_names_the_bad_argument(tmp_path, capsys, args, words):
    out = [] if args == [] else ["--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        train_cli.main([*args, *out])
    assert words in capsys.readouterr().err
