"""Hooks on upstream's UnifiedVoice and on transformers' beam search: every GPT stage, every draw.

Forward hooks see the conformers, perceivers and GPT-2 blocks; the methods hooks cannot see
(`get_emovec`, `merge_emovec`, `get_conditioning`, `prepare_gpt_inputs`, `inference_speech`, the beam-search
helpers, the logits processors, `torch.multinomial`) are wrapped through `Hooks.patch` and restored by
`hooked()`. Generation is buffered for every beam row (transformers 5.17.0 `_beam_search`, utils.py:3480-3700)
and the per-token stages are written when it ends, for the row the FINAL sequence came from at each step
(its beam indices, kept by `_update_finished_beams`). The draws are `reference_hooks/gpt_draws.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from reference_hooks.gpt_draws import Draws
from reference_hooks.recorder import Recorder


@dataclass
class Generation:
    """One `generate` call's buffers, every beam row, per forward call or step."""

    inputs: list = field(default_factory=list)  # last-position input embeddings [R, 1, C]
    positions: list = field(default_factory=list)  # the mel position of each call's new row
    kv: list = field(default_factory=list)  # per call: "ok: ..." / "MISMATCH: ..." (was the KV cache used?)
    logits: list = field(default_factory=list)  # [R, V], model dtype
    penalized: list = field(default_factory=list)  # after RepetitionPenaltyLogitsProcessor [R, V]
    scaled: list = field(default_factory=list)  # after TemperatureLogitsWarper [R, V]
    scores: list = field(default_factory=list)  # after the whole processor list [R, V]
    next_rows: list = field(default_factory=list)  # [1, N] source rows of the next running beams
    final_beam_indices: torch.Tensor | None = None


@dataclass
class Where:
    """Where the run is, so a hook knows the stage path of what it sees."""

    segment: int = -1
    phase: str = ""  # the conditioning prefix the emotion encoder's hooks write under
    emo_calls: int = 0
    gpt_phase: str = ""  # prefill, step, latent
    gen: Generation | None = None

    @property
    def prefix(self) -> str:
        return f"gpt/seg_{self.segment:02d}"

    @property
    def conditioning(self) -> bool:
        """Upstream recomputes the conditioning for every segment (same values): it is recorded once."""
        return self.segment == 0


def _encoder(hooks, rec: Recorder, where: Where, encoder, perceiver, prefix_of) -> None:
    def put(name: str, pick=lambda o: o):
        def hook(_m, _args, out):
            if where.conditioning:
                rec(f"{prefix_of()}/{name}", pick(out))
        return hook

    first = lambda o: o[0]  # noqa: E731  (x, ...) tuples of the conformer's modules
    hooks.forward(encoder.embed, put("subsampling", first))
    for i, layer in enumerate(encoder.encoders):
        hooks.forward(layer.self_attn, put(f"block_{i:02d}/attn", first))
        hooks.forward(layer.conv_module, put(f"block_{i:02d}/conv", first))
        hooks.forward(layer, put(f"block_{i:02d}/out", first))
    hooks.forward(encoder.after_norm, put("encoder_out"))
    hooks.forward(perceiver.proj_context, put("perceiver/context"))
    for i, (attn, ff) in enumerate(perceiver.layers):
        hooks.forward(attn, put(f"perceiver/layer_{i}/attn"))
        hooks.forward(ff, put(f"perceiver/layer_{i}/ff"))


