"""What a calibration run does, validated once: every bad input is an InputError of one line (CLI exit 2,
`st.error` in the app) raised before any training starts."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from core.calibrate.data import Dataset, load_dataset, split, subset
from core.calibrate.multigpu import SHARDING
from core.calibrate.options import DEFAULT_METHODS, DEVICES, INITS  # noqa: F401 (DEFAULT_METHODS: for the page)
from core.errors import InputError
from core.memory.setup import ATTENTIONS, OPTIMIZERS, PRECISIONS, TrainingSetup
from core.models import ResolvedModel, resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, default_task, skeleton

MODES: tuple[str, ...] = ("probe", "learn")
DEFAULT_STEPS: dict[str, int] = {"probe": 3, "learn": 30}
WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                 "pytorch_model.bin.index.json")
BUNDLED_MODELS: dict[str, Path] = {"smollm2-mini": Path(__file__).resolve().parents[2] / "data" / "calibrate" /
                                    "smollm2-mini"}  # fmt: skip
SPEC_FILE_VERSION = 1
# LoRA's best learning rate is about 10x full fine-tuning's (Thinking Machines, "LoRA Without Regret", 2025).
PEFT_LR_FACTOR = 10.0


def _one_of(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{flag} {value!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True)
class CalibrationSpec:
    """A probe (memory and speed on random-init weights) or a learn run (curves on the user's data)."""

    model: ResolvedModel
    methods: tuple[MethodChoice, ...]
    mode: str = "probe"
    device: str = "auto"
    steps: int | None = None
    time_budget_s: float | None = None
    batch_size: int = 1
    seq_len: int = 128
    precision: str = "fp32"
    optimizer: str = "adamw"
    gradient_checkpointing: bool = False
    attention: str = "sdpa"
    task: str = ""
    num_labels: int = 2
    data: Path | None = None
    data_sizes: tuple[int, ...] = ()
    eval_fraction: float = 0.2
    lr: float = 5e-5
    init: str = ""
    seed: int = 0
    gpus: int = 1
    sharding: str = "fsdp"
    dataset: Dataset | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _one_of("mode", self.mode, MODES)
        _one_of("--device", self.device, DEVICES)
        _one_of("--precision", self.precision, PRECISIONS)
        _one_of("--optimizer", self.optimizer, OPTIMIZERS)
        _one_of("--attention", self.attention, ATTENTIONS)
        _one_of("--sharding", self.sharding, SHARDING)
        if not self.methods:
            raise InputError("no method chosen: pass --methods, e.g. fft,lora,ia3,prompt_tuning")
        ids = [m.method for m in self.methods]
        if len(set(ids)) != len(ids):
            raise InputError(f"--methods names a method twice ({', '.join(ids)}); name each once")
        self._check_budget()
        self._check_sizes()
        init = self.init or ("random" if self.mode == "probe" else "pretrained")
        _one_of("--init", init, INITS)
        object.__setattr__(self, "init", init)
        if self.mode == "probe":
            self._check_probe()
        else:
            self._check_learn()
        skeleton(self.key)  # builds on the meta device: remote-code and unknown architectures fail here
        self.training_setup  # noqa: B018 - validates the combination as the estimator will see it

    def _check_budget(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--steps {self.steps}: the budget must be at least 1 step")
        if self.time_budget_s is not None and not (math.isfinite(self.time_budget_s) and self.time_budget_s > 0):
            raise InputError(f"--time-budget {self.time_budget_s:g}: give a positive number of seconds")
        if self.steps is None and self.time_budget_s is None:
            object.__setattr__(self, "steps", DEFAULT_STEPS[self.mode])
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise InputError(f"--lr {self.lr:g} must be a positive learning rate, e.g. 5e-5")

    def _check_sizes(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"--batch-size {self.batch_size} must be at least 1")
        if self.seq_len < 2:
            raise InputError(f"--seq-len {self.seq_len} must be at least 2 tokens")
        limit = self.model.max_positions
        if limit is not None and self.seq_len > limit:
            raise InputError(f"--seq-len {self.seq_len} exceeds {self.model.name}'s {limit} positions")
        if self.gpus < 1:
            raise InputError(f"--gpus {self.gpus} must be at least 1")
        if self.gpus > 1 and self.device == "cpu":
            raise InputError(f"--gpus {self.gpus} needs CUDA GPUs; drop --device cpu")

    def _check_probe(self) -> None:
        if self.data is not None or self.data_sizes:
            raise InputError("--data and --data-sizes are for --learn; --probe needs no data")
        if self.init != "random":
            raise InputError("--probe measures random-init weights; --init pretrained is for --learn")
        if not self.task:
            object.__setattr__(self, "task", default_task(self.model))

    def _check_learn(self) -> None:
        if self.data is None:
            raise InputError("--learn needs --data FILE: CSV or JSONL with text+label or prompt+completion columns")
        if not 0 < self.eval_fraction < 1:
            raise InputError(f"--eval-fraction {self.eval_fraction:g} must be between 0 and 1, e.g. 0.2")
        bad = [s for s in self.data_sizes if s < 1]
        if bad:
            raise InputError(f"--data-sizes {bad[0]}: each size must be at least 1 example")
        if self.init == "pretrained" and self.model.origin == "path" and self.weights_source is None:
            raise InputError(f"{self.model.name} holds no weights (model.safetensors or pytorch_model.bin): point "
                             "--model at a folder with weights, or use --init random")
        dataset = load_dataset(self.data)
        object.__setattr__(self, "dataset", dataset)
        if dataset.kind == "classification":
            task, labels = "seq-cls", len(dataset.labels)
        else:
            task, labels = ("seq2seq" if self.model.config_dict.get("is_encoder_decoder") else "causal-lm"), 2
        if self.task and self.task != task:
            raise InputError(f"--task {self.task} does not fit {dataset.name}: {dataset.kind} data trains {task}")
        object.__setattr__(self, "task", task)
        object.__setattr__(self, "num_labels", labels)
        pool = split(dataset, self.eval_fraction, self.seed).train
        for size in self.data_sizes:
            subset(dataset, pool, size)

    @property
    def weights_source(self) -> str | None:
        """Where pretrained weights load from: a local folder that holds them, else the Hub id (None: neither,
        or random init)."""
        if self.init != "pretrained":
            return None
        if self.model.origin != "path":
            return self.model.name
        folder = Path(self.model.location)
        return str(folder) if any((folder / name).is_file() for name in WEIGHT_FILES) else None

    @property
    def key(self) -> SkeletonKey:
        return SkeletonKey(self.model, self.task, self.num_labels)

    @property
    def training_setup(self) -> TrainingSetup:
        """The estimator's view of this run (one GPU unless launched on several)."""
        return TrainingSetup(
            batch_size=self.batch_size, seq_len=self.seq_len, precision=self.precision, optimizer=self.optimizer,
            gradient_checkpointing=self.gradient_checkpointing, attention=self.attention, gpus=self.gpus,
            sharding=self.sharding if self.gpus > 1 else "none",
        )  # fmt: skip

    def runtime_device(self) -> str:
        """`auto` resolved on this machine; CUDA asked for without a GPU is an InputError, as are settings
        only CUDA runs (flash attention, and for the CPU probe gradient checkpointing: it measures a plain forward)."""
        has_cuda = torch.cuda.is_available()
        if self.device == "cuda" or self.gpus > 1:
            if not has_cuda:
                build = f"torch {torch.__version__}" + ("" if torch.version.cuda else " is a CPU-only build")
                raise InputError(f"CUDA was requested but no CUDA GPU is visible ({build}): use --device cpu or auto")
            if self.gpus > torch.cuda.device_count():
                raise InputError(f"--gpus {self.gpus}: only {torch.cuda.device_count()} CUDA GPUs are visible")
            return "cuda"
        device = "cuda" if self.device == "auto" and has_cuda else "cpu"
        if device == "cpu" and self.attention == "flash":
            raise InputError("--attention flash needs a CUDA GPU with flash-attn; on CPU use sdpa or eager")
        if device == "cpu" and self.mode == "probe" and self.gradient_checkpointing:
            raise InputError("the CPU probe measures activations without checkpointing: drop --gradient-checkpointing "
                             "or run on CUDA")
        return device

    def lr_for(self, choice: MethodChoice) -> float:
        return self.lr * PEFT_LR_FACTOR if choice.spec.is_peft else self.lr

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (the run folder's spec.json and every record's config)."""
        return {
            "model": self.model.name, "model_family": self.model.model_type, "mode": self.mode,
            "methods": [m.label() for m in self.methods], "device": self.device, "steps": self.steps,
            "time_budget_s": self.time_budget_s, "batch_size": self.batch_size, "seq_len": self.seq_len,
            "precision": self.precision, "optimizer": self.optimizer,
            "gradient_checkpointing": self.gradient_checkpointing, "attention": self.attention, "task": self.task,
            "num_labels": self.num_labels, "data": str(self.data) if self.data else None,
            "data_sizes": list(self.data_sizes), "eval_fraction": self.eval_fraction, "lr": self.lr,
            "init": self.init, "seed": self.seed, "gpus": self.gpus, "sharding": self.sharding,
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild this spec in another process (the spec file the app hands the runner):
        the resolved model itself (no second lookup), each method with its knobs, and every setting."""
        settings = {f.name: getattr(self, f.name) for f in fields(self)
                    if f.init and f.name not in ("model", "methods")}
        settings.update(data=str(self.data) if self.data is not None else None, data_sizes=list(self.data_sizes))
        methods = [{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(m).items() if v is not None}
                   for m in self.methods]
        return {"version": SPEC_FILE_VERSION, "model": asdict(self.model), "methods": methods, **settings}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "the spec") -> CalibrationSpec:
        """The inverse of `to_json`, validated again (an edited or stale file fails with one line)."""
        if data.get("version") != SPEC_FILE_VERSION:
            raise InputError(f"{source} is version {data.get('version')!r}; this TuneWise reads version "
                             f"{SPEC_FILE_VERSION}: start the run again")
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(data) - known - {"version"})
        if unknown:
            raise InputError(f"{source} has unknown settings {', '.join(unknown)}; remove them")
        try:
            model = ResolvedModel(**data["model"])
            methods = tuple(MethodChoice(**{k: tuple(v) if isinstance(v, list) else v for k, v in m.items()})
                            for m in data["methods"])
            settings = {k: v for k, v in data.items() if k in known - {"model", "methods"}}
            settings.update(data=Path(settings["data"]) if settings.get("data") else None,
                            data_sizes=tuple(settings.get("data_sizes") or ()))
            return cls(model=model, methods=methods, **settings)
        except (KeyError, TypeError) as exc:
            raise InputError(f"{source} is incomplete or malformed ({exc}); start the run again") from None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> CalibrationSpec:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"no spec file at {path}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path.name} is not a JSON spec file ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path.name} is not a JSON object of settings")
        return cls.from_json(data, source=path.name)


