"""Small random-init configs of each supported architecture family, for the probe and its accuracy matrix.

Hidden size 64 and four blocks (the fewest a block stack is recognised by) keep one CPU forward in
milliseconds while every structural feature of the family (grouped-query attention, gated MLP, sandwich
norms, fused qkv, post-norm encoders, ...) is present. `FAMILIES` are the probe matrix's; `ARCHITECTURES`
adds today's dense, mixture-of-experts and mT5 architectures for harnesses that cover every family.
"""

from __future__ import annotations

import json
from typing import Any

from core.models import ResolvedModel

_COMMON: dict[str, Any] = {"vocab_size": 128}
_FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {
        "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {
        "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 1, "max_position_embeddings": 256}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 256, "attn_logit_softcapping": None}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {
        "n_embd": 64, "n_layer": 4, "n_head": 4, "n_positions": 256, "bos_token_id": 0, "eos_token_id": 0}),
    "opt": ("OPTConfig", "OPTForCausalLM", {
        "hidden_size": 64, "ffn_dim": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
        "max_position_embeddings": 256, "word_embed_proj_dim": 64, "dropout": 0.1}),
    "bert": ("BertConfig", "BertForSequenceClassification", {
        "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
        "max_position_embeddings": 256}),
    "roberta": ("RobertaConfig", "RobertaForSequenceClassification", {
        "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
        "max_position_embeddings": 258, "pad_token_id": 1}),
    "deberta-v2": ("DebertaV2Config", "DebertaV2ForSequenceClassification", {
        "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
        "max_position_embeddings": 256, "relative_attention": True, "pos_att_type": ["p2c", "c2p"],
        "position_buckets": 32, "max_relative_positions": -1, "position_biased_input": False,
        "norm_rel_ebd": "layer_norm", "share_att_key": True}),
    "t5": ("T5Config", "T5ForConditionalGeneration", {
        "d_model": 64, "d_ff": 128, "d_kv": 16, "num_layers": 4, "num_heads": 4, "is_encoder_decoder": True,
        "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}),
}
# Today's architectures beyond the probe matrix's families: dense (QK-norm, sandwich norms, fused qkv, no-RoPE
# layers), mixture-of-experts (fused experts, DeepSeek's dense-then-MoE stack and latent attention, GPT-OSS's
# sinks and alternating sliding windows) and mT5 (gated-GELU encoder-decoder with an untied head).
_ARCHITECTURES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 256}),
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 16, "max_position_embeddings": 256, "sliding_window": 16}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256, "pad_token_id": 0}),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 4, "max_position_embeddings": 256, "pad_token_id": 0}),
    "smollm3": ("SmolLM3Config", "SmolLM3ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256, "no_rope_layer_interval": 2, "pad_token_id": 0}),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", {
        "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "num_local_experts": 4, "num_experts_per_tok": 2, "max_position_embeddings": 256}),
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_experts": 4,
        "num_experts_per_tok": 2, "max_position_embeddings": 256}),
    "deepseek_v2": ("DeepseekV2Config", "DeepseekV2ForCausalLM", {
        "hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 5,
        "first_k_dense_replace": 1, "num_attention_heads": 4, "num_key_value_heads": 4, "n_routed_experts": 4,
        "n_shared_experts": 1, "num_experts_per_tok": 2, "kv_lora_rank": 16, "q_lora_rank": None,
        "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16, "n_group": 1, "topk_group": 1,
        "max_position_embeddings": 256}),
    "gpt_oss": ("GptOssConfig", "GptOssForCausalLM", {
        "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2,
        "sliding_window": 16, "max_position_embeddings": 256, "layer_types":
        ["sliding_attention", "full_attention"] * 2}),
    "mt5": ("MT5Config", "MT5ForConditionalGeneration", {
        "d_model": 64, "d_ff": 128, "d_kv": 16, "num_layers": 4, "num_heads": 4, "is_encoder_decoder": True,
        "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1, "tie_word_embeddings": False}),
}
FAMILIES: tuple[str, ...] = tuple(_FAMILIES)
ARCHITECTURES: tuple[str, ...] = (*FAMILIES, *_ARCHITECTURES)
# The config fields that set each family's dropout probabilities (all set to one value by `tiny_model`).
_DROPOUT_FIELDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("qwen3", "gemma3_text", "olmo2", "smollm3", "mixtral", "qwen3_moe", "deepseek_v2", "gpt_oss"),
                    ("attention_dropout",)),
    "phi3": ("attention_dropout", "resid_pdrop", "embd_pdrop"),
    "mt5": ("dropout_rate",),
    "llama": ("attention_dropout",),
    "mistral": ("attention_dropout",),
    "qwen2": ("attention_dropout",),
    "gemma2": ("attention_dropout",),
    "gpt2": ("attn_pdrop", "embd_pdrop", "resid_pdrop"),
    "opt": ("dropout", "attention_dropout"),
    "bert": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "roberta": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "deberta-v2": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    "t5": ("dropout_rate",),
}


def tiny_model(family: str, *, dropout: float = 0.0, **overrides: Any) -> ResolvedModel:
    """A ResolvedModel of the tiny config of `family` (see ARCHITECTURES) with every dropout set to `dropout`."""
    import transformers

    config_class, architecture, values = (_FAMILIES | _ARCHITECTURES)[family]
    drops = dict.fromkeys(_DROPOUT_FIELDS[family], dropout)
    config = getattr(transformers, config_class)(**{**_COMMON, **values, **drops, **overrides})
    data = config.to_dict()
    data["architectures"] = [architecture]
    return ResolvedModel(name=f"tiny-{family}", origin="path", config_json=json.dumps(data, sort_keys=True))

