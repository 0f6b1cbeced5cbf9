"""Small hand-built configs of each architecture family, as ResolvedModels (no catalogue, no network)."""

from __future__ import annotations

import json

from core.models import ResolvedModel

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


def tiny_model(family: str, **overrides: object) -> ResolvedModel:
    config = {**TINY_CONFIGS[family], **overrides}
    return ResolvedModel(name=f"tiny-{family}", origin="path", config_json=json.dumps(config, sort_keys=True))
