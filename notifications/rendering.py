"""Rendering notification templates (French letters, text and HTML) from a JSON context.

Each notification kind has three templates under ``templates/<kind>/``: ``subject.txt.j2``,
``body.txt.j2`` and ``body.html.j2``. They may extend or include shared templates whose
names start with an underscore (``_base.txt.j2``, ``_base.html.j2``, ``_recours.*.j2``).

Rendering runs inside every command's transaction (see ``services/outbox.py``), so:

* the environment is built once per process and templates are compiled once per kind;
* a missing context key is an error (``StrictUndefined``), raised as ``TemplateContextError``
  naming the dotted path of the key, so the command is refused instead of a letter going out
  with a blank where an amount or a date should be;
* every rendered message carries ``template_hash``: the SHA-256 of the raw bytes of the
  templates it was rendered from, so what was sent can be proven later from the repository.

The hash is ``sha256(subject.txt.j2 + body.txt.j2 + body.html.j2 + shared...)`` where the
shared templates are those the three reference (transitively, through extends/include/import),
in sorted name order. From the templates folder it can be checked with e.g.
``cat vote_result/subject.txt.j2 vote_result/body.txt.j2 vote_result/body.html.j2
_base.html.j2 _base.txt.j2 _recours.html.j2 _recours.txt.j2 | sha256sum``
(``NotificationRenderer.template_files(kind)`` lists the exact files in order).

Templates are compiled once and never reloaded while the process lives: a hash always
describes the exact source that produced the text next to it. Deploying new templates means
restarting the process.

Number and date formatting is ``rules.french`` (Babel, fr_FR), the one French formatter of the
web pages, the CLI and the exports too: amounts rounded half up to the cent, the thousands
separator and the space before the euro sign the no-break space U+00A0 (not the narrow U+202F),
because U+00A0 is rendered by every mail client and font, and still keeps "17 500,00 €" on one
line.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping

from jinja2 import BaseLoader, Environment, StrictUndefined, Template, TemplateNotFound, UndefinedError, meta
from jinja2.loaders import split_template_path
from jinja2.runtime import Undefined
from jinja2.utils import missing

from rules import french
from rules.calendar import PARIS

__all__ = [
    "KINDS",
    "DOSSIERLESS_KINDS",
    "DOCUMENT_LABELS",
    "STATE_LABELS",
    "NotificationError",
    "UnknownNotificationKind",
    "TemplateContextError",
    "TemplateValueError",
    "RenderedMessage",
    "NotificationRenderer",
    "default_renderer",
    "render",
    "template_hash",
    "warm_up",
    "FILTERS",
    "euros",
    "date_fr",
    "datetime_fr",
    "document_label",
    "state_label",
]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

KINDS: tuple[str, ...] = (
    "candidacy_received",
    "documents_requested",
    "documents_reminder",
    "documents_final_notice",
    "eligibility_decision",
    "vote_result",
    "payment_issued",
    "dossier_lapsed",
    "dossier_closed",
    "daily_digest",
    "window_opening",
    "window_closing",
    "agenda_closing",
    "loan_disbursed",
    "repayment_due",
    "repayment_reminder",
    "default_notice",
    "message_received",
    "expert_invitation",
)

# Kinds about no single dossier: a programme's AMI window (to companies) or a council session
# and an officer's dossiers (to staff). Their templates carry no dossier header.
DOSSIERLESS_KINDS: frozenset[str] = frozenset({"daily_digest", "window_opening", "window_closing", "agenda_closing"})

# The order in which a kind's own templates enter its hash.
KIND_TEMPLATE_FILES: tuple[str, ...] = ("subject.txt.j2", "body.txt.j2", "body.html.j2")

# Injected by the renderer into the body templates (the rendered subject, used for the
# HTML <title> and the "Objet :" line); a caller's context may not use this name.
RESERVED_CONTEXT_KEYS = frozenset({"message_subject"})

NBSP = french.NBSP

DOCUMENT_LABELS: Mapping[str, str] = {
    "kbis": "extrait Kbis de moins de 3 mois",
    "financial_statement": "dernière liasse fiscale (exercice d'au moins 12 mois)",
    "tax_certificate": "attestation de régularité fiscale",
    "social_certificate": "attestation de régularité sociale (URSSAF)",
    "rib": "RIB",
    "de_minimis_attestation": "attestation de minimis",
    "consultant_quote": "devis du prestataire référencé",
    "diagnostic_report": "rapport de diagnostic",
    "action_plan": "plan d'action",
    "phase2_quote": "devis de la phase 2",
    "invoice": "facture acquittée",
    "end_of_mission_report": "rapport de fin de mission",
    # Every kind an officer may request (services.commands.DOCUMENT_KINDS) has its label: a
    # request for "other" used to fail at rendering (found by schemathesis).
    "other": "autre pièce",
}

STATE_LABELS: Mapping[str, str] = {
    "draft": "brouillon",
    "submitted": "candidature déposée",
    "eligibility_review": "instruction de recevabilité",
    "diagnostic": "diagnostic (phase 1)",
    "action_plan": "plan d'action (phase 2)",
    "instruction": "instruction du projet",
    "ready_for_vote": "proposé au vote",
    "approved": "voté",
    "in_payment": "en paiement",
    "in_repayment": "en remboursement",
    "in_default": "défaut de remboursement",
    "closed": "clôturé",
    "rejected": "refusé",
    "withdrawn": "abandonné",
    "lapsed": "caduc",
}

CENT = french.CENT


# --------------------------------------------------------------------------- errors


class NotificationError(Exception):
    """Base of the errors raised while rendering a notification."""


class UnknownNotificationKind(NotificationError, LookupError):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"unknown notification kind {kind!r}; known kinds: {', '.join(KINDS)}")


class TemplateContextError(NotificationError):
    """The context lacks a key a template needs (never rendered as an empty string)."""

    def __init__(self, kind: str, missing_name: str, detail: str | None = None) -> None:
        self.kind = kind
        self.missing_name = missing_name
        self.detail = detail
        message = f"notification {kind!r}: the context has no {missing_name!r}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class TemplateValueError(NotificationError, ValueError):
    """A context value is present but unusable (not an amount, not a date, unknown label...)."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"notification {kind!r}: {detail}")


