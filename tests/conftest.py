"""Shared fixtures. Kept light: nothing here runs unless a test asks for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from connectors.kafka_broker import LocalKafka


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[LocalKafka]:
    """A real single-node Kafka broker on 127.0.0.1, started on first use, stopped at the end.

    A broker that cannot start (no Java, no Maven, jars not fetchable, early exit) fails the
    tests that need it, under CI=true and locally alike: never a skip.
    """
    # Imported here so that test sessions without Kafka tests pay nothing for it.
    from connectors.kafka_broker import LocalKafka

    broker = LocalKafka()
    try:
        broker.start()
    except Exception as err:
        context = "CI=true" if os.environ.get("CI") == "true" else "local run"
        pytest.fail(
            f"the local Kafka broker did not start ({context}; a failure, never a skip): "
            f"{type(err).__name__}: {err}",
            pytrace=False,
        )
    try:
        yield broker
    finally:
        broker.stop()
