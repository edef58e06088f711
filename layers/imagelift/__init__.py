"""imagelift: sort footwear photos into model / worn / product and measure how each kind moves sales."""

__version__ = "0.1.0"
