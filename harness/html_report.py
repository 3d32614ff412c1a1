"""The HTML diff report: one self-contained page (styles, script, images and audio inline, nothing
fetched) that opens from disk or from a CI artefact store.

It renders a `Comparison` and reads only the few stages it plots, one at a time, from the traces.
The table works without the script; the script adds a stage filter and column sorting.
"""
from __future__ import annotations

import base64
import html
import io
import wave
from pathlib import Path

import numpy as np

from harness import audio_metrics, diagnosis, pipeline_diagram, plots, stages
from harness.align import aligned
from harness.compare import Comparison, StageResult, TraceSet, diff_source
from harness.console import verdict_line
from harness.files import write_text

MAX_HISTOGRAMS = 12
AUDIO_SECONDS = 6.0
MAX_PLAYED = 3  # failing audio stages given players, besides the recording
PROVENANCE_FIELDS = ("implementation", "mode", "reference_version", "reference_kind", "torch_version", "config",
                     "config_digest", "seed", "dtype", "faults", "threads", "start_time", "end_time", "noise_check")

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.verdict{padding:12px 14px;border-radius:6px;font-weight:600;word-break:break-word}
.verdict.pass{background:#e7f6ea;border:1px solid #7cc48a}.verdict.fail{background:#fdecea;border:1px solid #e0867d}
.warn{color:#8a5a00}code,pre{font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f5f5f5;padding:8px 10px;border-radius:4px;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}
table.prov td,table.prov th{border-bottom:1px solid #eee;font-size:12px}
table.stages{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;width:100%}
table.stages th{position:sticky;top:0;background:#fafafa;border-bottom:2px solid #ccc;cursor:pointer;white-space:nowrap}
table.stages td.n{text-align:right}table.stages tr:nth-child(even){background:#fbfbfb}
tr.fail,tr.error{background:#fdecea !important}tr.propagated{background:#fff6e0 !important}
tr#first-divergence{outline:2px solid #c62828;background:#f9d5d1 !important}
.mark{color:#c62828;font-weight:700}.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{border:1px solid #eee;padding:6px;border-radius:4px;background:#fff}.plot img{max-width:100%;display:block}
.plot .cap{font-size:12px;color:#555;margin-top:4px}.filter{margin:6px 0 8px;padding:4px 6px;width:360px}
.small{font-size:12px;color:#666}audio{width:360px}
"""

SCRIPT = """
(function(){
  var input=document.getElementById('stage-filter');var table=document.getElementById('stages');
  var rows=Array.prototype.slice.call(table.tBodies[0].rows);var count=document.getElementById('shown');
  input.addEventListener('input',function(){var q=input.value.trim();var n=0;
    rows.forEach(function(r){var hit=!q||r.cells[1].textContent.indexOf(q)!==-1;r.style.display=hit?'':'none';if(hit)n++;});
    count.textContent=n;});
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
    th.addEventListener('click',function(){var asc=th.getAttribute('data-dir')!=='asc';
      th.setAttribute('data-dir',asc?'asc':'desc');
      var num=th.hasAttribute('data-num');
      rows.sort(function(a,b){var x=a.cells[col].getAttribute('data-v')||a.cells[col].textContent;
        var y=b.cells[col].getAttribute('data-v')||b.cells[col].textContent;
        if(num){x=parseFloat(x);y=parseFloat(y);if(isNaN(x))x=-1;if(isNaN(y))y=-1;return asc?x-y:y-x;}
        return asc?(x<y?-1:x>y?1:0):(x<y?1:x>y?-1:0);});
      var body=table.tBodies[0];rows.forEach(function(r){body.appendChild(r);});});});
})();
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (f'<div class="plot"><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f'<div class="cap">{_e(caption)}</div></div>')


def _g(x) -> str:
    return "-" if x is None else (f"{x:.2e}" if x == x else "nan")


def _wav_uri(samples: np.ndarray, rate: int) -> str:
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)[: int(rate * AUDIO_SECONDS)]
    pcm = (np.clip(np.nan_to_num(samples), -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()


def _provenance(c: Comparison) -> str:
    roles = list(c.provenance)
    head = "".join(f"<th>{_e(r)}</th>" for r in roles)
    rows = []
    for field in PROVENANCE_FIELDS:
        cells = [c.provenance[r].get(field) for r in roles]
        if all(v in (None, "", []) for v in cells):
            continue
        rows.append(f"<tr><th>{_e(field)}</th>" + "".join(f"<td>{_e('' if v is None else v)}</td>" for v in cells) + "</tr>")
    rows.append("<tr><th>trace</th>" + "".join(f"<td><code>{_e(c.traces[r])}</code></td>" for r in roles) + "</tr>")
    return f'<table class="prov"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def _row(i: int, r: StageResult, first: StageResult | None) -> str:
    ident = ' id="first-divergence"' if r is first else ""
    mark = ' <span class="mark">&larr; first divergence</span>' if r is first else ""
    hint = diagnosis.first_line(r.hints) if r.diagnosed else ""
    note = " ".join(x for x in (r.problem, r.transform, r.audio.summary() if r.audio else "", hint) if x)
    err = r.propagated or r.local

    def num(m, attr="rel_l2"):
        v = getattr(m, attr) if m is not None else None
        return f'<td class="n" data-v="{"" if v is None else v}">{_g(v)}</td>'

    return (f'<tr class="{r.status}"{ident}><td class="n">{i}</td><td>{_e(r.label)}</td>'
            f"<td>{_e(r.status)}{mark}</td>{num(r.local)}{num(r.local_floor)}{num(r.propagated)}"
            f"{num(r.propagated_floor)}{num(err, 'max_abs')}{num(err, 'cosine')}<td>{_e(note)}</td></tr>")


def _stage_table(c: Comparison) -> str:
    first = c.first_divergence
    head = ("<tr><th data-num>#</th><th>stage</th><th>status</th><th data-num>local</th><th data-num>floor</th>"
            "<th data-num>propagated</th><th data-num>floor</th><th data-num>max|err|</th><th data-num>cosine</th>"
            "<th>hint / note</th></tr>")
    # stages a (foreign) candidate does not provide are counted, not listed one by one
    listed = [(i, r) for i, r in enumerate(c.results) if r.status != "missing"]
    body = "\n".join(_row(i, r, first) for i, r in listed)
    missing = len(c.results) - len(listed)
    note = f"; {missing} stages the candidate does not provide are not listed" if missing else ""
    return (f'<input id="stage-filter" class="filter" placeholder="filter by stage, e.g. step_03/dit/block_02">'
            f' <span class="small"><span id="shown">{len(listed)}</span> of {len(listed)} stages shown{note}; '
            f"click a column to sort</span>"
            f'<table class="stages" id="stages"><thead>{head}</thead><tbody>\n{body}\n</tbody></table>')


def _figures(c: Comparison, ts: TraceSet) -> list[str]:
    results = list(c.results)
    first = c.first_divergence
    out = [_img(plots.error_by_position(results, results.index(first) if first else None),
                "error of every stage against pipeline position (log scale): local, propagated, and the float32 floor")]
    steps = plots.ode_steps(results)
    if steps:
        out.append(_img(steps, "over the ODE steps: error of the velocity, x and the t fed to the DiT, and the "
                               "mean and std of both sides"))
    mel_stage = next((s.path for s in ts.reference.stages() if s.path in ts.candidate
                      and "mel" in getattr(stages.find_spec(s.path), "plot", ())), None)
    if mel_stage and _plottable(ts.reference.read(mel_stage)[0], ndim=2) is None:
        mel_stage = None  # not a real-valued [80, T] mel with finite values: nothing to draw
    if mel_stage:
        ref = _plottable(ts.reference.read(mel_stage)[0], ndim=2)
        info = ts.reference.info(mel_stage)
        # the CFM zeroes the prompt frames; what a listener gets (and the vocoder) is what follows them
        start = int(np.argmax(np.any(ref != 0, axis=0))) if np.any(ref != 0) else 0
        cand, _, problem = aligned(ts.candidate, info, "", info.shape)
        cand = _plottable(cand)
        if cand is None:
            raw = ts.candidate.read(mel_stage)
            raw = _plottable(raw[0] if raw.ndim else raw, ndim=2)
            raw = raw[:, start:] if raw is not None else None  # the same generated frames as the reference's
            out.append(_img(plots.mels(ref[:, start:], raw, note=f"({problem or 'not comparable'})"),
                            f"final mel: reference and candidate do not line up ({problem})"))
        else:
            out.append(_img(plots.mels(ref[:, start:], cand[0][:, start:]),
                            f"final mel ({mel_stage}), generated frames from {start}: reference, candidate, "
                            "difference"))
    failing = [r for r in results if r.is_root_candidate][:MAX_HISTOGRAMS]
    for r in failing:
        ref, cand = diff_source(ts, r)
        ref, cand = _plottable(ref), _plottable(cand)
        if ref is None or cand is None or ref.shape != cand.shape:
            continue
        if cand is not None:
            out.append(_img(plots.histogram(r.label, cand.astype(np.float64) - ref), f"difference histogram: {r.label}"))
        if any(h.kind in ("channel_offset", "offset") for h in r.hints) and cand is not None and "T" in r.layout:
            axes = r.layout.split()
            offset = (cand.astype(np.float64) - ref).mean(axis=axes.index("T"))
            out.append(_img(plots.channel_offset(r.label, offset.reshape(-1)), f"per-channel mean offset: {r.label}"))
    return out


def _plottable(a, ndim: int | None = None) -> np.ndarray | None:
    """Real numbers with something finite in them, as float64 (None: byte strings, complex, all NaN, wrong rank)."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.kind not in "biuf" or a.size == 0 or (ndim is not None and a.ndim != ndim):
        return None
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        return None
    return a if finite.all() else np.where(finite, a, np.nan)


def _audio(ts: TraceSet, c: Comparison) -> str:
    """Players for the first audio stage (the recording), the last (the pipeline's output) and the first
    failing ones; every audio stage's measures in a table."""
    heard = {r.path: r for r in c.results if r.audio is not None}
    rows = "".join(f"<tr><td><code>{_e(r.label)}</code></td><td>{_e(r.status)}</td><td>{_e(r.audio.summary())}</td></tr>"
                   for r in heard.values())
    table = f'<table class="prov">{rows}</table>' if rows else ""
    audio = [s for s in ts.reference.stages() if s.kind == stages.AUDIO and s.sample_rate]
    failing = [s for s in audio if s.path in heard and heard[s.path].status != "pass"][:MAX_PLAYED]
    players = []
    for info in list({s.path: s for s in audio[:1] + audio[-1:] + failing}.values()):
        path, rate = info.path, info.sample_rate
        cells = []
        for role, trace in (("reference", ts.reference), ("candidate", ts.candidate)):
            samples = _plottable(trace.read(path), ndim=2) if path in trace else None  # [B, S] real samples
            if samples is not None:
                cells.append(f'<div>{role}<br><audio controls preload="none" '
                             f'src="{_wav_uri(np.nan_to_num(samples[0]), rate)}"></audio></div>')
        players.append(f"<h3 class='small'>{_e(path)}</h3><div class='plots'>{''.join(cells)}</div>")
    spectrograms = _output_spectrograms(ts, audio[-1]) if audio else ""
    return table + "".join(players) + spectrograms


def _output_spectrograms(ts: TraceSet, info) -> str:
    """The pipeline's output audio (its last audio stage) as both sides' log mel spectrograms, side by side, and
    their difference (`audio_metrics.log_mel`, the measuring stick of the log-mel distance)."""
    rows = [_plottable(t.read(info.path), ndim=2) if info.path in t else None for t in (ts.reference, ts.candidate)]
    if rows[0] is None:
        return ""
    ref, cand = (audio_metrics.log_mel(np.nan_to_num(r[0]), info.sample_rate).T if r is not None else None
                 for r in rows)
    note = "" if cand is None or cand.shape == ref.shape else f"({cand.shape[1]} frames vs {ref.shape[1]})"
    png = plots.mels(ref, cand, note=note, what="log mel of the output")
    return _img(png, f"output audio ({info.path}): log mel spectrograms of both sides and their difference")


def _rule_text(c: Comparison) -> str:
    if c.rule == "fallback":
        return (f"The reference holds no noise floors, so the {c.tolerances.default.describe(with_floor=False)} "
                "decided; `harness capture` stores floors.")
    return ("Errors are relative L2 against the float32 reference; floor = its own error against a float64 run. "
            f"Pass rule: {c.tolerances.default.describe()}.")


def build(c: Comparison, ts: TraceSet, command: str) -> str:
    verdict = verdict_line(c)
    first = c.first_divergence
    detail = ""
    if first is not None:
        detail = (f'<p><a href="#first-divergence">Jump to <code>{_e(first.label)}</code> in the stage table</a>. '
                  f"Everything after it that only inherits error is marked <i>propagated</i>.</p>")
        if first.hints:
            detail += ("<p>Every relation the hint families found for it, with the share of the error each "
                       "explains:</p><ul>" + "".join(f"<li>[{_e(h.kind)}] {_e(h.message)}</li>" for h in first.hints)
                       + "</ul>")
    detail += "".join(f"<p><b>Advice:</b> {_e(a)}</p>" for a in c.advice)
    warnings = "".join(f'<p class="warn">warning: {_e(w)}</p>' for w in c.warnings)
    counts = {s: sum(r.status == s for r in c.results) for s in ("pass", "fail", "propagated", "error", "missing")}
    audio = _audio(ts, c)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>indextts-parity: {_e(verdict[:80])}</title><style>{STYLE}{pipeline_diagram.CSS}</style></head><body>
<h1>indextts-parity report</h1>
<div class="verdict {'pass' if c.passed else 'fail'}">{_e(verdict)}</div>
{pipeline_diagram.render(c)}
{detail}{warnings}
<p class="small">{len(c.results)} stages: {counts['pass']} pass, {counts['fail']} fail (their own error),
{counts['propagated']} inherit error, {counts['error'] + counts['missing']} not comparable.
{_e(_rule_text(c))}</p>
<h2>Reproduce</h2><pre>{_e(command)}</pre>
<h2>Provenance</h2>{_provenance(c)}
<h2>Plots</h2><div class="plots">{''.join(_figures(c, ts))}</div>
{'<h2>Audio</h2>' + audio if audio else ''}
<h2>Stages, in pipeline order</h2>{_stage_table(c)}
<script>{SCRIPT}document.body.setAttribute('data-ready','1');</script>
</body></html>
"""


def write(c: Comparison, ts: TraceSet, path: Path, command: str) -> Path:
    return write_text(build(c, ts, command), path)
