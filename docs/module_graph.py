"""Redraw TuneWise's module graph: which package of `core`, `app` and `pages` imports which, from the source.

    python docs/module_graph.py            # Mermaid (paste into docs/architecture.md or any Mermaid viewer)
    python docs/module_graph.py --modules  # one edge per module instead of per package

Reads the files with `ast` (nothing is imported), counts imports at any depth (including the lazy ones inside
functions that keep `--help` fast), and prints one edge per importing -> imported unit with how many imports.
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("core", "app", "pages")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[str]:
    """Project modules a file imports (absolute and relative), at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append(base)
    return [name for name in found if name.split(".")[0] in TOP]


def unit(name: str, *, modules: bool) -> str:
    """A module's node: itself, or its package (`core.memory.budget` -> `core.memory`; top-level core modules
    stay themselves, since core's top level is where the base layer lives)."""
    if modules:
        return name
    parts = name.split(".")
    return ".".join(parts[:2])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="one node per module instead of per package")
    args = parser.parse_args()
    edges: Counter[tuple[str, str]] = Counter()
    for top in TOP:
        for path in sorted((ROOT / top).rglob("*.py")):
            source = unit(module_name(path), modules=args.modules)
            for target in imports(path):
                target_unit = unit(target, modules=args.modules)
                if target_unit != source:
                    edges[(source, target_unit)] += 1
    print("graph LR")
    for (source, target), count in sorted(edges.items()):
        print(f"  {source.replace('.', '_')}[{source}] -->|{count}| {target.replace('.', '_')}[{target}]")


if __name__ == "__main__":
    main()
