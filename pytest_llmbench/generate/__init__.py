"""Generate and measure: the ``llm`` fixture, one item while it runs, the streamed reply decoded
and timed into a :class:`~pytest_llmbench.serve.generation.Generation`, its caveats, the
live line, and the answers that need no server (recordings, known answers)."""
