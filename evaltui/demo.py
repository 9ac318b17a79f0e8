"""The demo project: a customer-support bot evaluated three ways, written with the SDK.

``write_demo(db)`` runs :func:`evaltui.Eval` three times over one 200-case support dataset:

- ``gpt-4o-mini baseline``: the small model with the v1 prompt
- ``gpt-4o``: the large model, same prompt
- ``gpt-4o-mini + new prompt``: the small model with the v2 prompt (greets, signs off)

Nothing calls a network: the "model" is simulated from a seeded generator keyed by
(seed, experiment, case), so every run writes the same inputs, outputs and scores whatever
the thread scheduling. What to find in it:

- the planted pattern: gpt-4o-mini regresses on ``technical`` tickets (Factuality,
  Helpfulness) while gpt-4o does not; the new prompt lifts Politeness
- about 3% task errors (rate limits, timeouts) and 2% scorer errors (an unparsable judge)
- nested spans: a retrieval tool call, one or two LLM calls with chat messages and tool
  calls, a tool span for the order/account lookup, a formatting function span
- tokens, cost and time to first token on every LLM span; simulated, realistic timings
- long multi-line inputs and outputs, some rows already reviewed or assigned (alice, bob)
- exactly one output holding Rich markup and terminal escape sequences (:data:`HOSTILE`),
  which the TUI must show literally

Writing the demo again replaces it: the experiments of the demo project are deleted and
written afresh, so nothing is duplicated. A project of that name holding experiments the
demo did not write is left alone (:class:`DemoConflict`).
"""

from __future__ import annotations

import difflib
import json
import math
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evaltui.store.errors import StoreError

DEMO_PROJECT = "demo-support-bot"
DEMO_VERSION = 1
N_CASES = 200
# The one output that holds Rich markup and terminal escapes (clear screen, red): shown literally.
HOSTILE = "[bold red]URGENT[/] \x1b[2J\x1b[31mreset\x1b[0m"

CATEGORIES = ("billing", "shipping", "returns", "account", "technical")
DIFFICULTIES = ("easy", "medium", "hard")


class DemoConflict(StoreError):
    """The demo project's name is taken by a project with experiments the demo did not write."""


# -- the simulated models and prompts ------------------------------------------------------------

SYSTEM_PROMPT_V1 = (
    "You are Ava, the support assistant of Acme Store. Answer the customer's question using the "
    "knowledge-base articles provided. Call a tool when you need order or account details."
)
SYSTEM_PROMPT_V2 = (
    "You are Ava, the support assistant of Acme Store.\n"
    "- Greet the customer by name when you know it, and thank them for reaching out.\n"
    "- Answer only from the knowledge-base articles and tool results; never guess policies.\n"
    "- Give concrete next steps, numbered when there are more than two.\n"
    "- Sign off with: — Ava, Acme Support\n"
    "Call a tool when you need order or account details."
)

MODELS = {
    "gpt-4o-mini": {
        "version": "gpt-4o-mini-2024-07-18",
        "price_in": 0.15 / 1e6,
        "price_out": 0.60 / 1e6,
        "tokens_per_s": 95.0,
        "ttft": (0.22, 0.65),
    },
    "gpt-4o": {
        "version": "gpt-4o-2024-08-06",
        "price_in": 2.50 / 1e6,
        "price_out": 10.00 / 1e6,
        "tokens_per_s": 62.0,
        "ttft": (0.35, 1.10),
    },
}

# key, experiment name, model, prompt, base experiment, description
EXPERIMENTS = (
    ("mini-v1", "gpt-4o-mini baseline", "gpt-4o-mini", "v1", None,
     "Baseline: gpt-4o-mini with the v1 support prompt"),
    ("4o-v1", "gpt-4o", "gpt-4o", "v1", "gpt-4o-mini baseline",
     "The large model with the same prompt"),
    ("mini-v2", "gpt-4o-mini + new prompt", "gpt-4o-mini", "v2", "gpt-4o-mini baseline",
     "gpt-4o-mini with the v2 prompt: greeting, numbered steps, sign-off"),
)

# How likely a fully right answer is: base per (model, prompt), shifted per category/difficulty.
_QUALITY_BASE = {("gpt-4o-mini", "v1"): 0.74, ("gpt-4o", "v1"): 0.84, ("gpt-4o-mini", "v2"): 0.78}
_CATEGORY_SHIFT = {
    "gpt-4o-mini": {"technical": -0.48, "account": -0.02},  # the planted regression
    "gpt-4o": {"technical": -0.02},
}
_DIFFICULTY_SHIFT = {"easy": 0.06, "medium": -0.02, "hard": -0.12}
# Style of the reply: P(greeting), P(sign-off) per prompt and model.
_STYLE = {("gpt-4o-mini", "v1"): (0.55, 0.35), ("gpt-4o", "v1"): (0.8, 0.6), ("gpt-4o-mini", "v2"): (0.97, 0.96)}


# -- the dataset -------------------------------------------------------------------------------

_NAMES = ["Maya", "Jonas", "Priya", "Luis", "Aiko", "Tom", "Fatima", "Noah", "Elena", "Kwame",
          "Sofia", "Chen", "Olga", "Mateo", "Grace", "Ravi", "Hana", "Omar", "Lena", "Diego"]
_PRODUCTS = ["trail running shoes", "wireless earbuds", "standing desk", "espresso grinder",
             "rain jacket", "mechanical keyboard", "yoga mat", "smart thermostat", "backpack", "desk lamp"]
_PLANS = ["Starter", "Pro", "Business"]
_MONTHS = ["January", "February", "March", "April", "May", "June"]
_COUNTRIES = ["Canada", "Germany", "Japan", "Australia", "Brazil", "the UK"]
_DEVICES = ["iPhone 13 (iOS 17.4)", "Pixel 7 (Android 14)", "Galaxy S22 (Android 13)", "iPad Air (iPadOS 17.2)"]

