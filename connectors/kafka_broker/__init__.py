"""A real single-node Apache Kafka broker for tests and local use, without Docker.

The broker's jars come from Maven Central (this package's pom.xml, fetched once with Maven
into a cache dir); the broker runs in KRaft combined mode on 127.0.0.1 with Java 17+.

    python -m connectors.kafka_broker fetch   # download the jars (once)
    python -m connectors.kafka_broker start   # run a broker in the foreground

    with LocalKafka() as kafka:
        kafka.create_topics(["bars"])
        ... AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers) ...
"""

from connectors.kafka_broker.broker import BrokerStartError, LocalKafka
from connectors.kafka_broker.jars import KAFKA_VERSION, fetch_jars, is_fetched, kafka_home

__all__ = [
    "KAFKA_VERSION",
    "BrokerStartError",
    "LocalKafka",
    "fetch_jars",
    "is_fetched",
    "kafka_home",
]
