"""Text -> token ids, as IndexTTS2's TextTokenizer does it, without the sentencepiece library.

Upstream facts a port must match (indextts/utils/front.py, utils/common.py):
- `tokenize_by_CJK_char` strips the text, puts spaces around CJK characters and UPPER-CASES every
  part (front.py:494). A text whose stripped length is 1 skips this (front.py:487): not upper-cased.
- The optional TextNormalizer (nemo) runs before it; the capture runs without it, as upstream may.
- Then a sentencepiece BPE model. Its encoder: normalise (nmt_nfkc; add a leading "▁", collapse runs
  of spaces, spaces become "▁"), split into characters, then repeatedly merge the adjacent pair whose
  concatenation is a piece with the highest score (ties: the leftmost pair), until no pair is a piece.
  A symbol that is not a piece becomes <unk> (id 0); runs of unknown symbols become one <unk>.
- infer_v2 converts the pieces back to ids with PieceToId (infer_v2.py:569), and splits the pieces into
  segments at sentence ends (split_segments, front.py:613), max 120 tokens per segment.
- Later (model_v2.py:688) ids equal to start_text_token (0) or stop_text_token (1) are dropped from
  the generation prompt, but NOT from the latent pass: an <unk> (0) or <s> (1) id changes the two.

Only the model file's bytes are read (a minimal protobuf reader): pieces, scores, types and the
normaliser flags. Normalisation is Unicode NFKC plus the NMT rules for spaces and controls, not the model's
precompiled nmt_nfkc charsmap: equal on ASCII, accents, CJK, symbols and fractions tried (tests/test_gpt.py),
but a character the charsmap maps otherwise would show as a difference at gpt/text_ids.
"""
from __future__ import annotations

import heapq
import re
import struct
import unicodedata
from dataclasses import dataclass

from reimpl import faults

WORD_BOUNDARY = "\u2581"  # ▁
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


@dataclass
class SentencePieceModel:
    pieces: list[str]
    scores: list[float]
    types: list[int]
    normalizer: str
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool

    def __post_init__(self):
        self.index = {p: i for i, p in enumerate(self.pieces)}
        self.unk_id = self.types.index(_UNKNOWN)
        # pieces a merge may produce (sentencepiece's `pieces_`: normal, user-defined and unused ones)
        self.mergeable = {p for p, t in zip(self.pieces, self.types) if t in (_NORMAL, _USER_DEFINED, _UNUSED)}

    def piece_to_id(self, piece: str) -> int:
        return self.index.get(piece, self.unk_id)


# ---------------------------------------------------------------------------------------------------
# a minimal protobuf reader for sentencepiece's ModelProto

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one message; length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def load_sentencepiece(model_bytes: bytes) -> SentencePieceModel:
    pieces, scores, types = [], [], []
    normalizer = {"name": "nmt_nfkc", 3: True, 4: True, 5: True}  # proto defaults
    for number, _wire, value in _fields(model_bytes):
        if number == 1:  # SentencePiece {1: piece, 2: score, 3: type}
            piece, score, kind = "", 0.0, _NORMAL
            for n, _w, v in _fields(value):
                if n == 1:
                    piece = v.decode("utf-8")
                elif n == 2:
                    score = struct.unpack("<f", v)[0]
                elif n == 3:
                    kind = v
            pieces.append(piece)
            scores.append(score)
            types.append(kind)
        elif number == 3:  # NormalizerSpec {1: name, 3: add_dummy_prefix, 4: remove_extra_ws, 5: escape_ws}
            for n, _w, v in _fields(value):
                if n == 1:
                    normalizer["name"] = v.decode("utf-8")
                elif n in (3, 4, 5):
                    normalizer[n] = bool(v)
    return SentencePieceModel(pieces, scores, types, normalizer["name"], normalizer[3], normalizer[4], normalizer[5])


# ---------------------------------------------------------------------------------------------------
# the encoder

def normalize(model: SentencePieceModel, text: str) -> str:
    if model.normalizer != "identity":
        text = unicodedata.normalize("NFKC", text)
        if model.normalizer.startswith("nmt"):
            # NMT rules: whitespace-like controls and Unicode spaces become a space, other controls go
            text = "".join(" " if c in "\t\n\r\v\f" or unicodedata.category(c) == "Zs" else c
                           for c in text if unicodedata.category(c) != "Cc" or c in "\t\n\r\v\f")
    if model.remove_extra_whitespaces:
        text = " ".join(part for part in text.split(" ") if part)
    if model.add_dummy_prefix and text:
        text = " " + text
    if model.escape_whitespaces:
        text = text.replace(" ", WORD_BOUNDARY)
    return text