# Each intent: how customers ask, the facts a right answer states (one sentence each), the wrong
# claim a bad answer makes, the tool the model calls (if any), and the knowledge-base article.
_INTENTS: dict[str, list[dict[str, Any]]] = {
    "billing": [
        {
            "ask": ["I was charged twice for my {plan} subscription this month ({amount}). Can you refund the duplicate?",
                    "There are two {amount} charges from Acme on my card for {month}. Why?"],
            "facts": ["I've confirmed the duplicate {amount} charge and issued a refund for it.",
                      "Refunds reach your card within 5-7 business days.",
                      "Your {plan} subscription itself is unaffected."],
            "wrong": "Duplicate charges are only a pending authorization and will disappear within 24 hours.",
            "tool": ("lookup_invoice", {"customer": "{name}", "month": "{month}"},
                     {"invoices": [{"id": "INV-{num}", "amount": "{amount}", "status": "paid"},
                                   {"id": "INV-{num2}", "amount": "{amount}", "status": "paid"}]}),
            "doc": ("kb-billing-012", "Duplicate charges and refunds"),
        },
        {
            "ask": ["How do I download an invoice with my company's VAT number on it?",
                    "Our finance team needs invoices that show our VAT ID. Where do I add it?"],
            "facts": ["Add your VAT number under Settings → Billing → Tax details.",
                      "Invoices issued after you save it include the VAT number.",
                      "You can download every invoice as a PDF from the Billing history page."],
            "wrong": "VAT numbers can only be added by emailing a scanned certificate to finance.",
            "tool": None,
            "doc": ("kb-billing-031", "Invoices and tax details"),
        },
        {
            "ask": ["If I upgrade from {plan} to Business today, do I pay the full price this month?",
                    "What happens to my bill if I switch plans in the middle of the month?"],
            "facts": ["Plan changes are prorated to the day.",
                      "You are charged only the difference for the rest of the current billing period.",
                      "The new price applies from your next renewal date."],
            "wrong": "Upgrades are billed at the full monthly price immediately, with no proration.",
            "tool": None,
            "doc": ("kb-billing-007", "Changing plans and proration"),
        },
        {
            "ask": ["My card payment failed and now my account says 'past due'. What do I do?",
                    "Payment declined for {month} renewal. Will I lose my data?"],
            "facts": ["Update your card under Settings → Billing → Payment method and we retry the charge at once.",
                      "Your account stays fully active for a 14-day grace period.",
                      "No data is deleted while the account is past due."],
            "wrong": "Past-due accounts are suspended immediately and data is deleted after 48 hours.",
            "tool": ("lookup_account", {"customer": "{name}"},
                     {"status": "past_due", "plan": "{plan}", "grace_period_ends": "{month} 28"}),
            "doc": ("kb-billing-019", "Failed payments and the grace period"),
        },
    ],
    "shipping": [
        {
            "ask": ["Where is my order {order}? It was supposed to arrive yesterday.",
                    "Order {order} hasn't shown up. Can you check on it?"],
            "facts": ["Your order {order} is in transit with UPS.",
                      "The tracking number is 1Z{num}{num2}.",
                      "The carrier now expects delivery on {month} {day}."],
            "wrong": "Your order was delivered yesterday and left at the front door.",
            "tool": ("lookup_order", {"order_id": "{order}"},
                     {"order_id": "{order}", "status": "in_transit", "carrier": "UPS",
                      "tracking": "1Z{num}{num2}", "eta": "{month} {day}"}),
            "doc": ("kb-ship-002", "Tracking an order"),
        },
        {
            "ask": ["Can I change the shipping address on order {order}? I just moved.",
                    "I typed the wrong street on order {order}, can you fix it?"],
            "facts": ["The address can be changed while the order status is 'processing'.",
                      "I've updated the address on order {order}.",
                      "You'll get a confirmation email with the new address."],
            "wrong": "Addresses can never be changed once an order is placed; you must cancel and reorder.",
            "tool": ("lookup_order", {"order_id": "{order}"},
                     {"order_id": "{order}", "status": "processing", "carrier": None}),
            "doc": ("kb-ship-010", "Changing a shipping address"),
        },
        {
            "ask": ["How long does shipping to {country} take, and do I pay customs?",
                    "Do you ship to {country}? What about import duties?"],
            "facts": ["International orders to {country} arrive in 6-10 business days.",
                      "Duties and taxes are calculated at checkout and included in the price.",
                      "There are no extra fees on delivery."],
            "wrong": "International shipping takes 2-3 business days and duties are paid to the courier on delivery.",
            "tool": None,
            "doc": ("kb-ship-021", "International shipping and duties"),
        },
        {
            "ask": ["My {product} arrived with a cracked box and a dent. What now?",
                    "The {product} from order {order} is damaged. I want a replacement."],
            "facts": ["Please send a photo of the damage by replying to this email.",
                      "We'll ship a free replacement as soon as we receive it.",
                      "You don't need to return the damaged item."],
            "wrong": "Damage in transit is the carrier's responsibility, so please file a claim with UPS yourself.",
            "tool": ("lookup_order", {"order_id": "{order}"},
                     {"order_id": "{order}", "status": "delivered", "items": ["{product}"]}),
            "doc": ("kb-ship-033", "Damaged deliveries"),
        },
    ],
    "returns": [
        {
            "ask": ["Can I still return the {product} I bought on {month} {day}?",
                    "What's your return policy? I want to send back my {product}."],
            "facts": ["You can return unused items within 30 days of delivery.",
                      "Start the return from Orders → Return an item to get a free prepaid label.",
                      "Refunds are issued to the original payment method once the item arrives at our warehouse."],
            "wrong": "Returns are accepted within 14 days and the customer pays return shipping.",
            "tool": None,
            "doc": ("kb-ret-001", "Return policy"),
        },
        {
            "ask": ["I'd like to exchange my {product} for a different size/color.",
                    "Can I swap the {product} from order {order} for another model?"],
            "facts": ["Exchanges are free within 30 days of delivery.",
                      "Choose 'Exchange' instead of 'Refund' when you start the return.",
                      "We ship the new item as soon as the carrier scans your return."],
            "wrong": "We don't do exchanges; you have to return the item and place a new order.",
            "tool": ("lookup_order", {"order_id": "{order}"},
                     {"order_id": "{order}", "status": "delivered", "delivered": "{month} {day}"}),
            "doc": ("kb-ret-004", "Exchanges"),
        },
        {
            "ask": ["I returned order {order} two weeks ago. Where's my refund?",
                    "Refund for RMA-{num} still not on my card. Help?"],
            "facts": ["Your return for order {order} was received and the refund was issued on {month} {day}.",
                      "Banks take 5-7 business days to show the refund.",
                      "The refund reference is RF-{num2}."],
            "wrong": "We have not received your return yet; please send us the tracking number.",
            "tool": ("lookup_order", {"order_id": "{order}"},
                     {"order_id": "{order}", "return_status": "refunded", "refund_ref": "RF-{num2}",
                      "refunded_on": "{month} {day}"}),
            "doc": ("kb-ret-009", "Refund timing"),
        },
        {
            "ask": ["Is the clearance {product} returnable?",
                    "I bought a {product} in the final sale. Can I return it if it doesn't fit?"],
            "facts": ["Items marked final sale can't be returned or exchanged.",
                      "Final-sale items are still covered by the 1-year warranty against defects."],
            "wrong": "All items, including final sale, can be returned within 30 days.",
            "tool": None,
            "doc": ("kb-ret-015", "Final sale items"),
        },
    ],
    "account": [
        {
            "ask": ["I forgot my password and the reset email never arrives.",
                    "Password reset link isn't coming through. I've checked spam."],
            "facts": ["I've re-sent the password reset link to your email on file.",
                      "The link expires after 30 minutes.",
                      "If it still doesn't arrive, add no-reply@acme.example to your contacts and try again."],
            "wrong": "For security reasons we can't reset passwords; please create a new account.",
            "tool": ("lookup_account", {"customer": "{name}"}, {"email_verified": True, "last_reset_sent": None}),
            "doc": ("kb-acct-003", "Password resets"),
        },
        {
            "ask": ["I lost my phone and can't get my 2FA codes. How do I log in?",
                    "New phone, authenticator app is gone. Locked out!"],
            "facts": ["Sign in with one of the backup codes you saved when you turned on 2FA.",
                      "Without backup codes, we verify your identity by email and a recent order number.",
                      "Identity checks take up to 24 hours."],
            "wrong": "Just log in with your password; 2FA is skipped automatically on new devices.",
            "tool": None,
            "doc": ("kb-acct-011", "Lost two-factor device"),
        },
        {
            "ask": ["Please delete my account and all my data.",
                    "How do I close my account permanently (GDPR request)?"],
            "facts": ["You can delete your account under Settings → Privacy → Delete account.",
                      "Deletion is permanent after a 14-day cooling-off period.",
                      "Order records we must keep for tax law are retained for 7 years."],
            "wrong": "Account deletion happens instantly and removes every record, including invoices.",
            "tool": None,
            "doc": ("kb-acct-020", "Deleting your account"),
        },
        {
            "ask": ["How do I change the email address on my account?",
                    "I need to move my account to my new work email."],
            "facts": ["Change it under Settings → Profile → Email.",
                      "We send a confirmation link to the new address.",
                      "The change takes effect once you click that link."],
            "wrong": "Email addresses are permanent and can't be changed.",
            "tool": None,
            "doc": ("kb-acct-006", "Changing your email"),
        },
    ],
    "technical": [
        {
            "ask": ["Every API call returns 401 Unauthorized since this morning. Nothing changed on our side.",
                    "Getting 401s from /v2/orders with a key that worked yesterday."],
            "facts": ["API keys now expire after 90 days; yours expired on {month} {day}.",
                      "Create a new key under Settings → Developers → API keys.",
                      "Send it as 'Authorization: Bearer <key>'."],
            "wrong": "401 errors mean our API is down; please wait until the outage is resolved.",
            "tool": ("lookup_account", {"customer": "{name}"},
                     {"api_keys": [{"prefix": "sk_live_{num}", "expired": "{month} {day}"}]}),
            "doc": ("kb-tech-040", "API authentication errors"),
        },
        {
            "ask": ["Our webhook endpoint stopped receiving order.created events.",
                    "Webhooks are not firing for new orders. Endpoint is up and returns 200."],
            "facts": ["Webhooks are disabled after 72 hours of failed deliveries.",
                      "Re-enable the endpoint under Settings → Developers → Webhooks.",
                      "Verify the signature with your endpoint's signing secret, or deliveries are rejected."],
            "wrong": "Webhooks only fire for orders over $100.",
            "tool": None,
            "doc": ("kb-tech-044", "Webhook deliveries"),
        },
        {
            "ask": ["The app crashes as soon as I open it on my {device}.",
                    "Acme app keeps closing on launch ({device}). Reinstalling didn't help."],
            "facts": ["This crash is fixed in app version 4.2.1.",
                      "Update the app from the store, then clear the app cache once.",
                      "Your data is stored in your account, so nothing is lost."],
            "wrong": "The app does not support your device; please use the website instead.",
            "tool": None,
            "doc": ("kb-tech-051", "App crashes on launch"),
        },
        {
            "ask": ["We get HTTP 429 when syncing our catalog. What are the limits?",
                    "Rate limited (429) during our nightly import of {num} products."],
            "facts": ["The API allows 100 requests per minute per key.",
                      "Retry after the number of seconds in the Retry-After header, with exponential backoff.",
                      "Use the bulk endpoint /v2/products:batch for up to 500 products per request."],
            "wrong": "There is no rate limit; 429 means your account has been banned.",
            "tool": None,
            "doc": ("kb-tech-047", "Rate limits"),
        },
        {
            "ask": ["How do I set up SAML single sign-on with Okta for our team?",
                    "We need SSO (SAML, Azure AD) for our Business plan."],
            "facts": ["SSO is available on the Business plan.",
                      "Paste your identity provider's metadata URL under Settings → Security → SSO.",
                      "Use https://acme.example/sso/acs as the ACS URL in your identity provider."],
            "wrong": "SSO is only available through a custom enterprise contract.",
            "tool": None,
            "doc": ("kb-tech-060", "SAML single sign-on"),
        },
    ],
}

