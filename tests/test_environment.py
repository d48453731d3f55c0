"""helpers.environment: the setup report that opens chapters 07-11, on a CPU and a simulated T4."""

from test_precision import fake_gpu

from helpers import environment


def test_the_report_says_device_precision_preset_and_runtime(capsys):
    environment.environment_report(chapter=7)
    out = capsys.readouterr().out
    for words in ("device: cpu", "threads:", "torch", "AVX2", "Triton", "will use: fp32"):
        assert words in out, words
    assert "training preset: 'gpt'" in out and "a full run of chapter 07 on cpu" in out


def test_on_a_t4_the_report_shows_the_gpu_and_fp16(monkeypatch, capsys):
    fake_gpu(monkeypatch, "T4")
    environment.environment_report(chapter=7)
    out = capsys.readouterr().out
    assert "Tesla T4, capability 7.5, 16 GB" in out and "fp16 autocast + GradScaler" in out
    assert "T4-class" in out  # no measured GPU band yet: the stated estimate


def test_without_a_chapter_the_report_is_the_machine_only(capsys):
    environment.environment_report()
    assert "will use" not in capsys.readouterr().out
