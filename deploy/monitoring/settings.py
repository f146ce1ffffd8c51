"""The monitoring thresholds (``deploy/monitoring/settings.toml``): one place for the SLA,
the lag limits and every alert's duration, read by the rules and the dashboard generators.

A model rather than constants so that an operator changes a number in the TOML file, not
Python, and a typo (an unknown key, ``10 m`` for ``10m``, a share above 1) stops the
generator instead of producing rules Prometheus would reject or read otherwise."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from singlewindow.metrics import LATENCY_BUCKETS

FILE = Path(__file__).with_name("settings.toml")
# singlewindow_submit_to_final_seconds' bucket bounds (singlewindow/metrics.py builds it with
# these): the SLA's share is that of one bucket, so its N is one of them
SLA_BOUNDS: tuple[float, ...] = tuple(float(b) for b in LATENCY_BUCKETS)

# Prometheus' duration syntax, one unit (what rules and range selectors take everywhere)
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]*(ms|s|m|h|d|w|y)$")]
Share = Annotated[float, Field(gt=0, lt=1)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Sla(_Section):
    final_within_seconds: float = Field(gt=0)
    target: Share
    window: Duration
    for_: Duration = Field(alias="for")

    @field_validator("final_within_seconds")
    @classmethod
    def _a_bucket_bound(cls, seconds: float) -> float:
        """The share within N seconds is the rate of the bucket ``le="N"`` over the count's:
        exact, and computable by any Prometheus (interpolating between bounds would need
        histogram_fraction on classic histograms, Prometheus 3.4+), but only for a bound."""
        if seconds not in SLA_BOUNDS:
            bounds = ", ".join(f"{b:g}" for b in SLA_BOUNDS)
            raise ValueError(
                f"{seconds:g} is not a bucket bound of singlewindow_submit_to_final_seconds "
                f"(singlewindow/metrics.py: {bounds}); the SLA counts the declarations in one "
                "bucket, so pick one of these"
            )
        return seconds


class Lag(_Section):
    agency_records: int = Field(gt=0)
    platform_records: int = Field(gt=0)
    for_: Duration = Field(alias="for")
    stuck_window: Duration
    stuck_for: Duration


class DeadLetters(_Section):
    window: Duration


class TimedOut(_Section):
    share: Share
    window: Duration
    for_: Duration = Field(alias="for")


class Health(_Section):
    for_: Duration = Field(alias="for")
    job_regex: str = Field(min_length=1, pattern=r'^[^"\\]*$')


class Runbook(_Section):
    url: str = Field(min_length=1)


class MonitoringSettings(_Section):
    sla: Sla
    lag: Lag
    dead_letters: DeadLetters
    timed_out: TimedOut
    health: Health
    runbook: Runbook


def load(path: Path = FILE) -> MonitoringSettings:
    """Read and check a settings file (ValueError naming the file if it is malformed)."""
    try:
        return MonitoringSettings.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ValueError(f"monitoring settings {path}: {exc}") from exc