_HARD_EXTRAS = {
    "billing": "Also, this is the second time this happens and nobody answered my last email. "
               "If this isn't sorted out today I'll cancel.",
    "shipping": "I need it before the weekend because it's a birthday present, and the tracking page "
                "has said the same thing for three days.",
    "returns": "I already printed a label from your site but the carrier said it's invalid, and I "
               "threw away the original box.",
    "account": "I've tried three times from two browsers. I also have an order in progress and I'm "
               "worried it will be cancelled.",
    "technical": "Here is what we see in our logs:\n\n{log}\n\n"
                 "This is blocking our production deploy, please escalate.",
}
_MEDIUM_PREFIX = [
    "Hi, I'm {name}. ", "Hello! Quick question. ", "Hey there, ", "Good morning. ", "Hi support, ",
]


def _rng(*parts: Any) -> random.Random:
    # str seeds are hashed with SHA-512 by random.seed: stable across runs and PYTHONHASHSEED
    return random.Random("|".join(map(str, parts)))


def _fill(template: Any, slots: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**slots)
    if isinstance(template, dict):
        return {k: _fill(v, slots) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, slots) for v in template]
    return template


def _fake_log(rng: random.Random, code: str) -> str:
    """A pasted client log with a stack trace: long, multi-line input."""
    lines = []
    sec = rng.randint(0, 30)
    for attempt in range(rng.randint(12, 30)):
        sec += 2 ** min(attempt, 4)
        rid = f"req_{rng.getrandbits(40):010x}"
        lines.append(f"    2025-03-14T09:{12 + sec // 60:02d}:{sec % 60:02d}Z POST /v2/orders -> {code}"
                     f"  request_id={rid} attempt={attempt + 1}")
    lines += [
        "    Traceback (most recent call last):",
        '      File "/srv/shop/sync/orders.py", line 214, in push_batch',
        "        resp.raise_for_status()",
        '      File "/srv/venv/lib/python3.12/site-packages/httpx/_models.py", line 829, in raise_for_status',
        "        raise HTTPStatusError(message, request=request, response=self)",
        f"    httpx.HTTPStatusError: Client error '{code}' for url 'https://api.acme.example/v2/orders'",
    ]
    return "\n".join(lines)


