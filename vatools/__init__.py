"""vatools: install and manage single-purpose Debian appliances."""

__version__ = "0.1.0"
