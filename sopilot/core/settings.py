"""The one settings object, read from `SOPILOT_*` environment variables in one place.

Every knob is declared once in `SETTINGS` with its default and help text; `Settings.from_env`
reads them (given an environment mapping, so tests pass their own) and validates types, so a
wrong value stops start-up with a message that names the variable. This module stays light: the
guard imports it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sopilot.core.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The installed `sopilot` package; its data folders (knowledge, prompts, eval) are subpackages."""

_CHECKOUT = PACKAGE_DIR.parent
ROOT = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
"""Where `data/` lives by default: the checkout when run from one, else the working directory."""

KNOWLEDGE_DIR = _CHECKOUT / "knowledge" if (_CHECKOUT / "knowledge").is_dir() else PACKAGE_DIR / "knowledge"
"""The shipped SOP documents: the checkout's `knowledge/`, or the copy installed with the package."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Setting:
    """One configuration knob: its environment variable, type, default and help."""

    name: str
    env: str
    type: type
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(name="data_dir", env="SOPILOT_DATA_DIR", type=Path, default=ROOT / "data",
            help="Where the embedded Chroma index, the lexical index and the SQLite audit log live."),
    Setting(name="knowledge_dir", env="SOPILOT_KNOWLEDGE_DIR", type=Path, default=KNOWLEDGE_DIR,
            help="The SOP documents ingested by default, and the policy file."),
    Setting(name="chroma_url", env="SOPILOT_CHROMA_URL", type=str, default="",
            help="A Chroma server (`chroma run`) such as http://127.0.0.1:8000; empty = embedded Chroma under "
                 "data_dir."),
    Setting(name="collection", env="SOPILOT_COLLECTION", type=str, default="sopilot",
            help="Name prefix of the Chroma collections (one per index version)."),
    Setting(name="embedding_model", env="SOPILOT_EMBEDDING_MODEL", type=str, default="",
            help="Path of a sentence-transformers model; empty = the packaged all-MiniLM-L6-v2."),
    Setting(name="chunk_tokens", env="SOPILOT_CHUNK_TOKENS", type=int, default=200,
            help="Largest chunk, in the embedding model's word pieces (the model reads at most 256)."),
    Setting(name="min_confidence", env="SOPILOT_MIN_CONFIDENCE", type=float, default=0.30,
            help="Below this best-hit confidence a ticket matches no SOP and goes to the Policy Exception queue."),
    Setting(name="match_threshold", env="SOPILOT_MATCH_THRESHOLD", type=float, default=0.46,
            help="Below this calibrated match probability of the best SOP a ticket matches no SOP (`matched: false`) "
                 "and goes to the Policy Exception queue (0.46 keeps 95% of answerable English tickets matched, "
                 "out of fold; see eval/reports)."),
    Setting(name="database_url", env="SOPILOT_DATABASE_URL", type=str, default="",
            help="SQLAlchemy URL of the audit log; empty = SQLite (WAL) at data_dir/audit.db."),
    Setting(name="llm_model", env="SOPILOT_LLM_MODEL", type=str, default="",
            help="Model name on the OpenAI-compatible endpoint; empty = the offline composer drafts replies."),
    Setting(name="llm_base_url", env="OPENAI_BASE_URL", type=str, default="",
            help="Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, gateways)."),
    Setting(name="llm_timeout", env="SOPILOT_LLM_TIMEOUT", type=float, default=20.0,
            help="Seconds before an LLM call is abandoned and the offline composer answers instead."),
    Setting(name="llm_retries", env="SOPILOT_LLM_RETRIES", type=int, default=1,
            help="Retries of a failed LLM call before falling back to the offline composer."),
    Setting(name="llm_context_tokens", env="SOPILOT_LLM_CONTEXT_TOKENS", type=int, default=3000,
            help="Token budget of the SOP context given to the LLM; whole sections are dropped to fit."),
    Setting(name="stopped_policies", env="SOPILOT_STOPPED_POLICIES", type=str, default="",
            help="Comma-separated policy ids under Emergency Stop (handbook §7): their automation goes to manual "
                 "review. The app adds run-time stops in data_dir/stopped_policies.txt."),
    Setting(name="agent_signature", env="SOPILOT_AGENT_SIGNATURE", type=str, default="{agent}\nCustomer Support",
            help="How the app signs replies; {agent} is the signed-in agent's name (\\n for a new line)."),
    Setting(name="service_max_body", env="SOPILOT_SERVICE_MAX_BODY", type=int, default=1_000_000,
            help="Largest request body the HTTP service accepts, in bytes (larger: 413)."),
    Setting(name="webhook_secret", env="SOPILOT_WEBHOOK_SECRET", type=str, default="",
            help="Shared secret of signed webhooks (HMAC-SHA256 over timestamp and body); empty = webhooks refused."),
    Setting(name="webhook_tolerance", env="SOPILOT_WEBHOOK_TOLERANCE", type=int, default=300,
            help="Seconds a webhook's timestamp may differ from now before it is refused as a replay."),
    Setting(name="rt_url", env="SOPILOT_RT_URL", type=str, default="",
            help="Request Tracker 5 base URL such as http://127.0.0.1:8765 (REST2 under /REST/2.0); empty = none."),
    Setting(name="rt_token", env="SOPILOT_RT_TOKEN", type=str, default="",
            help="An RT auth token (RT: Logged in as, Settings, Auth Tokens) the connector reads and comments with."),
    Setting(name="rt_poll_seconds", env="SOPILOT_RT_POLL_SECONDS", type=float, default=0.0,
            help="Poll RT's REST2 for new transactions every this many seconds; 0 = rely on the RT scrip's webhook."),
    Setting(name="helpdesk_timeout", env="SOPILOT_HELPDESK_TIMEOUT", type=float, default=5.0,
            help="Seconds before one call to the helpdesk (a comment, a ticket read) is abandoned."),
    Setting(name="helpdesk_retries", env="SOPILOT_HELPDESK_RETRIES", type=int, default=3,
            help="Retries, with backoff, of a helpdesk call that failed or timed out."),
    Setting(name="service_concurrency", env="SOPILOT_SERVICE_CONCURRENCY", type=int, default=4,
            help="Suggestions the service computes at once; more wait their turn (past the cores they only slow "
                 "down)."),
    Setting(name="report_similarity", env="SOPILOT_REPORT_SIMILARITY", type=float, default=0.55,
            help="Reports (handbook L.1, L.2): texts whose average cosine similarity reaches this form one group."),
    Setting(name="low_match_probability", env="SOPILOT_LOW_MATCH_PROBABILITY", type=float, default=0.5,
            help="Knowledge-base gap report (L.2): a ticket matched below this probability counts as poorly served."),
    Setting(name="csat_low_score", env="SOPILOT_CSAT_LOW_SCORE", type=int, default=2,
            help="A CSAT score (1-5) at or below this is low: its feedback is flagged for the Team Lead (§8)."),
    Setting(name="max_document_mb", env="SOPILOT_MAX_DOCUMENT_MB", type=float, default=5.0,
            help="Largest SOP file ingest reads, in MB (also the largest text a file may unpack to); a larger "
                 "file is skipped with its size named."),
    Setting(name="ingest_wait", env="SOPILOT_INGEST_WAIT", type=float, default=30.0,
            help="Seconds an ingest waits for another ingest of the same index to finish before it gives up "
                 "(exit 2); 0 = give up at once."),
    Setting(name="reports_schedule", env="SOPILOT_REPORTS_SCHEDULE", type=str, default="off",
            help="on: `sopilot serve` runs the handbook L.1/L.2 weekly reports every Monday 09:00 UTC; "
                 "off: it does not."),
)


def _parse(setting: Setting, raw: str) -> Any:
    if setting.type is Path:
        return Path(raw).expanduser()
    if setting.type is str:
        return raw
    try:
        return setting.type(raw)
    except ValueError:
        raise ConfigError(
            f"{setting.env}={raw!r} is not a valid {setting.type.__name__}: {setting.help} "
            f"Unset it to use the default {setting.default!r}."
        ) from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Resolved configuration; build it with `Settings.from_env()`."""

    data_dir: Path
    knowledge_dir: Path
    chroma_url: str
    collection: str
    embedding_model: str
    chunk_tokens: int
    min_confidence: float
    match_threshold: float
    database_url: str
    llm_model: str
    llm_base_url: str
    llm_timeout: float
    llm_retries: int
    llm_context_tokens: int
    stopped_policies: str
    agent_signature: str
    service_max_body: int = 1_000_000
    webhook_secret: str = ""
    webhook_tolerance: int = 300
    rt_url: str = ""
    rt_token: str = ""
    rt_poll_seconds: float = 0.0
    helpdesk_timeout: float = 5.0
    helpdesk_retries: int = 3
    service_concurrency: int = 4
    report_similarity: float
    low_match_probability: float
    csat_low_score: int
    max_document_mb: float = 5.0
    ingest_wait: float = 30.0
    reports_schedule: str = "off"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from `environ` (default `os.environ`); keyword overrides win."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            values[setting.name] = setting.default if raw in (None, "") else _parse(setting, raw)
        unknown = set(overrides) - set(values)
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)}; valid: {[s.name for s in SETTINGS]}")
        values.update(overrides)
        if values["chunk_tokens"] < 32 or values["chunk_tokens"] > 256:
            raise ConfigError(
                f"SOPILOT_CHUNK_TOKENS={values['chunk_tokens']} is out of range: use 32 to 256 "
                "(the embedding model reads at most 256 word pieces)."
            )
        if str(values["reports_schedule"]).strip().lower() not in ("on", "off"):
            raise ConfigError(f"SOPILOT_REPORTS_SCHEDULE={values['reports_schedule']!r} is not on or off: write on "
                              "to run the Monday 09:00 reports in the service, off (the default) not to.")
        return cls(**values)

    @property
    def env_stopped(self) -> frozenset[str]:
        """Policy ids stopped by `SOPILOT_STOPPED_POLICIES` (the app cannot lift these)."""
        return frozenset(p.strip() for p in self.stopped_policies.split(",") if p.strip())

    @property
    def stopped(self) -> frozenset[str]:
        """Policy ids under Emergency Stop: the environment's and those switched at run time."""
        from sopilot.core.stops import read_stops

        return self.env_stopped | read_stops(self.data_dir)

    @property
    def reports_scheduled(self) -> bool:
        """Whether the service runs the Monday 09:00 reports (`SOPILOT_REPORTS_SCHEDULE=on`)."""
        return self.reports_schedule.strip().lower() == "on"

    @property
    def audit_url(self) -> str:
        """The audit database URL, defaulting to SQLite under the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'audit.db'}"
