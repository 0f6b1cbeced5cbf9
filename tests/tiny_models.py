"""Small hand-built configs of each architecture family, as ResolvedModels (no catalogue, no network), and
peft's own count for a method as the reference every TuneWise count is tested against."""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from collections.abc import Callable

from torch import nn

from core.apply import as_on_real_weights
from core.models import ResolvedModel
from core.registry import MethodChoice
from core.skeleton import PEFT_TASK_TYPES, SkeletonKey, skeleton

TINY_CONFIGS: dict[str, dict] = {
    "llama": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 128,
        "architectures": ["LlamaForCausalLM"],
    },
    "qwen2": {
        "model_type": "qwen2",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 128,
        "tie_word_embeddings": True,
        "architectures": ["Qwen2ForCausalLM"],
    },
    "gemma2": {
        "model_type": "gemma2",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 128,
        "architectures": ["Gemma2ForCausalLM"],
    },
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 64,
        "n_layer": 4,
        "n_head": 4,
        "vocab_size": 128,
        "n_positions": 64,
        "architectures": ["GPT2LMHeadModel"],
    },
    "opt": {
        "model_type": "opt",
        "hidden_size": 64,
        "ffn_dim": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "vocab_size": 128,
        "word_embed_proj_dim": 64,
        "max_position_embeddings": 64,
        "architectures": ["OPTForCausalLM"],
    },
    "roberta": {
        "model_type": "roberta",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "vocab_size": 128,
        "max_position_embeddings": 66,
        "architectures": ["RobertaForMaskedLM"],
    },
    "t5": {
        "model_type": "t5",
        "d_model": 64,
        "d_ff": 128,
        "d_kv": 16,
        "num_layers": 4,
        "num_decoder_layers": 4,
        "num_heads": 4,
        "vocab_size": 128,
        "is_encoder_decoder": True,
        "architectures": ["T5ForConditionalGeneration"],
    },
}
# Mixture-of-experts families with heterogeneous block stacks: DeepSeek's first dense layer, then MoE layers;
# Qwen3-MoE with dense MLPs interleaved (mlp_only_layers). peft has no default targets for them.
TINY_MOE_CONFIGS: dict[str, dict] = {
    "deepseek_v2": {
        "model_type": "deepseek_v2",
        "hidden_size": 64,
        "intermediate_size": 160,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 5,
        "first_k_dense_replace": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "kv_lora_rank": 16,
        "q_lora_rank": None,
        "qk_nope_head_dim": 16,
        "qk_rope_head_dim": 8,
        "v_head_dim": 16,
        "n_group": 1,
        "topk_group": 1,
        "vocab_size": 128,
        "architectures": ["DeepseekV2ForCausalLM"],
    },
    "qwen3_moe": {
        "model_type": "qwen3_moe",
        "hidden_size": 64,
        "intermediate_size": 160,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 6,
        "mlp_only_layers": [0, 2, 4],
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "vocab_size": 128,
        "architectures": ["Qwen3MoeForCausalLM"],
    },
}


def tiny_model(family: str, **overrides: object) -> ResolvedModel:
    config = {**(TINY_CONFIGS | TINY_MOE_CONFIGS)[family], **overrides}
    return ResolvedModel(name=f"tiny-{family}", origin="path", config_json=json.dumps(config, sort_keys=True))


def peft_reference(key: SkeletonKey, choice: MethodChoice) -> tuple[int, int]:
    """(trainable, total) as peft reports them when applied plainly to a full copy of the model (no block-stack
    shortcut, no TuneWise wrapper), after peft's own optimizer helper where the method needs one (LoRA-FA's
    helper freezes A)."""
    import torch
    from peft import get_peft_model
    from peft.optimizers import create_lorafa_optimizer, create_loraplus_optimizer

    helpers: dict[str, Callable[[nn.Module], object]] = {
        "create_lorafa_optimizer": lambda m: create_lorafa_optimizer(
            m, r=choice.rank, lora_alpha=choice.alpha, lr=1e-4
        ),
        "create_loraplus_optimizer": lambda m: create_loraplus_optimizer(
            m, torch.optim.AdamW, lr=1e-4, loraplus_lr_ratio=16
        ),
    }
    model = copy.deepcopy(skeleton(key))
    device = torch.device("meta") if choice.spec.meta_init else contextlib.nullcontext()
    with warnings.catch_warnings(), device:
        warnings.simplefilter("ignore")
        wrapped = get_peft_model(model, choice.peft_config(PEFT_TASK_TYPES[key.task]), low_cpu_mem_usage=True)
        as_on_real_weights(wrapped)  # what peft does on real weights only (tested in test_methods_peft.py)
        if choice.spec.optimizer:
            helpers[choice.spec.optimizer](wrapped)
    trainable, total = wrapped.get_nb_trainable_parameters()
    return int(trainable), int(total)
