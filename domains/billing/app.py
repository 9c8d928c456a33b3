"""The billing domain: a customer per user, monthly subscriptions, invoices, and collecting
them through a `PaymentProvider`, with dunning retries on a schedule.

A user's billing answers only to that user (404 to anyone else). Items, all in billing's
table: `CUSTOMER#<user_id>` holds `PROFILE`, `SUBSCRIPTION` and `INVOICE#<invoice_id>`;
`INVOICE#<invoice_id>` finds an invoice's customer; `RENEWALS` and `DUNNING` are sorted by
due time, read by the scheduled sweeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bus import (
    Attr,
    Conflict,
    Context,
    Domain,
    Key,
    NotFound,
    Rejected,
    Request,
    Storage,
    TransactionCanceled,
)
from bus.access import SIGNED_IN
from bus.pagination import PageQuery, page_query, read_page
from domains.billing.contracts import (
    CollectPayment,
    InvoiceIssued,
    InvoicePaid,
    InvoiceReason,
    PaymentFailed,
    RenewSubscription,
    RenewSubscriptions,
    RetryPayments,
    SubscriptionCanceled,
)
from domains.billing.errors import WebhookSecretMissing
from domains.billing.payments import Charge, LocalPaymentProvider, PaymentProvider
from domains.billing.plans import PLANS, add_months, prorate
from domains.billing.webhooks import LOCAL_SECRET_VARIABLE, WebhookEvent, endpoint_secrets, verify
from domains.billing.webhooks import SECRET as WEBHOOK_SECRET
from domains.users.contracts import UserCreated, UserDeleted

domain = Domain(
    "billing",
    storage=Storage(),
    sends=[CollectPayment, RenewSubscription],
    secrets=[WEBHOOK_SECRET],
)

#: The provider charging invoices; the local one answers by payment method (payments.py).
payments: PaymentProvider = LocalPaymentProvider()
#: Waits after each failed attempt before the next; after the last, the subscription ends.
DUNNING_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))
#: The role that may read any customer's billing.
ADMIN_ROLE = "admin"
CURRENCY = "EUR"

domain.every("cron(0 0 * * ? *)", RenewSubscriptions(), name="renewals")
domain.every("rate(1 hour)", RetryPayments(), name="dunning")


class PaymentMethodChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_method: str = Field(pattern=r"^pm_[A-Za-z0-9_]{1,64}$")


class PlanChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Literal["pro", "business"]


class Subscription(BaseModel):
    user_id: str
    subscription_id: str
    plan: str
    status: Literal["active", "canceled"]
    current_period_start: str
    current_period_end: str
    cancel_at_period_end: bool


class Customer(BaseModel):
    user_id: str
    currency: str
    payment_method: str | None
    #: What the customer is owed from a downgrade, taken off the next invoices.
    credit: int
    subscription: Subscription | None


class Invoice(BaseModel):
    invoice_id: str
    subscription_id: str
    plan: str
    amount: int
    currency: str
    status: Literal["open", "paid", "uncollectible", "void"]
    reason: InvoiceReason
    attempts: int
    period_start: str
    period_end: str
    created_at: str
    paid_at: str | None = None


class Invoices(BaseModel):
    items: list[Invoice]
    cursor: str | None


class WebhookReceipt(BaseModel):
    received: bool
    duplicate: bool


def _customer_key(user_id: str) -> dict[str, str]:
    return {"PK": f"CUSTOMER#{user_id}", "SK": "PROFILE"}


def _subscription_key(user_id: str) -> dict[str, str]:
    return {"PK": f"CUSTOMER#{user_id}", "SK": "SUBSCRIPTION"}


def _invoice_key(user_id: str, invoice_id: str) -> dict[str, str]:
    return {"PK": f"CUSTOMER#{user_id}", "SK": f"INVOICE#{invoice_id}"}


def _invoice_owner_key(invoice_id: str) -> dict[str, str]:
    return {"PK": f"INVOICE#{invoice_id}", "SK": "OWNER"}


def _renewal_key(period_end: str, user_id: str) -> dict[str, str]:
    return {"PK": "RENEWALS", "SK": f"{period_end}#{user_id}"}


def _dunning_key(next_attempt_at: str, invoice_id: str) -> dict[str, str]:
    return {"PK": "DUNNING", "SK": f"{next_attempt_at}#{invoice_id}"}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- customers --------------------------------------------------------------------------


@domain.on(UserCreated)
async def open_customer(event: UserCreated, ctx: Context) -> None:
    """A customer for every user: only the id, nothing a bill does not need."""
    item = {
        **_customer_key(event.user_id),
        "user_id": event.user_id,
        "currency": CURRENCY,
        "payment_method": None,
        "credit": 0,
        "created_at": _iso(ctx.now()),
    }
    try:
        async with ctx.unit_of_work() as uow:
            uow.put(item, condition=Attr("PK").not_exists())
    except TransactionCanceled:
        return  # already a customer


@domain.on(UserDeleted)
async def erase_customer(event: UserDeleted, ctx: Context) -> None:
    """Forget the payment method, end the subscription and void what is still open.

    Issued invoices stay (tax law keeps them for years); they hold the user's id, amounts,
    plan and dates, never a name, an address or a card.
    """
    user_id = event.user_id
    customer = await ctx.table.get(_customer_key(user_id), consistent=True)
    if customer is None or customer.get("erased_at"):
        return
    subscription = await ctx.table.get(_subscription_key(user_id), consistent=True)
    open_invoices = await _open_invoices(user_id, ctx)
    async with ctx.unit_of_work() as uow:
        uow.put(
            {**_customer_key(user_id), "user_id": user_id, "erased_at": _iso(ctx.now())},
            condition=Attr("erased_at").not_exists(),
        )
        if subscription is not None and subscription["status"] == "active":
            _end_subscription(uow, subscription, "account_deleted")
        for invoice in open_invoices:
            uow.update(_invoice_key(user_id, invoice["invoice_id"]), set={"status": "void"})
            if invoice.get("next_attempt_at"):
                uow.delete(_dunning_key(invoice["next_attempt_at"], invoice["invoice_id"]))


async def _open_invoices(user_id: str, ctx: Context) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await ctx.table.query(
            Key("PK").eq(f"CUSTOMER#{user_id}") & Key("SK").begins_with("INVOICE#"),
            filter=Attr("status").eq("open"),
            cursor=cursor,
            consistent=True,
        )
        found += page.items
        cursor = page.cursor
        if cursor is None:
            return found


async def _own_customer(request: Request[Any], ctx: Context) -> dict[str, Any]:
    """The customer named in the path, if the caller may see it; 404 otherwise."""
    user_id = request.path_params["user_id"]
    caller = request.principal
    allowed = caller is not None and (caller.subject == user_id or ADMIN_ROLE in caller.roles)
    item = await ctx.table.get(_customer_key(user_id), consistent=True) if allowed else None
    if item is None or item.get("erased_at"):
        raise NotFound(f"no customer {user_id}")
    return item


async def _customer_view(customer: dict[str, Any], ctx: Context) -> Customer:
    item = await ctx.table.get(_subscription_key(customer["user_id"]), consistent=True)
    return Customer(
        user_id=customer["user_id"],
        currency=customer["currency"],
        payment_method=customer["payment_method"],
        credit=customer["credit"],
        subscription=None if item is None else _subscription_view(item),
    )


def _subscription_view(item: dict[str, Any]) -> Subscription:
    return Subscription(
        user_id=item["user_id"],
        subscription_id=item["subscription_id"],
        plan=item["plan"],
        status=item["status"],
        current_period_start=item["period_start"],
        current_period_end=item["period_end"],
        cancel_at_period_end=item["cancel_at_period_end"],
    )


@domain.get("/billing/customers/{user_id}", response=Customer, access=SIGNED_IN)
async def get_customer(request: Request[None], ctx: Context) -> Customer:
    return await _customer_view(await _own_customer(request, ctx), ctx)


@domain.put("/billing/customers/{user_id}/payment-method", response=Customer, access=SIGNED_IN)
async def set_payment_method(request: Request[PaymentMethodChange], ctx: Context) -> Customer:
    """Save the payment method later invoices are charged to (a provider's `pm_...` id)."""
    customer = await _own_customer(request, ctx)
    method = request.body.payment_method
    async with ctx.unit_of_work() as uow:
        uow.update(
            _customer_key(customer["user_id"]),
            set={"payment_method": method},
            condition=Attr("erased_at").not_exists(),
        )
    return await _customer_view({**customer, "payment_method": method}, ctx)


# -- subscriptions ----------------------------------------------------------------------


@domain.post(
    "/billing/customers/{user_id}/subscription",
    response=Subscription,
    status=201,
    location="/billing/customers/{user_id}",
    access=SIGNED_IN,
)
async def start_subscription(request: Request[PlanChoice], ctx: Context) -> Subscription:
    """Subscribe to a plan from now; the first period is invoiced and charged at once."""
    customer = await _own_customer(request, ctx)
    user_id = customer["user_id"]
    if customer["payment_method"] is None:
        raise Rejected("save a payment method before subscribing")
    current = await ctx.table.get(_subscription_key(user_id), consistent=True)
    if current is not None and current["status"] == "active":
        raise Conflict("there is an active subscription already; change its plan instead")
    plan = PLANS[request.body.plan]
    start = ctx.now()
    item = {
        **_subscription_key(user_id),
        "user_id": user_id,
        "subscription_id": ctx.new_id(),
        "plan": plan.name,
        "status": "active",
        "anchor": _iso(start),
        "cycle": 1,
        "period_start": _iso(start),
        "period_end": _iso(add_months(start, 1)),
        "cancel_at_period_end": False,
    }
    try:
        async with ctx.unit_of_work() as uow:
            expected = current["subscription_id"] if current else None
            uow.put(
                item,
                condition=Attr("PK").not_exists()
                if expected is None
                else Attr("subscription_id").eq(expected),
            )
            uow.put({**_renewal_key(item["period_end"], user_id), "user_id": user_id})
            _issue_invoice(uow, ctx, customer, item, plan.amount, "subscription_create")
    except TransactionCanceled as error:
        raise Conflict("the subscription changed meanwhile; read it and try again") from error
    return _subscription_view(item)


async def _active_subscription(request: Request[Any], ctx: Context) -> tuple[dict[str, Any], ...]:
    customer = await _own_customer(request, ctx)
    item = await ctx.table.get(_subscription_key(customer["user_id"]), consistent=True)
    if item is None or item["status"] != "active":
        raise NotFound(f"no active subscription for {customer['user_id']}")
    return customer, item


@domain.patch("/billing/customers/{user_id}/subscription", response=Subscription, access=SIGNED_IN)
async def change_plan(request: Request[PlanChoice], ctx: Context) -> Subscription:
    """Move to another plan now: the rest of the period is invoiced at the difference, or
    credited to the customer when the new plan costs less."""
    customer, item = await _active_subscription(request, ctx)
    old, new = PLANS[item["plan"]], PLANS[request.body.plan]
    if old == new:
        return _subscription_view(item)
    difference = prorate(
        old, new, _parse(item["period_start"]), _parse(item["period_end"]), ctx.now()
    )
    changed = {**item, "plan": new.name}
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _subscription_key(item["user_id"]),
                set={"plan": new.name},
                condition=Attr("plan").eq(old.name) & Attr("status").eq("active"),
            )
            if difference > 0:
                _issue_invoice(uow, ctx, customer, changed, difference, "subscription_update")
            elif difference < 0:
                uow.update(
                    _customer_key(item["user_id"]),
                    set={"credit": customer["credit"] - difference},
                    condition=Attr("credit").eq(customer["credit"]),
                )
    except TransactionCanceled as error:
        raise Conflict("the subscription changed meanwhile; read it and try again") from error
    return _subscription_view(changed)


