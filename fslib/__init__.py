"""fslib: few-shot cross-lingual transfer with stochastic gradient surgery, as a reproducibility kit."""

__version__ = "0.1.0"
