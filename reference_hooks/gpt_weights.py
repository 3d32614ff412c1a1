"""The GPT part's seeded checkpoint: UnifiedVoice's parameters by upstream name, and a tokenizer model.

Names and shapes come from upstream's own module, built on the meta device (no memory, any size) before
`post_init_gpt2_config` (which adds `inference_model.*` aliases of the same tensors); every value comes from
our generator keyed by (seed, name), never from a library's init. The conformers' sinusoid tables (`pe`)
are kept as upstream's RelPositionalEncoding computes them.

Scales, chosen away from identity (a dropped affine or bias shows) with activations near unit size: norm
gains 1 + 0.1 N; biases 0.05 N; matrices N / sqrt(fan_in) (GPT-2's Conv1D stores [in, out]: its fan-in is
the first axis); token embeddings 0.5 N; position embeddings 0.2 N; the conformers' rel-pos biases 0.2 N;
perceiver latents 0.5 N; the speed embedding 0.5 N (upstream initialises it to zeros, which would hide a
swapped speed row). `mel_head` is 3x: logits of std ~3, peaked as a trained model's next-code distribution
is; at std 1 top-p keeps ~22 of the top 30 at every step and the sampler's edge rules (the token crossing
top_p, min_keep) never act.

The tokenizer: a sentencepiece BPE model trained in memory from a fixed English text (one thread, no
sampling), byte-identical across runs and processes, stored with the weights as `bpe.model` (uint8), the
name config.yaml gives upstream's own (`dataset.bpe_model`).
"""
from __future__ import annotations

import io
import re

import numpy as np
import torch

from harness.stages.gpt import GptConfig
from reference_hooks.upstream import import_module, load_torchaudio
from reference_hooks.weights import rng_for

TOKENIZER = "bpe.model"
#: the emotion-vector mode's matrices (config.yaml's spk_matrix feat1.pt and emo_matrix feat2.pt, infer_v2.py:231-240):
#: per emotion a block of rows (emo_num), spk_matrix's beside the speaker's CAMPPlus style (192 wide, upstream builds
#: CAMPPlus at its defaults, :204), emo_matrix's beside the GPT's emotion vector (model_dim wide)
SPK_MATRIX, EMO_MATRIX = "spk_matrix", "emo_matrix"
STYLE_DIM = 192
NOT_IN_GPT_PTH = (TOKENIZER, SPK_MATRIX, EMO_MATRIX)
_GPT2_CONV1D = re.compile(r"gpt\.h\.\d+\.(attn|mlp)\.c_\w+\.weight\Z")
_TOKEN_EMBEDDINGS = ("text_embedding.weight", "mel_embedding.weight", "speed_emb.weight")
_POSITION_EMBEDDINGS = ("mel_pos_embedding.emb.weight", "text_pos_embedding.emb.weight")

TRAINING_TEXT = """THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.
A SPEECH SYNTHESIS MODEL TURNS WRITTEN TEXT INTO SOUND, ONE TOKEN AT A TIME.
WE RECORDED THE SPEAKER IN A QUIET ROOM, AND THE MICROPHONE WAS CLOSE.
THE WEATHER TODAY IS MILD, WITH A LIGHT WIND FROM THE WEST!
DID YOU HEAR THE BELLS RINGING IN THE OLD TOWER?
NUMBERS LIKE ONE, TWO, THREE AND FOUR ARE SPELLED OUT IN FULL.
SHE SOLD SEA SHELLS BY THE SEA SHORE; HE WATCHED THE WAVES.
EVERY MORNING THE BAKER OPENS HIS SHOP BEFORE SUNRISE.
PLEASE READ THIS SENTENCE SLOWLY AND CLEARLY - THEN PAUSE.
IT'S A LONG WAY TO THE NEAREST VILLAGE, BUT THE ROAD IS SMOOTH.
MUSIC, LANGUAGE AND MEMORY ARE CLOSELY LINKED IN THE HUMAN BRAIN.
THE CHILDREN LAUGHED WHEN THE PUPPY CHASED ITS OWN TAIL.
OUR TRAIN LEAVES AT SEVEN O'CLOCK, SO WE SHOULD HURRY.
HOW MANY STARS CAN YOU COUNT ON A CLEAR WINTER NIGHT?
A GOOD VOICE SOUNDS NATURAL, EXPRESSIVE AND CALM.
THE RIVER FLOWS GENTLY PAST THE FIELDS OF GOLDEN WHEAT.
WHY DOES THE KETTLE WHISTLE WHEN THE WATER BOILS?
JACK QUIETLY MOVED UP FRONT AND SEIZED THE BIG BALL OF WAX.
THE FIVE BOXING WIZARDS JUMP QUICKLY.
PACK MY BOX WITH FIVE DOZEN LIQUOR JUGS.
SPHINX OF BLACK QUARTZ, JUDGE MY VOW.
THE SCIENTIST EXPLAINED HER RESULTS TO A CURIOUS AUDIENCE.
AFTER THE STORM, THE STREETS WERE WET AND SHINING.
HE WROTE A LETTER TO HIS GRANDMOTHER EVERY SUNDAY.
THE MARKET WAS FULL OF FRESH FRUIT, VEGETABLES AND FLOWERS.
"""