def build_dataset(seed: int = 7, n: int = N_CASES) -> list[dict[str, Any]]:
    """The support dataset: ``n`` cases, equally many per category, as Eval cases plus the
    private parts the simulated model and the scorers need (``_facts``, ``_wrong``, ...)."""
    rng = _rng(seed, "dataset")
    cases = []
    per_cat = n // len(CATEGORIES)
    for ci, category in enumerate(CATEGORIES):
        count = per_cat + (1 if ci < n % len(CATEGORIES) else 0)
        for k in range(count):
            intents = _INTENTS[category]
            intent = intents[k % len(intents)]
            difficulty = rng.choices(DIFFICULTIES, weights=(0.4, 0.35, 0.25))[0]
            slots = {
                "name": rng.choice(_NAMES),
                "plan": rng.choice(_PLANS),
                "amount": f"${rng.randint(9, 149)}.{rng.choice(['00', '99', '50'])}",
                "month": rng.choice(_MONTHS),
                "day": str(rng.randint(1, 28)),
                "order": f"A-{rng.randint(10000, 99999)}",
                "num": str(rng.randint(1000, 9999)),
                "num2": str(rng.randint(1000, 9999)),
                "product": rng.choice(_PRODUCTS),
                "country": rng.choice(_COUNTRIES),
                "device": rng.choice(_DEVICES),
                "code": rng.choice(["401 Unauthorized", "429 Too Many Requests", "502 Bad Gateway"]),
            }
            slots["log"] = _fake_log(rng, slots["code"]) if category == "technical" else ""
            ask = _fill(rng.choice(intent["ask"]), slots)
            if difficulty == "medium":
                ask = _fill(rng.choice(_MEDIUM_PREFIX), slots) + ask
            elif difficulty == "hard":
                ask = f"Hi, this is {slots['name']}.\n\n{ask}\n\n{_fill(_HARD_EXTRAS[category], slots)}\n\nThanks,\n{slots['name']}"
            facts = _fill(intent["facts"], slots)
            case_id = f"ticket-{len(cases) + 1:04d}"
            tags = [category]
            if difficulty == "hard":
                tags.append("escalation")
            if slots["plan"] == "Business" and rng.random() < 0.5:
                tags.append("vip")
            tool = intent["tool"]
            cases.append({
                "id": case_id,
                "input": ask,
                "expected": " ".join(facts),
                "metadata": {"category": category, "difficulty": difficulty, "ticket": case_id},
                "tags": tags,
                "_name": slots["name"],
                "_facts": facts,
                "_wrong": _fill(intent["wrong"], slots),
                "_tool": None if tool is None else (tool[0], _fill(tool[1], slots), _fill(tool[2], slots)),
                "_doc": intent["doc"],
                "_slots": slots,
            })
    # interleave categories so that the table does not start with 40 billing rows
    _rng(seed, "order").shuffle(cases)
    for i, c in enumerate(cases, 1):
        c["id"] = c["metadata"]["ticket"] = f"ticket-{i:04d}"
    return cases


