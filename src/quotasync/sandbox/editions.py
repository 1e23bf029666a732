"""Salesforce editions: what `OrganizationType` each reports, whether it has API access, and the
daily allocations that follow from edition and license count."""

from __future__ import annotations

from dataclasses import dataclass

DAILY_API_REQUESTS = "DailyApiRequests"
DAILY_BULK_API_BATCHES = "DailyBulkApiBatches"
DAILY_BULK_V2_QUERY_JOBS = "DailyBulkV2QueryJobs"
DAILY_ASYNC_APEX_EXECUTIONS = "DailyAsyncApexExecutions"
API_TYPES = (
    DAILY_API_REQUESTS,
    DAILY_BULK_API_BATCHES,
    DAILY_BULK_V2_QUERY_JOBS,
    DAILY_ASYNC_APEX_EXECUTIONS,
)


@dataclass(frozen=True)
class Edition:
    key: str
    organization_type: str
    api_access: bool
    base_requests: int
    per_license: int

    def allocations(self, licenses: int, daily_api_requests: int | None = None) -> dict[str, int]:
        requests = self.base_requests + self.per_license * licenses
        return {
            DAILY_API_REQUESTS: daily_api_requests if daily_api_requests is not None else requests,
            DAILY_BULK_API_BATCHES: 15_000,
            DAILY_BULK_V2_QUERY_JOBS: 10_000,
            DAILY_ASYNC_APEX_EXECUTIONS: max(250_000, 200 * licenses),
        }


EDITIONS: dict[str, Edition] = {
    e.key: e
    for e in (
        Edition("enterprise", "Enterprise Edition", True, 100_000, 1_000),
        Edition("unlimited", "Unlimited Edition", True, 100_000, 5_000),
        # Performance Edition reports itself as Unlimited.
        Edition("performance", "Unlimited Edition", True, 100_000, 5_000),
        Edition("developer", "Developer Edition", True, 15_000, 0),
        Edition("professional", "Professional Edition", False, 0, 0),
        Edition("professional-api", "Professional Edition", True, 100_000, 1_000),
        # Group Edition reports itself as Team Edition.
        Edition("group", "Team Edition", False, 0, 0),
        Edition("group-api", "Team Edition", True, 100_000, 1_000),
        Edition("contact-manager", "Contact Manager Edition", False, 0, 0),
    )
}

# The rest of what `/limits` lists: fixed figures, never consumed by the sandbox.
STATIC_LIMITS: dict[str, int] = {
    "DailyBulkV2QueryFileStorageMB": 976_562,
    "DailyStreamingApiEvents": 1_000_000,
    "DailyDeliveredPlatformEvents": 50_000,
    "HourlyPublishedPlatformEvents": 250_000,
    "DataStorageMB": 1_024,
    "FileStorageMB": 10_240,
    "SingleEmail": 5_000,
    "MassEmail": 5_000,
    "PermissionSets": 1_500,
    "ConcurrentAsyncGetReportInstances": 200,
    "HourlyODataCallout": 10_000,
}
