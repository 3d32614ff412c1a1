"""How many mel frames a segment's codes become: infer_v2's `(code_lens * 1.72).long()` (infer_v2.py:682).

The product is taken in float32 (code_lens is a LongTensor, 1.72 a Python float: torch promotes to the
default float dtype) and `.long()` truncates toward zero. A float64 product truncates differently for some
code counts, a rounded one for every count whose fraction is at least a half; two real porting faults
switch here.
"""
from __future__ import annotations

import numpy as np

from reimpl import faults


def target_frames(n_codes: int, code_to_frame: float) -> int:
    if faults.active("s2mel.target_length.no_factor"):
        # the port's bug: the frame count taken to be the code count
        return n_codes
    product = np.float32(n_codes) * np.float32(code_to_frame)
    if faults.active("s2mel.target_length.rounded"):
        # the port's bug: rounded to the nearest frame where upstream truncates
        return int(np.rint(product))
    return int(product)
