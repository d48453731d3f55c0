"""helpers.hub: the reachability check that keeps chapters 07 and 08 from hanging offline."""

import threading
import time

import huggingface_hub

from helpers import hub


def test_hub_reachable_is_false_in_offline_mode_without_asking(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def no_network(*args, **kwargs):
        raise AssertionError("offline mode must not touch the network")

    monkeypatch.setattr(hub.urllib.request, "urlopen", no_network)
    assert hub.hub_reachable() is False


def test_hub_reachable_gives_up_after_its_timeout(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    release = threading.Event()

    def hanging_urlopen(*args, **kwargs):  # a DNS lookup that never answers
        release.wait(30)
        raise OSError("released by the test")

    monkeypatch.setattr(hub.urllib.request, "urlopen", hanging_urlopen)
    start = time.perf_counter()
    try:
        assert hub.hub_reachable(timeout=0.3) is False
        assert time.perf_counter() - start < 2.0
    finally:
        release.set()  # let the background thread end cleanly


def test_hub_reachable_is_true_when_the_hub_answers(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    class Answer:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(hub.urllib.request, "urlopen", lambda *a, **k: Answer())
    assert hub.hub_reachable(timeout=2.0) is True