def parse_sizes(text: str | None) -> tuple[int, ...]:
    """Data sizes typed as '5,20,100' (examples per class)."""
    if not text or not text.strip():
        return ()
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InputError(f"--data-sizes {text!r}: give whole numbers, e.g. 5,20,100") from None


def model_argument(name: str) -> str:
    """What `resolve_model` reads for a model picked by name: a bundled model's folder, else the name itself."""
    return str(BUNDLED_MODELS[name]) if name in BUNDLED_MODELS else name


def spec_from_form(
    *, model: str, methods: Sequence[str], mode: str, device: str, steps: int, batch_size: int, seq_len: int,
    precision: str, data: Path | None = None, data_sizes: str = "", init: str = "",
) -> CalibrationSpec:
    """The Calibrate page's widgets as a validated spec (the checks the CLI runs, before anything starts),
    including whether it can run on this machine."""
    if not methods:
        raise InputError("no method chosen: pick at least one in Methods")
    spec = CalibrationSpec(
        model=resolve_model(model_argument(model)), methods=tuple(MethodChoice(m) for m in methods), mode=mode,
        device=device, steps=steps, batch_size=batch_size, seq_len=seq_len, precision=precision,
        data=data if mode == "learn" else None, data_sizes=parse_sizes(data_sizes) if mode == "learn" else (),
        init=init if mode == "learn" else "",
    )  # fmt: skip
    spec.runtime_device()
    return spec
