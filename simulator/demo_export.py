"""Demo history as a CRM's report export holds it (``salesim demo-data --export CRM``).

Turns the canonical frames of a ``simulator.demo_history.DemoHistory`` (one way: nothing here
reads a file or changes the history) into the files a Salesforce, HubSpot or Pipedrive user
downloads: their column names, stage names, date and money formats, report footers. The
readers of real exports are then tested on realistic files whose truth is known.
docs/demo-data.md ("CRM exports") describes each layout.

What no CRM export records comes from fixed lists (owner, account and deal names) and from
draws of ``rng`` made in a fixed order (lead sources within a channel, deal types, times of
day, expected close dates of open deals that would lie in the past), so one seed gives one
export. Activities and reps have no natural report in these CRMs: they are written in the
canonical layout, with the export's owner names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from .demo_history import DemoHistory
from .errors import InputError

EXPORTS = ("salesforce", "salesforce-onefile", "hubspot", "pipedrive")

# --- each CRM's vocabulary -------------------------------------------------------------------
# Open stages in pipeline order with their default probability (%), and the order in which a
# history with fewer stages takes them (the most common first); the kept ones stay in order.
SF_STAGES = {
    "Prospecting": 10,
    "Qualification": 20,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
}
SF_KEEP = (
    "Qualification",
    "Negotiation/Review",
    "Proposal/Price Quote",
    "Needs Analysis",
    "Prospecting",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
)
SF_NEXT_STEP = {
    "Prospecting": "Intro call",
    "Qualification": "Confirm budget",
    "Needs Analysis": "Discovery call",
    "Value Proposition": "Send value summary",
    "Id. Decision Makers": "Meet decision maker",
    "Perception Analysis": "Address concerns",
    "Proposal/Price Quote": "Send proposal",
    "Negotiation/Review": "Review contract",
}
SF_SOURCES = {
    "marketing": ("Web", "Phone Inquiry", "Partner Referral", "Trade Show"),
    "outbound": ("Cold Call", "Outbound"),
}
SF_FOOTER_COMPANY = "Acme Corp"
SF_FOOTER_USER = "Jane Admin"

HS_STAGES = {
    "appointmentscheduled": ("Appointment Scheduled", 0.2),
    "qualifiedtobuy": ("Qualified To Buy", 0.4),
    "presentationscheduled": ("Presentation Scheduled", 0.6),
    "decisionmakerboughtin": ("Decision Maker Bought-In", 0.8),
    "contractsent": ("Contract Sent", 0.9),
}
HS_KEEP = (
    "qualifiedtobuy",
    "contractsent",
    "presentationscheduled",
    "decisionmakerboughtin",
    "appointmentscheduled",
)
HS_CLOSED = {"won": ("closedwon", "Closed Won"), "lost": ("closedlost", "Closed Lost")}
HS_SOURCES = {
    "marketing": ("Organic Search", "Paid Search", "Email Marketing", "Referrals"),
    "outbound": ("Offline Sources",),
}
HS_PIPELINE = "Sales Pipeline"

PD_STAGES = {
    "Qualified": 10,
    "Contact Made": 20,
    "Demo Scheduled": 40,
    "Proposal Made": 60,
    "Negotiations Started": 80,
}
PD_KEEP = ("Qualified", "Negotiations Started", "Proposal Made", "Demo Scheduled", "Contact Made")
PD_SOURCES = {
    "marketing": ("Web forms", "Marketing", "Live chat"),
    "outbound": ("Prospector", "Manually created"),
}

FIRST_NAMES = (
    "Jane",
    "John",
    "Maria",
    "David",
    "Aisha",
    "Wei",
    "Sofia",
    "Liam",
    "Priya",
    "Carlos",
    "Emma",
    "Noah",
    "Fatima",
    "Lucas",
    "Hannah",
    "Kenji",
    "Olivia",
    "Mateo",
    "Chloe",
    "Omar",
)
LAST_NAMES = (
    "Doe",
    "Roe",
    "Garcia",
    "Smith",
    "Khan",
    "Chen",
    "Rossi",
    "Murphy",
    "Patel",
    "Silva",
    "Brown",
    "Kim",
    "Ali",
    "Martin",
    "Schmidt",
    "Tanaka",
    "Johnson",
    "Lopez",
    "Dubois",
    "Haddad",
)
ACCOUNT_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Massive",
    "Aperture",
    "Pied",
    "Dunder",
    "Prestige",
    "Monarch",
    "Nakatomi",
    "Virtucon",
    "Zorg",
    "Bluth",
    "Sterling",
    "Oceanic",
)
ACCOUNT_KINDS = (
    "Systems",
    "Labs",
    "Foods",
    "Logistics",
    "Health",
    "Energy",
    "Media",
    "Partners",
    "Capital",
    "Retail",
    "Motors",
    "Software",
    "Group",
)
ACCOUNT_SUFFIXES = ("Inc", "LLC", "Ltd", "Corp", "GmbH")

NEW_BUSINESS_SHARE = 0.75
DEFAULT_CYCLE_DAYS = 60  # expected cycle of open deals when the history has no wins
WORKDAY_MINUTES = (8 * 60, 18 * 60)  # CRM edits happen between 8:00 and 18:00


# --- the export ----------------------------------------------------------------------------------
def export_texts(demo: DemoHistory, crm: str, rng=None) -> dict[str, str]:
    """File name -> text of ``demo`` as ``crm``'s export (one of ``EXPORTS``; ``canonical``:
    the canonical files, ``demo.csv_texts()``)."""
    check_export(crm)
    if crm == "canonical":
        return demo.csv_texts()
    deals, moves = _facts(demo, np.random.default_rng(rng))
    names = {
        "salesforce": _salesforce,
        "salesforce-onefile": _salesforce_onefile,
        "hubspot": _hubspot,
        "pipedrive": _pipedrive,
    }
    files = names[crm](demo, deals, moves)
    # Activities and reps: canonical columns, but the export's owner names and date format,
    # so that one set of reading flags (--date-format) reads the whole folder.
    owners = _owner_names(demo)
    us = crm.startswith("salesforce")
    for name in ("activities", "reps"):
        frame = getattr(demo, name).with_columns(pl.col("owner").replace_strict(owners))
        if us:
            frame = frame.with_columns(pl.col(pl.Date).dt.strftime(SF_DATE))
        files[f"{name}.csv"] = frame.write_csv(quote_style="always" if us else "necessary")
    return files


def check_export(crm: str) -> None:
    """Refuse an unknown layout (before the history is generated)."""
    if crm != "canonical" and crm not in EXPORTS:
        raise InputError(
            f"unknown CRM export {crm!r}",
            column="--export",
            expected=" or ".join(("canonical",) + EXPORTS),
        )


@dataclass(frozen=True)
class _Stages:
    """Demo stage -> the CRM's stage, and each CRM stage's probability."""

    names: dict[str, str]
    probability: dict[str, float]

    @classmethod
    def pick(
        cls, demo_stages: Sequence[str], crm_stages: dict, keep: Sequence[str], crm: str
    ) -> _Stages:
        if len(demo_stages) > len(crm_stages):
            raise InputError(
                f"the history has {len(demo_stages)} stages; the {crm} export "
                f"has {len(crm_stages)} open stages",
                column="--export",
                expected=f"at most {len(crm_stages)} stages",
            )
        kept = set(keep[: len(demo_stages)])
        ordered = [s for s in crm_stages if s in kept]
        prob = {s: (p[1] if isinstance(p, tuple) else p) for s, p in crm_stages.items()}
        return cls(dict(zip(demo_stages, ordered)), prob)


# --- what every export shares -------------------------------------------------------------------
def _facts(demo: DemoHistory, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per deal and one per stage move (each stage entered, then the close), with
    names, timestamps, the close date an export shows and the draws each CRM maps its own way.
    The draws come in a fixed order whatever the CRM."""
    o = demo.opportunities
    n = o.height
    u_source, u_type, u_late = rng.random(n), rng.random(n), rng.random(n)
    minute_created, minute_closed = _minutes(rng, n), _minutes(rng, n)
    minute_moved = _minutes(rng, demo.stage_history.height)

    won = o.filter(pl.col("status") == "won")
    cycle = (won["closed"] - won["created"]).dt.total_days().median() if won.height else None
    cycle = DEFAULT_CYCLE_DAYS if cycle is None else round(float(cycle))  # type: ignore[arg-type]
    expected = pl.col("created") + pl.duration(days=cycle)
    late = pl.lit(demo.as_of) + pl.duration(days=pl.lit(pl.Series(7 + np.floor(u_late * 54))))
    index = pl.int_range(0, n)
    owners = _owner_names(demo)
    deals = (
        o.with_columns(
            pl.col("owner").replace_strict(owners).alias("owner_name"),
            _account(index).alias("account"),
            pl.when(pl.col("closed").is_not_null())
            .then(pl.col("closed"))
            .when(expected > demo.as_of)
            .then(expected)
            .otherwise(late)
            .alias("close_date"),
            _at("created", minute_created).alias("created_at"),
            pl.Series("u_source", u_source),
            pl.Series("new_business", u_type < NEW_BUSINESS_SHARE),
            index.alias("index"),
        )
        .with_columns(
            (pl.col("account") + " - " + pl.col("segment") + " deal").alias("deal_name"),
            _at("close_date", minute_closed).alias("close_at"),
            (pl.coalesce("closed", pl.lit(demo.as_of)) - pl.col("created"))
            .dt.total_days()
            .alias("age"),
        )
        .with_columns(  # a deal closes after it was created, even on the same day
            pl.max_horizontal("close_at", "created_at").alias("close_at")
        )
    )

    entered = demo.stage_history.with_columns(
        _at("entered", minute_moved).alias("at"), pl.lit(None, pl.String).alias("outcome")
    )
    closes = deals.filter(pl.col("closed").is_not_null()).select(
        "opportunity_id",
        pl.col("stage"),
        pl.col("closed").alias("entered"),
        pl.col("close_at").alias("at"),
        pl.col("status").alias("outcome"),
    )
    moves = (
        pl.concat([entered, closes.select(entered.columns)])
        .join(deals.select("opportunity_id", "index", "created_at"), on="opportunity_id")
        .sort("index", "entered", pl.col("outcome").is_not_null(), maintain_order=True)
        .with_columns(  # the first stage is entered on creation; times never go back
            pl.when(pl.int_range(pl.len()).over("opportunity_id") == 0)
            .then(pl.col("created_at"))
            .otherwise(pl.col("at"))
            .alias("at")
        )
        .with_columns(pl.col("at").cum_max().over("opportunity_id"))
    )
    return deals, moves


