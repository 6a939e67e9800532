"""PostgreSQL: the migrations and the flow on a real server (CI sets HERALD_TEST_POSTGRES_URL and runs them)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage.db import Database
from tests.conftest import POSTGRES_ENV, Team, postgres_url

pytestmark = pytest.mark.skipif(
    postgres_url() is None,
    reason=f"no PostgreSQL server given: set {POSTGRES_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/herald_test "
    "(.ci/run does) to run the suite on PostgreSQL",
)


def test_the_migrations_build_every_table_on_postgresql(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        assert db.engine.dialect.name == "postgresql"
        tables = set(inspect(db.engine).get_table_names())
        assert {"workspace", "post", "delivery", "approval", "auditevent", "metricsnapshot"} <= tables
    finally:
        db.dispose()


async def test_a_post_publishes_once_per_account_on_postgresql(team: Team) -> None:
    assert team.herald.db.engine.dialect.name == "postgresql"
    await team.setup_workspace()
    post_id = await team.approved_post()
    await team.say("alice", f"/schedule {post_id} in 1 hour")
    out = await team.tick(hours=1)
    assert f"#{post_id} is published on all 2 account(s)" in out
    await team.tick(minutes=30)
    assert len(team.sandbox_posts()) == 2
