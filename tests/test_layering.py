"""The package's layering contract, read from the source with ``ast``: dependencies run one way.

``LAYERS`` lists the package's parts from the bottom of the pipeline up
(formula -> design -> linalg -> model -> fit -> results -> inference/plots).
A module may import from its own layer and the layers below.  An import of a
higher layer is allowed only inside a function (deferred) and only where
``UPWARD`` lists it, with its reason: the convenience methods on results.
No module imports a ``_private`` name of another package, and the module
graph -- every import, deferred or only for type checking, included -- has no
cycle.  The checks run on the installed source, and once on a small made-up
package, to show that they catch what they are for.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import mixedmodels

SOURCE = Path(mixedmodels.__file__).parent

# bottom to top; a name is a subpackage or a module directly under mixedmodels ("" is mixedmodels/__init__.py)
LAYERS: list[tuple[str, ...]] = [
    ("errors", "options", "_threads", "_validate", "_memory", "_version"),
    ("families", "optim", "convergence", "format", "tables", "datasets"),
    ("formula",),
    ("design",),
    ("linalg",),
    ("fitted",),
    ("linear_models",),
    ("lmm",),
    ("glmm",),
    ("predict",),
    ("simulate",),
    ("inference",),
    ("pooling",),
    ("planning",),
    ("plots",),
    ("explore",),
    ("bayes",),
    ("dask",),
    ("cli_support", "cli", "__main__", ""),
]

# The only imports of a higher layer: deferred ones, each a door from a result to what reads it.
UPWARD: dict[tuple[str, str], str] = {
    (
        "mixedmodels.lmm.results",
        "mixedmodels.inference",
    ): "m.coef_table(ddf=), m.anova(), m.confint(), m.profile(), m.refit(), m.hatvalues(), m.influence()",
    ("mixedmodels.lmm.results", "mixedmodels.predict"): "m.predict()",
    ("mixedmodels.lmm.results", "mixedmodels.simulate"): "m.simulate()",
    ("mixedmodels.lmm.summary", "mixedmodels.inference"): "m.summary(ddf=...): lmerTest's df and p-values",
    ("mixedmodels.linear_models.results", "mixedmodels.predict"): "lm and glm fits' predict()",
    ("mixedmodels.linear_models.results", "mixedmodels.simulate"): "lm and glm fits' simulate()",
    ("mixedmodels.inference.profile", "mixedmodels.plots"): "profile(m).plot()",
    ("mixedmodels.pooling.results", "mixedmodels.plots"): "cmp.plot(), cmp.plot_shrinkage()",
    ("mixedmodels.pooling.compare", "mixedmodels.bayes"): "compare_pooling(method='bayes')",
    (
        "mixedmodels.lmm.model",
        "mixedmodels.dask",
    ): "lmer(formula, ddf): a dask DataFrame or Parquet path is fitted on Dask",
    (
        "mixedmodels.glmm.model",
        "mixedmodels.dask",
    ): "glmer(formula, ddf): a dask DataFrame or Parquet path is fitted on Dask",
}


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    target: str  # the module imported (a submodule when a name is one)
    source: str  # the module named after "from" (the target itself for "import x")
    names: tuple[str, ...]
    deferred: bool  # inside a function or method
    line: int


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file, for every .py file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([package, *parts])] = path
    return out


def _deferred_nodes(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside a function body."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return inside


def imports_of(name: str, path: Path, modules: dict[str, Path], package: str) -> list[Import]:
    """The package-internal imports of one module, with relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    deferred = _deferred_nodes(tree)
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    found.append(Import(name, alias.name, alias.name, (), id(node) in deferred, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            parts = base[: len(base) - node.level + 1] if node.level else []
            source = ".".join(parts + ([node.module] if node.module else []))
            if source.split(".")[0] != package:
                continue
            names = tuple(alias.name for alias in node.names)
            submodules = [f"{source}.{n}" for n in names if f"{source}.{n}" in modules]
            for target in submodules or [source]:
                found.append(Import(name, target, source, names, id(node) in deferred, node.lineno))
    return found


def all_imports(root: Path, package: str) -> list[Import]:
    modules = module_names(root, package)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules, package)]