@domain.delete("/billing/customers/{user_id}/subscription", response=Subscription, access=SIGNED_IN)
async def cancel_subscription(request: Request[None], ctx: Context) -> Subscription:
    """Cancel at the period's end: the period paid for runs out, nothing more is charged."""
    _, item = await _active_subscription(request, ctx)
    if not item["cancel_at_period_end"]:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _subscription_key(item["user_id"]),
                set={"cancel_at_period_end": True},
                condition=Attr("status").eq("active"),
            )
    return _subscription_view({**item, "cancel_at_period_end": True})


def _end_subscription(
    uow: Any,
    item: dict[str, Any],
    reason: Literal["requested", "payment_failed", "account_deleted"],
) -> None:
    uow.update(
        _subscription_key(item["user_id"]),
        set={"status": "canceled"},
        condition=Attr("status").eq("active") & Attr("period_end").eq(item["period_end"]),
    )
    uow.delete(_renewal_key(item["period_end"], item["user_id"]))
    uow.publish(
        SubscriptionCanceled(
            user_id=item["user_id"],
            subscription_id=item["subscription_id"],
            plan=item["plan"],
            reason=reason,
        ),
        subject=item["user_id"],
    )


# -- invoices ---------------------------------------------------------------------------


def _issue_invoice(
    uow: Any,
    ctx: Context,
    customer: dict[str, Any],
    subscription: dict[str, Any],
    price: int,
    reason: InvoiceReason,
) -> None:
    """Stage an invoice of `price` less the customer's credit, INVOICE_ISSUED, and its
    first collection."""
    user_id = customer["user_id"]
    credit_used = min(customer["credit"], price)
    if credit_used:
        uow.update(
            _customer_key(user_id),
            set={"credit": customer["credit"] - credit_used},
            condition=Attr("credit").eq(customer["credit"]),
        )
    invoice = Invoice(
        invoice_id=ctx.new_id(),
        subscription_id=subscription["subscription_id"],
        plan=subscription["plan"],
        amount=price - credit_used,
        currency=customer["currency"],
        status="open",
        reason=reason,
        attempts=0,
        period_start=_iso(ctx.now())
        if reason == "subscription_update"
        else subscription["period_start"],
        period_end=subscription["period_end"],
        created_at=_iso(ctx.now()),
    )
    uow.put({**_invoice_key(user_id, invoice.invoice_id), **invoice.model_dump()})
    uow.put({**_invoice_owner_key(invoice.invoice_id), "user_id": user_id})
    uow.publish(
        InvoiceIssued(
            user_id=user_id,
            invoice_id=invoice.invoice_id,
            subscription_id=invoice.subscription_id,
            plan=invoice.plan,
            amount=invoice.amount,
            currency=invoice.currency,
            reason=reason,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
        ),
        subject=user_id,
    )
    uow.send(CollectPayment(user_id=user_id, invoice_id=invoice.invoice_id, attempt=1))


