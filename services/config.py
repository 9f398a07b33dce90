"""Settings from the environment, prefix USINE_."""
from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="USINE_", extra="ignore")

    database_url: str = "sqlite:///./var/usine.db"
    storage_dir: str = "./var/documents"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_from: str = "Usine <ne-pas-repondre@usine.invalid>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    secret_key: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    prefect_port: int = 4200
    var_dir: str = "./var"
    # The service's public address as people reach it (behind the reverse proxy in production:
    # https://usine.region.fr): the letters' links to the applicant portal are built on it.
    # Unset: http://<api_host>:<api_port>, the address `usine serve` answers on.
    public_url: str | None = None
    # Where people report an accessibility problem (the statement's « Retour d'information et
    # contact », web/accessibility.py): an e-mail address or an https:// form. Unset: the statement
    # sends them to the region's service that handles their dossier.
    accessibility_contact: str | None = None
    # When set (ISO instant with offset), the service clock starts there and runs in real time:
    # a training or demo workspace living at another date. Unset in production.
    clock_start: str | None = None
    # Sign-in abuse (docs/security.md, services/signin.py). Per identifier (kept in the database,
    # shared by every worker): this many failures are free, then each one delays the next attempt
    # by signin_delay_base_seconds × 2^(failures − free), and signin_lock_after failures lock the
    # identifier for signin_lock_seconds. Failures older than signin_failure_window_seconds are
    # forgotten. Per client address (each process its own): signin_per_address attempts (a
    # `limits` string). Per process: signin_concurrency password checks at once, at most
    # signin_max_waiting more waiting up to signin_queue_wait_seconds each; the rest get 429.
    signin_free_failures: int = 5
    signin_delay_base_seconds: float = 1.0
    signin_lock_after: int = 10
    signin_lock_seconds: int = 900
    signin_failure_window_seconds: int = 3600
    signin_per_address: str = "30/minute"
    signin_concurrency: int = 2
    signin_max_waiting: int = 64
    signin_queue_wait_seconds: float = 1.0
    # Every 429 of a sign-in that did not already wait is answered after this delay.
    signin_refusal_delay_seconds: float = 1.0
    # Nice value of the threads that check passwords (Linux: per thread): a flood of argon2
    # checks yields the CPU to the other requests. 0 leaves them as they are.
    signin_nice: int = 10
    # Expert opinions (services.messages): a signed link is valid this many days from the
    # service clock's instant of the invitation, and serves once.
    expert_link_days: int = 15


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def public_url() -> str:
    """The service's absolute base address, without a trailing slash (USINE_PUBLIC_URL)."""
    s = get_settings()
    return (s.public_url or f"http://{s.api_host}:{s.api_port}").rstrip("/")
