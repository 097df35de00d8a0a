"""The version of mixedmodels: the one place it is written.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``) when the package is built, and
``mixedmodels.__version__`` and ``python -m mixedmodels --version`` import it, so the three
never disagree.  Bump it together with a new section in CHANGELOG.md.
"""

__version__ = "0.1.0"