@domain.get(
    "/billing/customers/{user_id}/invoices", response=Invoices, access=SIGNED_IN, query=PageQuery
)
async def list_invoices(request: Request[None], ctx: Context) -> Invoices:
    """The customer's invoices, oldest first, `limit` (1-100, default 20) a page."""
    customer = await _own_customer(request, ctx)
    page_of = page_query(request)
    page = await read_page(
        ctx.table,
        Key("PK").eq(f"CUSTOMER#{customer['user_id']}") & Key("SK").begins_with("INVOICE#"),
        page_of,
    )
    return Invoices(items=[Invoice.model_validate(i) for i in page.items], cursor=page.cursor)


# -- renewals ---------------------------------------------------------------------------


@domain.task(RenewSubscriptions)
async def find_renewals(task: RenewSubscriptions, ctx: Context) -> None:
    """Send a renewal for every subscription whose period has ended."""
    async for entry in _due("RENEWALS", ctx):
        ctx.send(RenewSubscription(user_id=entry["user_id"], period_end=entry["SK"].split("#")[0]))


async def _due(partition: str, ctx: Context) -> Any:
    cursor: str | None = None
    while True:
        page = await ctx.table.query(
            Key("PK").eq(partition) & Key("SK").lte(f"{_iso(ctx.now())}~"),
            cursor=cursor,
            consistent=True,
        )
        for item in page.items:
            yield item
        cursor = page.cursor
        if cursor is None:
            return


