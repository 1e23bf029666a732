from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.outcomes import (
    VALIDATION_CODES,
    Outcome,
    backoff,
    classify_record_error,
    classify_response,
)


def test_the_outcomes_are_the_six_the_writer_acts_on() -> None:
    assert [o.value for o in Outcome] == ["done", "failed", "retry", "pause", "reauth", "no_api"]


# One record's error


def test_a_locked_row_is_retried() -> None:
    assert classify_record_error("UNABLE_TO_LOCK_ROW") is Outcome.RETRY


def test_a_request_limit_on_a_record_pauses_the_workspace() -> None:
    assert classify_record_error("REQUEST_LIMIT_EXCEEDED") is Outcome.PAUSE


@pytest.mark.parametrize("code", sorted(VALIDATION_CODES))
def test_a_validation_error_parks_the_activity_as_failed(code: str) -> None:
    assert classify_record_error(code) is Outcome.FAILED


def test_the_validation_codes_named_in_the_issue_are_known() -> None:
    named = {
        "REQUIRED_FIELD_MISSING",
        "INVALID_FIELD",
        "STRING_TOO_LONG",
        "MALFORMED_ID",
        "INVALID_CROSS_REFERENCE_KEY",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "DUPLICATE_EXTERNAL_ID",
        "ENTITY_IS_DELETED",
    }
    assert named <= VALIDATION_CODES


def test_an_unknown_record_error_is_parked_not_retried_forever() -> None:
    assert classify_record_error("SOMETHING_NEW_IN_WINTER_27") is Outcome.FAILED


def test_record_codes_are_read_regardless_of_case_and_spacing() -> None:
    assert classify_record_error(" unable_to_lock_row\n") is Outcome.RETRY


# A whole request


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (None, None, Outcome.RETRY),
        (500, None, Outcome.RETRY),
        (502, "UNKNOWN_EXCEPTION", Outcome.RETRY),
        (503, "SERVER_UNAVAILABLE", Outcome.RETRY),
        (401, "INVALID_SESSION_ID", Outcome.REAUTH),
        (401, None, Outcome.REAUTH),
        (403, "REQUEST_LIMIT_EXCEEDED", Outcome.PAUSE),
        (403, "API_DISABLED_FOR_ORG", Outcome.NO_API),
        (403, "API_CURRENTLY_DISABLED", Outcome.NO_API),
        (400, "UNABLE_TO_LOCK_ROW", Outcome.RETRY),
        (400, "MALFORMED_QUERY", Outcome.FAILED),
        (400, "JSON_PARSER_ERROR", Outcome.FAILED),
        (403, "INSUFFICIENT_ACCESS", Outcome.FAILED),
        (404, "NOT_FOUND", Outcome.FAILED),
        (408, None, Outcome.RETRY),
        (429, None, Outcome.RETRY),
        (200, None, Outcome.DONE),
        (201, None, Outcome.DONE),
    ],
)
def test_a_request_failure_is_sorted_by_status_and_error_code(
    status: int | None, code: str | None, outcome: Outcome
) -> None:
    assert classify_response(status, code) is outcome


def test_a_timeout_is_retried_whatever_the_code() -> None:
    assert classify_response(None, "REQUEST_LIMIT_EXCEEDED") is Outcome.RETRY


@given(st.integers(500, 599))
def test_every_5xx_is_retried(status: int) -> None:
    assert classify_response(status, None) is Outcome.RETRY


@given(st.integers(400, 499).filter(lambda s: s not in (401, 408, 429)))
def test_every_other_4xx_without_a_known_code_fails(status: int) -> None:
    assert classify_response(status, "SOME_OTHER_ERROR") is Outcome.FAILED


# Backoff


def test_backoff_doubles_from_the_base() -> None:
    assert [backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert backoff(3, base=0.5) == 2.0


def test_backoff_is_capped() -> None:
    assert backoff(10) == 300.0
    assert backoff(4, cap=5.0) == 5.0


def test_backoff_survives_absurd_attempt_counts() -> None:
    assert backoff(100_000) == 300.0


def test_jitter_shortens_the_delay_by_up_to_half() -> None:
    assert backoff(3, jitter=0.5) == 3.0
    assert backoff(9, jitter=0.0) == 256.0
    assert backoff(10, jitter=0.999) == pytest.approx(150.15)


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_count_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff(attempt)


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 2.0])
def test_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        backoff(1, jitter=jitter)


def test_a_negative_base_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        backoff(1, base=-1.0)


@given(
    st.integers(1, 5000),
    st.floats(0, 100),
    st.floats(0, 10_000),
    st.floats(0, 1, exclude_max=True),
)
def test_backoff_stays_between_half_and_all_of_the_capped_delay(
    attempt: int, base: float, cap: float, jitter: float
) -> None:
    delay = backoff(attempt, base=base, cap=cap, jitter=jitter)
    full = backoff(attempt, base=base, cap=cap)
    assert full / 2 <= delay <= full <= cap


@given(st.integers(1, 5000), st.floats(0, 100), st.floats(0, 10_000))
def test_backoff_never_shrinks_as_attempts_grow(attempt: int, base: float, cap: float) -> None:
    assert backoff(attempt, base=base, cap=cap) <= backoff(attempt + 1, base=base, cap=cap)
