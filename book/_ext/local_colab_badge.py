"""Show the notebooks' "Open in Colab" badge from the book, not from colab.research.google.com.

Each notebook's first cell uses the standard badge image from Colab's website, which GitHub,
Colab and an online JupyterLab all display. The built book must also work without a network
(tests/test_book.py fails on any image that is not in the build), so when the book is built the
badge image is replaced by the local copy ``book/figures/colab-badge.svg``. The link around it,
which opens the notebook in Colab, stays as it is.
"""

from docutils import nodes

COLAB_BADGE_URLS = {
    "https://colab.research.google.com/assets/colab-badge.svg",
    "http://colab.research.google.com/assets/colab-badge.svg",
}
LOCAL_BADGE = "/book/figures/colab-badge.svg"  # a leading "/" means: from the book's root


def _use_local_badge(app, doctree):
    for image in doctree.findall(nodes.image):
        if image.get("uri") in COLAB_BADGE_URLS:
            image["uri"] = LOCAL_BADGE


def setup(app):
    # Priority 400: before Sphinx's image collector (500) decides what to copy into the build.
    app.connect("doctree-read", _use_local_badge, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
