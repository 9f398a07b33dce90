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
    # When set (ISO instant with offset), the service clock starts there and runs in real time:
    # a training or demo workspace living at another date. Unset in production.
    clock_start: str | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
