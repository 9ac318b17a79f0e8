"""Log experiments from Python: ``evaltui.init``/spans/``traced`` (logger.py) and ``Eval`` (eval.py).

The public names are re-exported lazily by ``evaltui`` itself; import them from there.
"""
