"""spacehub: a self-hosted platform for interactive ML demo apps."""

__version__ = "0.1.0"