@domain.task(RenewSubscription)
async def renew_subscription(task: RenewSubscription, ctx: Context) -> None:
    """Start the next period and invoice it, or end a subscription canceled at period end."""
    item = await ctx.table.get(_subscription_key(task.user_id), consistent=True)
    customer = await ctx.table.get(_customer_key(task.user_id), consistent=True)
    if (
        item is None
        or customer is None
        or item["status"] != "active"
        or item["period_end"] != task.period_end
    ):
        return  # renewed or ended already
    try:
        async with ctx.unit_of_work() as uow:
            if item["cancel_at_period_end"]:
                _end_subscription(uow, item, "requested")
                return
            cycle = item["cycle"] + 1
            renewed = {
                **item,
                "cycle": cycle,
                "period_start": item["period_end"],
                "period_end": _iso(add_months(_parse(item["anchor"]), cycle)),
            }
            uow.update(
                _subscription_key(task.user_id),
                set={k: renewed[k] for k in ("cycle", "period_start", "period_end")},
                condition=Attr("period_end").eq(task.period_end) & Attr("status").eq("active"),
            )
            uow.delete(_renewal_key(task.period_end, task.user_id))
            uow.put({**_renewal_key(renewed["period_end"], task.user_id), "user_id": task.user_id})
            _issue_invoice(
                uow, ctx, customer, renewed, PLANS[item["plan"]].amount, "subscription_cycle"
            )
    except TransactionCanceled:
        return  # a concurrent change won; the next sweep sees the subscription as it is


