"""tx2setup: take a shelf of NVIDIA Jetson boards to a known-good stack and prove it."""

__version__ = "0.1.0"
