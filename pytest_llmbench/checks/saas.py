"""The long-specification benchmark's scorecard (examples/test_saas_spec.py): a multi-tenant
SaaS design checked for Compose without a PostgreSQL service, tenant-switch routing, a tenants
table that records where each tenant's database is, every section with code, and Python that
parses."""

from __future__ import annotations

import re

from pytest_llmbench.check_result import CheckResult
from pytest_llmbench.checks.rubric import (
    compose_lacks_service,
    phrases,
    python_snippets_parse,
    sections_with_code,
    sql_create_table,
)

SAAS_SECTIONS = (
    "Database Schema",
    "Authentication",
    "API Endpoints",
    "Docker Compose",
    "Celery Jobs",
    "Security Review",
)

#: Tenant-switch routing: the tenant's connection is looked up, and a pool chosen per tenant.
TENANT_ROUTING = (
    r"tenant\w*\s*(\.|\[)?\s*\w*(connection|dsn|database_url|db_url|db_host)",
    r"(pool|engine|session)\w*\s*(per|for|by|\[)\s*\w*tenant",
)


#: A column of the tenants table that says where the tenant's own database is.
TENANT_DATABASE = re.compile(
    r"^(db|database)_?(host|url|uri|name|dsn)$|dsn|^connection_(string|url)$", re.IGNORECASE
)


def saas_scorecard(text: str) -> dict[str, CheckResult]:
    """Each criterion of the scorecard, by name, for the answer ``text`` (thinking removed)."""
    return {
        "no_postgres_service": compose_lacks_service(text, "postgres"),
        "tenant_routing": phrases(text, required=TENANT_ROUTING, name="tenant_routing"),
        "tenant_table": sql_create_table(text, table="tenants", columns=[TENANT_DATABASE]),
        "sections": sections_with_code(text, SAAS_SECTIONS),
        "snippets_parse": python_snippets_parse(text),
    }