def _wrap(hooks, owner, name: str, after) -> None:
    """Replace owner.name by a call of the original followed by `after(args, kwargs, out)`."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        after(args, kwargs, out)
        return out

    hooks.patch(owner, name, wrapper)


def install(hooks, model, rec: Recorder, where: Where, draws: Draws) -> None:
    """Every hook and wrapper of one run over `model` (UnifiedVoice after post_init_gpt2_config)."""
    _encoder(hooks, rec, where, model.conditioning_encoder, model.perceiver_encoder, lambda: "gpt/cond")
    _encoder(hooks, rec, where, model.emo_conditioning_encoder, model.emo_perceiver_encoder, lambda: where.phase)
    hooks.forward(model.emo_perceiver_encoder,
                  lambda _m, _a, out: rec(f"{where.phase}/latent", out.squeeze(1)) if where.conditioning else None)

    original_get_emovec = model.get_emovec

    def get_emovec(*args, **kwargs):
        # merge_emovec (model_v2.py:855-862) calls it on the emotion features, then on the speaker's
        where.phase = "gpt/emo" if where.emo_calls % 2 == 0 else "gpt/emo_base"
        where.emo_calls += 1
        out = original_get_emovec(*args, **kwargs)
        if where.conditioning:
            rec(f"{where.phase}/vec", out)
        return out

    hooks.patch(model, "get_emovec", get_emovec)
    _wrap(hooks, model, "merge_emovec", lambda a, k, out: rec("gpt/emovec", out) if where.conditioning else None)
    _wrap(hooks, model, "get_conditioning",
          lambda a, k, out: rec("gpt/cond/latent", out) if where.conditioning else None)

    def prompt(args, _kwargs, out):
        rec(f"{where.prefix}/conds", args[0])
        rec(f"{where.prefix}/prompt", out[1])

    _wrap(hooks, model, "prepare_gpt_inputs", prompt)
    _generation(hooks, model, rec, where, draws)
    _latent_pass(hooks, model, rec, where)


def _generation(hooks, model, rec: Recorder, where: Where, draws: Draws) -> None:
    im = model.inference_model
    original_inference = model.inference_speech

    def inference_speech(*args, **kwargs):
        where.gen, where.gpt_phase = Generation(), "prefill"
        draws.start_segment(where.segment)
        out = original_inference(*args, **kwargs)
        _emit_tokens(rec, where, draws, out[0])
        where.gen, where.gpt_phase = None, ""
        return out

    hooks.patch(model, "inference_speech", inference_speech)

    def call_in(_m, args, kwargs):
        # GPT2InferenceModel.forward (model_v2.py:115-134): the new row's mel position is
        # attention_mask.shape[1] - mel_len on the cache path, 0 (the start code) in the prefill
        ids, mask, past = kwargs.get("input_ids", args[0] if args else None), kwargs["attention_mask"], \
            kwargs.get("past_key_values")
        mel_len, cached = im.cached_mel_emb.shape[1], past.get_seq_length() if past is not None else 0
        gen = where.gen
        if not gen.logits:
            gen.positions.append(ids.shape[1] - mel_len - 1)
            ok = cached == 0 and ids.shape[1] == mask.shape[1] == mel_len + 1
            gen.kv.append(f"prefill of {ids.shape[1]} ids" if ok else
                          f"MISMATCH: prefill of {ids.shape[1]} ids over a cache of {cached}")
        else:
            gen.positions.append(mask.shape[1] - mel_len)
            ok = ids.shape[1] == 1 and cached == mask.shape[1] - 1
            gen.kv.append(f"one id over a KV cache of {cached}" if ok else
                          f"MISMATCH: {ids.shape[1]} ids over a cache of {cached} (mask {mask.shape[1]}): "
                          "the KV cache is not used")

    hooks.pre(im, call_in, with_kwargs=True)
    hooks.forward(im, lambda _m, _a, out: where.gen.logits.append(out.logits[:, -1, :].detach().clone()))

    def gpt_in(_m, _args, kwargs):
        emb = kwargs["inputs_embeds"]
        if where.gpt_phase in ("prefill", "step"):
            where.gen.inputs.append(emb[:, -1:, :].detach().clone())
        elif where.gpt_phase == "latent":
            rec(f"{where.prefix}/latent/in", emb)

    hooks.pre(model.gpt, gpt_in, with_kwargs=True)
    for i, layer in enumerate(model.gpt.h):
        def layer_out(_m, _a, out, i=i):
            if where.gpt_phase == "prefill":
                rec(f"{where.prefix}/prefill/layer_{i}", out[:1])
            elif where.gpt_phase == "latent":
                rec(f"{where.prefix}/latent/layer_{i}", out)
        hooks.forward(layer, layer_out)
    hooks.forward(model.gpt, lambda *_: setattr(where, "gpt_phase", "step") if where.gpt_phase == "prefill" else None)

    def running(_args, _kwargs, out):
        step = len(where.gen.next_rows)  # running_beam_indices[:, :, cur_len - prompt]: this step's source rows
        where.gen.next_rows.append(out[2][:, :, step].to(torch.int64).clone())

    _wrap(hooks, im, "_get_running_beams_for_next_iteration", running)
    _wrap(hooks, im, "_update_finished_beams", lambda a, k, out: setattr(where.gen, "final_beam_indices", out[2]))
    _processors(hooks, where)
    draws.install(hooks, where)


def _processors(hooks, where: Where) -> None:
    """The processed scores: after the repetition penalty, after the temperature, after the whole list."""
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper

    def after(cls, buffer: str):
        original = cls.__call__

        def call(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            if where.gen is not None:
                getattr(where.gen, buffer).append(out.detach().clone())
            return out

        hooks.patch(cls, "__call__", call)

    after(RepetitionPenaltyLogitsProcessor, "penalized")
    after(TemperatureLogitsWarper, "scaled")
    after(LogitsProcessorList, "scores")


def _latent_pass(hooks, model, rec: Recorder, where: Where) -> None:
    def start(_m, _args):
        where.gpt_phase = "latent"

    def end(_m, _args, out):
        rec(f"{where.prefix}/latent/out", out)
        where.gpt_phase = ""

    hooks.pre(model, start)
    hooks.forward(model, end)


def _emit_tokens(rec: Recorder, where: Where, draws: Draws, codes: torch.Tensor) -> None:
    """The per-token stages of the final sequence: at step t, the beam row its token t came from."""
    g = where.gen
    n = codes.shape[1]
    rows = g.final_beam_indices[0, 0, :n].to(torch.int64).tolist()
    if any(r < 0 for r in rows) or len(g.logits) < n:
        raise RuntimeError(f"the final sequence's beam rows are not all known ({rows}, {len(g.logits)} steps)")
    for t, row in enumerate(rows):
        tp = f"{where.prefix}/token_{t:04d}"
        rec(f"{tp}/position", torch.tensor([g.positions[t]], dtype=torch.int64))
        rec.checks[f"{tp}/position"] = (g.kv[t] if g.kv[t].startswith("MISMATCH") else f"ok: {g.kv[t]}")
        rec(f"{tp}/input", g.inputs[t][row : row + 1])
        rec(f"{tp}/logits", g.logits[t][row : row + 1])
        rec(f"{tp}/penalized", g.penalized[t][row : row + 1])
        rec(f"{tp}/scaled", g.scaled[t][row : row + 1])
        rec(f"{tp}/kept", torch.isfinite(g.scores[t][row : row + 1]))
        rec(f"{tp}/noise", draws.noise[t])
        rec(f"{tp}/candidates", draws.candidates[t])
        rec(f"{tp}/beams", g.next_rows[t])
    for t, row in enumerate(rows):  # what the search decided in the end: known only now, so written last
        rec(f"{where.prefix}/token_{t:04d}/row", torch.tensor([row], dtype=torch.int64))
        rec(f"{where.prefix}/token_{t:04d}/code", codes[:, t].to(torch.int64))
    rec.flush()
