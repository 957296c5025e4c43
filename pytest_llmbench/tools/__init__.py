"""Helpers that fetch the real components: a llama-server binary and the default model."""
