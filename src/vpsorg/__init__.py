"""vpsorg: an open-source implementation of the VPS.org Servers API."""

__version__ = "0.1.0"
