"""Measure the plugin without disturbing what it measures: ``python -m benchmarks``.

``run.py`` runs the figures registered in ``figures/__init__.py`` (one module each) and
writes them with the machine to ``results.json``; ``readme.py`` turns that file into the
README's "Performance" table. ``harness.py`` holds what the figures share; the servers are
the loopback fakes in ``fakes/`` (``replay.py`` serves their recorded replies at socket
speed), the pytest runs use the test files in ``templates/``. See README.md here.
"""
