"""Input and output at the edge of the package: data sets, model files, checkpoints, atomic writes.

Nothing below this layer reads or writes a file.
"""
