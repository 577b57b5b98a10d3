"""strangers: meet a random stranger who shares your interests, with no central server."""

__version__ = "0.1.0"
