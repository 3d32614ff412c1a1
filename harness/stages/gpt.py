"""The `gpt` part: text -> ids, speaker and emotion conditioning, beam-sampled codes, and the latent.

UnifiedVoice v2 (indextts/gpt/model_v2.py) as infer_v2.py:545-671 runs it: the text's sentencepiece ids,
split into segments; the emotion vector (the emotion conformer + perceiver on the emotion features, then
on the speaker's, merged as base + alpha (emo - base)); the speaker latents (conformer + perceiver, 32
latents); per segment the prompt [conds | text], transformers' beam-search sampling (num_beams 3, every
`torch.multinomial` recorded as the Exp(1) noise it consumed, and replayed), the codes cut at the stop
code, and the latent pass over [conds | text | codes].

Per-token stages follow the FINAL sequence: at each step, the beam row it came from. Teacher-forced, the
recorded codes are fed one at a time through the KV path (mel positions 0, 2, 3, ...); the sampler's
decisions (candidates, beams, and the final sequence's rows and codes) cannot be taught (they need every
beam row, and the end of the search) and are judged free-running. The final sequence's rows and codes are
written after every step's stages: a bug at step 5 may end the search on another beam, whose codes differ
from step 0 on; that is a consequence, not a root. The processed scores are stored as `scaled` (after the
temperature) and `kept` (the top-k / top-p survivors, exact): `-inf` is not a value a float metric compares.
Homes: `reference_hooks/gpt.py` (+ `gpt_hooks.py`, `gpt_draws.py`, `gpt_weights.py`), `reimpl/gpt/`.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import EXACT, INTERNAL, FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class GptConfig(PartConfig):
    """config.yaml's `gpt` section, the embedded tokenizer's size, and infer_v2's generation settings."""

    RUN_FIELDS = ("top_p", "top_k", "temperature", "num_beams", "repetition_penalty", "length_penalty", "max_tokens",
                  "max_text_tokens_per_segment", "max_segments", "emo_alpha", "emo_vector", "emo_random")

    model_dim: int = 1280
    layers: int = 24
    heads: int = 20
    max_mel_tokens: int = 1815
    max_text_tokens: int = 600
    number_text_tokens: int = 12000
    number_mel_codes: int = 8194
    start_mel_token: int = 8192
    stop_mel_token: int = 8193
    start_text_token: int = 0
    stop_text_token: int = 1
    cond_output_size: int = 512
    cond_linear_units: int = 2048
    cond_heads: int = 8
    cond_blocks: int = 6
    emo_output_size: int = 512
    emo_linear_units: int = 1024
    emo_heads: int = 4
    emo_blocks: int = 4
    perceiver_mult: int = 2
    tokenizer_vocab: int = 256  # the embedded sentencepiece model, trained in memory (not upstream's bpe.model)
    # config.yaml's emo_num: the rows of feat1.pt / feat2.pt per emotion (happy, angry, sad, afraid, disgusted,
    # melancholic, surprised, calm), the emotion-vector mode's matrices (infer_v2.py:231-240)
    emo_num: tuple[int, ...] = (3, 17, 2, 8, 4, 5, 10, 24)
    # infer_v2.py:563-570 defaults, and the cap on generated tokens (upstream's max_mel_tokens, 1500)
    top_p: float = 0.8
    top_k: int = 30
    temperature: float = 0.8
    num_beams: int = 3
    repetition_penalty: float = 10.0
    length_penalty: float = 0.0
    max_tokens: int = 20
    max_text_tokens_per_segment: int = 120
    max_segments: int = 4  # our budget: each segment runs the GPT, the length regulator and the CFM
    emo_alpha: float = 1.0  # infer_v2.py:521-525: forced to 1.0 whenever the emotion reference is the speaker
    # infer's emo_vector (one weight per emotion; () = off) and use_random (its rows drawn, not the nearest to the
    # speaker's style): infer_v2.py:497-541, the user's alpha then scaling the weights (:509-515)
    emo_vector: tuple[float, ...] = ()
    emo_random: bool = False

    @property
    def emo_vector_weights(self) -> list[float]:
        """infer_v2.py:509-515: the weights scaled by alpha clamped to [0, 1] and truncated to 4 decimals, in
        Python floats (torch.tensor makes them float32 after, :531)."""
        scale = max(0.0, min(1.0, self.emo_alpha))
        return list(self.emo_vector) if scale == 1.0 else [int(x * scale * 10000) / 10000 for x in self.emo_vector]

    @property
    def merge_alpha(self) -> float:
        """What merge_emovec mixes with: 1.0 in the emotion-vector mode (emo_audio_prompt is dropped, :497-500,
        so :521-525 force 1.0), the user's alpha otherwise."""
        return 1.0 if self.emo_vector else self.emo_alpha