def bpe_pieces(model: SentencePieceModel, normalized: str) -> list[str]:
    """Greedy best-score merging over a linked list of symbols, with a heap of candidate pairs."""
    symbols = list(normalized)
    nxt = list(range(1, len(symbols))) + [-1]
    prv = list(range(-1, len(symbols) - 1))
    heap: list[tuple[float, int, int, str]] = []

    def push(left: int, right: int) -> None:
        if left < 0 or right < 0:
            return
        merged = symbols[left] + symbols[right]
        if merged in model.mergeable:
            # highest score first, then the leftmost pair: heapq pops the smallest tuple
            heapq.heappush(heap, (-model.scores[model.index[merged]], left, right, merged))

    for i in range(len(symbols) - 1):
        push(i, i + 1)
    while heap:
        _neg, left, right, merged = heapq.heappop(heap)
        # stale entry: one side was merged away or grew since this pair was pushed
        if not symbols[left] or not symbols[right] or nxt[left] != right or symbols[left] + symbols[right] != merged:
            continue
        symbols[left], symbols[right] = merged, ""
        nxt[left] = nxt[right]
        if nxt[right] >= 0:
            prv[nxt[right]] = left
        push(prv[left], left)
        push(left, nxt[left])
    out, i = [], 0
    while i >= 0 and symbols:
        out.append(symbols[i])
        i = nxt[i]
    return out


def encode_pieces(model: SentencePieceModel, text: str) -> list[str]:
    pieces = bpe_pieces(model, normalize(model, text))
    merged: list[str] = []
    for piece in pieces:  # a run of unknown symbols becomes one <unk> piece (as one string)
        unknown = piece not in model.index
        if unknown and merged and merged[-1] not in model.index:
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


_CJK = re.compile(r"([\u1100-\u11ff\u2e80-\ua4cf\ua840-\uD7AF\uF900-\uFAFF\uFE30-\uFE4F\uFF65-\uFFDC\U00020000-\U0002FFFF])")


def upper_and_space_cjk(text: str) -> str:
    """tokenize_by_CJK_char: CJK characters become single words; everything is upper-cased."""
    parts = [p.strip() for p in _CJK.split(text.strip())]
    if faults.active("gpt.text.no_upper"):
        return " ".join(p for p in parts if p)  # the port's bug: forgets the upper-casing
    return " ".join(p.upper() for p in parts if p)


def tokenize(model: SentencePieceModel, text: str) -> list[str]:
    """TextTokenizer.tokenize (without a TextNormalizer)."""
    if not text:
        return []
    if len(text.strip()) == 1:
        return encode_pieces(model, text)  # upstream skips the pre-tokenizer here
    return encode_pieces(model, upper_and_space_cjk(text))


# ---------------------------------------------------------------------------------------------------
# segments

SENTENCE_ENDS = (".", "!", "?", "▁.", "▁?", "▁...")


def _split(tokens: list[str], split_tokens: tuple[str, ...], max_len: int, quick_streaming_tokens: int) -> list[list[str]]:
    """front.py split_segments_by_token: cut after a split token (keeping a following quote), fall back
    to commas, then dashes, then fixed-size chunks for an over-long run; then merge neighbours."""
    if not tokens:
        return []
    segments: list[list[str]] = []
    current: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        current.append(token)
        sub: list[list[str]] | None = None
        has_comma_rule = "," in split_tokens or "▁," in split_tokens
        if not has_comma_rule and ("," in current or "▁," in current):
            sub = _split(current, (",", "▁,"), max_len, quick_streaming_tokens)
        elif "-" not in split_tokens and "-" in current:
            sub = _split(current, ("-",), max_len, quick_streaming_tokens)
        elif len(current) <= max_len:
            if token in split_tokens and len(current) > 2:
                # upstream appends a following quote but its loop index does not skip it, so the
                # quote is seen again as the first token of the next segment
                if i < len(tokens) - 1 and tokens[i + 1] in ("'", "▁'"):
                    current.append(tokens[i + 1])
                segments.append(current)
                current = []
            i += 1
            continue
        else:
            sub = [current[j:j + max_len] for j in range(0, len(current), max_len)]
        segments.extend(sub)
        current = []
        i += 1
    if current:
        segments.append(current)
    merged: list[list[str]] = []
    total = 0
    for segment in segments:
        total += len(segment)
        if not segment:
            continue
        if not merged:
            merged.append(segment)
        elif len(merged[-1]) + len(segment) <= max_len and total > quick_streaming_tokens:
            merged[-1] = merged[-1] + segment
        elif len(merged[-1]) + len(segment) <= max_len / 2:
            merged[-1] = merged[-1] + segment
        else:
            merged.append(segment)
    return merged


def split_segments(tokens: list[str], max_len: int = 120, quick_streaming_tokens: int = 0) -> list[list[str]]:
    return _split(tokens, SENTENCE_ENDS, max_len, quick_streaming_tokens)


def text_to_segment_ids(model: SentencePieceModel, text: str, max_len: int = 120) -> tuple[list[int], list[list[int]]]:
    """(ids of the whole text, ids of each segment), as infer_v2.py:545-569 computes them."""
    pieces = tokenize(model, text)
    segments = split_segments(pieces, max_len)
    return [model.piece_to_id(p) for p in pieces], [[model.piece_to_id(p) for p in seg] for seg in segments]
