"""For people learning backpropagation: gradients checked numerically, the derivation checked by SymPy.

:mod:`~twolayer.teaching.gradcheck` compares the backpropagated gradient with
central differences and reports each entry in the records of
:mod:`~twolayer.teaching.gradcheck_report`; :mod:`~twolayer.teaching.derivation`
re-derives each step of ``docs/derivation.md`` symbolically, on the network
written out in :mod:`~twolayer.teaching.symbolic_network`, deciding each claim
with :mod:`~twolayer.teaching.identities`.
"""