SEG = "gpt/seg_{seg}"
EMO_VECTOR = "gpt/emo_vector"
#: the run the emotion-vector faults need: weights whose scaling by alpha 0.6 truncates differently from rounding
#: (0.29 x 0.6 x 10000 = 1739.99...), and few tokens (the mode acts before the first)
_EMO_VECTOR_RUN = (("gpt__emo_vector", (0.29, 0.0, 0.2, 0.0, 0.0, 0.1, 0.0, 0.15)), ("gpt__emo_alpha", 0.6),
                   ("gpt__max_tokens", 2))
TOKEN = SEG + "/token_{token}"
_CONDITIONING = "gpt/conditioning"


def _encoder(prefix: str, what: str) -> tuple[StageSpec, ...]:
    """The stages of one conformer + perceiver run (`gpt/cond`, `gpt/emo` or `gpt/emo_base`)."""
    g = _CONDITIONING
    return (
        StageSpec(f"{prefix}/subsampling", "B T C", group=g, detail=INTERNAL,
                  doc=f"{what}: Conv2dSubsampling2 (conv 3x3 stride 2 + ReLU, Linear) times sqrt(D)"),
        StageSpec(f"{prefix}/block_{{block}}/attn", "B T C", group=g, detail=INTERNAL,
                  doc="relative-position self-attention (no rel_shift), before the residual"),
        StageSpec(f"{prefix}/block_{{block}}/conv", "B T C", group=g, detail=INTERNAL,
                  doc="convolution module (GLU, depthwise k15, LayerNorm, SiLU), before the residual"),
        StageSpec(f"{prefix}/block_{{block}}/out", "B T C", group=g, detail=INTERNAL,
                  doc="conformer block output (after norm_final)"),
        StageSpec(f"{prefix}/encoder_out", "B T C", group=g, doc="conformer output (after_norm)"),
        StageSpec(f"{prefix}/perceiver/context", "B T C", group=g, detail=INTERNAL,
                  doc="perceiver proj_context(encoder output)"),
        StageSpec(f"{prefix}/perceiver/layer_{{layer}}/attn", "B T C", group=g, detail=INTERNAL,
                  doc="latents attending to cat(latents, context), before the residual"),
        StageSpec(f"{prefix}/perceiver/layer_{{layer}}/ff", "B T C", group=g, detail=INTERNAL,
                  doc="GEGLU feed-forward, before the residual"),
    )


def _emotion(prefix: str, what: str) -> tuple[StageSpec, ...]:
    return _encoder(prefix, what) + (
        StageSpec(f"{prefix}/latent", "B C", group=_CONDITIONING, doc="the emotion perceiver's one latent [B, 1024]"),
        StageSpec(f"{prefix}/vec", "B C", group=_CONDITIONING, doc="emo_layer(emovec_layer(latent)) [B, 1280]"),
    )


def _token(name: str, layout: str, doc: str, **kw) -> StageSpec:
    return StageSpec(f"{TOKEN}/{name}", layout, group=TOKEN, doc=doc, **kw)


