"""`fslib.models.build_offline_encoder`, where the README shows it: the encoder builder's
(fslib.prepare.offline_encoder)."""

from fslib.prepare.offline_encoder import build_offline_encoder

__all__ = ["build_offline_encoder"]
