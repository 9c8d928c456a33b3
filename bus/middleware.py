"""Middleware: a function that takes a handler and returns a handler.

The dispatcher wraps each domain handler in two layers of its own: `once` (correlation and
the idempotency claim) outermost, `attempts` (retry, publishing what an attempt staged, the
time bound) innermost, and a domain's own middleware (tracing, user middleware) between them.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from bus.clock import Clock, ManualClock, ManualTimer
from bus.context import Context
from bus.domain import Subscription
from bus.envelope import Envelope
from bus.errors import AlreadyHandled, ClaimLost, HandlingInProgress, TransientError
from bus.messages import Message


@dataclass(slots=True)
class Delivery:
    """One message on its way to one handler."""

    subscription: Subscription
    envelope: Envelope
    message: Message
    context: Context
    #: How many times the transport has delivered this record (1 on first delivery).
    receive_count: int = 1


Handler = Callable[[Delivery], Awaitable[None]]
Middleware = Callable[[Handler], Handler]

#: The correlation id of the delivery being handled, for log lines outside the Context.
current_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tctf_correlation_id", default=None
)


Claim = Literal["claimed", "done", "in_progress"]


class IdempotencyStore(Protocol):
    """Remembers which (handler, event id) pairs have had their effect.

    `claim` is atomic: of two copies of one event handled at once, one gets "claimed" and the
    other "in_progress" (and is retried later); a claim left by a crashed consumer lapses
    after `lease` seconds, by when its record is visible again. A claim holds its `token`:
    `complete` and `extend` raise `ClaimLost` once another claim has replaced it, and
    `release` leaves another's claim alone.
    """

    async def claim(self, key: str, lease: float, *, token: str) -> Claim: ...

    async def complete(self, key: str, *, token: str) -> None: ...

    async def release(self, key: str, *, token: str) -> None: ...

    async def extend(self, key: str, lease: float, *, token: str) -> None: ...


@runtime_checkable
class BatchIdempotencyStore(IdempotencyStore, Protocol):
    """An `IdempotencyStore` that also claims, and records, many keys in one call: what a
    store across the network offers so that a batch of records costs two calls, not two each.

    `claim_many` claims each `(key, token)` as `claim` would; `settle_many` completes each
    of `completed` and releases each of `released` as `complete` and `release` would, and
    returns the completed keys whose claim was lost, with their `ClaimLost`.
    """

    async def claim_many(
        self, claims: Sequence[tuple[str, str]], lease: float
    ) -> dict[str, Claim]: ...

    async def settle_many(
        self, completed: Sequence[tuple[str, str]], released: Sequence[tuple[str, str]]
    ) -> dict[str, ClaimLost]: ...


class _Expiries:
    """(expires at, key) pairs, handed back once due. Pairs that come in expiry order (one
    lifetime for all, a clock that does not go back) queue at O(1), times and keys in two
    deques (floats and strings, which the garbage collector does not track, where a pair
    would be); any other waits in a heap."""

    __slots__ = ("_heap", "_keys", "_times")

    def __init__(self) -> None:
        self._times: deque[float] = deque()
        self._keys: deque[str] = deque()
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._times) + len(self._heap)

    def add(self, expires_at: float, key: str) -> None:
        times = self._times
        if not times or times[-1] <= expires_at:
            times.append(expires_at)
            self._keys.append(key)
        else:
            heapq.heappush(self._heap, (expires_at, key))

    def soonest(self) -> float:
        """The earliest expiry held, or infinity."""
        times, heap = self._times, self._heap
        return min(times[0] if times else math.inf, heap[0][0] if heap else math.inf)

    def due(self, now: float) -> list[tuple[float, str]]:
        """Remove and return every pair expiring at or before `now`."""
        times, keys, heap = self._times, self._keys, self._heap
        taken = []
        while times and times[0] <= now:
            taken.append((times.popleft(), keys.popleft()))
        while heap and heap[0][0] <= now:
            taken.append(heapq.heappop(heap))
        return taken


class InMemoryIdempotencyStore:
    """Idempotency records in a dict, expiring after `ttl` seconds of the injected clock.

    An expired record is forgotten on the next claim, so the dict holds only the records
    of the last `ttl` seconds however many events pass.
    """

    def __init__(self, clock: Clock, ttl: float = 15 * 24 * 3600.0) -> None:
        self._clock = clock
        self._now = clock.now
        self._ttl = ttl
        #: key -> (done, expires at, claim token): a claim until done, then the record of
        #: the effect.
        self._records: dict[str, tuple[bool, float, str]] = {}
        #: When each claim lapses and each record of an effect expires, stale ones included:
        #: apart, since leases and the TTL differ and each kind keeps its own order.
        self._leases = _Expiries()
        self._expiries = _Expiries()
        #: No queued expiry comes sooner: until then a claim has nothing to forget.
        self._soonest = math.inf

    def __len__(self) -> int:
        return len(self._records)

    async def claim(self, key: str, lease: float, *, token: str) -> Claim:
        state = self.claim_now(key, lease, token)
        if state == "claimed":  # a caller may leave it: forget it once its lease lapses
            expires_at = self._records[key][1]
            self._leases.add(expires_at, key)
            if expires_at < self._soonest:
                self._soonest = expires_at
        return state

    async def complete(self, key: str, *, token: str) -> None:
        self.complete_now(key, token)

    async def release(self, key: str, *, token: str) -> None:
        self.release_now(key, token)

    # The same without a coroutine, for the middleware, which knows this store: it is in
    # process, so nothing here waits. Its claims end in `complete_now` or `release_now`
    # whatever the handler does, so `claim_now` does not queue their leases for forgetting.

    def claim_now(self, key: str, lease: float, token: str) -> Claim:
        now = self._now()
        if now >= self._soonest:
            self._forget_expired(now)
        record = self._records.get(key)
        if record is not None and record[1] > now:
            return "done" if record[0] else "in_progress"
        self._records[key] = (False, now + lease, token)
        return "claimed"

    def complete_now(self, key: str, token: str) -> None:
        record = self._records.get(key)
        if record is None or record[2] != token:
            raise ClaimLost(f"{key}: the claim is no longer held by this delivery")
        expires_at = self._now() + self._ttl
        self._records[key] = (True, expires_at, token)
        self._expiries.add(expires_at, key)
        if expires_at < self._soonest:
            self._soonest = expires_at

    def release_now(self, key: str, token: str) -> None:
        record = self._records.get(key)
        if record is not None and not record[0] and record[2] == token:
            del self._records[key]

    async def extend(self, key: str, lease: float, *, token: str) -> None:
        if not self._held(key, token)[0]:
            expires_at = self._clock.now() + lease
            self._records[key] = (False, expires_at, token)
            self._leases.add(expires_at, key)
            self._soonest = min(self._soonest, expires_at)

    def _held(self, key: str, token: str) -> tuple[bool, float, str]:
        record = self._records.get(key)
        if record is None or record[2] != token:
            raise ClaimLost(f"{key}: the claim is no longer held by this delivery")
        return record

    def _forget_expired(self, now: float) -> None:
        records = self._records
        for expiries in (self._leases, self._expiries):
            for expires_at, key in expiries.due(now):
                record = records.get(key)
                if record is not None and record[1] == expires_at:
                    del records[key]
        self._soonest = min(self._leases.soonest(), self._expiries.soonest())


#: Claim tokens: unique per claim across processes (a random prefix per process, a counter
#: within it). They tell one delivery's claim from another's; nothing needs them secret.
_PROCESS = f"{os.urandom(8).hex()}-"
_CLAIMS = itertools.count()


def _claim_token() -> str:
    return f"{_PROCESS}{next(_CLAIMS)}"


@dataclass(frozen=True, slots=True)
class Completion:
    """A handler call that succeeded under a batch's claim, its record not yet marked done."""

    token: str
    record_id: str
    delivery: Delivery


