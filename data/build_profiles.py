"""Build `data/profiles/`: the traced profiles, counts and replays of the opening pages' default scenarios, shipped
so a fresh install answers them without tracing (read by `core.memory.cache` after the user's own cache).

    python data/build_profiles.py           # rebuild (about a minute on 2 cores)
    python data/build_profiles.py --check   # exit 1 if the shipped folder does not match this install and engine

The entries are whatever the Decide page's default recommendation and the Memory page's opening estimate (with
its make-it-fit advice) store in an empty cache; the manifest records the engine packages' versions, the
the hash of the engine's source, so `core.memory.cache` reads them only while they are current.
Rebuild after upgrading torch, transformers or peft, or after editing the engine (a test fails until you do).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.memory import cache  # noqa: E402

# The Dockerfile's warm-up, as commands: the Decide page's default request and the Memory page's opening estimate.
DEFAULT_SCENARIOS: tuple[tuple[str, ...], ...] = (
    ("-m", "core", "recommend", "--task-type", "classification", "--train-examples", "10000", "--gpu", "A100-80GB",
     "--model", "meta-llama/Llama-2-7b-hf"),
    ("-c", "from app.warmup import default_estimates; default_estimates()"),
)


def build() -> int:
    """Run the default scenarios into an empty cache and make its entries the shipped folder."""
    with tempfile.TemporaryDirectory(prefix="tunewise-profiles-") as folder:
        env = {**os.environ, cache.ENV_CACHE: folder, "HF_HUB_OFFLINE": "1"}
        for args in DEFAULT_SCENARIOS:
            done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                                  check=False)  # fmt: skip
            if done.returncode != 0:
                print(f"a default scenario failed: {' '.join(args)}\n{done.stderr.strip()[-2000:]}", file=sys.stderr)
                return 1
        entries = sorted(p for p in Path(folder).iterdir() if p.suffix in (".npz", ".json"))
        if cache.SHIPPED_DIR.exists():
            shutil.rmtree(cache.SHIPPED_DIR)
        cache.SHIPPED_DIR.mkdir(parents=True)
        for path in entries:
            shutil.copyfile(path, cache.SHIPPED_DIR / path.name)
    manifest = cache.shipped_manifest()
    (cache.SHIPPED_DIR / cache.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                                    encoding="utf-8")
    size = sum(p.stat().st_size for p in cache.SHIPPED_DIR.iterdir())
    print(f"{len(entries)} entries ({size / 2**20:.1f} MiB) in {cache.SHIPPED_DIR.relative_to(ROOT)}, "
          f"built for {manifest}")
    return 0


def check() -> int:
    """0 when the shipped folder is read by this install and engine, else 1 with what to do."""
    if cache.shipped_dir() is not None:
        print(f"{cache.SHIPPED_DIR.relative_to(ROOT)} is current")
        return 0
    print(f"{cache.SHIPPED_DIR.relative_to(ROOT)} was built for another engine or install than "
          f"{cache.shipped_manifest()}: run python data/build_profiles.py", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the shipped folder is current")
    return check() if parser.parse_args().check else build()


if __name__ == "__main__":
    raise SystemExit(main())
