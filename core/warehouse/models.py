"""Link published model names to the model catalogue (`core.catalogue`) and name their family.

Papers write 'LLaMA2-7B', 'GPT-2 Medium', 'RoBERTa-base'; the catalogue knows lower-case aliases
('llama2-7b', 'gpt-2-medium', 'roberta-base'). A name links when, with spaces as dashes, the catalogue finds
it; unlinked models (GPT-3, LLaMA-1, T5-XXL...) keep a family read from the name's leading word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core import catalogue

# Family of names outside the catalogue, by the name's leading word (checked in order).
_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("roberta", "roberta"), ("deberta", "deberta"), ("gpt-2", "gpt2"), ("gpt2", "gpt2"), ("gpt-3", "gpt3"),
    ("gpt-j", "gptj"), ("llama", "llama"), ("t5", "t5"), ("bart", "bart"), ("bloom", "bloom"),
    ("opt", "opt"), ("mistral", "mistral"), ("qwen", "qwen2"), ("gemma", "gemma"), ("bert", "bert"),
)  # fmt: skip


@dataclass(frozen=True)
class ModelLink:
    """What the warehouse stores about a published model name beyond the name and size."""

    family: str
    catalogue_id: str | None

    def __post_init__(self) -> None:
        if not self.family:
            raise ValueError("a model family cannot be empty")


def link_model(name: str) -> ModelLink:
    """The catalogue id (when known) and family of a published model name."""
    key = re.sub(r"\s+", "-", name.strip().lower())
    entry = catalogue.find(key)
    if entry is not None:
        return ModelLink(family=entry.family, catalogue_id=entry.repo_id)
    family = next((fam for prefix, fam in _FAMILY_PREFIXES if key.startswith(prefix)), key.split("-")[0] or key)
    return ModelLink(family=family, catalogue_id=None)
