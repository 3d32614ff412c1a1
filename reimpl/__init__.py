"""Our own readable PyTorch reimplementation of IndexTTS2, one subpackage per pipeline part.

`reimpl/<part>/` holds the part's code and its entry point `run(params, config, given, tap)`;
`reimpl/driver.py` chains the parts as infer_v2 does. Plain functions of (parameters by upstream name,
inputs); every stage passes through a tap that records it and, teacher-forced, feeds the next stage the
reference's value. Never imports `indextts` or `reference_hooks`. Named porting faults (declared in
`harness/stages/<part>.py`) can be switched on to show the harness finds them.
"""
