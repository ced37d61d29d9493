"""Collectors: one module per vendor, the protocol in ``base``, the fan-out in ``runner``."""
