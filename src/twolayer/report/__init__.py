"""Pictures and numbers about a trained model, for the command line and for users.

:mod:`~twolayer.report.metrics` (accuracy, log-loss, confusion matrix, the
stratified split), :mod:`~twolayer.report.calibration` (reliability curves,
calibration errors), :mod:`~twolayer.report.spectrum` (the Hessian's extreme
eigenvalues by deflated Lanczos) and :mod:`~twolayer.report.plots` (the
figures, drawn off-screen to PNG bytes).
"""
