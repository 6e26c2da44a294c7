"""The operators' tool for dead letters: list them, and replay them once their cause is fixed.

    python -m platform_runtime.dead_letters list [--topic TOPIC]
    python -m platform_runtime.dead_letters replay --topic TOPIC [--partition P --offset N]
    python -m platform_runtime.dead_letters replay --all

Reads KAFKA_BOOTSTRAP_SERVERS (and the other KAFKA_* settings) and KAFKA_TOPIC_PREFIX from the environment;
topics are named without the prefix (`reporting.report`, not `reporting.report.dlt`).

A replay publishes the original message, unchanged and with its original headers, to the topic it came from.
Replaying is idempotent twice over: every consumer group drops an event id it has applied already (its
inbox), and a replay of a whole topic (or of all) starts after the last dead letter replayed before, which
is remembered as the offsets of the consumer group `<prefix>dead-letters.replayed`. Replaying one letter by
its offset always sends it again; the consumers' inboxes make that harmless.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Message, Producer, TopicPartition

from platform_runtime.settings import EnvReader, KafkaSettings, SettingsError, read_kafka
from platform_runtime.topics import DOMAIN_TOPICS, dead_letter_topic

REPLAYED_GROUP = "dead-letters.replayed"


@dataclass(frozen=True)
class DeadLetter:
    topic: str  # the original topic, without the prefix
    partition: int
    offset: int  # in the dead-letter topic
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    replayed: bool

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace") if value else ""
        return ""

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(key, value) for key, value in self.headers if not key.startswith("dlt.")]


class DeadLetters:
    def __init__(self, kafka: KafkaSettings, prefix: str = "") -> None:
        self._kafka = kafka
        self._prefix = prefix
        self._replayed_group = prefix + REPLAYED_GROUP

    def read(self, topics: Iterable[str]) -> list[DeadLetter]:
        """Every dead letter now on the dead-letter topics of `topics`, oldest first per partition."""
        letters: list[DeadLetter] = []
        reader = Consumer(
            self._kafka.client_config()
            | {"group.id": f"dead-letters.reader.{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
        tracker = self._tracker()
        try:
            for topic in topics:
                letters.extend(self._read_topic(reader, tracker, topic))
        finally:
            reader.close()
            tracker.close()
        return letters

    def replay(self, letters: list[DeadLetter], *, remember: bool) -> int:
        """Publish each letter to its original topic; with `remember`, mark them replayed (whole-topic replays)."""
        producer = Producer(self._kafka.client_config() | {"enable.idempotence": True, "acks": "all"})
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(f"{message.topic()}: {error}")

        for letter in letters:
            source = f"{letter.topic}.dlt[{letter.partition}]@{letter.offset}"
            producer.produce(
                self._prefix + letter.topic,
                key=letter.key,
                value=letter.value,
                headers=[*letter.original_headers, ("dlt.replayed_from", source.encode())],
                on_delivery=on_delivery,
            )
        if producer.flush(30) > 0 or failures:
            raise RuntimeError("not every dead letter was replayed: " + "; ".join(failures or ["kafka timed out"]))
        if remember and letters:
            tracker = self._tracker()
            try:
                last: dict[tuple[str, int], int] = {}
                for letter in letters:
                    where = (self._prefix + dead_letter_topic(letter.topic), letter.partition)
                    last[where] = max(last.get(where, -1), letter.offset)
                tracker.commit(
                    offsets=[
                        TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()
                    ],
                    asynchronous=False,
                )
            finally:
                tracker.close()
        return len(letters)

    def _tracker(self) -> Consumer:
        return Consumer(self._kafka.client_config() | {"group.id": self._replayed_group, "enable.auto.commit": False})

    def _read_topic(self, reader: Consumer, tracker: Consumer, topic: str) -> list[DeadLetter]:
        name = self._prefix + dead_letter_topic(topic)
        metadata = reader.list_topics(name, timeout=15).topics.get(name)
        if metadata is None or metadata.error is not None:
            return []
        letters: list[DeadLetter] = []
        partitions = sorted(metadata.partitions)
        committed = {
            tp.partition: tp.offset
            for tp in tracker.committed([TopicPartition(name, p) for p in partitions], timeout=15)
        }
        for partition in partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(name, partition), timeout=15)
            if high <= low:
                continue
            replayed_until = committed.get(partition, OFFSET_INVALID)
            reader.assign([TopicPartition(name, partition, low)])
            next_offset = low
            while next_offset < high:
                message = reader.poll(5)
                if message is None:
                    break  # the rest of the range holds no record (a gap), or the broker is away: show what we have
                if message.error():
                    continue
                offset = message.offset() or 0
                next_offset = offset + 1
                raw: Any = message.headers() or []
                letters.append(
                    DeadLetter(
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        key=message.key(),
                        value=message.value(),
                        headers=[(str(key), value or b"") for key, value in raw],
                        replayed=replayed_until != OFFSET_INVALID and offset < replayed_until,
                    )
                )
            reader.unassign()
        return letters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform_runtime.dead_letters", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print every dead letter: where, which event, which group, why")
    listing.add_argument("--topic", choices=DOMAIN_TOPICS, help="only this topic's dead letters")
    replay = commands.add_parser("replay", help="publish dead letters again to the topic they came from")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", choices=DOMAIN_TOPICS, help="the dead letters of this topic not replayed yet")
    which.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
    replay.add_argument("--partition", type=int, help="with --offset: one dead letter")
    replay.add_argument("--offset", type=int, help="with --partition: one dead letter (sent again even if replayed)")
    args = parser.parse_args(argv)
    if (args.command == "replay") and (
        (args.partition is None) != (args.offset is None) or (args.all and args.offset is not None)
    ):
        parser.error("--partition and --offset go together, with --topic")

    env = EnvReader()
    kafka = read_kafka(env)
    prefix = env.optional("KAFKA_TOPIC_PREFIX")
    try:
        env.done()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    tool = DeadLetters(kafka, prefix)
    topics = [args.topic] if args.topic else list(DOMAIN_TOPICS)
    letters = tool.read(topics)

    if args.command == "list":
        for letter in letters:
            print(
                f"{letter.topic}\t{letter.partition}\t{letter.offset}\t"
                f"{'replayed' if letter.replayed else 'waiting'}\t{letter.header('event_type') or '-'}\t"
                f"{letter.header('event_id') or '-'}\t{letter.header('tenant') or '-'}\t"
                f"{letter.header('dlt.consumer_group')}\t{letter.header('dlt.failed_at') or '-'}\t"
                f"{letter.header('dlt.error')}"
            )
        waiting = sum(not letter.replayed for letter in letters)
        print(f"{len(letters)} dead letters, {waiting} not replayed", file=sys.stderr)
        return 0

    if args.offset is not None:
        chosen = [one for one in letters if one.partition == args.partition and one.offset == args.offset]
        if not chosen:
            print(
                f"no dead letter of {args.topic} at partition {args.partition}, offset {args.offset}", file=sys.stderr
            )
            return 1
        replayed = tool.replay(chosen, remember=False)
    else:
        replayed = tool.replay([letter for letter in letters if not letter.replayed], remember=True)
    print(f"{replayed} dead letters replayed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