# -- payments and dunning ---------------------------------------------------------------


@domain.task(CollectPayment)
async def collect_payment(task: CollectPayment, ctx: Context) -> None:
    """Charge an open invoice once per attempt (the provider's idempotency key is the
    invoice and attempt); a decline schedules the next dunning attempt, or after the last
    ends the subscription."""
    invoice = await ctx.table.get(_invoice_key(task.user_id, task.invoice_id), consistent=True)
    if invoice is None or invoice["status"] != "open" or invoice["attempts"] != task.attempt - 1:
        return  # paid, voided, or this attempt is already recorded
    customer = await ctx.table.get(_customer_key(task.user_id), consistent=True)
    charge = await _charge(invoice, customer, task)
    guard = Attr("status").eq("open") & Attr("attempts").eq(task.attempt - 1)
    try:
        async with ctx.unit_of_work() as uow:
            if invoice.get("next_attempt_at"):
                uow.delete(_dunning_key(invoice["next_attempt_at"], task.invoice_id))
            if charge.status == "succeeded":
                _mark_paid(uow, ctx, invoice, task.user_id, guard, attempts=task.attempt)
            else:
                await _record_failure(uow, ctx, invoice, task, charge, guard)
    except TransactionCanceled:
        return  # the invoice changed meanwhile (paid through a webhook, voided)


async def _charge(
    invoice: dict[str, Any], customer: dict[str, Any] | None, task: CollectPayment
) -> Charge:
    if invoice["amount"] == 0:
        return Charge("", "succeeded")
    method = customer.get("payment_method") if customer else None
    if method is None:
        return Charge("", "declined", "no_payment_method")
    return await payments.charge(
        customer=task.user_id,
        payment_method=method,
        amount=invoice["amount"],
        currency=invoice["currency"],
        idempotency_key=f"{task.invoice_id}/{task.attempt}",
    )


def _mark_paid(
    uow: Any, ctx: Context, invoice: dict[str, Any], user_id: str, guard: Any, *, attempts: int
) -> None:
    paid_at = _iso(ctx.now())
    uow.update(
        _invoice_key(user_id, invoice["invoice_id"]),
        set={"status": "paid", "paid_at": paid_at, "attempts": attempts, "next_attempt_at": None},
        condition=guard,
    )
    uow.publish(
        InvoicePaid(
            user_id=user_id,
            invoice_id=invoice["invoice_id"],
            amount=invoice["amount"],
            currency=invoice["currency"],
            paid_at=paid_at,
        ),
        subject=user_id,
    )