# -- the simulated task --------------------------------------------------------------------------


class RateLimitError(Exception):
    """What the simulated provider raises when over its token budget (like openai.RateLimitError)."""


class APITimeoutError(Exception):
    """The simulated provider's request timeout."""


class JudgeParseError(Exception):
    """The LLM judge answered something that is not one of its choices."""


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _messages_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in messages)


def _generic_tech_answer() -> str:
    return ("This is usually a temporary problem. Please try clearing your browser cache, "
            "restarting the app, and trying again in a few minutes.")


def _long_guide(case: dict[str, Any]) -> str:
    """The thorough, multi-line troubleshooting guide the large model writes for hard tickets."""
    s = case["_slots"]
    return (
        "\n\nHere is a step-by-step checklist so this doesn't happen again:\n\n"
        "1. Confirm the fix:\n"
        "   ```sh\n"
        "   curl -sS https://api.acme.example/v2/ping \\\n"
        "     -H 'Authorization: Bearer $ACME_API_KEY' \\\n"
        "     -H 'Accept: application/json'\n"
        "   ```\n"
        "   You should see `{\"ok\": true}` within a second.\n"
        "2. Check the last 24 hours under Settings → Developers → Logs, filtered by status >= 400.\n"
        "3. If you run several workers, make sure each one reads the key from the same secret store,\n"
        "   so a rotated key reaches all of them.\n"
        "4. Keep retries bounded: at most 5 attempts, doubling the wait each time (1 s, 2 s, 4 s, 8 s, 16 s),\n"
        "   and honour the Retry-After header when it is present.\n"
        f"5. Subscribe to status.acme.example so your team ({s['name']}'s) hears about incidents first.\n\n"
        "For reference, the relevant limits on your plan:\n\n"
        "| limit                 | value            |\n"
        "|-----------------------|------------------|\n"
        "| requests per minute   | 100 per key      |\n"
        "| bulk batch size       | 500 items        |\n"
        "| webhook retry window  | 72 hours         |\n"
        "| API key lifetime      | 90 days          |\n\n"
        "If any step fails, reply with the request id from the `X-Request-Id` response header and I'll\n"
        "trace it on our side."
    )


def _compose_reply(case: dict[str, Any], model: str, prompt: str, rng: random.Random) -> tuple[str, str]:
    """(the model's raw answer, its quality: good / partial / bad)."""
    category, difficulty = case["metadata"]["category"], case["metadata"]["difficulty"]
    q = (_QUALITY_BASE[(model, prompt)] + _CATEGORY_SHIFT[model].get(category, 0.0)
         + _DIFFICULTY_SHIFT[difficulty])
    u = rng.random()
    quality = "good" if u < q else "partial" if u < q + (1 - q) * 0.55 else "bad"
    facts = list(case["_facts"])
    if quality == "good":
        body = facts
    elif quality == "partial":
        drop = rng.randrange(1, len(facts)) if len(facts) > 1 else 0
        body = [f for i, f in enumerate(facts) if i != drop]
    else:
        body = [case["_wrong"]]
        if category == "technical" and model == "gpt-4o-mini":
            body.append(_generic_tech_answer())
        else:
            body.append("Let me know if there's anything else I can help with.")
    if (quality == "bad" and model == "gpt-4o-mini" and category == "technical"
            and difficulty != "easy" and rng.random() < 0.35):
        # a degenerate loop cut off at max_tokens: a very long output, as small models do
        loop = ("To fix this issue, please make sure that your API key is valid and that the request is "
                "correctly formatted, then try again. If the issue persists, ")
        return ("Hi,\n\n" + loop * rng.randint(30, 45) + "please make sure that your"), "bad"
    greet_p, sign_p = _STYLE[(model, prompt)]
    parts = []
    if rng.random() < greet_p:
        parts.append(rng.choice([f"Hi {case['_name']},", f"Hello {case['_name']},", "Hi there,",
                                 f"Thanks for reaching out, {case['_name']}!"]))
    if prompt == "v2" and len(body) > 2 and quality != "bad":
        parts.append("\n".join(f"{i}. {b}" for i, b in enumerate(body, 1)))
    else:
        parts.append(" ".join(body))
    if prompt == "v2" and difficulty == "hard" and quality != "bad":
        parts.append("Next steps:\n- Reply to this email if anything above doesn't match what you see.\n"
                     "- I've linked this conversation to your ticket, so you won't need to repeat yourself.\n"
                     "- You can follow the status of your request at https://acme.example/support/tickets.")
    if model == "gpt-4o" and quality == "good" and difficulty == "hard" and category == "technical":
        parts[-1] += _long_guide(case)
    elif model == "gpt-4o" and quality == "good" and rng.random() < 0.3:
        parts.append("I've also added a note to your ticket so that anyone on the team can pick this up.")
    if quality == "bad" and model == "gpt-4o-mini" and rng.random() < 0.15:
        parts.append("PLEASE NOTE THIS IS AN AUTOMATED RESPONSE.")
    if rng.random() < sign_p:
        parts.append("— Ava, Acme Support")
    return "\n\n".join(parts), quality


def _pick(seed: int, key: str, what: str, ids: list[str], k: int, exclude: set[str] = frozenset()) -> set[str]:
    pool = sorted(i for i in ids if i not in exclude)
    return set(_rng(seed, key, what).sample(pool, k))


class _Plan:
    """Per-experiment decisions made up front (which cases fail, which judge call breaks)."""

    # about 3% task errors and 2% scorer errors, a little different per experiment
    _RATES = {"mini-v1": (0.035, 0.02), "4o-v1": (0.025, 0.015), "mini-v2": (0.03, 0.025)}

    def __init__(self, seed: int, key: str, cases: list[dict[str, Any]]):
        ids = [c["id"] for c in cases]
        n = len(ids)
        task_rate, scorer_rate = self._RATES.get(key, (0.03, 0.02))
        self.task_errors = _pick(seed, key, "task-errors", ids, max(1, round(n * task_rate)))
        self.scorer_errors = _pick(seed, key, "scorer-errors", ids, max(1, round(n * scorer_rate)),
                                   self.task_errors)
        self.hostile: str | None = None


