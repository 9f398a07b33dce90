"""bench.engine's SpiffWorkflow peer plays golden case 1's life to its end, in both modes, with
its refusals and its audit chain — so that the figures it prints compare like with like."""
import hashlib
import json

import pytest

pytest.importorskip("SpiffWorkflow")

from bench.engine import lives_steps  # noqa: E402
from bench.peers import spiff_peer  # noqa: E402


@pytest.mark.parametrize("mode", spiff_peer.MODES)
def test_one_life_reaches_its_end(tmp_path, mode):
    steps = lives_steps()
    assert len(steps) == 15
    peer = spiff_peer.Peer(tmp_path / "peer.db", mode)
    workflow_id = None
    for step in steps:
        workflow_id = peer.command(workflow_id, step["do"], step["as"], step["at"], step.get("with") or {})
    assert workflow_id is not None and peer.completed(workflow_id)
    with pytest.raises(spiff_peer.Refused):
        peer.command(workflow_id, "pay", "finance", steps[-1]["at"], {})
    rows = peer.conn.execute("SELECT sequence, at, actor, command, data, previous_hash, hash FROM audit "
                             "ORDER BY sequence").fetchall()
    assert [r[0] for r in rows] == list(range(1, 16))
    previous = ""
    for sequence, at, actor, command, data, previous_hash, digest in rows:
        row = {"sequence": sequence, "at": at, "actor": actor, "command": command, "data": json.loads(data)}
        canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert previous_hash == previous
        assert digest == hashlib.sha256((previous + canonical).encode("utf-8")).hexdigest()
        previous = digest
    peer.close()


def test_a_task_is_refused_to_another_lane(tmp_path):
    steps = lives_steps()
    peer = spiff_peer.Peer(tmp_path / "peer.db", "spec_cached")
    workflow_id = peer.command(None, steps[0]["do"], steps[0]["as"], steps[0]["at"], steps[0]["with"])
    with pytest.raises(spiff_peer.Refused):
        peer.command(workflow_id, "take_for_review", "applicant", steps[1]["at"], {})
    peer.command(workflow_id, "take_for_review", "officer", steps[1]["at"], {})
    peer.close()