class BatchClaims:
    """The idempotency claims of one batch of records: taken in one store call before its
    handlers run, recorded as done (or given up) in one call after them.

    The dispatcher claims the batch's keys (`claim`), names the record whose handlers run
    (`record_id`), and `settle`s at the end; while the batch runs, `current_batch` holds it
    and the idempotency middleware takes each key's claim from it instead of the store. The
    first copy of a key runs under the batch's claim; a later copy in the same batch is a
    duplicate once an earlier one succeeded, and claims anew after one failed (the failure
    released the claim), as it would one record at a time.
    """

    def __init__(self, store: BatchIdempotencyStore, lease: float) -> None:
        self.store = store
        self._lease = lease
        #: key -> (token, state) of the batch's claims no copy has taken yet.
        self._claims: dict[str, tuple[str, Claim]] = {}
        self._completed: dict[str, Completion] = {}
        #: The record whose handlers run now.
        self.record_id = ""

    async def claim(self, keys: Iterable[str]) -> None:
        """Claim every key at once. A store that cannot be reached leaves them unclaimed:
        each copy then claims its own as it runs, and meets the error there."""
        tokens = {key: _claim_token() for key in keys}
        if not tokens:
            return
        try:
            states = await self.store.claim_many(list(tokens.items()), self._lease)
        except Exception:
            return
        self._claims = {key: (token, states[key]) for key, token in tokens.items()}

    def take(self, key: str) -> tuple[str, Claim] | None:
        """The batch's claim of `key` for the copy about to run (its token and state), or
        None: that copy claims it through the store."""
        if key in self._completed:
            return "", "done"
        held = self._claims.get(key)
        if held is not None and held[1] == "claimed":
            del self._claims[key]
        return held

    def completed(self, key: str, token: str, delivery: Delivery) -> None:
        """The handler call of `key` succeeded: its record is marked done at `settle`."""
        self._completed[key] = Completion(token, self.record_id, delivery)

    async def settle(self) -> list[tuple[Completion, Exception]]:
        """Mark every completed key done and release the claims no copy took, in one call;
        the completions not recorded (the claim was lost, or the store failed), with why."""
        released = [
            (key, token) for key, (token, state) in self._claims.items() if state == "claimed"
        ]
        completed = [(key, completion.token) for key, completion in self._completed.items()]
        if not completed and not released:
            return []
        try:
            lost: dict[str, Exception] = dict(await self.store.settle_many(completed, released))
        except Exception as error:
            lost = dict.fromkeys(self._completed, error)
        return [(self._completed[key], error) for key, error in lost.items()]


