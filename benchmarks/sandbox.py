"""How fast is the sandbox org? It must never be what limits the benchmarks of quotasync itself.

Runs a real `quotasync sandbox` process and drives it over HTTPS with requests, as a client would:
- baseline: `GET /services/data/` (no session, no quota, the smallest answer the org gives);
- a simple GET of one record by id;
- a 2,000-row query page (with a parent field);
- a 200-record sObject Collections upsert by external id;
- a Bulk API 2.0 upsert job of 50,000 rows, from job creation to JobComplete.

Usage: python -m benchmarks.sandbox [--seconds 3] [--clients 2] [--bulk-rows 50000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

from benchmarks import report
from tests.sandbox_process import SandboxOrg, start_sandbox

TARGET_RECORDS_PER_SECOND = 10_000


def timed_loop(
    make_session: Callable[[], requests.Session],
    step: Callable[[requests.Session, int], object],
    seconds: float,
    clients: int,
) -> tuple[int, float]:
    """Run `step` from `clients` threads for `seconds`; returns (requests done, elapsed)."""
    done = [0] * clients
    stop = time.perf_counter() + seconds
    start = time.perf_counter()

    def worker(slot: int) -> None:
        session = make_session()
        i = 0
        while time.perf_counter() < stop:
            step(session, slot * 1_000_000 + i)
            i += 1
        done[slot] = i

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - start


def check(response: requests.Response, status: int = 200) -> requests.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.url}: {response.status_code} {response.text[:300]}"
        )
    return response


def run(seconds: float, clients: int, bulk_rows: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        org = start_sandbox(
            Path(state), "--seed", "2100", "--daily-api-requests", "50000000", process=True
        )
        try:
            measure(org, seconds, clients, bulk_rows)
        finally:
            org.stop()


def measure(org: SandboxOrg, seconds: float, clients: int, bulk_rows: int) -> None:
    token = org.token()["access_token"]
    base = f"{org.instance_url}/services/data/v62.0"
    auth = {"Authorization": f"Bearer {token}"}

    def session() -> requests.Session:
        s = org.http()
        s.headers.update(auth)
        return s

    contact_id = check(
        session().get(f"{base}/query", params={"q": "SELECT Id FROM Contact LIMIT 1"})
    ).json()["records"][0]["Id"]
    page_query = (
        "SELECT Id, FirstName, LastName, Email, Title, Account.Name FROM Contact LIMIT 2000"
    )
    rows = []

    def row(
        name: str, n: int, elapsed: float, records_per_request: int, baseline: float | None
    ) -> None:
        rps = n / elapsed
        rows.append(
            [
                name,
                f"{n:,}",
                f"{rps:,.0f}",
                f"{rps * records_per_request:,.0f}" if records_per_request else "-",
                f"{rps / baseline:.2f}x" if baseline else "1.00x",
            ]
        )

    n, t = timed_loop(
        session, lambda s, i: check(s.get(f"{org.instance_url}/services/data/")).content, seconds, 1
    )
    baseline_1 = n / t
    row("baseline: GET /services/data/ (1 client)", n, t, 0, None)
    n, t = timed_loop(
        session,
        lambda s, i: check(s.get(f"{base}/sobjects/Contact/{contact_id}")).content,
        seconds,
        1,
    )
    row("GET one record (1 client)", n, t, 0, baseline_1)
    n, t = timed_loop(
        session,
        lambda s, i: check(s.get(f"{base}/sobjects/Contact/{contact_id}")).content,
        seconds,
        clients,
    )
    row(f"GET one record ({clients} clients)", n, t, 0, baseline_1)

    def page(s: requests.Session, i: int) -> None:
        body = check(s.get(f"{base}/query", params={"q": page_query})).json()
        assert len(body["records"]) == 2000

    n, t = timed_loop(session, page, seconds, clients)
    row(f"query page of 2,000 rows ({clients} clients)", n, t, 2000, baseline_1)

    run_id = uuid.uuid4().hex[:8]
    bodies = [
        json.dumps(
            {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Task"},
                        "QS_Activity_Id__c": f"{run_id}-{b}-{j}",
                        "Subject": "Email: Following up on our call",
                        "Status": "Completed",
                        "TaskSubtype": "Email",
                        "ActivityDate": "2026-11-28",
                        "Description": "Hi there,\n\nthanks for the time today. " * 8,
                    }
                    for j in range(200)
                ],
            }
        ).encode()
        for b in range(64)
    ]
    upsert_url = f"{base}/composite/sobjects/Task/QS_Activity_Id__c"
    json_headers = {"Content-Type": "application/json"}

    def upsert(s: requests.Session, i: int) -> None:
        results = check(
            s.patch(upsert_url, data=bodies[i % len(bodies)], headers=json_headers)
        ).json()
        assert len(results) == 200 and results[0]["success"], results[0]

    n, t = timed_loop(session, upsert, seconds, clients)
    upsert_records = n * 200 / t
    row(f"collections upsert of 200 ({clients} clients)", n, t, 200, baseline_1)

    csv_lines = ["QS_Activity_Id__c,Subject,Status,ActivityDate"]
    csv_lines += [
        f"bulk-{run_id}-{i},Email: Bulk hello {i},Completed,2026-11-28" for i in range(bulk_rows)
    ]
    csv_body = ("\n".join(csv_lines) + "\n").encode()
    s = session()
    start = time.perf_counter()
    job = check(
        s.post(
            f"{base}/jobs/ingest",
            json={
                "object": "Task",
                "operation": "upsert",
                "externalIdFieldName": "QS_Activity_Id__c",
                "contentType": "CSV",
                "lineEnding": "LF",
            },
        )
    ).json()
    check(
        s.put(
            f"{base}/jobs/ingest/{job['id']}/batches",
            data=csv_body,
            headers={"Content-Type": "text/csv"},
        ),
        201,
    )
    check(s.patch(f"{base}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}))
    polls = 0
    while True:
        info = check(s.get(f"{base}/jobs/ingest/{job['id']}")).json()
        polls += 1
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            break
        time.sleep(0.05)
    bulk_seconds = time.perf_counter() - start
    if (
        info["state"] != "JobComplete"
        or info["numberRecordsProcessed"] != bulk_rows
        or info["numberRecordsFailed"]
    ):
        raise RuntimeError(f"bulk job did not complete cleanly: {info}")
    bulk_rate = bulk_rows / bulk_seconds
    rows.append(
        [
            f"Bulk 2.0 upsert job of {bulk_rows:,} rows",
            "1 job",
            f"{bulk_seconds:.2f} s",
            f"{bulk_rate:,.0f}",
            "-",
        ]
    )

    columns = ["workload", "requests", "requests/s", "records/s", "vs baseline"]
    report.show("Sandbox org throughput", columns, rows)
    verdict = "meets" if upsert_records >= TARGET_RECORDS_PER_SECOND else "MISSES"
    print(
        f"collections upsert: {upsert_records:,.0f} records/s, {verdict} the target of {TARGET_RECORDS_PER_SECOND:,}"
    )
    report.write_section(
        "sandbox",
        "\n\n".join(
            [
                "## Sandbox org (`python -m benchmarks.sandbox`)",
                "A real `quotasync sandbox` process (seeded with 2,100 of each record type) driven over "
                "HTTPS with `requests` on the same machine: client and server share its cores, so these are "
                "lower bounds for the server. `vs baseline` compares requests per second with the "
                "smallest answer the org gives (`GET /services/data/`, one client).",
                report.markdown_table(columns, rows),
                f"Target for the collections upsert: >= {TARGET_RECORDS_PER_SECOND:,} records/s; measured "
                f"{upsert_records:,.0f} records/s ({verdict}). The Bulk job was polled every 50 ms "
                f"({polls} polls).",
            ]
        ),
    )
    report.save_results(
        "sandbox",
        {
            "upsert_records_per_second": round(upsert_records),
            "target_records_per_second": TARGET_RECORDS_PER_SECOND,
            "meets": upsert_records >= TARGET_RECORDS_PER_SECOND,
            "bulk_records_per_second": round(bulk_rate),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each timed loop")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client threads")
    parser.add_argument("--bulk-rows", type=int, default=50_000)
    args = parser.parse_args()
    run(args.seconds, args.clients, args.bulk_rows)


if __name__ == "__main__":
    main()