def layer_of(module: str, package: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layering.py")


def upward_imports(imports: list[Import], package: str, allowed: dict[tuple[str, str], str]) -> list[str]:
    """Imports of a higher layer that are not deferred or not listed in ``allowed``."""
    bad = []
    for imp in imports:
        if layer_of(imp.target, package) <= layer_of(imp.importer, package):
            continue
        listed = any(
            imp.importer == low and (imp.target == high or imp.target.startswith(high + ".")) for low, high in allowed
        )
        if not (listed and imp.deferred):
            kind = "deferred, not listed in UPWARD" if imp.deferred else "at module level"
            bad.append(f"{imp.importer} (line {imp.line}) imports the higher {imp.target} {kind}")
    return bad


def _owner(dotted: list[str], index: int) -> str:
    """The package a private component belongs to: the top-level part it sits in (the root for mixedmodels._x)."""
    return dotted[0] if index == 1 else ".".join(dotted[:2])


def private_imports(imports: list[Import]) -> list[str]:
    """Imports of a ``_name`` (module or object) owned by another package."""
    bad = []
    for imp in imports:
        for dotted in [imp.source.split(".") + [n] for n in imp.names] or [imp.source.split(".")]:
            for index, part in enumerate(dotted):
                if part.startswith("_") and not part.startswith("__") and index > 0:
                    owner = _owner(dotted, index)
                    if not (imp.importer == owner or imp.importer.startswith(owner + ".")):
                        bad.append(f"{imp.importer} (line {imp.line}) imports {'.'.join(dotted[: index + 1])}")
                    break
    return bad


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), and modules importing themselves."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# --- the package ---------------------------------------------------------------------------
IMPORTS = all_imports(SOURCE, "mixedmodels")


def test_every_module_has_a_layer():
    for name in module_names(SOURCE, "mixedmodels"):
        layer_of(name, "mixedmodels")


def test_lower_layers_never_import_upper_ones():
    assert upward_imports(IMPORTS, "mixedmodels", UPWARD) == []


def test_every_listed_upward_import_is_used():
    """The whitelist stays short: an entry that no import needs any more is removed."""
    used = {
        (low, high)
        for low, high in UPWARD
        for imp in IMPORTS
        if imp.importer == low and (imp.target == high or imp.target.startswith(high + "."))
    }
    assert set(UPWARD) - used == set()


def test_no_private_names_across_packages():
    assert private_imports(IMPORTS) == []


def test_no_import_cycles():
    assert cycles(IMPORTS) == []


# --- the checks catch what they are for --------------------------------------------------------
def _fake_package(tmp_path: Path) -> list[Import]:
    """formula -> lmm, where lmm's results import inference at module level and a private helper of it."""
    files = {
        "__init__.py": "",
        "formula.py": "from .lmm.model import fit\n",
        "lmm/__init__.py": "",
        "lmm/model.py": "from ..formula import parse\n",
        "lmm/results.py": "from ..inference.ddf import _cached\n\ndef confint():\n    from ..predict import predict\n",
        "inference/__init__.py": "",
        "inference/ddf.py": "from ..lmm.results import LmerResults\n",
        "predict.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return all_imports(tmp_path, "mixedmodels")


def test_the_checks_find_upward_imports_private_names_and_cycles(tmp_path):
    imports = _fake_package(tmp_path)
    upward = upward_imports(imports, "mixedmodels", {("mixedmodels.lmm.results", "mixedmodels.predict"): "m.predict()"})
    assert upward == [
        "mixedmodels.formula (line 1) imports the higher mixedmodels.lmm.model at module level",
        "mixedmodels.lmm.results (line 1) imports the higher mixedmodels.inference.ddf at module level",
    ]
    assert upward_imports(imports, "mixedmodels", {}) == upward + [
        "mixedmodels.lmm.results (line 4) imports the higher mixedmodels.predict deferred, not listed in UPWARD"
    ]
    assert private_imports(imports) == ["mixedmodels.lmm.results (line 1) imports mixedmodels.inference.ddf._cached"]
    assert cycles(imports) == [
        ["mixedmodels.formula", "mixedmodels.lmm.model"],
        ["mixedmodels.inference.ddf", "mixedmodels.lmm.results"],
    ]