@contextmanager
def _sim_span(parent: Any, name: str, type: str, start: float, duration: float, **event: Any) -> Iterator[Any]:
    """A child span with a simulated start and duration (no sleeping); errors are recorded."""
    span = parent.start_span(name, type, start_time=start, **event)
    try:
        yield span
    except Exception as e:
        span.log(error=e)
        span.end(start + duration)
        raise
    span.end(start + duration)


def _llm_call(
    parent: Any, model: str, messages: list[dict[str, Any]], reply: dict[str, Any], start: float,
    rng: random.Random, fail: Exception | None = None,
) -> float:
    """Log one simulated chat completion; returns its end time."""
    spec = MODELS[model]
    prompt_tokens = _tokens(_messages_text(messages))
    completion_tokens = _tokens(json.dumps(reply, ensure_ascii=False))
    ttft = round(rng.uniform(*spec["ttft"]), 3)
    duration = round(ttft + completion_tokens / spec["tokens_per_s"] * rng.uniform(0.85, 1.2), 3)
    if fail is not None:
        duration = 30.0 if isinstance(fail, APITimeoutError) else round(rng.uniform(0.05, 0.2), 3)
    meta = {"model": spec["version"], "provider": "openai", "temperature": 0.2, "max_tokens": 1024}
    with _sim_span(parent, "chat.completions", "llm", start, duration, input=messages, metadata=meta) as span:
        if fail is not None:
            raise fail
        cached = 1024 if prompt_tokens > 1100 else 0
        span.log(
            output=reply,
            metrics={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "tokens": prompt_tokens + completion_tokens,
                "prompt_cached_tokens": cached,
                "time_to_first_token": ttft,
                "estimated_cost": round(prompt_tokens * spec["price_in"] + completion_tokens * spec["price_out"], 8),
            },
        )
    return start + duration


def _make_task(seed: int, key: str, model: str, prompt: str, cases: dict[str, dict[str, Any]], plan: _Plan):
    system = SYSTEM_PROMPT_V1 if prompt == "v1" else SYSTEM_PROMPT_V2

    def support_bot(input: str, hooks: Any) -> str:
        case = cases[hooks.metadata["ticket"]]
        rng = _rng(seed, key, case["id"])
        task_span = hooks.span
        t = time.time()
        # 1. retrieval
        doc_id, title = case["_doc"]
        others = [d for c in CATEGORIES for i in _INTENTS[c] for d in [i["doc"]] if d[0] != doc_id]
        distractors = rng.sample(others, 2)
        hits = [{"id": doc_id, "title": title, "score": round(rng.uniform(0.78, 0.93), 3)}] + [
            {"id": d[0], "title": d[1], "score": round(rng.uniform(0.41, 0.7), 3)} for d in distractors
        ]
        dur = round(rng.uniform(0.04, 0.16), 3)
        with _sim_span(task_span, "search_kb", "tool", t, dur,
                       input={"query": input[:200], "top_k": 3, "index": "support-kb-2025-03"}) as span:
            span.log(output=hits, metadata={"index_size": 1843})
        t += dur + 0.002
        context = "\n".join(f"[{h['id']}] {h['title']}" for h in hits)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Knowledge base:\n{context}\n\nCustomer message:\n{input}"},
        ]
        answer, quality = _compose_reply(case, model, prompt, rng)
        if case["id"] == plan.hostile:
            answer = (
                f"Hi {case['_name']},\n\nI've flagged your account for the security team. The note our "
                f"system attached reads:\n\n{HOSTILE}\n\nYou'll get a new password reset link within the hour."
                "\n\n— Ava, Acme Support"
            )
        fail: Exception | None = None
        if case["id"] in plan.task_errors:
            fail = (RateLimitError(
                f"Error code: 429 - Rate limit reached for {MODELS[model]['version']} in organization "
                "org-demo on tokens per min (TPM): Limit 200000, Used 199412, Requested 1873. "
                "Please try again in 561ms.")
                if rng.random() < 0.6 else APITimeoutError("Request timed out after 30.0 seconds."))
        # 2. a tool call first, when the intent needs order/account details
        if case["_tool"] is not None:
            tool_name, args, result = case["_tool"]
            call_id = f"call_{_rng(seed, key, case['id'], 'call').getrandbits(48):012x}"
            tool_msg = {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": call_id, "type": "function",
                                "function": {"name": tool_name, "arguments": json.dumps(args)}}],
            }
            t = _llm_call(task_span, model, messages, tool_msg, t, rng,
                          fail if fail is not None and rng.random() < 0.5 else None) + 0.002
            dur = round(rng.uniform(0.02, 0.12), 3)
            with _sim_span(task_span, tool_name, "tool", t, dur, input=args) as span:
                span.log(output=result)
            t += dur + 0.002
            messages = [*messages, tool_msg,
                        {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)}]
        # 3. the answer
        reply = {"role": "assistant", "content": answer}
        t = _llm_call(task_span, model, messages, reply, t, rng, fail) + 0.002
        # 4. formatting for the help-desk channel
        dur = round(rng.uniform(0.001, 0.004), 4)
        with _sim_span(task_span, "format_reply", "function", t, dur,
                       input={"text": answer, "channel": "email", "max_chars": 4000}) as span:
            final = re.sub(r"\n{3,}", "\n\n", answer).strip()
            span.log(output=final)
        task_span.log(metadata={"model": model, "prompt": f"support-{prompt}"})
        return final

    return support_bot


# -- scorers ---------------------------------------------------------------------------------------