def _minutes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(*WORKDAY_MINUTES, size=n)


def _at(day: str, minutes: np.ndarray) -> pl.Expr:
    """The date column ``day`` at a time of day (minutes after midnight)."""
    return pl.col(day).cast(pl.Datetime) + pl.duration(minutes=pl.lit(pl.Series(minutes)))


def _owner_names(demo: DemoHistory) -> dict[str, str]:
    """Each owner (``rep0001``) -> a person's name, unique, in the reps file's order."""
    owners = list(dict.fromkeys([*demo.reps["owner"], *sorted(demo.opportunities["owner"])]))
    out = {}
    for i, owner in enumerate(owners):
        q, r = divmod(i, len(FIRST_NAMES))
        name = f"{FIRST_NAMES[r]} {LAST_NAMES[(q + r) % len(LAST_NAMES)]}"  # unique for i < 400
        out[owner] = name if i < 400 else f"{name} {i // 400 + 1}"
    return out


def _account(index: pl.Expr) -> pl.Expr:
    """A company name from the deal's number: accounts recur, as customers do."""

    def pick(words, step):
        return pl.lit(pl.Series(words)).gather((index // step) % len(words))

    return pl.format(
        "{} {} {}", pick(ACCOUNT_WORDS, 1), pick(ACCOUNT_KINDS, 3), pick(ACCOUNT_SUFFIXES, 7)
    )


def _source(
    u: pl.Expr, source: pl.Expr, values: dict[str, tuple[str, ...]], unknown: str
) -> pl.Expr:
    """A CRM's lead-source value: one of the channel's, by the deal's uniform draw."""
    expr = pl.lit(unknown)
    for channel, options in values.items():
        pick = pl.lit(pl.Series(options)).gather((u * len(options)).floor().cast(pl.Int64))
        expr = pl.when(source == channel).then(pick).otherwise(expr)
    return expr


def _by_outcome(won, lost, open_: pl.Expr, column: str = "status") -> pl.Expr:
    """A CRM field that names a closed deal's outcome (``won``, ``lost``), else ``open_``."""
    outcome = pl.col(column)
    return (
        pl.when(outcome == "won")
        .then(pl.lit(won))
        .when(outcome == "lost")
        .then(pl.lit(lost))
        .otherwise(open_)
    )


def _open_category(commit: float, best: float, best_label: str) -> pl.Expr:
    """An open deal's forecast category from its stage probability ``prob``."""
    prob = pl.col("prob")
    return (
        pl.when(prob >= commit)
        .then(pl.lit("Commit"))
        .when(prob >= best)
        .then(pl.lit(best_label))
        .otherwise(pl.lit("Pipeline"))
    )


def _plain_amount(col: str) -> pl.Expr:
    """12500 for whole amounts, else 12500.5 (HubSpot and Pipedrive export plain numbers)."""
    x = pl.col(col)
    return (
        pl.when(x == x.floor())
        .then(x.cast(pl.Int64).cast(pl.String))
        .otherwise(x.round(2).cast(pl.String))
    )


# --- Salesforce -----------------------------------------------------------------------------------
SF_OPPORTUNITY_COLUMNS = (
    "Opportunity Owner",
    "Account Name",
    "Opportunity Name",
    "Stage",
    "Fiscal Period",
    "Amount",
    "Probability (%)",
    "Age",
    "Close Date",
    "Created Date",
    "Next Step",
    "Lead Source",
    "Type",
    "Forecast Category",
    "Opportunity ID",
)
SF_HISTORY_COLUMNS = (
    "Opportunity ID",
    "Opportunity Name",
    "From Stage",
    "To Stage",
    "Amount",
    "Probability (%)",
    "Close Date",
    "Last Modified By",
    "Last Modified",
)
SF_DATE, SF_TIME = "%-m/%-d/%Y", "%-m/%-d/%Y %-I:%M %p"


def _salesforce(demo, deals, moves) -> dict[str, str]:
    opps, history = _sf_frames(demo, deals, moves)
    return {
        "opportunities.csv": _sf_report(opps, demo),
        "stage_history.csv": _sf_report(history.select(SF_HISTORY_COLUMNS), demo),
    }


def _salesforce_onefile(demo, deals, moves) -> dict[str, str]:
    """ "Opportunities with History": the opportunity's columns again on each stage move."""
    opps, history = _sf_frames(demo, deals, moves)
    rows = history.select("Opportunity ID", "To Stage", "Last Modified").join(
        opps, on="Opportunity ID", maintain_order="left"
    )
    return {
        "opportunities.csv": _sf_report(
            rows.select(*SF_OPPORTUNITY_COLUMNS, "To Stage", "Last Modified"), demo
        )
    }


def _sf_frames(demo, deals, moves) -> tuple[pl.DataFrame, pl.DataFrame]:
    stages = _Stages.pick(demo.stages, SF_STAGES, SF_KEEP, "salesforce")
    open_stage = pl.col("stage").replace_strict(stages.names, default=None)
    sf_stage = _by_outcome("Closed Won", "Closed Lost", open_stage)
    prob = {**stages.probability, "Closed Won": 100, "Closed Lost": 0}
    d = deals.with_columns(sf_stage.alias("sf_stage"), _sf_id(pl.col("index")).alias("sf_id"))
    d = d.with_columns(pl.col("sf_stage").replace_strict(prob).alias("prob"))
    category = _by_outcome("Closed", "Omitted", _open_category(90, 50, "Best Case"))
    opps = d.select(
        pl.col("owner_name").alias("Opportunity Owner"),
        pl.col("account").alias("Account Name"),
        pl.col("deal_name").alias("Opportunity Name"),
        pl.col("sf_stage").alias("Stage"),
        pl.format(
            "Q{}-{}", pl.col("close_date").dt.quarter(), pl.col("close_date").dt.year()
        ).alias("Fiscal Period"),
        _sf_money("amount").alias("Amount"),
        pl.col("prob").cast(pl.String).alias("Probability (%)"),
        pl.col("age").cast(pl.String).alias("Age"),
        pl.col("close_date").dt.strftime(SF_DATE).alias("Close Date"),
        pl.col("created").dt.strftime(SF_DATE).alias("Created Date"),
        pl.when(pl.col("status") == "open")
        .then(pl.col("sf_stage").replace_strict(SF_NEXT_STEP, default=None))
        .alias("Next Step"),
        _source(pl.col("u_source"), pl.col("source"), SF_SOURCES, "Other").alias("Lead Source"),
        pl.when(pl.col("new_business"))
        .then(pl.lit("New Business"))
        .otherwise(pl.lit("Existing Business"))
        .alias("Type"),
        category.alias("Forecast Category"),
        pl.col("sf_id").alias("Opportunity ID"),
    )
    to_stage = _by_outcome("Closed Won", "Closed Lost", open_stage, column="outcome")
    history = (
        moves.join(
            d.select("opportunity_id", "sf_id", "deal_name", "owner_name", "amount", "close_date"),
            on="opportunity_id",
            maintain_order="left",
        )
        .with_columns(to_stage.alias("To Stage"))
        .select(
            pl.col("sf_id").alias("Opportunity ID"),
            pl.col("deal_name").alias("Opportunity Name"),
            pl.col("To Stage").shift(1).over("opportunity_id").alias("From Stage"),
            pl.col("To Stage"),
            _sf_money("amount").alias("Amount"),
            pl.col("To Stage").replace_strict(prob).cast(pl.String).alias("Probability (%)"),
            pl.col("close_date").dt.strftime(SF_DATE).alias("Close Date"),
            pl.col("owner_name").alias("Last Modified By"),
            pl.col("at").dt.strftime(SF_TIME).alias("Last Modified"),
        )
    )
    return opps, history


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SCRAMBLE = 2654435761  # odd and not a multiple of 31, so coprime with 62**5


def _sf_id(index: pl.Expr) -> pl.Expr:
    """Salesforce's 18-character opportunity ids: key prefix ``006``, a 12-character record
    number, and the 3-character case checksum Salesforce appends to its 15-character ids."""
    return index.map_elements(_sf_id_of, return_dtype=pl.String)


def _sf_id_of(i: int) -> str:
    digits = ""
    n = (i + 1) * _SCRAMBLE % 62**5  # a bijection: record numbers look random, never repeat
    while n:
        n, r = divmod(n, 62)
        digits = _BASE62[r] + digits
    short = "0065g00000" + digits.rjust(5, "0")  # room for 62**5 - 1 ≈ 916 million deals
    check = "".join(
        _CHECKSUM[sum(1 << b for b, c in enumerate(short[k : k + 5]) if c.isupper())]
        for k in (0, 5, 10)
    )
    return short + check


def _sf_money(col: str) -> pl.Expr:
    """``$12,500.00``."""
    return pl.col(col).map_elements(lambda x: f"${x:,.2f}", return_dtype=pl.String)


def _sf_report(frame: pl.DataFrame, demo: DemoHistory) -> str:
    """A report exported "Details only": every field quoted, then Salesforce's footer."""
    out = io.StringIO()
    out.write(frame.write_csv(quote_style="always"))
    stamp = f"{demo.as_of.month}/{demo.as_of.day}/{demo.as_of.year} 5:47 PM"
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    out.write("\n")
    for line in (
        "",
        "Confidential Information - Do Not Distribute",
        "",
        f"Copyright (c) 2000-{demo.as_of.year} salesforce.com, inc. All rights reserved.",
        "",
        f"Generated By:  {SF_FOOTER_USER}  {stamp}",
        SF_FOOTER_COMPANY,
    ):
        w.writerow([line])
    return out.getvalue()


# --- HubSpot --------------------------------------------------------------------------------------
HS_TIME = "%Y-%m-%d %H:%M"


def _hubspot(demo, deals, moves) -> dict[str, str]:
    """The deals export: one row a deal, the stage history as one "Date entered" column a
    stage; no footer."""
    stages = _Stages.pick(demo.stages, HS_STAGES, HS_KEEP, "hubspot")
    stage = _by_outcome(
        HS_CLOSED["won"][0],
        HS_CLOSED["lost"][0],
        pl.col("stage").replace_strict(stages.names, default=None),
    )
    prob = {**stages.probability, HS_CLOSED["won"][0]: 1.0, HS_CLOSED["lost"][0]: 0.0}
    d = deals.with_columns(stage.alias("hs_stage")).with_columns(
        pl.col("hs_stage").replace_strict(prob).alias("prob")
    )
    category = _by_outcome("Closed won", "Not forecasted", _open_category(0.9, 0.6, "Best case"))
    table = d.select(
        "opportunity_id",
        (pl.col("index") + 15_000_000_001).cast(pl.String).alias("Record ID"),
        pl.col("deal_name").alias("Deal Name"),
        pl.col("hs_stage").alias("Deal Stage"),
        pl.col("close_at").dt.strftime(HS_TIME).alias("Close Date"),
        pl.col("created_at").dt.strftime(HS_TIME).alias("Create Date"),
        pl.col("owner_name").alias("Deal owner"),
        _plain_amount("amount").alias("Amount"),
        pl.lit(HS_PIPELINE).alias("Pipeline"),
        pl.col("prob").cast(pl.String).alias("Deal probability"),
        category.alias("Forecast category"),
        _source(pl.col("u_source"), pl.col("source"), HS_SOURCES, "").alias("Original Source Type"),
    )
    labels = {stages.names[s]: HS_STAGES[stages.names[s]][0] for s in demo.stages}
    labels.update({k: v[1] for k, v in HS_CLOSED.items()})
    column = {key: f'Date entered "{label} ({HS_PIPELINE})"' for key, label in labels.items()}
    key = pl.coalesce("outcome", pl.col("stage").replace_strict(stages.names))
    entered = (
        moves.with_columns(key.alias("key"))
        .group_by("opportunity_id", "key")
        .agg(pl.col("at").min())
        .with_columns(pl.col("at").dt.strftime(HS_TIME), pl.col("key").replace_strict(column))
        .pivot("key", index="opportunity_id", values="at")
    )
    for name in column.values():
        if name not in entered.columns:
            entered = entered.with_columns(pl.lit(None, pl.String).alias(name))
    table = table.join(
        entered.select("opportunity_id", *column.values()),
        on="opportunity_id",
        how="left",
        maintain_order="left",
    ).drop("opportunity_id")
    return {"opportunities.csv": table.write_csv()}


# --- Pipedrive ------------------------------------------------------------------------------------
PD_TIME = "%Y-%m-%d %H:%M:%S"


def _pipedrive(demo, deals, moves) -> dict[str, str]:
    """The deals export: a deal keeps its stage when won or lost (status says which); no
    stage history. The expected close date of a closed deal is the day it closed."""
    stages = _Stages.pick(demo.stages, PD_STAGES, PD_KEEP, "pipedrive")
    status = pl.col("status")
    prob = _by_outcome(
        100, 0, pl.col("stage").replace_strict(stages.names).replace_strict(stages.probability)
    )
    table = deals.select(
        (pl.col("index") + 1).alias("Deal - ID"),
        pl.col("deal_name").alias("Deal - Title"),
        pl.col("owner_name").alias("Deal - Owner"),
        _plain_amount("amount").alias("Deal - Value"),
        pl.lit("USD").alias("Deal - Currency"),
        pl.lit("Pipeline").alias("Deal - Pipeline"),
        pl.col("stage").replace_strict(stages.names).alias("Deal - Stage"),
        status.alias("Deal - Status"),
        pl.col("created_at").dt.strftime(PD_TIME).alias("Deal - Deal created"),
        pl.when(status == "won")
        .then(pl.col("close_at").dt.strftime(PD_TIME))
        .alias("Deal - Won time"),
        pl.when(status == "lost")
        .then(pl.col("close_at").dt.strftime(PD_TIME))
        .alias("Deal - Lost time"),
        pl.col("close_date").dt.strftime("%Y-%m-%d").alias("Deal - Expected close date"),
        prob.cast(pl.String).alias("Deal - Probability"),
        _source(pl.col("u_source"), pl.col("source"), PD_SOURCES, "").alias("Deal - Source origin"),
    )
    return {"opportunities.csv": table.write_csv(quote_style="always")}
