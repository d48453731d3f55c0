"""Is the Hugging Face hub reachable from here? Chapters 07 and 08 ask before they download
anything, so that the course runs offline (and behind a firewall) without waiting on timeouts."""

from __future__ import annotations

import threading
import urllib.request

import huggingface_hub


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub answers within ``timeout`` seconds and offline mode
    (``HF_HUB_OFFLINE=1``, as huggingface_hub reads it) is off.

    The request runs in a background thread that we stop waiting for after ``timeout``: a socket
    timeout alone does not bound a DNS lookup that hangs."""
    if huggingface_hub.is_offline_mode():
        return False
    answered = threading.Event()

    def ask() -> None:
        try:
            request = urllib.request.Request(huggingface_hub.constants.ENDPOINT, method="HEAD")
            with urllib.request.urlopen(request, timeout=timeout):
                answered.set()
        except OSError:  # URLError, socket errors and HTTP errors are all OSErrors
            pass

    threading.Thread(target=ask, daemon=True).start()
    return answered.wait(timeout)
