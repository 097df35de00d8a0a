"""The API reference: one page per public name of ``mixedmodels``, written when the build starts.

The reference documents what users type, ``mm.lmer``, ``mm.LmerResults``, ``mm.families``,
never the module a name happens to live in (modules move; the public names do not). The
results types that public functions return but that have no public name of their own
(``mm.lm`` returns an ``LmResults``) are found by their class name wherever they live.

The build fails when

* a name in ``mm.__all__`` is in no section below (a new public name needs a home), or
* a public attribute of a documented class is in neither autodoc's output nor its
  docstring's *Attributes* section (every results attribute has an entry).

Members without a docstring are listed in ``_build/api-undocumented.txt``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types
from dataclasses import dataclass
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

import mixedmodels as mm
from mixedmodels import errors

logger = logging.getLogger(__name__)

OUT = "api/generated"


@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    public: tuple[str, ...]  # names in mm.__all__
    returned: tuple[str, ...] = ()  # results classes without a public name, by class name


SECTIONS = (
    Section(
        "Fitting models",
        "Formula and data in, an immutable results object out.",
        ("lmer", "glmer", "glmer_nb", "lm", "glm", "families", "var_ident", "cor_ar1", "OptimizerSettings"),
    ),
    Section(
        "Results",
        "What a fit holds: estimates, variance components, random effects, fitted values, "
        "information criteria, tests and summaries (lme4's accessors).",
        ("LmerResults", "GlmerResults"),
        ("LmResults", "GlmResults", "OptInfo", "LmerSummary"),
    ),
    Section(
        "The pipeline",
        "lme4's stages as objects: the model before it is fitted, its objective, its fit.",
        ("LinearMixedModel", "GeneralizedLinearMixedModel"),
    ),
    Section(
        "Inference",
        "Tests, intervals, the bootstrap, marginal means (lmerTest, pbkrtest, emmeans).",
        ("anova", "ranova", "bootstrap", "emmeans", "contrast"),
        ("RTable", "BootstrapResult", "MarginalMeans", "ProfileResult"),
    ),
    Section(
        "Pooling and pictures",
        "Complete, no and partial pooling side by side, and the figures.",
        ("compare_pooling", "plots"),
        ("PoolingComparison",),
    ),
    Section(
        "Planning a study",
        "Simulated designs with known parameters, and power by simulation.",
        ("simulate_design", "power"),
        ("DesignTruth", "PowerResult"),
    ),
    Section(
        "Bayesian models", "The same formulas with priors, sampled by NUTS (the ``bayes`` extra).", ("bayes", "priors")
    ),
    Section(
        "Shrinkage explorer", "The browser app of ``mixedmodels explore`` and the numbers behind it.", ("explore",)
    ),
    Section(
        "Data larger than memory",
        "Fits on Dask: a dask DataFrame or Parquet files, on this machine or a cluster (the ``dask`` extra).",
        ("dask",),
    ),
    Section("Data sets", "The bundled data sets, with R's factor levels.", ("datasets",)),
    Section(
        "Settings",
        "Package-wide settings, as R's ``options()``: the default contrasts.",
        ("options", "option_context", "get_option"),
    ),
    Section(
        "Errors and warnings",
        "Everything the package raises or warns derives from these.",
        tuple(errors.__all__),  # the errors module lists them once
    ),
)


def _find_class(name: str) -> type:
    """The class called ``name`` defined somewhere in the package (its module may move)."""
    hits = []
    for info in pkgutil.walk_packages(mm.__path__, "mixedmodels."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and obj.__module__ == info.name:
            hits.append(obj)
    if len(hits) != 1:
        raise ExtensionError(f"API reference: expected one class {name!r} in mixedmodels, found {len(hits)}")
    return hits[0]


def _foreign_bases(cls: type) -> list[str]:
    """Bases from outside mixedmodels (pandas' DataFrame, ...), whose members are not ours to document."""
    return [
        base.__name__
        for base in cls.__mro__[1:]
        if base is not object and not base.__module__.startswith("mixedmodels")
    ]


def _defined_here(cls: type, attr: str) -> bool:
    """Whether ``attr`` comes from a mixedmodels class in ``cls``'s MRO (not from pandas or object)."""
    for klass in cls.__mro__:
        if attr in vars(klass):
            return klass.__module__.startswith("mixedmodels")
    return False


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _page(name: str, target: str, obj: object, returned: bool) -> str:
    """The reStructuredText of one object's page."""
    title = f"mm.{name}" if not returned else name
    lines = [f".. _api-{name}:", "", title, "=" * len(title), ""]
    if isinstance(obj, types.ModuleType):
        lines += [f".. automodule:: {target}", "   :members:", "   :imported-members:", ""]
    elif inspect.isclass(obj) and issubclass(obj, BaseException):
        lines += [f".. autoexception:: {target}", "   :show-inheritance:", ""]
    elif inspect.isclass(obj):
        if returned:
            lines += ["Returned by the public API (it has no name of its own in ``mixedmodels``).", ""]
        foreign = ", ".join(_foreign_bases(obj))  # a DataFrame subclass does not repeat pandas' reference
        lines += [
            f".. autoclass:: {target}",
            "   :members:",
            f"   :inherited-members: {foreign}".rstrip(),
            "   :undoc-members:",
        ]
        lines += ["   :show-inheritance:", ""] if obj.__bases__ != (object,) else [""]
    else:
        lines += [f".. autofunction:: {target}", ""]
    return "\n".join(lines)


def _entries() -> list[tuple[Section, list[tuple[str, str, object, bool]]]]:
    """(section, [(name, autodoc target, object, is a returned-only class)]) in page order."""
    out = []
    for section in SECTIONS:
        items = [(name, f"mixedmodels.{name}", getattr(mm, name), False) for name in section.public]
        for name in section.returned:
            cls = _find_class(name)
            items.append((name, _path(cls), cls, True))
        out.append((section, items))
    return out


def write_pages(app: Sphinx) -> None:
    """Write one page per object and the sections' tables into ``docs/api/generated``."""
    placed = {name for section in SECTIONS for name in section.public}
    missing = sorted(set(mm.__all__) - {"__version__"} - placed)
    if missing:
        raise ExtensionError(f"API reference: public names in no section of docs/_ext/api_pages.py: {missing}")
    out = Path(app.srcdir) / OUT
    out.mkdir(parents=True, exist_ok=True)
    index = []
    documented: dict[str, type] = {}
    for section, items in _entries():
        index += [
            section.title,
            "-" * len(section.title),
            "",
            section.intro,
            "",
            ".. list-table::",
            "   :widths: 30 70",
            "",
        ]
        for name, target, obj, returned in items:
            text = _page(name, target, obj, returned)
            path = out / f"{name}.rst"
            if not path.exists() or path.read_text(encoding="utf-8") != text:  # unchanged pages stay unread
                path.write_text(text, encoding="utf-8")
            summary = _first_line(obj)
            index += [f"   * - :doc:`{'mm.' + name if not returned else name} <generated/{name}>`", f"     - {summary}"]
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                documented[target] = obj
        index += ["", ".. toctree::", "   :hidden:", ""] + [f"   generated/{name}" for name, *_ in items] + [""]
    (out / "sections.rst.inc").write_text("\n".join(index), encoding="utf-8")
    app.env.mixedmodels_api_classes = documented  # type: ignore[attr-defined]


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    line = doc.strip().split("\n\n")[0].replace("\n", " ")
    return line.replace("|", "\\|") if line else "(no description yet)"


def _attributes_section(cls: type) -> set[str]:
    """Names listed in the numpydoc *Attributes* section of the class docstring (and its bases')."""
    names: set[str] = set()
    for klass in cls.__mro__:
        doc = inspect.getdoc(klass) or ""
        match = re.search(r"^Attributes[^\n]*\n-{3,}\n(.*?)(?:\n\n[A-Z][^\n]*\n-{3,}\n|\Z)", doc, re.S | re.M)
        if match:
            for line in match.group(1).splitlines():
                head = re.match(r"^(\w+(?:\s*,\s*\w+)*)\s*(?::|$)", line)
                if head and not line.startswith(" "):
                    names.update(n.strip() for n in head.group(1).split(","))
    return names


def check_coverage(app: Sphinx, exception: Exception | None) -> None:
    """Fail the build when a public attribute of a documented class has no entry."""
    if exception is not None or app.builder.name != "html":
        return
    classes: dict[str, type] = getattr(app.env, "mixedmodels_api_classes", {})
    objects = set(app.env.domains["py"].objects)
    missing, undocumented = [], []
    for target, cls in classes.items():
        in_docstring = _attributes_section(cls)
        for attr in dir(cls):
            if attr.startswith("_") or not _defined_here(cls, attr):
                continue
            if f"{target}.{attr}" not in objects and attr not in in_docstring:
                missing.append(f"{target}.{attr}")
            member = inspect.getattr_static(cls, attr, None)
            doc = getattr(member, "__doc__", None) if member is not None else None
            if isinstance(member, (property, types.FunctionType, classmethod, staticmethod)) or hasattr(member, "func"):
                if not doc or not doc.strip():
                    undocumented.append(f"{target}.{attr}")
    report = Path(app.outdir).parent / "api-undocumented.txt"
    report.write_text("\n".join(sorted(undocumented)) + "\n", encoding="utf-8")
    logger.info(
        f"API reference: {len(classes)} classes checked, {len(undocumented)} members without a docstring "
        f"(listed in {report})"
    )
    if missing:
        raise ExtensionError(f"API reference: public attributes with no entry: {missing}")


def hide_private_signatures(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str] | None:
    """A class whose constructor takes private fields (results objects) is made by the library, not
    by users: show it without a constructor signature rather than with ``_factor`` and friends."""
    if what == "class" and signature and ("(_" in signature or ", _" in signature):
        return "", return_annotation or ""
    return None


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("autodoc-process-signature", hide_private_signatures)
    app.connect("builder-inited", write_pages)
    app.connect("build-finished", check_coverage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
