"""The nets a record names (its ``models`` keys) when the cascade runs with every default stage."""

DEFAULT_MODEL_IDS = frozenset({"pnet", "rnet", "onet", "yolov3-tiny", "yolov4-tiny", "handtrack", "movenet-lightning"})
