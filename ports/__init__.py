"""Adapters that run third-party IndexTTS2 ports on our recorded inputs and dump what they compute,
as a port's own tensors plus a map onto our stages (see harness.foreign)."""
