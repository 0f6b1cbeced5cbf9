"""Config-only downloads from the Hugging Face Hub: never weights.

`hf_hub_download` caches the file, reads `HF_TOKEN` for gated repos and honours `HF_HUB_OFFLINE` (then it
answers from the cache alone). Every failure becomes one line that says what to do instead.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from core.errors import InputError

_PATH_HINT = "pass a path to its config.json or model folder instead, e.g. --model ./my-model/config.json"


def download_config(repo_id: str, revision: str | None = None) -> Path:
    """Fetch only `config.json` of a Hub repo (from the cache when present) and return its local path."""
    try:
        return Path(
            hf_hub_download(
                repo_id=repo_id, filename="config.json", revision=revision, local_files_only=not _hub_resolvable()
            )
        )
    except GatedRepoError:
        raise InputError(
            f"{repo_id} is gated on the Hugging Face Hub: accept its licence and set HF_TOKEN, or {_PATH_HINT}"
        ) from None
    except RepositoryNotFoundError:
        raise InputError(
            f"no Hub repo {repo_id!r} (or it is private: set HF_TOKEN); check the id or {_PATH_HINT}"
        ) from None
    except RevisionNotFoundError:
        raise InputError(f"{repo_id} has no revision {revision!r}; drop --revision or name an existing one") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, OSError):
        raise InputError(
            f"model {repo_id!r} is not in the offline catalogue and the Hugging Face Hub cannot be reached "
            f"(offline or HF_HUB_OFFLINE=1); {_PATH_HINT}, or see `python -m core models` for catalogue ids"
        ) from None
    except EntryNotFoundError:
        raise InputError(f"{repo_id} has no config.json (not a transformers model?); {_PATH_HINT}") from None
    except HFValidationError:
        raise InputError(
            f"{repo_id!r} is neither a catalogue model, an existing path, nor a valid Hub id (owner/name)"
        ) from None


def _hub_resolvable() -> bool:
    """False when the Hub's host name does not resolve (no network): then answer from the cache at once
    instead of waiting through huggingface_hub's five connection retries (about 23 s)."""
    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname or "", 443)
    except OSError:
        return False
    return True
