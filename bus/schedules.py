"""Schedules: tasks a domain sends itself on a clock, as EventBridge Scheduler delivers them.

A domain declares `domain.every("cron(0 0 * * ? *)", RenewSubscriptions())`; the expression
is EventBridge Scheduler's `rate(...)` or `cron(...)` syntax, checked at declaration. The
in-memory `Scheduler` fires what is due on the runtime's clock, once per due time; on AWS the
same declaration becomes an `AWS::Scheduler::Schedule` targeting the domain's task queue.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bus.clock import Clock, timestamp
from bus.envelope import Envelope
from bus.errors import ConfigurationError
from bus.ids import derived_id
from bus.messages import Task

if TYPE_CHECKING:
    import anyio

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name.upper(): i + 1 for i, name in enumerate(calendar.month_abbr[1:])}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
#: The latest year EventBridge Scheduler accepts in a cron expression.
_LAST_YEAR = 2199
#: The source of every scheduled task's envelope, as EventBridge Scheduler names itself.
SCHEDULER_SOURCE = "aws.scheduler"


@dataclass(frozen=True, slots=True)
class Rate:
    """`rate(value unit)`: every `seconds`, counted from when the schedule starts."""

    seconds: int

    def next_after(self, start: float, moment: float) -> float:
        elapsed = max(0.0, moment - start)
        return start + (int(elapsed // self.seconds) + 1) * self.seconds


@dataclass(frozen=True, slots=True)
class Cron:
    """`cron(minutes hours day-of-month month day-of-week year)`, in UTC."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: `?`, the day of the week decides
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1 = Sunday, as EventBridge counts
    years: frozenset[int]

    def next_after(self, start: float, moment: float) -> float:
        at = datetime.fromtimestamp(max(start, moment), tz=UTC).replace(second=0, microsecond=0)
        at += timedelta(minutes=1)
        while at.year <= _LAST_YEAR:
            if at.year not in self.years:
                at = datetime(at.year + 1, 1, 1, tzinfo=UTC)
            elif at.month not in self.months or not self._day_matches(at):
                at = datetime(at.year, at.month, at.day, tzinfo=UTC) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at += timedelta(minutes=1)
            else:
                return at.timestamp()
        return float("inf")

    def _day_matches(self, at: datetime) -> bool:
        if self.days_of_month is not None:
            return at.day in self.days_of_month
        assert self.days_of_week is not None
        return (at.isoweekday() % 7) + 1 in self.days_of_week


@dataclass(frozen=True, slots=True)
class Schedule:
    """A task the domain sends itself whenever `expression` is due."""

    domain: str
    name: str
    expression: str
    task: Task
    timing: Rate | Cron

    def next_after(self, start: float, moment: float) -> float:
        """The first due time after `moment` of a schedule that started at `start`."""
        return self.timing.next_after(start, moment)


def parse_expression(expression: str) -> Rate | Cron:
    """An EventBridge Scheduler `rate(...)` or `cron(...)` expression; `ConfigurationError`
    saying what is wrong with anything else."""
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ConfigurationError(f"{expression!r}: a rate is at least 1")
        if (value == 1) != (not unit.endswith("s")):
            raise ConfigurationError(
                f"{expression!r}: write the unit singular for 1 and plural otherwise "
                "(rate(1 day), rate(5 minutes)), as EventBridge requires"
            )
        return Rate(value * _UNIT_SECONDS[unit.removesuffix("s")])
    cron = _CRON.match(expression)
    if cron:
        return _parse_cron(expression, cron.group(1).split())
    raise ConfigurationError(
        f"{expression!r} is no schedule expression: use rate(N minutes|hours|days) or "
        "cron(minutes hours day-of-month month day-of-week year)"
    )


def _parse_cron(expression: str, fields: list[str]) -> Cron:
    if len(fields) != 6:
        raise ConfigurationError(
            f"{expression!r}: a cron expression has 6 fields (minutes hours day-of-month "
            f"month day-of-week year), got {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ConfigurationError(
            f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'"
        )
    return Cron(
        minutes=_field(expression, "minutes", minutes, 0, 59),
        hours=_field(expression, "hours", hours, 0, 23),
        days_of_month=None if dom == "?" else _field(expression, "day-of-month", dom, 1, 31),
        months=_field(expression, "month", month, 1, 12, _MONTHS),
        days_of_week=None if dow == "?" else _field(expression, "day-of-week", dow, 1, 7, _DAYS),
        years=_field(expression, "year", year, 1970, _LAST_YEAR),
    )


def _field(
    expression: str,
    label: str,
    text: str,
    low: int,
    high: int,
    names: dict[str, int] | None = None,
) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = _number(expression, label, step_text, 1, high - low + 1) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first = _value(expression, label, a, low, high, names)
            last = _value(expression, label, b, low, high, names)
        else:
            first = _value(expression, label, span, low, high, names)
            last = high if step_text else first
        if first > last:
            raise ConfigurationError(f"{expression!r}: {label} range {span!r} runs backwards")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(
    expression: str, label: str, text: str, low: int, high: int, names: dict[str, int] | None
) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if any(c in text for c in "LW#"):
        raise ConfigurationError(
            f"{expression!r}: {label} {text!r} uses L, W or #, which this platform does not "
            "schedule; list the days instead"
        )
    return _number(expression, label, text, low, high)


def _number(expression: str, label: str, text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigurationError(
            f"{expression!r}: {label} {text!r} is not a number from {low} to {high}"
        )
    return int(text)


def check_name(domain: str, name: str) -> None:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"schedule name {name!r} of domain {domain} must be lower-case letters, digits "
            "and '-', starting with a letter, at most 40 characters (it names the schedule)"
        )


SendTasks = Callable[[Sequence[Envelope]], Awaitable[None]]


class Scheduler:
    """Fires the schedules of a set of domains on a clock: each due time sends its task
    once, to the domain's task queue, with an id derived from the schedule and the due
    time (so a repeated firing is absorbed by the consumer's idempotency).

    A firing counts as done once its send succeeded: one whose send failed is sent again
    at the next look. Looks take turns, so one returns only once what was due when it
    began has been handed to the queue, whoever sent it.
    """

    def __init__(self, schedules: Iterable[Schedule], send: SendTasks, clock: Clock) -> None:
        self._send = send
        self._clock = clock
        self._start = clock.now()
        self._due = [(s, s.next_after(self._start, self._start)) for s in schedules]
        self._looking: anyio.Lock | None = None

    async def fire_due(self) -> int:
        """Send every task whose due time has come; how many were sent."""
        if self._looking is None:
            import anyio  # a runtime's loop only: never on a function's import path

            self._looking = anyio.Lock()
        async with self._looking:
            now = self._clock.now()
            due: list[Envelope] = []
            following: list[tuple[Schedule, float]] = []
            for schedule, at in self._due:
                while at <= now:
                    due.append(scheduled_envelope(schedule, at))
                    at = schedule.next_after(self._start, at)
                following.append((schedule, at))
            if due:
                await self._send(due)
            self._due = following
            return len(due)


def scheduled_envelope(schedule: Schedule, due: float) -> Envelope:
    """The envelope of one firing, as the production schedule's input template makes it."""
    event_id = derived_id(f"schedule/{schedule.domain}/{schedule.name}/{due}")
    task = schedule.task
    return Envelope(
        id=event_id,
        source=SCHEDULER_SOURCE,
        type=task.type,
        time=timestamp(due),
        dataversion=task.version,
        correlationid=event_id,
        data=task,
    )
