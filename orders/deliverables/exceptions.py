"""What the orders app raises about files: a file Atelier will not store, and why."""

from __future__ import annotations


class Refused(Exception):
    """A file we will not store; the message says why, for the agent."""


class NotAnImage(Refused):
    """Not an image, or not one of the accepted image types."""
