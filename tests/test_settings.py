import pytest

from helpers import settings


def test_smoke_mode_follows_the_environment(monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    assert settings.smoke_mode()
    monkeypatch.setenv("GPT_COURSE_SMOKE", "0")
    assert not settings.smoke_mode()
    monkeypatch.delenv("GPT_COURSE_SMOKE")
    assert not settings.smoke_mode()


def test_data_dir_defaults_to_repo_data_whatever_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("GPT_COURSE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert settings.data_dir() == settings.REPO_ROOT / "data"
    monkeypatch.setenv("GPT_COURSE_DATA", str(tmp_path))
    assert settings.data_dir() == tmp_path.resolve()


def test_smoke_runs_never_share_a_folder_with_full_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("GPT_COURSE_RUNS", str(tmp_path))
    monkeypatch.setenv("GPT_COURSE_SMOKE", "0")
    full = settings.runs_dir()
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    assert settings.runs_dir() != full and settings.runs_dir().parent == full


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_the_default_device_is_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("GPT_COURSE_DEVICE", raising=False)
    monkeypatch.setattr(settings.torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(settings.torch.backends.mps, "is_available", lambda: mps)
    assert settings.pick_device() == expected


def test_device_choice(monkeypatch):
    monkeypatch.delenv("GPT_COURSE_DEVICE", raising=False)
    assert settings.pick_device("cpu") == "cpu"
    monkeypatch.setenv("GPT_COURSE_DEVICE", "cpu")
    assert settings.pick_device() == "cpu"
    with pytest.raises(ValueError, match="choose one of"):
        settings.pick_device("tpu")


def test_asking_for_a_missing_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(settings.torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        settings.pick_device("cuda")


def test_seed_everything_repeats_random_numbers():
    settings.seed_everything(7)
    a = settings.torch.rand(3)
    settings.seed_everything(7)
    assert settings.torch.equal(a, settings.torch.rand(3))


def test_settings_holds_the_environment_only():
    """Presets live beside the code they configure (helpers.presets, .finetune, .alignment)."""
    assert not [name for name in vars(settings) if "preset" in name.lower()]


def test_run_report_says_mode_and_hardware(monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    report = settings.run_report()
    assert report.startswith("smoke mode on") and "CPU cores" in report
