"""A tiny stand-in for the Qwen emotion model the class always loads (`infer_v2.py:134`, `emotion.py:23-30`).

`QwenEmotion` reads a local folder (not the hub) with `AutoTokenizer` and `AutoModelForCausalLM(dtype="float16",
device_map="auto")`, even when no emotion text is ever asked for. The stand-in is a one-layer Qwen3 with a
byte-level tokenizer whose greedy answer is end-of-text at once, whatever the prompt: `QwenEmotion.inference`
then finds no emotion and answers calm = 1.0 (its fallback), and it draws nothing from any random generator
(`generation_config.json` says greedy).

How the first token is always end-of-text: feature 0 of every token embedding is EOS_FEATURE, and the attention
and MLP output rows of feature 0 are zero, so the residual stream's feature 0 is EOS_FEATURE at every position;
after the final RMSNorm it stays positive, and the output head reads it only into the end-of-text row, with a
gain that outscores every other logit.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reference_hooks.official_hub import json_bytes, safetensors_bytes
from reference_hooks.official_layout import module_weights

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
#: ChatML as Qwen3 formats a chat (our own template text); enable_thinking=False adds an empty think block
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
EOS_FEATURE = 3.0
EOS_LOGIT_GAIN = 20.0
VOCAB = 264  # 256 bytes and 5 specials, rounded up


def tokenizer_json() -> tuple[bytes, dict[str, int]]:
    """A byte-level BPE tokenizer with no merges (every byte a token) and the ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    text = json.dumps(json.loads(tok.to_str()), indent=1, sort_keys=True) + "\n"
    return text.encode(), {s: tok.token_to_id(s) for s in SPECIALS}


def write(folder: Path, seed: int, write_bytes) -> None:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    data, ids = tokenizer_json()
    eos, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    write_bytes(folder / "tokenizer.json", data)
    write_bytes(folder / "tokenizer_config.json", json_bytes({
        "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "bos_token": None, "model_max_length": 4096, "chat_template": CHAT_TEMPLATE}))
    config = Qwen3Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=4096,
                         tie_word_embeddings=False, bos_token_id=pad, eos_token_id=eos, pad_token_id=pad,
                         architectures=["Qwen3ForCausalLM"])
    cfg = config.to_dict()
    cfg.pop("transformers_version", None)
    cfg["dtype"] = "float16"
    write_bytes(folder / "config.json", json_bytes(cfg))
    write_bytes(folder / "generation_config.json", json_bytes(
        {"bos_token_id": pad, "eos_token_id": eos, "pad_token_id": pad, "do_sample": False}))
    weights = module_weights(lambda: Qwen3ForCausalLM(config), "qwen_emo", seed, None)
    weights["model.embed_tokens.weight"][:, 0] = EOS_FEATURE
    for name, value in weights.items():
        if name.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
            value[0, :] = 0.0
    weights["lm_head.weight"][:, 0] = 0.0
    weights["lm_head.weight"][eos, 0] = EOS_LOGIT_GAIN
    write_bytes(folder / "model.safetensors", safetensors_bytes({k: v.astype(np.float16) for k, v in weights.items()}))
