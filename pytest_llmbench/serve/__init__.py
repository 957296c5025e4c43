"""Serve: the model servers. Backends (one per kind of server) talk to them over bounded
requests; spawned processes, the run's shared servers, model loads, generations in flight,
and the facts read about them (GGUF headers, /proc, GPU memory)."""
