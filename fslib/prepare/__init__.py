"""Preparation, apart from the experiments: the offline benchmark (fslib.prepare.mini: generated data and a tiny
XLM-R) and the offline multilingual encoder (fslib.prepare.offline_encoder), built before a batch runs."""