STAGES = (
    StageSpec("gpt/text_ids", "B T", kind=EXACT, group="gpt/text",
              doc="ids of the whole text: tokenize (CJK split, upper case) -> sentencepiece -> PieceToId"),
    StageSpec(SEG + "/text_ids", "B T", kind=EXACT, group="gpt/text",
              doc="ids of one segment (split_segments at sentence ends, max_text_tokens_per_segment)"),
    *_emotion("gpt/emo", "emotion features"),
    *_emotion("gpt/emo_base", "speaker features (merge_emovec's base)"),
    StageSpec("gpt/emovec", "B C", group=_CONDITIONING, doc="merge_emovec: base + alpha (emo - base)"),
    StageSpec(EMO_VECTOR + "/random_rows", "B C", kind=EXACT, group=EMO_VECTOR, draw=True,
              doc="INPUT: use_random's row per emotion, random.randint(0, n - 1) (infer_v2.py:533)"),
    StageSpec(EMO_VECTOR + "/rows", "B C", kind=EXACT, group=EMO_VECTOR,
              doc="the row of each emotion's block of emo_matrix: the drawn one, or the spk_matrix row most "
                  "cosine-similar to the speaker's style (find_most_similar_cosine, :535)"),
    StageSpec(EMO_VECTOR + "/emovec", "B C", group=EMO_VECTOR,
              doc="what the GPT is conditioned on in the emotion-vector mode: sum(w x emo_matrix rows) + "
                  "(1 - sum(w)) merge_emovec (:537-541, :606-607; w scaled by alpha, :509-515)"),
    *_encoder("gpt/cond", "speaker features"),
    StageSpec("gpt/cond/latent", "B T C", group=_CONDITIONING, doc="get_conditioning: 32 speaker latents (RMSNorm)"),
    StageSpec(SEG + "/conds", "B T C", group=SEG + "/prompt",
              doc="[latents + emovec, speed_emb[1], speed_emb[0]]: the conditioning rows"),
    StageSpec(SEG + "/prompt", "B T C", group=SEG + "/prompt",
              doc="zero rows for dropped ids (0 and 1), conds, text embeddings framed by 0 ... 1 + text positions"),
    StageSpec(SEG + "/prefill/layer_{layer}", "B T C", group=SEG + "/prompt", detail=INTERNAL,
              doc="GPT-2 block outputs of the prefill over the prompt and the start code (one of the beam rows)"),
    _token("position", "B", "mel position of the code fed for this token: 0, then 2, 3, ... (KV cache)", kind=EXACT),
    _token("input", "B T C", "the code embedding fed (start code, else the previous code) + its mel position",
           detail=INTERNAL),
    _token("logits", "B V", "logits of the final sequence's beam row (mel_head(final_norm(ln_f(h))))"),
    _token("penalized", "B V", "log_softmax, then the repetition penalty over every id of the row (float32)",
           detail=INTERNAL, input="logits"),
    _token("scaled", "B V", "penalized / temperature", detail=INTERNAL, input="penalized"),
    _token("kept", "B V", "the top-k then top-p survivors (min keep 2); the sampler's scores are -inf elsewhere",
           kind=EXACT),
    _token("noise", "B V", "INPUT: the Exp(1) noise torch.multinomial consumed, every beam row [1, beams x V]",
           draw=True),
    _token("candidates", "B K", "the 2 x beams candidates multinomial picked (flat indices into beams x V)",
           kind=EXACT),
    _token("beams", "B N", "source rows of the next running beams (the KV-cache reorder)", kind=EXACT),
    _token("row", "B", "the beam row the final sequence came from (beam_indices), written after every step",
           kind=EXACT),
    _token("code", "B", "the final sequence's code at this step, written after every step", kind=EXACT, input="logits"),
    StageSpec(SEG + "/codes", "B T", kind=EXACT, group=SEG + "/latent",
              doc="the generated codes, cut at the first stop code (infer_v2.py:638-650)"),
    StageSpec(SEG + "/latent/in", "B T C", group=SEG + "/latent", detail=INTERNAL,
              doc="latent pass input: conds, text framed 0..1 and codes framed 8192..8193, each + positions"),
    StageSpec(SEG + "/latent/layer_{layer}", "B T C", group=SEG + "/latent", detail=INTERNAL,
              doc="GPT-2 block outputs of the latent pass"),
    StageSpec(SEG + "/latent/out", "B T C", group=SEG + "/latent",
              doc="final_norm(ln_f(h)) at the codes' rows, the last two dropped: the latent [B, codes, 1280]"),
)

