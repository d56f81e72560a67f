"""Where the package's data folders (templates, demo feeds) are on disk.

They live at the top level of the repository, where organisers look for them,
and are copied into the package when it is built as a wheel (pyproject.toml,
force-include).  An editable install or a source checkout finds the top-level
folder; an installed wheel finds the copy inside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# Name inside the installed package -> folder in a source checkout.
_CHECKOUT = {"templates": "templates", "demo_feeds": "tests/data/feeds"}


def resource_dir(name: str) -> Path:
    """The folder holding the named resource; raises FileNotFoundError naming both places."""
    installed = _PACKAGE / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / _CHECKOUT.get(name, name)
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"The aggregator's {name} folder is missing (looked in {installed} and {checkout}); "
        "reinstall the package."
    )
