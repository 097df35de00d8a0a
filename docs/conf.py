"""Sphinx configuration of the mixedmodels documentation (build it with ``python docs/build.py``).

Sphinx with numpydoc reads the package's numpy-style docstrings as they are written (sections,
math, see-also links); MyST-NB executes the tutorials, which are plain-text MyST notebooks, when
the site is built, so every number and figure on the site comes from the code beside it. The
build needs no network: no intersphinx, no CDN (math is rendered to MathML at build time, the
theme's assets ship with it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))  # document the source tree even if it is not installed

import mixedmodels  # noqa: E402

project = "mixedmodels"
author = "mixedmodels developers"
copyright = "the mixedmodels developers (MIT licence)"
version = release = mixedmodels.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
    "mathml",  # docs/_ext/mathml.py: formulas as MathML, no MathJax
    "api_pages",  # docs/_ext/api_pages.py: one page per public name, coverage checks
]

# the site's pages; other Markdown under docs/ (notes for developers) is not part of it until a
# toctree includes it
include_patterns = [
    "index.md",
    "changelog.md",
    "coming-from-*.md",
    "architecture.md",
    "guide/**",
    "tutorials/**",
    "api/**",
]
exclude_patterns = ["_build", "examples", "images", "**.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
templates_path: list[str] = []

# --- math without MathJax ------------------------------------------------------------------
html_math_renderer = "mathml"

# --- API reference -------------------------------------------------------------------------
add_module_names = False  # "lmer(formula, data, ...)", not the module it lives in
autodoc_member_order = "groupwise"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True
python_maximum_signature_line_length = 90  # one parameter per line for long signatures
numpydoc_show_class_members = False  # autodoc lists the members on the class page itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True
autosummary_generate = False

# --- tutorials (MyST notebooks, executed at build time) -------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist", "smartquotes"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("MIXEDMODELS_DOCS_EXECUTE", "cache")  # "force" re-runs everything
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a failing tutorial fails the build
nb_execution_show_tb = True
nb_merge_streams = True
nb_ipywidgets_js: dict[str, dict[str, str]] = {}  # never load widget JavaScript from a CDN

# --- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mixedmodels {release}"
html_static_path = ["_static"]
html_css_files = ["mixedmodels.css"]
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    # the tutorials' figures and tables need the width more than an "on this page" column
    "secondary_sidebar_items": {"tutorials/*": [], "coming-from-*": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
