"""Hide the search bar that the pinned themes, together, add above every page.

pydata-sphinx-theme 0.17 puts a header bar with a second search button above every page unless
the option ``navbar_persistent`` is set. sphinx-book-theme 1.3 means to leave it empty (its own
search field is in the sidebar), but its default is not seen by the newer pydata theme. Setting
the option in ``_config.yml`` would replace all the theme options Jupyter Book derives from that
file (repository and launch buttons), so it is set here instead.
"""


def _no_header_search(app, config):
    config.html_theme_options.setdefault("navbar_persistent", [])


def setup(app):
    app.connect("config-inited", _no_header_search)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
