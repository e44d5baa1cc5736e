"""``job_poll_interval`` and ``job_timeout``: the one pair of knobs of every vendor whose batches become
jobs (Klaviyo, Zendesk, Salesforce Bulk, Google Ads Customer Match), and their older names, read with
a warning from destinations.yml, or an error when an entry sets an older name and the new one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbt_activate.delivery.jobs import JobPolling
from dbt_activate.destinations.base import Destination, load_destination_type
from dbt_activate.errors import EXIT_CONFIG, ConfigError
from dbt_activate.project import load_destinations


@dataclass(frozen=True)
class JobVendor:
    kind: str
    config: dict[str, Any]  # the least an entry needs to build, with no network
    default: JobPolling  # the polling of an entry that sets neither knob
    older: tuple[str, ...]  # the older names of (job_poll_interval, job_timeout), in that order; "" for none

    def polling(self, destination: Destination) -> JobPolling:
        """Where each type keeps the polling it read from its knobs."""
        found = {"klaviyo": lambda d: d.polling, "zendesk": lambda d: d.polling,
                 "salesforce": lambda d: d.settings.bulk_polling,
                 "google_ads": lambda d: d.job_settings.polling}[self.kind](destination)
        assert isinstance(found, JobPolling)
        return found


VENDORS = [
    JobVendor("klaviyo", {"api_key": "pk_test"}, JobPolling(2.0, 900.0), ("poll_interval", "poll_timeout")),
    JobVendor("zendesk", {"subdomain": "acme", "oauth_token": "tok-1"}, JobPolling(1.0, 300.0), ("", "")),
    JobVendor("salesforce", {"instance_url": "https://acme.my.salesforce.com", "access_token": "00Dtoken"},
              JobPolling(0.25, 1800.0, backoff=2.0, max_interval=10.0), ("", "bulk_timeout")),
    JobVendor("google_ads", {"developer_token": "dev", "client_id": "cid", "client_secret": "cs",
                             "refresh_token": "rt", "customer_id": "123-456-7890"},
              JobPolling(5.0, 3600.0), ("poll_interval", "poll_timeout")),
]
RENAMED = [(v, old, new) for v in VENDORS
           for old, new in zip(v.older, ("job_poll_interval", "job_timeout"), strict=True) if old]


def destinations_file(tmp_path: Path, vendor: JobVendor, **keys: Any) -> Path:
    path = tmp_path / "destinations.yml"
    path.write_text(yaml.safe_dump({"jobs": {"type": vendor.kind, **vendor.config, **keys}}))
    return path


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.kind)
def test_every_job_vendor_declares_the_pair_with_its_defaults(vendor: JobVendor) -> None:
    from dbt_activate.dbt.catalog import installed_types

    kind = load_destination_type(vendor.kind)
    declared = {k.name: k for k in kind.config_keys}
    assert (declared["job_poll_interval"].default, declared["job_timeout"].default) == (
        vendor.default.interval, vendor.default.timeout)
    assert "from the first read of a job's status" in declared["job_timeout"].help  # one meaning of timeout
    assert vendor.polling(kind("jobs", {"type": vendor.kind, **vendor.config})) == vendor.default
    [listed] = [t for t in installed_types() if t.kind == vendor.kind]
    assert {"job_poll_interval", "job_timeout"} <= set(listed.config_keys)
    assert not set(vendor.older) & set(listed.config_keys)  # `dbt-activate destinations` lists the new names only


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.kind)
def test_the_new_names_set_the_polling(tmp_path: Path, vendor: JobVendor) -> None:
    warnings: list[str] = []
    file = load_destinations(destinations_file(tmp_path, vendor, job_poll_interval=0.5, job_timeout=42),
                             on_warning=warnings.append)
    polling = vendor.polling(file.build("jobs"))
    assert (polling.interval, polling.timeout) == (0.5, 42.0)
    assert warnings == []


@pytest.mark.parametrize(("vendor", "old", "new"), RENAMED, ids=lambda p: getattr(p, "kind", p))
def test_an_older_name_is_read_as_the_new_one_with_a_warning(tmp_path: Path, vendor: JobVendor, old: str,
                                                             new: str) -> None:
    warnings: list[str] = []
    path = destinations_file(tmp_path, vendor, **{old: 7})
    file = load_destinations(path, on_warning=warnings.append)
    polling = vendor.polling(file.build("jobs"))
    assert (polling.interval if new == "job_poll_interval" else polling.timeout) == 7.0
    file.build("jobs")  # built again for another sync: warned once
    assert warnings == [f"{path}: jobs.{old} is deprecated: rename it to {new} (until then it is read as {new})"]


@pytest.mark.parametrize(("vendor", "old", "new"), RENAMED, ids=lambda p: getattr(p, "kind", p))
def test_an_older_name_and_the_new_one_together_are_a_config_error(tmp_path: Path, vendor: JobVendor, old: str,
                                                                   new: str) -> None:
    path = destinations_file(tmp_path, vendor, **{old: 7, new: 8})
    file = load_destinations(path)
    for check in (file.build, file.destination_type):
        with pytest.raises(ConfigError) as caught:
            check("jobs")
        assert caught.value.exit_code == EXIT_CONFIG == 2
        assert str(caught.value) == (f"{path}: jobs.{old}: {old} is the deprecated name of {new}, and both are "
                                     f"set: keep {new} only")


@pytest.mark.parametrize(("vendor", "old", "new"), RENAMED, ids=lambda p: getattr(p, "kind", p))
def test_a_bad_value_is_named_by_the_key_as_written(vendor: JobVendor, old: str, new: str) -> None:
    kind = load_destination_type(vendor.kind)
    for written in (old, new):
        with pytest.raises(ConfigError, match=f"{written} must be a number of seconds >= 0") as caught:
            kind("jobs", {"type": vendor.kind, **vendor.config, written: -1})
        assert caught.value.location == f"jobs.{written}"


def test_without_a_reporter_the_warning_is_a_python_warning(tmp_path: Path) -> None:
    file = load_destinations(destinations_file(tmp_path, VENDORS[0], poll_timeout=5))
    with pytest.warns(FutureWarning, match="jobs.poll_timeout is deprecated: rename it to job_timeout"):
        destination = file.build("jobs")
    assert VENDORS[0].polling(destination).timeout == 5
