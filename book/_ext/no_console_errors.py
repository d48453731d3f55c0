"""Keep the built pages free of browser console errors (tests/test_book.py fails on any).

Two come from the pinned extensions and themes, not from our pages:

- Jupyter Book sets the HTML builder's script list up again after extensions have added inline
  scripts to it, so sphinx-thebe's ``const THEBE_JS_URL = ...`` (and sphinx-togglebutton's
  selector) appears twice in every page, and declaring a ``const`` twice is a SyntaxError. The
  duplicates differ only in how the empty file name is stored (``None`` or ``""``), so each
  page's scripts are made unique here, the first of each kept in place.
- pydata-sphinx-theme reads the start colour mode from the template variable ``default_mode``,
  which sphinx-book-theme leaves empty; the page then logs "Got invalid theme mode". "auto"
  (follow the system setting) is what the theme falls back to anyway.
"""


def _default_mode(app, config):
    config.html_context.setdefault("default_mode", "auto")


def _script_key(js):
    return (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen = set()
    unique = []
    for js in context.get("script_files", []):
        if _script_key(js) not in seen:
            seen.add(_script_key(js))
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("config-inited", _default_mode)
    # Late (priority 900), after extensions that add a page's own scripts in this event.
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
