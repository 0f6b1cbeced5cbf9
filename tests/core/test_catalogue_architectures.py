"""Every tiny architecture (probe families and today's dense, MoE and mT5 ones) resolves, builds on meta with
the count transformers gives, and trains one real CPU step with the method applied by the shared apply step."""

import warnings

import pytest
import torch
import transformers

from core.apply import apply_method
from core.counting import count_parameters
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, default_task, skeleton, stack_plans
from tests.support.tiny import ARCHITECTURES, FAMILIES, tiny_model

NEW = [a for a in ARCHITECTURES if a not in FAMILIES]


def test_architectures_extend_the_probe_families() -> None:
    assert ARCHITECTURES[: len(FAMILIES)] == FAMILIES
    assert {"mixtral", "qwen3_moe", "deepseek_v2", "gpt_oss", "mt5", "gemma3_text"} <= set(NEW)


@pytest.mark.parametrize("family", NEW)
def test_tiny_architecture_counts_and_stacks(family: str) -> None:
    model = tiny_model(family)
    key = SkeletonKey(model, default_task(model), 2)
    built = skeleton(key)
    assert {p.device.type for p in built.parameters()} == {"meta"}
    assert stack_plans(built)
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        reference = getattr(transformers, model.config_dict["architectures"][0])(model.build_config())
    untied = model.config_dict.get("tie_word_embeddings") is False and reference.config.tie_word_embeddings
    head = reference.get_output_embeddings().weight.numel() if untied else 0
    assert count_parameters(key, MethodChoice("fft")).total_params == reference.num_parameters() + head


@pytest.mark.parametrize("method", ["fft", "lora", "ia3"])
@pytest.mark.parametrize("family", NEW)
def test_one_real_training_step_on_cpu(family: str, method: str) -> None:
    """Real weights, real forward/backward: the trained parameters get gradients, the frozen ones none."""
    model = tiny_model(family)
    key = SkeletonKey(model, default_task(model), 2)
    choice = MethodChoice(method, targets="all-linear") if method == "lora" else MethodChoice(method)
    if method == "ia3":
        choice = MethodChoice("ia3", targets=("o_proj",) if family not in ("mt5",) else ("o",))
    torch.manual_seed(0)
    config = model.build_config()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = getattr(transformers, model.config_dict["architectures"][0])(config)
        trained = apply_method(real, key, choice)
        ids = torch.randint(0, 128, (2, 12))
        labels = ids[:, :6].contiguous() if key.task == "seq2seq" else ids  # seq2seq shifts labels into the decoder
        loss = trained(input_ids=ids, labels=labels).loss
        loss.backward()
    grads = [p.grad is not None for p in trained.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and grads and all(grads)
    assert all(p.grad is None for p in trained.parameters() if not p.requires_grad)
    counted = count_parameters(key, choice).trainable_params
    assert sum(p.numel() for p in trained.parameters() if p.requires_grad) == counted
