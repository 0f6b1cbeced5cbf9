"""One scenario, one command: `Scenario.to_argv()` parsed by the CLI gives the same scenario back."""

from __future__ import annotations

import argparse

import pytest

from core.cli import OneLineParser
from core.cli import estimate as estimate_cli
from core.cli._common import method_choices, model_from_args, training_from_args
from core.errors import InputError
from core.memory.setup import TrainingSetup
from core.models import resolve_model
from core.registry import MethodChoice, choices_for
from core.scenario import Scenario


def _parse(argv: list[str]) -> Scenario:
    parser = OneLineParser(prog="estimate")
    estimate_cli.register(parser.add_subparsers(dest="command"))
    args: argparse.Namespace = parser.parse_args(["estimate", *argv])
    choices, _ = method_choices(args)
    return Scenario(model_from_args(args), tuple(choices), args.task or "", args.num_labels, training_from_args(args))


@pytest.mark.parametrize("scenario", [
    Scenario(resolve_model("llama-2-7b"), (MethodChoice("fft"),)),
    Scenario(resolve_model("llama-2-7b"), choices_for(["fft", "lora", "qlora", "prefix_tuning"], rank=16,
                                                        targets="q_proj,v_proj", dropout=0.05),
             training=TrainingSetup(batch_size=4, seq_len=1024, gradient_checkpointing=True, gpus=8, sharding="zero3",
                                    offload="optimizer", gpu="H100-80GB", dataset_tokens=10**8, epochs=3.0)),
    Scenario(resolve_model("llama-2-7b"), choices_for(["lora", "qlora"])),  # different default ranks
    Scenario(resolve_model("llama-2-7b"), (MethodChoice("lora"),),
             training=TrainingSetup(gradient_checkpointing=True, reentrant_checkpointing=True)),
    Scenario(resolve_model("roberta-base"), (MethodChoice("partial_ft", top_layers=3),), num_labels=3,
             training=TrainingSetup(precision="fp32", optimizer="adamw-8bit", attention="eager")),
])
def test_to_argv_round_trips(scenario: Scenario) -> None:
    assert _parse(scenario.to_argv()) == scenario


def test_reentrant_checkpointing_writes_both_flags() -> None:
    setup = TrainingSetup(gradient_checkpointing=True, reentrant_checkpointing=True)
    assert setup.to_argv() == ["--gradient-checkpointing", "--reentrant-checkpointing"]
    assert TrainingSetup(gradient_checkpointing=True).to_argv() == ["--gradient-checkpointing"]


def test_fft_alone_gets_no_adapter_knobs() -> None:
    argv = Scenario(resolve_model("llama-2-7b"), choices_for(["fft"], rank=16)).to_argv()
    assert "--rank" not in argv


def test_methods_with_different_chosen_knobs_cannot_share_one_command() -> None:
    scenario = Scenario(resolve_model("llama-2-7b"), (MethodChoice("lora", rank=4), MethodChoice("dora", rank=32)))
    with pytest.raises(InputError, match="differ in --rank"):
        scenario.to_argv()


def test_a_sequence_beyond_the_positions_warns_with_the_rope_factor_needed() -> None:
    scenario = Scenario(resolve_model("llama-2-7b"), (MethodChoice("lora"),), training=TrainingSetup(seq_len=16384))
    (warning,) = scenario.warnings
    assert "maximum of 4096 positions" in warning and "4.00x" in warning


def test_a_sharded_setup_says_its_sharding_is_arithmetic_not_traced() -> None:
    model = resolve_model("llama-2-7b")
    sharded = Scenario(model, (MethodChoice("lora"),), training=TrainingSetup(gpus=8, sharding="zero3"))
    (note,) = sharded.warnings
    assert note.startswith("--sharding zero3 on 8 GPUs is modelled by arithmetic") and "not traced" in note
    assert not Scenario(model, (MethodChoice("lora"),), training=TrainingSetup(gpus=8)).warnings