async def _record_failure(
    uow: Any,
    ctx: Context,
    invoice: dict[str, Any],
    task: CollectPayment,
    charge: Charge,
    guard: Any,
) -> None:
    last = task.attempt > len(DUNNING_DELAYS)
    next_attempt_at = None if last else _iso(ctx.now() + DUNNING_DELAYS[task.attempt - 1])
    uow.update(
        _invoice_key(task.user_id, task.invoice_id),
        set={
            "status": "uncollectible" if last else "open",
            "attempts": task.attempt,
            "next_attempt_at": next_attempt_at,
        },
        condition=guard,
    )
    if next_attempt_at is not None:
        uow.put(
            {
                **_dunning_key(next_attempt_at, task.invoice_id),
                "user_id": task.user_id,
                "invoice_id": task.invoice_id,
                "attempt": task.attempt + 1,
            }
        )
    uow.publish(
        PaymentFailed(
            user_id=task.user_id,
            invoice_id=task.invoice_id,
            amount=invoice["amount"],
            currency=invoice["currency"],
            attempt=task.attempt,
            decline_code=charge.decline_code or "card_declined",
            next_attempt_at=next_attempt_at,
        ),
        subject=task.user_id,
    )
    if last:
        subscription = await ctx.table.get(_subscription_key(task.user_id), consistent=True)
        if (
            subscription is not None
            and subscription["status"] == "active"
            and subscription["subscription_id"] == invoice["subscription_id"]
        ):
            _end_subscription(uow, subscription, "payment_failed")


@domain.task(RetryPayments)
async def find_dunning_retries(task: RetryPayments, ctx: Context) -> None:
    """Collect again every failed invoice whose next attempt is due."""
    async for entry in _due("DUNNING", ctx):
        ctx.send(
            CollectPayment(
                user_id=entry["user_id"], invoice_id=entry["invoice_id"], attempt=entry["attempt"]
            )
        )


# -- the provider's webhooks ------------------------------------------------------------


@domain.post("/billing/webhooks", response=WebhookReceipt)
async def receive_webhook(request: Request[None], ctx: Context) -> WebhookReceipt:
    """A provider event, signed as Stripe signs them; each event id takes effect once.

    `invoice.paid` settles an open invoice paid outside a charge billing made; other types
    are acknowledged and ignored, as a provider expects.
    """
    endpoint = endpoint_secrets()
    if not endpoint:
        raise WebhookSecretMissing(
            "webhook refused: no provider endpoint secret (whsec_...) yet; put it in the "
            f"stage's billing {WEBHOOK_SECRET} secret, or {LOCAL_SECRET_VARIABLE} for a local "
            "run (docs/deploy.md, Secrets)"
        )
    verify(request.headers.get("stripe-signature"), request.raw_body, endpoint, ctx.clock.now())
    try:
        event = WebhookEvent.model_validate_json(request.raw_body)
    except ValidationError as error:
        raise Rejected("the webhook is not a provider event") from error
    receipt = {"PK": f"WEBHOOK#{event.id}", "SK": "RECEIVED", "type": event.type}
    invoice = owner = None
    if event.type == "invoice.paid":
        owner = await ctx.table.get(_invoice_owner_key(event.data.object.id), consistent=True)
        if owner is not None:
            key = _invoice_key(owner["user_id"], event.data.object.id)
            invoice = await ctx.table.get(key, consistent=True)
    try:
        async with ctx.unit_of_work() as uow:
            uow.put(
                {**receipt, "received_at": _iso(ctx.now()), "expires_at": _receipt_expiry(ctx)},
                condition=Attr("PK").not_exists(),
            )
            if owner is not None and invoice is not None and invoice["status"] == "open":
                if invoice.get("next_attempt_at"):
                    uow.delete(_dunning_key(invoice["next_attempt_at"], invoice["invoice_id"]))
                guard = Attr("status").eq("open")
                _mark_paid(uow, ctx, invoice, owner["user_id"], guard, attempts=invoice["attempts"])
    except TransactionCanceled as error:
        if await ctx.table.get({"PK": receipt["PK"], "SK": receipt["SK"]}, consistent=True):
            return WebhookReceipt(received=True, duplicate=True)
        raise Conflict(
            "the invoice changed while the webhook was applied; send it again"
        ) from error
    return WebhookReceipt(received=True, duplicate=False)


def _receipt_expiry(ctx: Context) -> int:
    """Receipts outlive the provider's retries (Stripe retries for 3 days)."""
    return int(ctx.clock.now()) + 30 * 24 * 3600
