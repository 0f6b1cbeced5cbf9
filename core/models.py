"""Model resolution: a name or path -> a validated transformers config, offline first.

Order: an existing path (config.json or a folder holding one), then the offline catalogue (repo id, bare
name or alias), then a config-only Hub download. Remote code is never trusted unless asked for.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core import catalogue
from core.errors import InputError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

Origin = Literal["catalogue", "hub", "path"]
# The heads a skeleton can be built with (core.skeleton); here so the CLI lists them without importing torch.
TASKS: tuple[str, ...] = ("causal-lm", "seq-cls", "seq2seq")

# Bytes per element of the dtype names transformers writes into config.json.
DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class ResolvedModel:
    """A model the engine can build: where it came from and its config.json contents (as canonical JSON)."""

    name: str
    origin: Origin
    config_json: str
    trust_remote_code: bool = False
    location: str = ""

    def __post_init__(self) -> None:
        data = json.loads(self.config_json)
        if not isinstance(data, dict) or not data.get("model_type"):
            where = self.location or self.name
            raise InputError(
                f"config at {where} has no model_type: a transformers config.json names its architecture there"
            )

    @cached_property
    def config_dict(self) -> dict[str, Any]:
        return json.loads(self.config_json)

    @property
    def model_type(self) -> str:
        return str(self.config_dict["model_type"])

    @property
    def saved_dtype(self) -> str:
        """The dtype the published checkpoint is stored in (fp32 when the config does not say)."""
        value = self.config_dict.get("torch_dtype") or self.config_dict.get("dtype") or "float32"
        return value if value in DTYPE_BYTES else "float32"

    @property
    def max_positions(self) -> int | None:
        for key in ("max_position_embeddings", "n_positions", "max_seq_len", "n_ctx"):
            value = self.config_dict.get(key)
            if isinstance(value, int):
                return value
        return None

    def build_config(self) -> PretrainedConfig:
        """A transformers config object; unknown or remote-code architectures fail with a clear line."""
        from transformers import AutoConfig
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        data = dict(self.config_dict)
        model_type = data.pop("model_type")
        if self.trust_remote_code and "auto_map" in data and self.location:
            return AutoConfig.from_pretrained(self.location, trust_remote_code=True)
        if model_type not in CONFIG_MAPPING:
            if "auto_map" in data:
                raise InputError(
                    f"{self.name} needs remote code (model_type {model_type!r} is not built into transformers): "
                    "pass --trust-remote-code with a local model folder if you trust its code"
                )
            import transformers

            nearest = difflib.get_close_matches(model_type, list(CONFIG_MAPPING), n=1, cutoff=0.0)
            raise InputError(
                f"transformers {transformers.__version__} cannot build model_type {model_type!r} of {self.name}; "
                f"the nearest it supports is {nearest[0]!r}: fix model_type or upgrade transformers"
            )
        _check_sizes(self.name, self.config_dict)
        _check_routing(self.name, self.config_dict)
        try:
            return CONFIG_MAPPING[model_type].from_dict(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(f"config of {self.name} is invalid for {model_type}: {_first_line(exc)}") from None


# Structural sizes a config.json may give (top level or in a nested text/vision config): each must be positive.
SIZE_FIELDS: tuple[str, ...] = (
    "hidden_size", "intermediate_size", "moe_intermediate_size", "shared_expert_intermediate_size",
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
    "max_position_embeddings", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "d_model", "d_ff", "d_kv",
    "num_layers", "num_decoder_layers", "num_heads", "ffn_dim", "word_embed_proj_dim", "encoder_layers",
    "decoder_layers", "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim",
    "num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "kv_lora_rank",
)
# MoE configs: the expert-count field and the routing (experts per token) field it needs beside it.
ROUTING_FIELDS: dict[str, tuple[str, ...]] = {
    "num_local_experts": ("num_experts_per_tok", "experts_per_token"),
    "num_experts": ("num_experts_per_tok", "moe_topk", "top_k"),
    "n_routed_experts": ("num_experts_per_tok",),
}
_NESTED = ("text_config", "vision_config", "encoder", "decoder")


def _sections(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The config and its nested sub-configs (multimodal text/vision parts), with the prefix to name them."""
    nested = [(f"{key}.", config[key]) for key in _NESTED if isinstance(config.get(key), dict)]
    return [("", config), *nested]


def _check_sizes(name: str, config: dict[str, Any]) -> None:
    for prefix, section in _sections(config):
        for key in SIZE_FIELDS:
            value = section.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
                raise InputError(
                    f"config of {name} gives {prefix}{key} = {value}: sizes must be positive; fix the config.json"
                )


def _check_routing(name: str, config: dict[str, Any]) -> None:
    """An MoE config must say how many experts each token is routed to (transformers would silently default it)."""
    for prefix, section in _sections(config):
        for experts, routing in ROUTING_FIELDS.items():
            count = section.get(experts)
            if isinstance(count, int) and count > 1 and not any(section.get(r) for r in routing):
                raise InputError(
                    f"config of {name} declares {count} experts ({prefix}{experts}) but no routing field "
                    f"({' or '.join(prefix + r for r in routing)}): add how many experts each token uses, "
                    "e.g. num_experts_per_tok: 2"
                )


def resolve_model(name: str, *, trust_remote_code: bool = False, revision: str | None = None) -> ResolvedModel:
    """Resolve `--model`: a path, a catalogue id/alias, or a Hub repo id (config.json only)."""
    name = name.strip()
    if not name:
        raise InputError("--model is empty: give a Hub id (e.g. meta-llama/Llama-2-7b-hf) or a config.json path")
    path = Path(name).expanduser()
    if path.exists():
        return _from_path(name, path, trust_remote_code)
    if name.endswith(".json") or name.startswith((".", "/", "~")):
        raise InputError(f"no such file or folder: {name}; check the path to the config.json or model folder")
    entry = catalogue.find(name)
    if entry is not None:
        return ResolvedModel(
            name=entry.repo_id,
            origin="catalogue",
            config_json=_canonical(entry.load_config()),
            trust_remote_code=trust_remote_code,
        )
    from core.hub import download_config

    config_path = download_config(name, revision=revision)
    return ResolvedModel(
        name=name,
        origin="hub",
        config_json=_canonical(_read_json(config_path)),
        trust_remote_code=trust_remote_code,
        location=str(config_path.parent),
    )


def _from_path(name: str, path: Path, trust_remote_code: bool) -> ResolvedModel:
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise InputError(f"folder {path} has no config.json: point --model at the folder that holds config.json")
    else:
        config_path = path
    return ResolvedModel(
        name=name,
        origin="path",
        config_json=_canonical(_read_json(config_path)),
        trust_remote_code=trust_remote_code,
        location=str(config_path.parent),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text: a config.json must be JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is malformed or truncated JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "re-download or fix it"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path} holds JSON but not an object: a config.json is one JSON object")
    return data


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
