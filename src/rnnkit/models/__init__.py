"""Models built from rnnkit.cells: plain nn.Modules, shapes in comments."""
