"""The hosted checkout page a person (or a test with httpx) pays or cancels on."""

from __future__ import annotations

from html import escape

from devhost.stripe_standin.store import format_amount

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; color: #1a1f36; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
td, th { padding: .4rem 0; border-bottom: 1px solid #e3e8ee; text-align: left; }
td.amount, th.amount { text-align: right; }
.actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
button { font-size: 1rem; padding: .6rem 1.4rem; border-radius: .4rem; border: 1px solid #635bff; cursor: pointer; }
button.pay { background: #635bff; color: white; }
button.cancel { background: white; color: #635bff; }
.note { color: #697386; font-size: .9rem; }
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body>{body}</body></html>"
    )


def checkout_page(session: dict, line_items: list[dict]) -> str:
    currency = session["currency"]
    per = ""
    if session["mode"] == "subscription":
        recurring = line_items[0]["price"]["recurring"]
        count = recurring["interval_count"]
        per = f" / {recurring['interval']}" if count == 1 else f" / {count} {recurring['interval']}s"
    rows = "".join(
        f"<tr><td>{escape(item['description'])}</td><td>{item['quantity']}</td>"
        f'<td class="amount">{format_amount(item["amount_total"], currency)}{per}</td></tr>'
        for item in line_items
    )
    sid = escape(session["id"])
    if session["status"] == "open":
        delayed = ""
        if session["mode"] == "payment":  # a bank debit: completes unpaid, settles (or fails) afterwards
            delayed = (
                f'<form class="actions" method="post" action="/pay/{sid}/pay">'
                '<button class="cancel" name="payment" value="delayed_success">Bank debit (clears)</button>'
                '<button class="cancel" name="payment" value="delayed_failure">Bank debit (fails)</button></form>'
            )
        state = (
            f'<form class="actions" method="post"><button class="pay" formaction="/pay/{sid}/pay">Pay</button>'
            f'<button class="cancel" formaction="/pay/{sid}/cancel">Cancel</button></form>{delayed}'
            '<p class="note">Local Stripe stand-in: no card is needed and no money moves.</p>'
        )
    elif session["status"] == "complete":
        paid = session["payment_status"] == "paid"
        state = f"<p><strong>{'Paid' if paid else 'Complete, payment pending'}.</strong></p>"
    else:
        state = "<p><strong>This checkout has expired.</strong> Start again from the shop.</p>"
    email = session.get("customer_email")
    who = f'<p class="note">For {escape(email)}</p>' if email else ""
    return _page(
        "Checkout",
        f"<h1>Checkout</h1>{who}"
        '<table><thead><tr><th>Item</th><th>Qty</th><th class="amount">Amount</th></tr></thead>'
        f"<tbody>{rows}</tbody><tfoot><tr><th>Total</th><th></th>"
        f'<th class="amount">{format_amount(session["amount_total"], currency)}{per}</th></tr></tfoot></table>'
        f"{state}",
    )


def message_page(title: str, text: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def onboarding_page(account: dict, token: str) -> str:
    who = escape(account.get("email") or account["id"])
    return _page(
        "Payout account",
        f"<h1>Set up payouts</h1><p>Account {who}</p>"
        f'<form class="actions" method="post" action="/onboard/{escape(token)}">'
        '<button class="pay" name="outcome" value="verified">Finish onboarding</button>'
        '<button class="cancel" name="outcome" value="verification_failed">'
        "Submit details that fail verification</button></form>"
        '<p class="note">Local Stripe stand-in: no identity or bank details are collected. "Fail verification" '
        "is Stripe's test date of birth 1900-01-01: the account stays restricted, payouts disabled and transfers "
        "to it refused.</p>",
    )
