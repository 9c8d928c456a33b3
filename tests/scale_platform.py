"""A generated platform of many domains, for synthesizing at scale (a fixture, not shipped).

Domain `s00`..`sNN`: each publishes one event and subscribes to the events of the two
domains before it (a ring, so every one is both producer and consumer); every second
domain has storage (its table, stream and outbox), the others an idempotency table; every
third has a task the next domain sends it; every fifth a schedule; every domain two HTTP
routes. The shape of the real domains, many times over.
"""

from __future__ import annotations

from pydantic import BaseModel

from bus import Context, Domain, Event, Request, Storage, Task

#: The size of the platform the issue names.
DOMAINS = 34


class Item(BaseModel):
    id: str


def scale_platform(count: int = DOMAINS) -> list[Domain]:
    """`count` domains wired to each other as the module says."""
    names = [f"s{n:02d}" for n in range(count)]
    events = {
        name: type(f"{name.title()}Changed", (Event,), {"type": f"{name.upper()}_CHANGED"})
        for name in names
    }
    tasks = {
        name: type(
            f"{name.title()}Refresh", (Task,), {"type": f"{name.upper()}_REFRESH", "domain": name}
        )
        for n, name in enumerate(names)
        if n % 3 == 0
    }
    built = []
    for n, name in enumerate(names):
        sent = tasks.get(names[(n + 1) % count])
        domain = Domain(
            name,
            storage=Storage() if n % 2 == 0 else None,
            sends=[sent] if sent is not None else [],
        )
        for before in sorted({names[n - 1], names[n - 2]} - {name}):
            domain.on(events[before], name=f"on_{before}")(_handle)
        if name in tasks:
            domain.task(tasks[name], name="refresh")(_handle)
            if n % 5 == 0:
                domain.every("rate(1 hour)", tasks[name]())
        domain.get(f"/{name}/items/{{id}}", response=Item)(_read)
        domain.post(f"/{name}/items", response=Item)(_write)
        built.append(domain)
    return built


async def _handle(message: Event | Task, ctx: Context) -> None:
    return None


async def _read(request: Request[None], ctx: Context) -> Item:
    return Item(id="x")


async def _write(request: Request[Item], ctx: Context) -> Item:
    return request.body
