"""Uploaded config.json files, stored server-side by content hash so a link (`config=<hash>`) reopens them.

The hash is of the canonical JSON (sorted keys), so the same config uploaded twice, or with other whitespace, is
one entry. A file is checked (UTF-8 JSON object with a model_type that transformers knows) before anything is
written, and written by rename, so a half-written or unusable upload is never stored. Messages name the
uploaded file, never a server path.

Setting: `TUNEWISE_UPLOADS_DIR` (default: `uploaded-configs/` beside the warehouse file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.models import ResolvedModel
from core.warehouse.paths import warehouse_path

ENV_UPLOADS_DIR = "TUNEWISE_UPLOADS_DIR"
DIGEST_CHARS = 16  # 64 bits of sha256: collisions need ~4e9 uploads (birthday bound)
_DIGEST = re.compile(rf"[0-9a-f]{{{DIGEST_CHARS}}}")
DEFAULT_NAME = "config.json"


@dataclass(frozen=True)
class StoredConfig:
    """An uploaded config: its content hash (the link's `config=` value), the file name it was uploaded as, and
    the model it resolves to (named by the file name, as the printed command would run it)."""

    digest: str
    filename: str
    model: ResolvedModel

    def __post_init__(self) -> None:
        if not _DIGEST.fullmatch(self.digest):
            raise InputError(f"{self.digest!r} is not a config hash ({DIGEST_CHARS} hexadecimal characters)")


def uploads_dir() -> Path:
    """`TUNEWISE_UPLOADS_DIR`, else `uploaded-configs/` beside the warehouse."""
    configured = os.environ.get(ENV_UPLOADS_DIR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return warehouse_path().parent / "uploaded-configs"


def _parse(content: bytes, filename: str) -> dict[str, object]:
    try:
        data = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{filename} is not UTF-8 text: upload the model's config.json") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{filename} is malformed JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                         "upload the model's config.json as published") from None
    if not isinstance(data, dict):
        raise InputError(f"{filename} holds JSON but not an object: a config.json is one JSON object")
    return data


def _model(data: dict[str, object], filename: str) -> ResolvedModel:
    model = ResolvedModel(name=filename, origin="path", config_json=json.dumps(data, sort_keys=True))
    model.build_config()  # unknown architectures fail here, before anything is stored
    return model


def store_config(content: bytes, filename: str = DEFAULT_NAME) -> StoredConfig:
    """Check an uploaded config.json and store it under its content hash (idempotent)."""
    filename = Path(filename).name or DEFAULT_NAME
    model = _model(_parse(content, filename), filename)
    digest = hashlib.sha256(model.config_json.encode("utf-8")).hexdigest()[:DIGEST_CHARS]
    folder = uploads_dir()
    target = folder / f"{digest}.json"
    if not target.exists():
        record = json.dumps({"filename": filename, "config": json.loads(model.config_json)}, sort_keys=True)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, suffix=".part", delete=False) as tmp:
                tmp.write(record)
            Path(tmp.name).replace(target)
        except OSError:
            raise InputError("this server cannot keep uploaded configs (its upload folder is not writable); the "
                             f"operator can set {ENV_UPLOADS_DIR}") from None
    return StoredConfig(digest, filename, model)


def load_config(digest: str) -> StoredConfig:
    """The config stored under `digest`; InputError when the hash is malformed or this server has no such upload."""
    if not _DIGEST.fullmatch(digest):
        raise InputError(f"config={digest} is not a config hash ({DIGEST_CHARS} hexadecimal characters)")
    path = uploads_dir() / f"{digest}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"config={digest} is not an upload this server keeps: upload the config.json again") from None
    filename = str(record["filename"])
    return StoredConfig(digest, filename, _model(record["config"], filename))
