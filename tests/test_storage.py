"""The model: one transition table per state machine, UTC times, migrations that match the tables."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from storage.crypto import SecretBox, SecretBoxError
from storage.db import Database
from storage.models import (
    DELIVERY_TRANSITIONS,
    POST_TRANSITIONS,
    Account,
    Audience,
    Delivery,
    DeliveryState,
    IllegalTransition,
    Post,
    PostState,
    UTCDateTime,
    Workspace,
    move_delivery,
    move_post,
)


def a_post(state: PostState) -> Post:
    return Post(id=7, workspace_id=1, author_platform="console", author_user_id="a", author_name="a",
                text="hi", state=state.value)


def test_every_state_has_a_row_in_the_transition_tables() -> None:
    assert set(POST_TRANSITIONS) == set(PostState)
    assert set(DELIVERY_TRANSITIONS) == set(DeliveryState)
    for done in (PostState.PUBLISHED, PostState.REJECTED, PostState.CANCELLED):
        assert POST_TRANSITIONS[done] == frozenset()
    assert DELIVERY_TRANSITIONS[DeliveryState.SENT] == frozenset()


def test_an_illegal_post_transition_is_refused_in_words_a_user_understands() -> None:
    post = a_post(PostState.PUBLISHED)
    with pytest.raises(IllegalTransition) as caught:
        move_post(post, PostState.APPROVED)
    assert str(caught.value) == "Post #7 is already published, so it can't be approved."
    assert post.state == "published"


def test_a_legal_post_transition_moves_the_post() -> None:
    post = a_post(PostState.IN_REVIEW)
    move_post(post, PostState.APPROVED)
    assert post.state == "approved"


def test_a_sent_delivery_can_never_be_sent_again() -> None:
    delivery = Delivery(post_id=1, account_id=1, idempotency_key="k", state="sent")
    with pytest.raises(IllegalTransition):
        move_delivery(delivery, DeliveryState.PENDING)
    unconfirmed = Delivery(post_id=1, account_id=1, idempotency_key="k2", state="unconfirmed")
    move_delivery(unconfirmed, DeliveryState.PENDING)  # only by an explicit /retry <post> <account>
    assert unconfirmed.state == "pending"


def test_times_are_stored_in_utc_and_naive_times_are_refused() -> None:
    column = UTCDateTime()
    paris = timezone(timedelta(hours=1))
    stored = column.process_bind_param(datetime(2026, 12, 1, 18, 30, tzinfo=paris), None)
    assert stored == datetime(2026, 12, 1, 17, 30)
    assert column.process_result_value(stored, None) == datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        column.process_bind_param(datetime(2026, 12, 1, 18, 30), None)


def test_the_migrations_build_exactly_the_tables_of_the_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    db.migrate()  # a second run is a no-op
    with db.engine.connect() as connection, warnings.catch_warnings():
        # the expression indexes (uq_delivery_target, uq_shortlink_target) can't be reflected: the test below
        # shows the migrated tables enforce them
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_a_post_reaches_an_account_once_per_audience_and_once_without_one(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    with db.session() as session:
        ws = Workspace(name="W")
        session.add(ws)
        session.flush()
        account = Account(workspace_id=ws.id, network="sandbox", name="a")
        south, north = (Audience(workspace_id=ws.id, name=n, timezone="Europe/Madrid", language="es")
                        for n in ("south", "north"))
        post = Post(workspace_id=ws.id, author_platform="console", author_user_id="1", author_name="A", text="t")
        session.add_all([account, south, north, post])
        session.flush()
        for n, audience in enumerate((None, south, north)):
            session.add(Delivery(post_id=post.id, account_id=account.id, idempotency_key=f"k{n}",
                                 audience_id=audience.id if audience else None))
        session.commit()
    for audience_id in (None, south.id):
        with pytest.raises(IntegrityError), db.session() as session:
            session.add(Delivery(post_id=post.id, account_id=account.id, idempotency_key=f"again{audience_id}",
                                 audience_id=audience_id))
            session.commit()


def test_credentials_are_sealed_and_hidden_from_repr() -> None:
    box = SecretBox(SecretBox.new_key())
    sealed = box.seal({"token": "abc123secret"})
    assert b"abc123secret" not in sealed
    account = Account(workspace_id=1, network="sandbox", name="a", credentials=sealed)
    assert "abc123secret" not in repr(account) and "credentials" not in repr(account)
    assert box.open(sealed) == {"token": "abc123secret"}
    assert "<key hidden>" in repr(box)
    with pytest.raises(SecretBoxError, match="HERALD_SECRET_KEY"):
        SecretBox(SecretBox.new_key()).open(sealed)
