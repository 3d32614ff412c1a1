"""The `semantic` part: SeamlessM4T features, w2v-bert 2.0 up to hidden_states[17], the shipped statistics,
and the semantic codec, for the speaker (`semantic/...`) and for the emotion prompt (`semantic/emo/...`).

infer_v2.py:354-359 (speaker): `extract_features(audio_16k, sampling_rate=16000, return_tensors="pt")` ->
`get_emb` (:263-271: `Wav2Vec2BertModel(...).hidden_states[17]`, then `(x - mean) / std`, std = sqrt(var) of
the stats file that ships in the wheel, maskgct_utils.py:12) -> spk_cond_emb -> `semantic_codec.quantize` ->
S_ref, which the length regulator's prompt half reads. :391-395 (emotion): the emotion recording, loaded again
by librosa (soxr), through the same features and model -> emo_cond_emb. hidden_states[0] is the masked encoder
input, so hidden_states[17] is the output of `layers[16]`. Internals are declared for the first w2v layer and
the first ConvNeXt block (where a layer-level bug shows first); every layer's output is declared.
Homes: `reference_hooks/semantic.py` (transformers' extractor and model, upstream's codec, hooked),
`reimpl/semantic/` (ours: features, w2v, codec).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.stages.spec import EXACT, INTERNAL, FaultSpec, Part, PartConfig, StageSpec


@dataclass(frozen=True)
class SemanticConfig(PartConfig):
    """The hub preprocessor of facebook/w2v-bert-2.0 (padding_value 1.0: the class default is 0.0), its
    `Wav2Vec2BertConfig` (real = the class defaults), the layer infer_v2 reads, and config.yaml's
    `semantic_codec`. The widths 1024 and 8192 are hard-wired downstream (GPT conditioning input, length
    regulator input, the mel-code vocabulary)."""

    # SeamlessM4TFeatureExtractor (hub preprocessor_config.json)
    feature_size: int = 80
    num_mel_bins: int = 80
    sampling_rate: int = 16000
    stride: int = 2
    padding_value: float = 1.0
    # Wav2Vec2BertConfig
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    conv_depthwise_kernel_size: int = 31
    left_max_position_embeddings: int = 64
    right_max_position_embeddings: int = 8
    layer_norm_eps: float = 1e-5
    hidden_layer: int = 17  # infer_v2.py:270 hidden_states[17]
    # config.yaml semantic_codec (RepCodec)
    codebook_size: int = 8192
    codec_hidden_size: int = 1024
    codebook_dim: int = 8
    vocos_dim: int = 384
    vocos_intermediate_dim: int = 2048
    vocos_num_layers: int = 12

    def w2v_config(self) -> dict:
        """The `Wav2Vec2BertConfig` arguments (every other field at its default, the hub model's)."""
        return {"hidden_size": self.hidden_size, "num_hidden_layers": self.num_hidden_layers,
                "num_attention_heads": self.num_attention_heads, "intermediate_size": self.intermediate_size,
                "conv_depthwise_kernel_size": self.conv_depthwise_kernel_size,
                "feature_projection_input_dim": self.feature_size * self.stride,
                "position_embeddings_type": "relative_key",
                "left_max_position_embeddings": self.left_max_position_embeddings,
                "right_max_position_embeddings": self.right_max_position_embeddings,
                "hidden_act": "swish", "layer_norm_eps": self.layer_norm_eps}

    def codec_config(self) -> dict:
        """config.yaml's `semantic_codec` node."""
        return {"codebook_size": self.codebook_size, "hidden_size": self.codec_hidden_size,
                "codebook_dim": self.codebook_dim, "vocos_dim": self.vocos_dim,
                "vocos_intermediate_dim": self.vocos_intermediate_dim, "vocos_num_layers": self.vocos_num_layers}

    def extractor_config(self) -> dict:
        return {"feature_size": self.feature_size, "num_mel_bins": self.num_mel_bins,
                "sampling_rate": self.sampling_rate, "stride": self.stride, "padding_value": self.padding_value,
                "return_attention_mask": True}

    def min_samples(self) -> int:
        """The shortest 16 kHz audio with finite features: two 25 ms frames every 10 ms (one frame gives an
        unbiased per-bin variance of NaN; upstream then runs on, every frame masked)."""
        return 400 + 160


W2V = "w2v"
CODEC = "semantic/codec"
ENC = CODEC + "/encoder"
L0 = W2V + "/layer_00"
B0 = ENC + "/block_00"


def _pass(prefix: str, cond: str, who: str, lines: tuple[str, str, str]) -> tuple[StageSpec, ...]:
    """The stages of one pass (speaker or emotion) through the features and w2v-bert."""
    def s(name, layout, doc, inner=True, **kw):
        return StageSpec(f"{prefix}/{name}", layout, doc=doc, detail=INTERNAL if inner else "boundary",
                         group=prefix, **kw)

    return (
        s("fbank", "B T C", "Kaldi log-mel per 10 ms, before the per-bin normalisation (_extract_fbank_features)"),
        s("features", "B T C", f"{who}: per-bin normalised, padded to even with 1.0, pairs stacked (:{lines[0]})",
          inner=False),
        s("attention_mask", "B T", f"1 real, 0 the half-padded last stacked frame of an odd count (:{lines[1]})",
          inner=False, kind=EXACT),
        s(W2V + "/projection_norm", "B T C", "feature projection: LayerNorm(160)"),
        s(W2V + "/projection", "B T C", "feature projection: Linear(160, 1024)"),
        s(W2V + "/encoder_in", "B T C", "masked frames zeroed: hidden_states[0]"),
        s(L0 + "/ffn1/norm", "B T C", "first macaron FFN: LayerNorm"),
        s(L0 + "/ffn1/out", "B T C", "Linear -> swish -> Linear"),
        s(L0 + "/ffn1/residual", "B T C", "x + 0.5 ffn"),
        s(L0 + "/attn/norm", "B T C", "self-attention LayerNorm"),
        s(L0 + "/attn/q", "B T C", "linear_q"),
        s(L0 + "/attn/k", "B T C", "linear_k"),
        s(L0 + "/attn/v", "B T C", "linear_v"),
        s(L0 + "/attn/pos_bias", "B H T K",
          "relative-key bias (T queries, K keys): q . distance_embedding(clamp(key - query, -64, 8)) / sqrt(Dh)"),
        s(L0 + "/attn/context", "B T C", "heads merged: linear_out's input"),
        s(L0 + "/attn/out", "B T C", "linear_out"),
        s(L0 + "/attn/residual", "B T C", "+ x"),
        s(L0 + "/conv/norm", "B T C", "convolution module LayerNorm"),
        s(L0 + "/conv/masked", "B C T", "padded frames zeroed, channels first"),
        s(L0 + "/conv/pointwise1", "B C T", "1x1 conv to 2C"),
        s(L0 + "/conv/glu", "B C T", "GLU over channels"),
        s(L0 + "/conv/depthwise", "B C T", "causal depthwise conv (k - 1 zeros on the left)"),
        s(L0 + "/conv/depthwise_norm", "B T C", "LayerNorm after the depthwise conv"),
        s(L0 + "/conv/act", "B C T", "swish"),
        s(L0 + "/conv/pointwise2", "B C T", "1x1 conv"),
        s(L0 + "/conv/out", "B T C", "the module's output"),
        s(L0 + "/conv/residual", "B T C", "+ x"),
        s(L0 + "/ffn2/norm", "B T C", "second macaron FFN: LayerNorm"),
        s(L0 + "/ffn2/out", "B T C", "Linear -> swish -> Linear"),
        s(L0 + "/ffn2/residual", "B T C", "x + 0.5 ffn"),
        s(W2V + "/layer_{block}/out", "B T C", "a conformer layer's output (final LayerNorm), hidden state i + 1"),
        s(W2V + "/hidden", "B T C", "hidden state 17 = layer_16/out, what get_emb reads (:270)"),
        s(cond, "B T C", f"(hidden - mean) / sqrt(var), the shipped statistics: {who} (:{lines[2]}, :271)", inner=False,
          input=W2V + "/hidden"),
    )


STAGES = _pass("semantic", "spk_cond", "the speaker", ("354-355", "356", "357")) + (
    StageSpec(ENC + "/in", "B C T", detail=INTERNAL, group=CODEC, doc="spk_cond channels first into VocosBackbone"),
    StageSpec(ENC + "/embed", "B C T", detail=INTERNAL, group=CODEC, doc="Conv1d(1024, vocos_dim, 7, pad 3)"),
    StageSpec(ENC + "/norm", "B T C", detail=INTERNAL, group=CODEC, doc="LayerNorm (eps 1e-6)"),
    StageSpec(B0 + "/dwconv", "B C T", detail=INTERNAL, group=CODEC, doc="ConvNeXt depthwise conv 7"),
    StageSpec(B0 + "/norm", "B T C", detail=INTERNAL, group=CODEC, doc="ConvNeXt LayerNorm"),
    StageSpec(B0 + "/pwconv1", "B T C", detail=INTERNAL, group=CODEC, doc="Linear to the intermediate width"),
    StageSpec(B0 + "/act", "B T C", detail=INTERNAL, group=CODEC, doc="GELU (exact erf)", input="pwconv1"),
    StageSpec(B0 + "/pwconv2", "B T C", detail=INTERNAL, group=CODEC, doc="Linear back"),
    StageSpec(ENC + "/block_{block}/out", "B C T", detail=INTERNAL, group=CODEC, doc="x + gamma * branch"),
    StageSpec(ENC + "/final_norm", "B T C", detail=INTERNAL, group=CODEC, doc="final LayerNorm"),
    StageSpec(ENC + "/out", "B T C", detail=INTERNAL, group=CODEC, doc="Linear(vocos_dim, 1024) (encoder[1])"),
    StageSpec(CODEC + "/z_e", "B C T", detail=INTERNAL, group=CODEC, doc="in_project (weight-normed 1x1) to 8 dims"),
    StageSpec(CODEC + "/codes", "B T", kind=EXACT, group=CODEC, input="margin",
              doc="nearest codeword by cosine (l2-normalised squared distance), codebook 8192"),
    StageSpec(CODEC + "/margin", "B T", derived=True, detail=INTERNAL, group=CODEC,
              doc="second-nearest minus nearest codeword distance (upstream's latent2dist): a near-tie is small",
              checked_by="the codes quantize chose"),
    StageSpec(CODEC + "/z_q", "B C T", detail=INTERNAL, group=CODEC,
              doc="the raw codeword as z_e + (z_q - z_e) (the straight-through sum)"),
    StageSpec(CODEC + "/quantized", "B C T", detail=INTERNAL, group=CODEC, doc="out_project (weight-normed 1x1) to 1024"),
    StageSpec(CODEC + "/emb", "B T C", group=CODEC, doc="S_ref, the second output of quantize(spk_cond) (infer_v2.py:359)"),
) + _pass("semantic/emo", "cond", "the emotion prompt", ("392-393", "394", "395"))

#: the recording whose feature frame count is odd (the bundled one gives an even count): faults of the padding
#: and of the mask show only on it
ODD = "speaker_odd.wav"

FAULTS = (
    FaultSpec("semantic.features.padding_zero",
              "the odd last frame padded with 0.0 (the class default) where the hub's padding_value is 1.0",
              "semantic/features", "confined", recording=ODD),
    FaultSpec("semantic.features.odd_truncate", "an odd frame count stacked by dropping the last frame, not padding it",
              "semantic/features", "length", recording=ODD),
    FaultSpec("semantic.features.mask_even_index",
              "the stacked mask taken from the first frame of each pair: the half-padded last frame counts as real",
              "semantic/attention_mask", "exact", recording=ODD),
    FaultSpec("semantic.features.ddof0", "the per-bin variance with ddof=0 (numpy's default) where upstream's is ddof=1",
              "semantic/features", "affine"),
    FaultSpec("semantic.attention.distance_sign",
              "the relative distance taken as query - key (the 64-left/8-right window mirrored)",
              "semantic/" + L0 + "/attn/pos_bias"),
    FaultSpec("semantic.attention.mask_ignored", "padded keys not masked in self-attention",
              "semantic/" + L0 + "/attn/context", recording=ODD),
    FaultSpec("semantic.w2v.ffn_no_half", "the macaron FFN residual without its 0.5",
              "semantic/" + L0 + "/ffn1/residual", "difference_is_stage"),
    FaultSpec("semantic.w2v.conv_same_padding",
              "the depthwise conv padded (k-1)/2 on both sides ('same') where upstream's is causal",
              "semantic/" + L0 + "/conv/depthwise", "time_shift"),
    FaultSpec("semantic.w2v.hidden_18", "hidden_states[18] (the output of layers[17]) read for 'layer 17'",
              "semantic/w2v/hidden", "equals_stage"),
    FaultSpec("semantic.w2v.hidden_16", "hidden_states[16] (the output of layers[15]) read for 'layer 17'",
              "semantic/w2v/hidden", "equals_stage"),
    FaultSpec("semantic.w2v.divide_by_var", "the hidden states divided by var where upstream divides by sqrt(var)",
              "semantic/spk_cond", "channel_affine"),
    FaultSpec("semantic.codec.gelu_tanh", "ConvNeXt's GELU with the tanh approximation where upstream's is exact",
              "semantic/codec/encoder/block_00/act", "elementwise"),
    FaultSpec("semantic.codec.no_l2_normalize",
              "the nearest codeword by plain Euclidean distance, without l2-normalising z_e and the codebook",
              "semantic/codec/codes", "exact"),
)

PART = Part(
    name="semantic",
    doc="SeamlessM4T features, w2v-bert 2.0 to hidden_states[17], the shipped statistics, the semantic codec",
    stages=STAGES,
    consumes=("frontend/wav_16k", "frontend/emo_wav_16k"),
    produces=("semantic/spk_cond", CODEC + "/codes", CODEC + "/emb", "semantic/emo/cond"),
    config=SemanticConfig,
    faults=FAULTS,
    groups={"w2v": ("semantic/w2v/*", "semantic/emo/w2v/*"), "codec": (CODEC + "/*",)},
)
