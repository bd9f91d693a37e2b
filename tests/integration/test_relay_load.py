"""The real relay (``driftline webhook`` under uvicorn) under a concurrent mixed load: no 5xx, every accepted
call is exactly one event stored by a real Prefect server, and ``/metrics`` counts what was sent, every
refused call under its reason."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest

from benchmarks.relay_load import relay_stack, scrape_metrics, send_all, signed_call, wait_for_events

pytestmark = pytest.mark.slow

SECRET = "load-test-secret-9f2c-0d8e3a71b6c45f29"
METRICS_TOKEN = "scrape-token-41d7"
BURST = 230  # the rate limit: 230 calls per 10 h for the one source, so exactly BURST valid calls get through
VALID = 240
FORGED, STALE, UNKNOWN, BAD_PAYLOAD, TOO_LARGE, REPLAYED = 20, 10, 10, 5, 5, 10


def test_relay_under_concurrent_mixed_load(tmp_path, prefect_api):
    env = {"DRIFTLINE_WEBHOOK_RATE_LIMIT": f"{BURST}/36000", "DRIFTLINE_METRICS_TOKEN": METRICS_TOKEN}
    with relay_stack(tmp_path, SECRET, api_url=prefect_api, extra_env=env) as relay:
        pipeline = relay.pipeline
        now = int(time.time())
        calls = [signed_call(SECRET, pipeline) for _ in range(VALID)]
        calls += [signed_call("forged-secret", pipeline, kind="forged") for _ in range(FORGED)]
        calls += [signed_call(SECRET, pipeline, kind="stale", timestamp=now - 3600) for _ in range(STALE)]
        calls += [signed_call(SECRET, "no-such-model", kind="unknown") for _ in range(UNKNOWN)]
        calls += [signed_call(SECRET, pipeline, kind="bad_payload", drift_share=7) for _ in range(BAD_PAYLOAD)]
        calls += [signed_call(SECRET, pipeline, kind="too_large", padding="x" * 70_000) for _ in range(TOO_LARGE)]
        random.Random(0).shuffle(calls)
        answers, _ = send_all(relay.url, calls, concurrency=24)

        accepted = [a for a in answers if a.status == 202]
        replays = [a.call for a in accepted[:REPLAYED]]
        replayed, _ = send_all(
            relay.url, [type(c)("replay", c.body, c.headers, c.token) for c in replays], concurrency=8
        )
        answers += replayed

        by_kind: dict[str, Counter] = {}
        for answer in answers:
            by_kind.setdefault(answer.call.kind, Counter())[answer.status] += 1
        assert by_kind == {
            "valid": Counter({202: BURST, 429: VALID - BURST}),
            "forged": Counter({401: FORGED}),
            "stale": Counter({401: STALE}),
            "unknown": Counter({404: UNKNOWN}),
            "bad_payload": Counter({422: BAD_PAYLOAD}),
            "too_large": Counter({413: TOO_LARGE}),
            "replay": Counter({401: REPLAYED}),
        }, by_kind
        assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status == 429)

        # Every accepted call is exactly one stored event: the same ids, the same tokens, nothing else.
        events = wait_for_events(relay.api_url, pipeline, expected=BURST)
        assert sorted(e["id"] for e in events) == sorted(a.json["event_id"] for a in accepted)
        assert sorted(e["payload"]["reason"] for e in events) == sorted(f"load {a.call.token}" for a in accepted)
        assert all(e["payload"]["source"] == "webhook" for e in events)

        with pytest.raises(Exception, match="401"):
            scrape_metrics(relay.url)  # the token is configured: no anonymous scrape
        metrics = scrape_metrics(relay.url, METRICS_TOKEN)
        log = relay.log.read_text()

    assert metrics[("driftline_relay_events_emitted_total", ())] == BURST
    rejections = {
        dict(labels)["reason"]: v for (n, labels), v in metrics.items() if n == "driftline_relay_rejections_total"
    }
    assert rejections == {
        "bad_signature": FORGED,
        "stale": STALE,
        "replay": REPLAYED,
        "too_large": TOO_LARGE,
        "unknown_source": UNKNOWN,
        "rate_limited": VALID - BURST,
        "bad_payload": BAD_PAYLOAD,
        "unsupported_media_type": 0,
        "slow_body": 0,
    }
    drift_codes = {
        dict(labels)["code"]: v
        for (n, labels), v in metrics.items()
        if n == "driftline_relay_requests_total" and dict(labels)["path"] == "/v1/drift"
    }
    assert drift_codes == {
        "202": BURST,
        "401": FORGED + STALE + REPLAYED,
        "404": UNKNOWN,
        "413": TOO_LARGE,
        "422": BAD_PAYLOAD,
        "429": VALID - BURST,
    }
    assert metrics[("driftline_relay_request_seconds_count", ())] == len(answers)
    assert all(v == 0 for (n, _), v in metrics.items() if n == "driftline_relay_failures_total")
    assert metrics[("driftline_relay_outbox_dead", ())] == 0
    assert "Traceback" not in log, log[-3000:]
    print(json.dumps({"sent": len(answers), "statuses": dict(Counter(a.status for a in answers))}))
