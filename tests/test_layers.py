"""The packages of app/ call one way, down this list (README "Layout"): a package imports only
from packages below it, plus the kit of top-level modules (db, errors, money, ...). A new arrow
upwards fails here; the few that exist are listed with their reason, and the list only shrinks."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import app

APP = Path(app.__file__).resolve().parent

LAYERS = [
    ("schema", "demo"),  # GraphQL (and the demo shop): map requests to service calls
    ("privacy",),  # exports and erasure reach every domain's tables
    ("actions",),  # recordAction and claims: attribution, fraud, rewards, affiliate hooks
    ("analytics",),
    ("leads", "partners"),
    ("campaigns", "payouts"),
    ("widget",),
    ("fraud",),
    ("rewards",),
    ("referrals",),
    ("merchants",),
    ("webhooks",),
    ("worker",),
]
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}

# (importer, imported) -> why the arrow points up. Remove an entry once the arrow is gone.
UPWARDS = {
    ("fraud", "campaigns"): "a review's resolution cites a clause of the program's promotion rules",
}


def _imports() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP).parts
        if len(parts) < 2:
            continue  # the kit
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "app":
                modules = [f"app.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app."):
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names if alias.name.startswith("app.")]
            else:
                continue
            for module in modules:
                target = module.split(".")[1]
                if target != parts[0] and target in LEVEL:
                    found[(parts[0], target)].append(f"app/{'/'.join(parts)}:{node.lineno}")
    return found


def test_every_package_is_in_a_layer():
    packages = {p.name for p in APP.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"static"} == set(LEVEL), "place the new package in LAYERS"


def test_packages_import_only_from_the_layers_below():
    upwards = {edge: where for edge, where in _imports().items() if LEVEL[edge[1]] <= LEVEL[edge[0]]}
    unexplained = {edge: where for edge, where in upwards.items() if edge not in UPWARDS}
    assert not unexplained, f"imports against the layers: {unexplained}"
    gone = set(UPWARDS) - set(upwards)
    assert not gone, f"no longer imported upwards, remove from UPWARDS: {gone}"