#: The batch whose claims the idempotency middleware takes, while a dispatcher runs one.
current_batch: contextvars.ContextVar[BatchClaims | None] = contextvars.ContextVar(
    "tctf_batch_claims", default=None
)


def once(store: IdempotencyStore, lease: float) -> Middleware:
    """Run a delivery's handler once per (handler, event id), its correlation id exposed
    (`current_correlation_id`) to everything it calls: duplicates become no-ops.

    The handler runs only under a claim, so two copies delivered at once run it once. The
    record is completed after the handler and its published events succeed: a crash in
    between means one more run, never a lost effect. The claim carries a random token, and
    completing (here, or in the handler's unit of work) requires the claim still to hold it:
    a handler that outlived its lease, and so its claim, cannot record its effect. Within a
    dispatcher's batch (`current_batch`) the claim was taken with the batch's, and the
    record is completed with them at the batch's end.

    Correlation and idempotency are one layer, as are retry, publishing and the time bound
    (`attempts`): each layer costs a coroutine per delivery, as much as the work of two.
    """
    local = store if type(store) is InMemoryIdempotencyStore else None

    def wrap(handler: Handler) -> Handler:
        async def handle_once(delivery: Delivery) -> None:
            envelope = delivery.envelope
            correlation = current_correlation_id.set(envelope.correlationid)
            try:
                key = f"{delivery.subscription.name}#{envelope.id}"  # idempotency_key
                # An in-process store never claims for a batch (it has no claim_many).
                batch = None if local is not None else current_batch.get()
                if batch is not None and batch.store is not store:
                    batch = None
                taken = batch.take(key) if batch is not None else None
                if taken is not None:
                    token, state = taken
                else:
                    token = f"{_PROCESS}{next(_CLAIMS)}"
                    if local is not None:
                        state = local.claim_now(key, lease, token)
                    else:
                        state = await store.claim(key, lease, token=token)
                if state == "done":
                    raise AlreadyHandled(key)
                if state == "in_progress":
                    raise HandlingInProgress(f"{key} is being handled by another consumer")
                delivery.context.hold_claim(store, key, token)
                try:
                    await handler(delivery)
                except BaseException:
                    if local is not None:
                        local.release_now(key, token)
                    else:
                        await store.release(key, token=token)
                    raise
                if batch is not None:
                    batch.completed(key, token, delivery)
                elif local is not None:
                    local.complete_now(key, token)
                else:
                    await store.complete(key, token=token)
            finally:
                current_correlation_id.reset(correlation)

        return handle_once

    return wrap


def idempotency_key(handler: str, event_id: str) -> str:
    """The record key of one handler's effect for one event."""
    return f"{handler}#{event_id}"


#: Errors worth retrying in place: the call may well succeed a moment later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)