def _scorer(name: str):
    def deco(fn):
        fn.name = name
        return fn
    return deco


def _make_scorers(seed: int, key: str, cases: dict[str, dict[str, Any]], plan: _Plan) -> list[Any]:
    from evaltui.sdk.eval import Score

    def found_facts(case: dict[str, Any], output: str) -> tuple[list[str], list[str]]:
        text = output.lower()
        found = [f for f in case["_facts"] if f.lower().rstrip(".") in text]
        missing = [f for f in case["_facts"] if f not in found]
        return found, missing

    @_scorer("Factuality")
    def factuality(input: str, output: str, expected: str, metadata: dict[str, Any]) -> Any:
        """An LLM-judge-like factuality check: choices A-E as in autoevals' Factuality."""
        case = cases[metadata["ticket"]]
        if case["id"] in plan.scorer_errors:
            verdict = _rng(seed, key, case["id"], "judge").choice([
                "The submitted answer is mostly consistent with the expert answer, although",
                "```json\n{\"choice\": \"C\", \"reasons\": [\"same as expert\"",
                "I cannot evaluate this answer.",
            ])
            raise JudgeParseError(f"could not parse the judge's verdict: {verdict!r}")
        found, missing = found_facts(case, output)
        wrong = case["_wrong"].lower().rstrip(".") in output.lower()
        if wrong:
            choice, score = "D", 0.0
            why = f"The submission contradicts the expert answer: it claims \"{case['_wrong']}\""
        elif not found:
            choice, score = "D", 0.0
            why = "The submission states none of the facts of the expert answer."
        elif not missing:
            longer = len(output) > len(expected) * 1.6
            choice, score = ("E", 1.0) if longer else ("C", 1.0)
            why = ("The submission contains every fact of the expert answer; the extra detail does not "
                   "change them." if longer else "The submission states the same facts as the expert answer.")
        else:
            choice, score = "A", 0.4
            why = "The submission is a consistent subset of the expert answer. Missing: " + "; ".join(missing)
        return Score("Factuality", score, {"choice": choice, "rationale": why, "judge": "gpt-4o-2024-08-06"})

    @_scorer("Helpfulness")
    def helpfulness(output: str, metadata: dict[str, Any]) -> Any:
        case = cases[metadata["ticket"]]
        found, missing = found_facts(case, output)
        coverage = len(found) / len(case["_facts"])
        actionable = bool(re.search(r"\b(under Settings|I've|you can|start the|update|create|use|retry|send|reply)\b",
                                    output, re.I))
        generic = "try again in a few minutes" in output or "anything else I can help with" in output
        score = 0.15 + 0.6 * coverage + (0.25 if actionable else 0.0) - (0.25 if generic and coverage < 0.5 else 0.0)
        score = round(min(1.0, max(0.0, score)), 2)
        notes = [f"covers {len(found)}/{len(case['_facts'])} key points"]
        notes.append("gives a concrete next step" if actionable else "no concrete next step")
        if generic:
            notes.append("falls back to a generic reply")
        return Score("Helpfulness", score, {"explanation": "; ".join(notes) + "."})

    @_scorer("Politeness")
    def politeness(output: str) -> Any:
        first = output.lstrip().split("\n", 1)[0]
        checks = {
            "greeting": bool(re.match(r"(Hi|Hello|Thanks for reaching out)\b", first)),
            "sign_off": "— Ava, Acme Support" in output,
            "no_shouting": not re.search(r"\b[A-Z]{5,}\b(?:\s+\b[A-Z]{2,}\b){2,}", output),
            "concise": len(output) <= 1800,
        }
        score = round(sum(checks.values()) / len(checks), 2)
        failed = [k for k, ok in checks.items() if not ok]
        explanation = "All format checks pass." if not failed else "Failed: " + ", ".join(failed) + "."
        return Score("Politeness", score, {"checks": checks, "explanation": explanation})

    @_scorer("Similarity")
    def similarity(output: str, expected: str) -> float:
        """Word-level similarity to the reference answer (difflib ratio): an exact-ish match."""
        a = re.findall(r"\w+", output.lower())
        b = re.findall(r"\w+", expected.lower())
        return round(difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(), 3)

    return [factuality, helpfulness, politeness, similarity]


# -- timing: make each trace's spans line up on one simulated timeline ------------------------------


def _retime(store: Any, experiment_id: str, seed: int, key: str) -> None:
    """Give task, score and root spans simulated times that enclose their children.

    The task's children were logged with simulated timings (LLM calls take seconds); the
    spans Eval itself opened (root, task, scorers) carry the real, sub-millisecond ones.
    """
    from evaltui.store import load_experiment_spans, write_spans

    by_root: dict[str, list[dict[str, Any]]] = {}
    for s in load_experiment_spans(store, experiment_id):
        by_root.setdefault(s["root_span_id"], []).append(s)
    changed = []
    for spans in by_root.values():
        kind = {s["span_id"]: s["span_attributes"].get("type") for s in spans}
        root = next(s for s in spans if not s["span_parents"])
        task = next((s for s in spans if kind[s["span_id"]] == "task"), None)
        if task is None:
            continue
        children = [s for s in spans if s["span_parents"] == [task["span_id"]]]
        # the task keeps its real start (before its children's); its end follows theirs
        task_end = max([c["metrics"].get("end") or c["metrics"]["start"] for c in children]
                       + [task["metrics"]["start"]]) + 0.001
        task["metrics"]["end"] = task_end
        end = task_end
        for s in spans:
            if kind[s["span_id"]] == "score":
                r = _rng(seed, key, root["dataset_record_id"], s["span_attributes"].get("name"))
                judge = s["span_attributes"].get("name") in ("Factuality", "Helpfulness")
                s["metrics"]["start"] = task_end + 0.001
                s["metrics"]["end"] = task_end + 0.001 + (round(r.uniform(0.6, 2.2), 3) if judge
                                                           else round(r.uniform(0.0005, 0.003), 4))
                end = max(end, s["metrics"]["end"])
                changed.append(s)
        root["metrics"]["end"] = end + 0.001
        changed += [task, root]
    if changed:
        write_spans(store, changed)