# --------------------------------------------------------------------------- filters


def _to_decimal(value: Any) -> Decimal:
    # Floats are refused: amounts travel as strings or Decimals, and a float would already
    # have lost the cent we are asked to print.
    return french.as_decimal(value)


# "17500.00" or Decimal("17500") -> "17 500,00 €", rounded half up in Decimal: the one formatter.
euros = french.euros


def _as_date(value: Any) -> date:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO date or instant: {value!r}") from None
    if isinstance(value, datetime):
        return _as_paris(value).date()
    if isinstance(value, date):
        return value
    raise TypeError(f"not a date: {value!r}")


def _as_paris(value: datetime) -> datetime:
    # A naive instant is ambiguous (UTC? Paris?) and could shift a legal date by one day
    # around midnight: refuse it rather than guess.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"instant without a UTC offset: {value.isoformat()!r}")
    return value.astimezone(PARIS)


def date_fr(value: Any) -> str:
    """A date, an aware datetime or an ISO string -> "9 avril 2021", "1er mars 2021".

    Instants are first converted to Europe/Paris, whose calendar days the deadlines use.
    """
    return french.long_date(_as_date(value))


def datetime_fr(value: Any) -> str:
    """An aware instant (or ISO string with offset) -> "1er février 2021 à 10 h 00" (Paris)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO instant: {value!r}") from None
    if not isinstance(value, datetime):
        raise TypeError(f"not an instant: {value!r}")
    return french.long_instant(_as_paris(value))


def document_label(kind: str) -> str:
    """A document kind id -> its French label; an unknown kind is an error, not a raw id."""
    try:
        return DOCUMENT_LABELS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"no French label for document kind {kind!r}") from None


def state_label(state: str) -> str:
    try:
        return STATE_LABELS[state]
    except (KeyError, TypeError):
        raise ValueError(f"no French label for dossier state {state!r}") from None


def percent(value: Any) -> str:
    """A rate as a fraction, "0.0203" -> "2,03 %" (Decimal, no trailing zeros beyond the cent of a point)."""
    return french.percent(value)


def siren(value: Any) -> str:
    """"123456789" -> "123 456 789" (grouped the way French letters print it)."""
    return french.siren(value)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """French agreement: 0 and 1 take the singular."""
    return singular if abs(int(count)) < 2 else (plural_form or singular + "s")


def _letter_service(programme_id: str, region: str) -> dict:
    from programmes.letters import service_of

    return service_of(programme_id, region)


def _implicit_decision_on(programme_id: str, received: Any) -> date:
    from programmes.letters import implicit_decision_on

    return implicit_decision_on(programme_id, _as_date(received))


def _invalid(name: str, value: Any) -> str:
    """Called by a template on a value outside its contract (e.g. an unknown outcome)."""
    raise ValueError(f"invalid value for {name}: {value!r}")


# Exposed for callers that format outside templates (e.g. a web page showing an amount).
FILTERS: Mapping[str, Callable[..., str]] = {
    "euros": euros,
    "de": french.of_name,
    "date_fr": date_fr,
    "datetime_fr": datetime_fr,
    "document_label": document_label,
    "state_label": state_label,
    "siren": siren,
    "percent": percent,
}


# --------------------------------------------------------------------------- undefined


class _MissingVariable(UndefinedError):
    """Raised by ``_ContextUndefined``; carries where the lookup failed."""

    def __init__(self, undefined: Undefined) -> None:
        self.obj = undefined._undefined_obj
        self.name = undefined._undefined_name
        self.hint = undefined._undefined_hint
        super().__init__(undefined._undefined_message)


class _ContextUndefined(StrictUndefined):
    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        raise _MissingVariable(self)


# Undefined/StrictUndefined bind their operators (__str__, __iter__, __bool__, ...) to the
# base function object itself, so overriding the method alone would not reach them: rebind
# every alias to our version, which keeps the failing object for TemplateContextError.
for _cls in (Undefined, StrictUndefined):
    for _name, _member in list(vars(_cls).items()):
        if _member is Undefined._fail_with_undefined_error and _name != "_fail_with_undefined_error":
            setattr(_ContextUndefined, _name, _ContextUndefined._fail_with_undefined_error)
del _cls, _name, _member


def _strict(function: Callable[..., Any]) -> Callable[..., Any]:
    """Make a filter or test fail like the template itself on an absent key.

    Jinja hands an Undefined to a Python filter without complaint; without this the filter
    would report "not a date: Undefined" instead of naming the missing key.
    """

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
        return function(*args, **kwargs)

    return checked


def _locate(root: Any, target: Any, path: str = "") -> str | None:
    """The dotted path of the container ``target`` inside the context (identity search)."""
    if root is target:
        return path
    if isinstance(root, Mapping):
        for key, child in root.items():
            if isinstance(child, (Mapping, list, tuple)):
                found = _locate(child, target, f"{path}.{key}" if path else str(key))
                if found is not None:
                    return found
    elif isinstance(root, (list, tuple)):
        for index, child in enumerate(root):
            if isinstance(child, (Mapping, list, tuple)):
                found = _locate(child, target, f"{path}[{index}]")
                if found is not None:
                    return found
    return None


def _missing_name(context: Mapping[str, Any], exc: _MissingVariable) -> str:
    name = exc.name if exc.name is not None else (exc.hint or "?")
    if exc.obj is missing:
        return str(name)
    # Only containers are located: a scalar (e.g. None) may occur at many places.
    if isinstance(exc.obj, (Mapping, list, tuple)):
        parent = _locate(context, exc.obj)
        if parent:
            return f"{parent}.{name}" if isinstance(name, str) else f"{parent}[{name!r}]"
    return str(name)


# --------------------------------------------------------------------------- loader


class _HashingLoader(BaseLoader):
    """Loads templates from one folder, keeping the raw bytes each template was compiled from.

    Jinja's FileSystemLoader reads in text mode (newline translation), so hashing its output
    would not match the files' bytes; reading bytes here makes the hash reproducible with
    ``sha256sum`` on a checkout.
    """

    def __init__(self, searchpath: Path) -> None:
        self.searchpath = Path(searchpath)
        self.raw: dict[str, bytes] = {}

    def get_source(self, environment: Environment, template: str):
        path = self.searchpath.joinpath(*split_template_path(template))
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise TemplateNotFound(template) from None
        self.raw[template] = raw
        # Compiled templates are never reloaded (auto_reload=False): always "up to date".
        return raw.decode("utf-8"), os.fspath(path), lambda: True


# --------------------------------------------------------------------------- renderer


@dataclass(frozen=True)
class RenderedMessage:
    kind: str
    subject: str
    text: str
    html: str
    template_hash: str


@dataclass(frozen=True)
class _CompiledKind:
    subject: Template
    text: Template
    html: Template
    files: tuple[str, ...]  # template names, in hash order
    template_hash: str


_BLANK_LINES = re.compile(r"\n{3,}")
# Trailing blanks go, except in "-- ", the mail signature delimiter (RFC 3676).
_TRAILING_SPACES = re.compile(r"(?<!\n--)[ \t]+\n")


def _tidy(body: str) -> str:
    # Blocks and conditionals leave stray blank lines; a letter has at most one between
    # paragraphs. Cheap regexes rather than whitespace-control noise in every template.
    body = _TRAILING_SPACES.sub("\n", body)
    body = _BLANK_LINES.sub("\n\n", body)
    return body.strip("\n") + "\n"


def _one_line(subject: str) -> str:
    # A subject is one header line: collapse whitespace (and any newline a value carried).
    return " ".join(subject.split())


class NotificationRenderer:
    """Renders the notification kinds of one templates folder; thread-safe, compiles lazily."""

    def __init__(self, templates_dir: Path | str = TEMPLATES_DIR, kinds: tuple[str, ...] = KINDS) -> None:
        self.templates_dir = Path(templates_dir)
        self.kinds = tuple(kinds)
        self._loader = _HashingLoader(self.templates_dir)
        self.environment = Environment(
            loader=self._loader,
            undefined=_ContextUndefined,
            # Only the HTML bodies are markup; subjects and text bodies must keep "<" and "&".
            autoescape=lambda name: name is not None and name.endswith(".html.j2"),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
            cache_size=-1,  # never evict: the hashed source must stay the compiled one
        )
        self.environment.filters.update(
            {name: _strict(function) for name, function in FILTERS.items()},
            plural=_strict(plural),
        )
        self.environment.tests["nonzero_amount"] = _strict(french.is_nonzero_amount)
        self.environment.globals["invalid"] = _invalid
        # The letters' administrative data (service, tribunal, what silence is worth), read from
        # programmes/letters.toml by the programme's id and region (CRPA mentions, recours).
        self.environment.globals["letter_service"] = _strict(_letter_service)
        self.environment.globals["implicit_decision_on"] = _strict(_implicit_decision_on)
        self._compiled: dict[str, _CompiledKind] = {}
        self._lock = threading.Lock()

    # -- compilation

    def _compile(self, kind: str) -> _CompiledKind:
        compiled = self._compiled.get(kind)
        if compiled is not None:
            return compiled
        if kind not in self.kinds:
            raise UnknownNotificationKind(kind)
        with self._lock:
            compiled = self._compiled.get(kind)
            if compiled is None:
                compiled = self._build(kind)
                self._compiled[kind] = compiled
        return compiled

    def _build(self, kind: str) -> _CompiledKind:
        env = self.environment
        own = tuple(f"{kind}/{name}" for name in KIND_TEMPLATE_FILES)
        templates = [env.get_template(name) for name in own]
        shared: set[str] = set()
        pending = list(own)
        while pending:
            name = pending.pop()
            ast = env.parse(self._loader.raw[name].decode("utf-8"))
            for ref in meta.find_referenced_templates(ast):
                if ref is None:
                    # A computed template name could not be hashed in advance.
                    raise NotificationError(f"{name}: template references must be literal strings")
                if ref not in shared and ref not in own:
                    shared.add(ref)
                    env.get_template(ref)  # load now, so the hashed bytes are the compiled ones
                    pending.append(ref)
        files = own + tuple(sorted(shared))
        digest = hashlib.sha256()
        for name in files:
            digest.update(self._loader.raw[name])
        return _CompiledKind(*templates, files=files, template_hash=digest.hexdigest())

    # -- public

    def warm_up(self) -> None:
        """Compile every kind now (about 0.1 s in all), e.g. at start-up, so that the first
        command of each kind does not pay for it inside its transaction."""
        for kind in self.kinds:
            self._compile(kind)

    def template_hash(self, kind: str) -> str:
        return self._compile(kind).template_hash

    def template_files(self, kind: str) -> tuple[Path, ...]:
        """The files whose bytes, concatenated in this order, give ``template_hash(kind)``."""
        return tuple(self.templates_dir / name for name in self._compile(kind).files)

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedMessage:
        compiled = self._compile(kind)
        clash = RESERVED_CONTEXT_KEYS.intersection(context)
        if clash:
            raise TemplateValueError(kind, f"reserved context key(s): {', '.join(sorted(clash))}")
        try:
            subject = _one_line(compiled.subject.render(context))
            text = _tidy(compiled.text.render(context, message_subject=subject))
            html = _tidy(compiled.html.render(context, message_subject=subject))
        except _MissingVariable as exc:
            raise TemplateContextError(kind, _missing_name(context, exc), str(exc)) from None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise TemplateValueError(kind, str(exc)) from exc
        return RenderedMessage(kind, subject, text, html, compiled.template_hash)


    def render_document(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """A document that is no e-mail (the convention, ``_convention.txt.j2``), rendered with
        the same filters and the same strictness as the letters: (its text, the SHA-256 of its
        template's bytes)."""
        if not name.startswith("_") or "/" in name:
            raise NotificationError(f"{name}: a document is a shared template of the folder (_name.txt.j2)")
        template = self.environment.get_template(name)
        try:
            body = _tidy(template.render(context))
        except _MissingVariable as exc:
            raise TemplateContextError(name, _missing_name(context, exc), str(exc)) from None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise TemplateValueError(name, str(exc)) from exc
        return body, hashlib.sha256(self._loader.raw[name]).hexdigest()


_default: NotificationRenderer | None = None
_default_lock = threading.Lock()


def default_renderer() -> NotificationRenderer:
    """The process-wide renderer over the packaged templates (built once)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = NotificationRenderer()
    return _default


def render(kind: str, context: Mapping[str, Any]) -> RenderedMessage:
    """Render one notification; see the module docstring for the errors it raises."""
    return default_renderer().render(kind, context)


def template_hash(kind: str) -> str:
    return default_renderer().template_hash(kind)


def warm_up() -> None:
    default_renderer().warm_up()
