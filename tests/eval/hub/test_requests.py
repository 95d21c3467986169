"""The request record, its schema check, the queue policy and the scorer's choice of the next request (no Hub)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from entity_unlearn.eval.hub import Lease, Policy, Request, RequestError, next_request, parse_request
from entity_unlearn.eval.hub.requests import broken_record, is_reported_broken, iso, utc_now

NOW = utc_now()


def req(model: str, minutes_ago: int, **kw) -> Request:
    base = {
        "model": model,
        "commit": (model.encode().hex() * 40)[:40],
        "revision": "main",
        "release": "lab/entity-unlearn",
        "release_revision": "v1.0.0",
        "release_commit": "a" * 40,
        "forget": "forget05",
        "submitter": "someone",
        "submitted_at": iso(NOW - timedelta(minutes=minutes_ago)),
    }
    return Request(**{**base, **kw})


def test_a_request_round_trips_through_its_file_and_names_its_paths():
    r = req("lab/x", 3, reference_model="lab/ref", reference_commit="b" * 40, lease=Lease("me", iso(NOW)), warnings=("w",), status="running")
    assert parse_request(r.to_json(), "f.json") == r
    assert r.path == f"requests/lab/x/{r.commit}_v1.0.0_forget05.json"
    assert r.results_prefix == f"lab/x/{r.commit}/v1.0.0_forget05"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"commit": "main"}, "field commit: 'main' does not match"),
        ({"status": "done"}, "field status: 'done' is not one of"),
        ({"forget": "retain90"}, "field forget: 'retain90' does not match"),
        ({"model": "no-org"}, "field model: 'no-org' does not match"),
        ({"extra": 1}, "field (the record): Additional properties are not allowed ('extra' was unexpected)"),
        ({"lease": {"holder": "me"}}, "field lease: {'holder': 'me'} is not valid"),
    ],
)
def test_a_malformed_request_gets_one_message_naming_the_file_and_field(change, message):
    data = {**json.loads(req("lab/x", 1).to_json()), **change}
    with pytest.raises(RequestError) as err:
        parse_request(json.dumps(data).encode(), "requests/lab/x/f.json")
    assert str(err.value).startswith("requests/lab/x/f.json: ") and message in str(err.value), str(err.value)


def test_invalid_json_is_reported_once_and_its_text_kept():
    with pytest.raises(RequestError, match=r"q.json: not valid JSON \(Expecting property name"):
        parse_request(b"{oops", "q.json")
    record = broken_record("q.json: not valid JSON", b"{oops")
    assert is_reported_broken(record) and json.loads(record)["raw"] == "{oops" and not is_reported_broken(req("lab/x", 1).to_json())


def test_policy_defaults_to_nothing_unsafe_and_rejects_unknown_keys():
    assert Policy.parse(None, "p") == Policy(False, False)
    assert Policy.parse(b'{"allow_pickle": true}', "p") == Policy(True, False)
    with pytest.raises(RequestError, match="q/policy.json: only the boolean keys"):
        Policy.parse(b'{"allow_everything": true}', "q/policy.json")


def test_next_request_resumes_its_own_lease_then_references_then_bases_then_oldest_first():
    ref = req("lab/ref", 1, role="reference")
    base = req("lab/base", 2, reference_model="lab/ref", reference_commit=ref.commit)
    child = req("lab/child", 9, base_model="lab/base", base_commit=base.commit, reference_model="lab/ref", reference_commit=ref.commit)
    other = req("lab/other", 8)
    queue = [child, other, base, ref]
    assert next_request(queue, "me", NOW) == ref  # references first, though submitted last
    assert next_request([child, other, base], "me", NOW) == base  # a base before the requests built on it
    assert next_request([other, child], "me", NOW) == child  # then the oldest submission first (9 minutes ago before 8)
    mine = req("lab/mine", 0, status="running", lease=Lease("me", iso(NOW + timedelta(hours=1))))
    assert next_request([*queue, mine], "me", NOW) == mine  # a restarted scorer resumes its own request first


def test_a_lease_held_by_another_scorer_is_left_alone_until_it_expires():
    held = req("lab/a", 5, status="running", lease=Lease("other", iso(NOW + timedelta(minutes=5))))
    waiting = req("lab/b", 1, reference_model="lab/a", reference_commit=held.commit)
    assert next_request([held], "me", NOW) is None
    assert next_request([held, waiting], "me", NOW) is None  # its reference is being scored elsewhere: wait for it
    expired = held.evolve(lease=Lease("other", iso(NOW - timedelta(seconds=1))))
    assert next_request([expired, waiting], "me", NOW) == expired  # the crashed scorer's request is retried
    assert next_request([held.evolve(status="finished", lease=None), waiting], "me", NOW) == waiting
    assert next_request([held.evolve(status="failed", lease=None)], "me", NOW) is None
