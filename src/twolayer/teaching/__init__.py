"""For people learning backpropagation: gradients checked numerically, the derivation checked by SymPy.

:mod:`~twolayer.teaching.gradcheck` compares the backpropagated gradient with
central differences; :mod:`~twolayer.teaching.derivation` re-derives each step
of ``docs/derivation.md`` symbolically and checks it.
"""
