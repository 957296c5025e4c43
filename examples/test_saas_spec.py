"""The long-specification benchmark: a multi-tenant SaaS design, scored on the brief's
scorecard (Compose without a postgres service, tenant-switch routing, per-tenant databases,
every section with code, code that parses), plus an optional judge (--llm-judge=SPEC)."""

from pytest_llmbench import checks
from pytest_llmbench.checks.saas import saas_scorecard

PROMPT = """Write a complete technical specification for a multi-tenant SaaS application:
React front end, FastAPI back end, PostgreSQL with ONE DATABASE PER TENANT on dedicated VMs
(everything runs in Docker EXCEPT PostgreSQL), Redis for sessions, Celery for background jobs.
Include these sections, each with complete code examples, not summaries:
## Database Schema, ## Authentication (JWT with refresh tokens), ## API Endpoints,
## Docker Compose, ## Celery Jobs, ## Security Review."""

RUBRIC = {
    "postgres_outside_docker": "PostgreSQL is not run in Docker; Compose has no postgres service",
    "tenant_routing": (
        "the app looks up the tenant's database connection and picks a pool per request"
    ),
    "code_runs": (
        "code is runnable as written (no Depends(f(...)) called eagerly, "
        "no Pydantic model used as an ORM model)"
    ),
}


def test_saas_spec(llm, llm_judge):
    answer = llm.generate(PROMPT)
    text = answer.answer
    scorecard = saas_scorecard(text)
    if llm_judge is not None:
        scorecard["judge"] = checks.judge(llm_judge, PROMPT, text, RUBRIC)
    score = llm.score(scorecard)
    assert not answer.truncated, "the specification was cut at the output cap"
    assert score.total >= 80, score.explain()