# -- writing ---------------------------------------------------------------------------------------


def _hostile_case(cases: list[dict[str, Any]]) -> str:
    """The case whose baseline output carries HOSTILE: the first hard account ticket."""
    return next(c["id"] for c in cases
                if c["metadata"]["category"] == "account" and c["metadata"]["difficulty"] == "hard")


def _clear_demo(store: Any) -> bool:
    """Delete the demo project's experiments (True if there were any); refuse foreign ones."""
    from evaltui.store import delete_experiment, load_experiments

    frame = load_experiments(store, DEMO_PROJECT)
    if frame.height == 0:
        return False
    foreign = [r["name"] for r in frame.iter_rows(named=True) if not (json.loads(r["metadata"] or "{}") or {}).get("demo")]
    if foreign:
        raise DemoConflict(
            f"project {DEMO_PROJECT!r} in {store.path} has experiments the demo did not write "
            f"({', '.join(map(repr, foreign[:3]))}); not replacing it — use another --db"
        )
    for eid in frame["id"].to_list():
        delete_experiment(store, eid)
    return True


def _reviews(store: Any, seed: int, exp_ids: dict[str, str]) -> None:
    """Some traces already reviewed and assigned, as a team would leave them."""
    from evaltui.store import load_trace_rows, set_review

    def roots(key: str) -> list[tuple[str, str, float | None]]:
        rows = load_trace_rows(store, exp_ids[key])
        fact = rows["scores.Factuality"] if "scores.Factuality" in rows.columns else [None] * rows.height
        out = list(zip(rows["dataset_record_id"].to_list(), rows["root_span_id"].to_list(), list(fact),
                       strict=True))
        return sorted(out)

    base = roots("mini-v1")
    rng = _rng(seed, "reviews")
    picked = rng.sample(base, 45)
    by_alice, by_bob, to_bob, to_alice = picked[:18], picked[18:30], picked[30:38], picked[38:]
    eid = exp_ids["mini-v1"]
    set_review(store, eid, [r for _, r, _ in by_alice], user="alice", review_status="reviewed", assignee="alice")
    set_review(store, eid, [r for _, r, _ in by_bob], user="bob", review_status="reviewed", assignee="bob")
    # low scorers go to bob for a look
    set_review(store, eid, [r for _, r, _ in to_bob], user="alice", review_status="in review", assignee="bob")
    set_review(store, eid, [r for _, r, _ in to_alice], user="bob", assignee="alice")
    big = roots("4o-v1")
    set_review(store, exp_ids["4o-v1"], [r for _, r, _ in rng.sample(big, 10)], user="alice",
               review_status="reviewed", assignee="alice")
    new = roots("mini-v2")
    set_review(store, exp_ids["mini-v2"], [r for _, r, _ in rng.sample(new, 6)], user="bob", assignee="bob")


def write_demo(db_path: str | Path, *, seed: int = 7, progress: bool = False) -> dict[str, Any]:
    """Write the demo project into the database at ``db_path`` (created if missing).

    Replaces an earlier demo project (never one with experiments of its own: DemoConflict).
    Returns ``{"db", "project", "replaced", "seconds", "experiments": [{id, name, traces,
    errors, scorer_errors, reviewed}, ...]}``.
    """
    from evaltui.sdk.eval import Eval
    from evaltui.store import Store, load_experiments

    started = time.perf_counter()
    cases = build_dataset(seed)
    by_id = {c["id"]: c for c in cases}
    hostile_id = _hostile_case(cases)
    exp_ids: dict[str, str] = {}
    with Store(Path(db_path).expanduser()) as store:
        replaced = _clear_demo(store)
        for key, name, model, prompt, base, description in EXPERIMENTS:
            plan = _Plan(seed, key, cases)
            plan.task_errors.discard(hostile_id)
            plan.scorer_errors.discard(hostile_id)
            if key == "mini-v1":
                plan.hostile = hostile_id
            data = [
                {"id": c["id"], "input": c["input"], "expected": c["expected"],
                 "metadata": {**c["metadata"], "model": model}, "tags": c["tags"]}
                for c in cases
            ]
            result = Eval(
                DEMO_PROJECT,
                data=data,
                task=_make_task(seed, key, model, prompt, by_id, plan),
                scores=_make_scorers(seed, key, by_id, plan),
                experiment_name=name,
                max_concurrency=16,
                metadata={"demo": True, "demo_version": DEMO_VERSION, "seed": seed, "model": model,
                          "prompt": f"support-{prompt}", "dataset": f"support-tickets ({len(cases)} cases)"},
                base_experiment=base,
                db=store,
                progress=progress,
                description=description,
                params={"model": MODELS[model]["version"], "temperature": 0.2, "max_tokens": 1024,
                        "system_prompt": SYSTEM_PROMPT_V1 if prompt == "v1" else SYSTEM_PROMPT_V2},
                print_summary=False,
            )
            exp_ids[key] = result.experiment_id
            _retime(store, result.experiment_id, seed, key)
        _reviews(store, seed, exp_ids)
        frame = load_experiments(store, DEMO_PROJECT)
        rows = {r["id"]: r for r in frame.iter_rows(named=True)}
        experiments = [
            {k: rows[eid][k] for k in ("id", "name", "traces", "errors", "scorer_errors", "reviewed")}
            | {"scores": json.loads(rows[eid]["score_means"] or "{}")}
            for eid in exp_ids.values()
        ]
    return {
        "db": str(db_path),
        "project": DEMO_PROJECT,
        "replaced": replaced,
        "seconds": time.perf_counter() - started,
        "experiments": experiments,
    }
