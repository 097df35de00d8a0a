"""The public API that type checkers see is the one that runs.

``mixedmodels/__init__.py`` imports its public names lazily at run time (``_LAZY``) and
eagerly under ``TYPE_CHECKING`` (so that mypy, pyright and editors know their signatures).
The two lists must name the same objects. ``tests/typing/public_api.py``, which mypy checks
in .ci/lint, must also run as written: its annotations are claims about what users get.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import contextlib
import warnings
from pathlib import Path

import pytest

import mixedmodels as mm

INIT = Path(mm.__file__)
TYPING_CLIENT = Path(__file__).parent / "typing" / "public_api.py"


def _type_checking_imports() -> dict[str, tuple[str, bool]]:
    """name -> (absolute module, whether the name is that module itself) for each import under
    ``if TYPE_CHECKING:`` in mixedmodels/__init__.py."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    blocks = [
        node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1, "mixedmodels/__init__.py should have one `if TYPE_CHECKING:` block"
    found: dict[str, tuple[str, bool]] = {}
    for node in blocks[0].body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.unparse(node)
        for alias in node.names:
            if node.module is None:  # from . import bayes
                found[alias.asname or alias.name] = (f"mixedmodels.{alias.name}", True)
            else:
                found[alias.asname or alias.name] = (f"mixedmodels.{node.module}", False)
    return found


def test_type_checkers_see_every_lazily_imported_name():
    assert set(_type_checking_imports()) == set(mm._LAZY)


@pytest.mark.parametrize("name", sorted(mm._LAZY))
def test_what_type_checkers_see_is_what_runs(name: str) -> None:
    module, is_module = _type_checking_imports()[name]
    if is_module:
        seen = importlib.import_module(module)
    else:
        try:
            seen = getattr(importlib.import_module(module), name)
        except AttributeError:  # `from .bayes import priors`: a submodule not imported yet
            seen = importlib.import_module(f"{module}.{name}")
    assert seen is getattr(mm, name)


def test_the_typed_examples_run():
    pytest.importorskip("matplotlib").use("Agg")
    import matplotlib.pyplot as plt

    spec = importlib.util.spec_from_file_location("public_api", TYPING_CLIENT)
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.main()
    plt.close("all")
