"""Our own readable PyTorch reimplementation of the IndexTTS2 s2mel stage (length regulator, CFM, DiT).

Plain functions of (parameters by upstream name, inputs); every stage passes through a tap that
records it and, teacher-forced, feeds the next stage the reference's value. Never imports `indextts`.
Named porting faults (`reimpl.faults`) can be switched on to show the harness finds them.
"""