def upstream_kwargs(config: GptConfig) -> dict:
    """config.yaml's `gpt` section with our sizes: what infer_v2.py:136 passes to UnifiedVoice(**cfg.gpt)."""

    def module(prefix: str) -> dict:
        return {"output_size": getattr(config, f"{prefix}_output_size"), "input_layer": "conv2d2",
                "linear_units": getattr(config, f"{prefix}_linear_units"),
                "attention_heads": getattr(config, f"{prefix}_heads"), "num_blocks": getattr(config, f"{prefix}_blocks"),
                "perceiver_mult": config.perceiver_mult}

    return {
        "model_dim": config.model_dim, "max_mel_tokens": config.max_mel_tokens, "max_text_tokens": config.max_text_tokens,
        "heads": config.heads, "use_mel_codes_as_input": True, "mel_length_compression": 1024, "layers": config.layers,
        "number_text_tokens": config.number_text_tokens, "number_mel_codes": config.number_mel_codes,
        "start_mel_token": config.start_mel_token, "stop_mel_token": config.stop_mel_token,
        "start_text_token": config.start_text_token, "stop_text_token": config.stop_text_token,
        "train_solo_embeddings": False, "condition_type": "conformer_perceiver",
        "condition_module": module("cond"), "emo_condition_module": module("emo"),
    }


def model_v2():
    """Upstream's `gpt.model_v2`. transformers imports torchaudio when it is installed (audio_utils.py:58): its
    bare Python package is registered first, as the front end's is (reference_hooks/upstream.py)."""
    load_torchaudio()
    return import_module("gpt.model_v2")


def meta_module(config: GptConfig) -> torch.nn.Module:
    """UnifiedVoice on the meta device: every name and shape, no memory, no library init that matters.

    The class is imported first, outside the meta context: a module imported inside it would keep meta
    tensors as its globals (torchaudio's kaldi EPSILON did, and fbank then failed to read it)."""
    unified_voice = model_v2().UnifiedVoice
    with torch.device("meta"):
        return unified_voice(**upstream_kwargs(config))


def _draw(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    g = rng_for(seed, name)
    leaf = name.rsplit(".", 1)[-1]
    if name in _TOKEN_EMBEDDINGS:
        value = 0.5 * g.standard_normal(shape)
    elif name in _POSITION_EMBEDDINGS or leaf in ("pos_bias_u", "pos_bias_v"):
        value = 0.2 * g.standard_normal(shape)
    elif leaf == "latents":
        value = 0.5 * g.standard_normal(shape)
    elif len(shape) == 1 and leaf in ("weight", "gamma"):  # LayerNorm and RMSNorm gains
        value = 1.0 + 0.1 * g.standard_normal(shape)
    elif len(shape) == 1:  # biases
        value = 0.05 * g.standard_normal(shape)
    else:
        fan_in = shape[0] if _GPT2_CONV1D.match(name) else int(np.prod(shape[1:]))
        value = g.standard_normal(shape) / np.sqrt(fan_in)
        if name == "mel_head.weight":
            value *= 3.0
    return value.astype(np.float32)


def seeded(config: GptConfig, seed: int) -> dict[str, np.ndarray]:
    """The GPT's seeded checkpoint: every parameter and buffer of UnifiedVoice, and the tokenizer model."""
    shapes = {name: tuple(t.shape) for name, t in meta_module(config).state_dict().items()}
    embedding = import_module("gpt.conformer.embedding")
    keep = {}
    for prefix, width in (("conditioning_encoder", config.cond_output_size), ("emo_conditioning_encoder",
                                                                               config.emo_output_size)):
        keep[f"{prefix}.embed.pos_enc.pe"] = embedding.RelPositionalEncoding(width, 0.0).pe.numpy().astype(np.float32)
    out = {}
    for name, shape in shapes.items():
        if name in keep:
            if keep[name].shape != shape:
                raise RuntimeError(f"{name}: upstream's table {keep[name].shape} does not fit {shape}")
            out[name] = keep[name]
        else:
            out[name] = _draw(name, shape, seed)
    out[TOKENIZER] = np.frombuffer(train_tokenizer(config.tokenizer_vocab), dtype=np.uint8).copy()
    out.update(matrices(config, seed))
    return out


def matrices(config: GptConfig, seed: int) -> dict[str, np.ndarray]:
    """spk_matrix N(0, 1) (only its directions count: rows are picked by cosine) and emo_matrix at rms 0.5, the size
    of the emotion vector its rows are mixed into."""
    rows = sum(config.emo_num)
    spk = rng_for(seed, SPK_MATRIX).standard_normal((rows, STYLE_DIM))
    emo = 0.5 * rng_for(seed, EMO_MATRIX).standard_normal((rows, config.model_dim))
    return {SPK_MATRIX: spk.astype(np.float32), EMO_MATRIX: emo.astype(np.float32)}


def train_tokenizer(vocab_size: int) -> bytes:
    """A BPE model of `vocab_size` pieces from TRAINING_TEXT: one thread, a fixed order, no sampling."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAINING_TEXT.strip().splitlines()), model_writer=buffer, vocab_size=vocab_size,
        model_type="bpe", num_threads=1, character_coverage=1.0, minloglevel=2)
    return buffer.getvalue()


def tokenizer_bytes(weights: dict[str, np.ndarray]) -> bytes:
    if TOKENIZER not in weights:
        raise RuntimeError(f"the GPT checkpoint holds no tokenizer model ({TOKENIZER})")
    return np.asarray(weights[TOKENIZER], dtype=np.uint8).tobytes()
