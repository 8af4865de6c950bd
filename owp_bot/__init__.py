"""OWP Pool: the Open Work Protocol pool — GitHub App and lease scheduler for volunteer contributors."""

__version__ = "0.1.0"
