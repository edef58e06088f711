"""Sales exports as shops write them: layouts (presets and column mapping), decoding, numbers, dates and weeks,
and overlapping files. :mod:`imagelift.influence.sales` puts them together into one validated table."""
