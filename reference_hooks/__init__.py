"""Run the unmodified upstream IndexTTS2 code with forward hooks and stream every stage to a trace."""