_T0 = "gpt/seg_00/token_0000"
FAULTS = (
    FaultSpec("gpt.gpt2.one_shot_positions",
              "KV-cache steps embed the code fed for token t at mel position t (0, 1, 2, ... as one forward numbers "
              "them) where upstream's cache path uses attention_mask length - mel_len = t + 1 (0, 2, 3, ...)",
              "gpt/seg_00/token_0001/position", "exact"),
    FaultSpec("gpt.sampler.penalty_on_logits",
              "repetition penalty applied to the raw logits, then log_softmax; transformers penalises the "
              "log-probabilities", f"{_T0}/penalized", "confined"),
    FaultSpec("gpt.sampler.top_p_exclusive",
              "top-p drops the token whose cumulative probability crosses top_p; transformers keeps it",
              f"{_T0}/kept", "exact"),
    FaultSpec("gpt.sampler.temperature_last",
              "temperature applied after top-k and top-p; transformers divides before both", f"{_T0}/kept", "exact"),
    FaultSpec("gpt.beams.no_beam_scores",
              "candidates drawn from softmax(scores) without the running beam scores added", f"{_T0}/candidates",
              "exact"),
    FaultSpec("gpt.emotion_vector.no_speaker_share",
              "the emotion vector's rows added to merge_emovec's output at full weight; upstream scales that output by "
              "1 - sum(weights) (infer_v2.py:606-607)", EMO_VECTOR + "/emovec", "difference_is_stage", config=_EMO_VECTOR_RUN),
    FaultSpec("gpt.emotion_vector.first_row",
              "the first row of every emotion's block taken; upstream takes the spk_matrix row nearest the speaker's "
              "style by cosine (find_most_similar_cosine, infer_v2.py:535)", EMO_VECTOR + "/rows", "exact",
              config=_EMO_VECTOR_RUN),
    FaultSpec("gpt.emotion_vector.weights_rounded",
              "the weights scaled by alpha and rounded to 4 decimals; upstream truncates, int(w x alpha x 10000) / "
              "10000 (infer_v2.py:515)", EMO_VECTOR + "/emovec", "", config=_EMO_VECTOR_RUN),
    FaultSpec("gpt.text.no_upper", "the text handed to sentencepiece as typed, without tokenize_by_CJK_char's "
              "upper-casing", "gpt/text_ids", ""),
    FaultSpec("gpt.sampler.penalty_skips_prompt",
              "repetition penalty only over the generated codes; transformers penalises every id of the row, "
              "the fake prompt ids (1) and the start code (8192) included", f"{_T0}/penalized", "confined"),
    FaultSpec("gpt.sampler.min_keep_one",
              "top-k and top-p keep at least 1 code (the default without beams); with beams transformers keeps 2",
              "gpt/seg_00/token_0002/kept", "exact"),
    FaultSpec("gpt.conformer.rel_shift",
              "Transformer-XL's rel_shift applied to the position scores; upstream's conformer has none",
              "gpt/emo/block_00/attn", ""),
)

PART = Part(
    name="gpt",
    doc="text ids, speaker and emotion conditioning, beam-sampled codes (draws recorded and replayed), the latent",
    stages=STAGES,
    consumes=("inputs/text", "semantic/spk_cond", "semantic/emo/cond", "style/style"),
    produces=(SEG + "/codes", SEG + "/latent/out"),
    config=GptConfig,
    faults=FAULTS,
    per_segment=True,
    exports=(TOKEN + "/noise",),
)
