"""`imagelift local status`: the delivery threads' state as `local up` writes it, and what status makes of it."""

from __future__ import annotations

from pathlib import Path

from infra.localstack.daemon import StatePaths, delivery_status_text, write_delivery_state
from infra.localstack.delivery import DeliveryStats


class FakeDelivery:
    def __init__(self, alive: int, in_flight: list[dict]) -> None:
        self.runners = ["classify-0", "classify-1"]
        self.stats = DeliveryStats(invocations=7, succeeded=5, failed_attempts=2, dead_lettered=1)
        self._alive, self._in_flight = alive, in_flight

    def threads_alive(self) -> int:
        return self._alive

    def in_flight(self) -> list[dict]:
        return self._in_flight


def test_status_shows_counts_and_nothing_stuck(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    write_delivery_state(paths, FakeDelivery(2, []), stuck_after_s=90)  # type: ignore[arg-type]
    text = delivery_status_text(paths)
    assert "7 invocations, 5 ok, 2 failed attempts, 1 to the failure queue" in text
    assert "2/2 delivery threads alive, 0 in flight" in text
    assert "STUCK" not in text and "WARNING" not in text


def test_status_names_stuck_deliveries_and_dead_threads(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    in_flight = [
        {"thread": "delivery-0", "message_id": "m1", "keys": ["images/P/L/slow.jpg"], "seconds": 400.0},
        {"thread": "delivery-1", "message_id": "m2", "keys": ["images/P/L/ok.jpg"], "seconds": 2.0},
    ]
    write_delivery_state(paths, FakeDelivery(1, in_flight), stuck_after_s=90)  # type: ignore[arg-type]
    text = delivery_status_text(paths)
    assert "1 delivery thread(s) died" in text
    (stuck,) = [line for line in text.splitlines() if line.startswith("STUCK")]
    assert "images/P/L/slow.jpg" in stuck and "400 s ago" in stuck and "delivery-0" in stuck


def test_status_before_the_first_write(tmp_path: Path) -> None:
    assert "no state yet" in delivery_status_text(StatePaths(tmp_path))
