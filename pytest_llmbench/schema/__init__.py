"""The results document's identity: the ``schema`` and ``version`` it carries, written by the
JSON report (``report/formats.py``) and required of a saved run (``verdict/baselines.py``).
Its JSON Schema is ``results-v1.json`` beside this file."""

SCHEMA_ID = "pytest-llmbench/results"
SCHEMA_VERSION = 1
