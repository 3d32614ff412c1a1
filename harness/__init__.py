"""Compare traces of IndexTTS2 implementations stage by stage; needs numpy and h5py, not torch."""

__version__ = "0.1.0"