class HandlerBound:
    """The time bound of one handler call: its task is cancelled once its watchdog's time
    (the loop's; a `ManualClock`'s in tests) passes `when`, and the call fails with
    TimeoutError. `postpone()` moves it later (a visibility heartbeat)."""

    __slots__ = ("_now", "_task", "_when", "expired")

    def __init__(self, task: asyncio.Task[Any], when: float, now: Callable[[], float]) -> None:
        self._task = task
        self._when = when
        self._now = now
        self.expired = False

    def postpone(self, seconds: float) -> None:
        """End no sooner than `seconds` from now."""
        self._when = max(self._when, self._now() + seconds)

    def expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def took_the_cancellation(self) -> bool:
        """Whether a cancellation the call met was this bound's own, taken back from the
        task so that the caller sees a TimeoutError, not a cancelled task."""
        if not self.expired:
            return False
        self._task.uncancel()
        return True


class Watchdog:
    """Expires the handler calls of one event loop that outlive their bound.

    One timer for all of them, armed for the earliest bound: a timer per call (what
    `asyncio.timeout` makes) costs more than the rest of a delivery's bookkeeping, and
    calls of one domain, bounded alike, almost never need it moved.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, manual: ManualClock | None = None) -> None:
        self.loop = loop
        #: Where timers are set: the loop, or the test clock, so a hanging handler's bound
        #: passes when the test's time does (`Harness.settle` advances it).
        self._timers: asyncio.AbstractEventLoop | ManualClock = manual or loop
        self._time = manual.now if manual else loop.time
        self._running: dict[HandlerBound, None] = {}
        self._timer: asyncio.TimerHandle | ManualTimer | None = None
        self._armed_for = math.inf

    def watch(self, seconds: float) -> HandlerBound:
        task = asyncio.current_task()
        assert task is not None, "a handler call runs in a task"
        when = self._time() + seconds
        bound = HandlerBound(task, when, self._time)
        self._running[bound] = None
        if when < self._armed_for:
            self._arm(when)
        return bound

    def release(self, bound: HandlerBound) -> None:
        self._running.pop(bound, None)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timers.call_at(when, self._fire)
        self._armed_for = when

    def _fire(self) -> None:
        self._timer, self._armed_for = None, math.inf
        now = self._time()
        earliest = math.inf
        for bound in list(self._running):
            if bound._when <= now:
                del self._running[bound]
                bound.expire()
            else:
                earliest = min(earliest, bound._when)
        if earliest < math.inf:
            self._arm(earliest)


def attempts(
    handler_call: Handler,
    *,
    attempts: int,
    backoff: float,
    clock: Clock,
    seconds: float | None,
    publish: Callable[[list[Envelope]], Awaitable[None]],
    transient: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
) -> Handler:
    """Call the handler (`handler_call`) and publish what it staged once it succeeds,
    retrying transient failures in place up to `attempts` calls, `backoff` seconds doubling
    between them; each call bounded to `seconds` of loop time, or of a
    `ManualClock`'s (TimeoutError after).

    A new attempt starts with nothing staged. Other errors propagate at once, and the
    transport's redelivery handles them; so does any error after the handler committed its
    unit of work: running it again would repeat the committed effect. The bound covers the
    handler, not the publishing of what it staged.
    """
    watchdogs: list[Watchdog] = []  # this handler's, for the loop it runs on
    manual = clock if isinstance(clock, ManualClock) and clock.bounds_handlers else None

    async def attempt(delivery: Delivery) -> None:
        context = delivery.context
        delay = backoff
        tries = 1
        while True:  # a delivery's context starts empty: only a retry begins anew
            try:
                if seconds is None:
                    await handler_call(delivery)
                else:
                    # asyncio's own loop timer: a Lambda function runs on asyncio, no anyio.
                    loop = asyncio.get_running_loop()
                    if not watchdogs or watchdogs[0].loop is not loop:
                        watchdogs[:] = [Watchdog(loop, manual)]
                    watchdog = watchdogs[0]
                    bound = context.bound = watchdog.watch(seconds)
                    try:
                        await handler_call(delivery)
                    except asyncio.CancelledError:
                        if not bound.took_the_cancellation():
                            raise
                        raise TimeoutError(f"handler call exceeded {seconds:g}s") from None
                    finally:
                        watchdog.release(bound)
                        context.bound = None
                if context.outbox:
                    await publish(context.outbox)
                return
            except transient:
                if tries >= attempts or context.committed:
                    raise
            await clock.sleep(delay)
            delay *= 2
            tries += 1
            context.begin_attempt()

    return attempt
