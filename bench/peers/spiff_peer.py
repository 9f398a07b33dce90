"""The peer of `bench.engine`'s command path: the same dossier lives (golden case 1, the same 15
commands a dossier with the same data) run by SpiffWorkflow 3.2.0, the BPMN engine a Python team
could pick, on the same durability as Usine's engine (SQLite, WAL, synchronous=FULL).

A command, as an application built on Spiff would write it: BEGIN IMMEDIATE; read the workflow's
serialized state, its version and the audit chain's tip; restore the workflow; take its one READY
user task, refuse it unless it is the command asked and the actor's role is its lane; put the
command's data on it, run it and the engine steps (gateways evaluated by Spiff's Python script
engine); serialize; UPDATE … WHERE version (optimistic concurrency, as Usine's); append one audit
row chained by SHA-256 (previous hash + canonical JSON of the row); COMMIT.

Two ways to keep the workflow, both measured:

- `documented`: `BpmnWorkflowSerializer.serialize_json` / `deserialize_json`, as Spiff's
  documentation shows — the spec travels with every workflow and is restored at every load;
- `spec_cached`: the spec parsed once and kept in memory; only the workflow's state (tasks, data)
  is serialized and stored, through a converter registered in the serializer's configuration (the
  extension point Spiff documents). The cheapest honest use of Spiff.

SpiffWorkflow is a bench-only dependency (`pip install -e '.[bench]'`); without it `available()`
is False and `bench.engine` says so.

    python -m bench.peers.spiff_peer [--dossiers 100] [--mode spec_cached|documented]
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

BPMN = Path(__file__).with_name("dossier.bpmn")
PROCESS_ID = "dossier"
MODES = ("documented", "spec_cached")


def available() -> bool:
    try:
        import SpiffWorkflow  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str:
    from SpiffWorkflow.version import __version__

    return __version__


class Refused(Exception):
    pass


def _parse():
    from SpiffWorkflow.bpmn.parser import BpmnParser

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    return parser.get_spec(PROCESS_ID), parser.get_subprocess_specs(PROCESS_ID)


def _serializers(spec, subprocess_specs):
    """(documented serializer, spec-cached serializer)."""
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.serializer import DEFAULT_CONFIG, BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter

    class StateOnlyConverter(BpmnWorkflowConverter):
        # The workflow's own state without its spec; the spec, parsed once, is handed back on
        # restore (the registry returns an object it does not know unchanged).
        def to_dict(self, workflow):
            dct = WorkflowConverter.to_dict(self, workflow)
            dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
            dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
            return dct

        def from_dict(self, dct):
            dct["spec"] = spec
            dct["subprocess_specs"] = {}
            workflow = super().from_dict(dct)
            workflow.subprocess_specs = subprocess_specs
            return workflow

    config = dict(DEFAULT_CONFIG)
    config[BpmnWorkflow] = StateOnlyConverter
    return BpmnWorkflowSerializer(), BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript("""
        CREATE TABLE IF NOT EXISTS workflow (
            id INTEGER PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL, tip TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS audit (
            workflow_id INTEGER NOT NULL REFERENCES workflow(id), sequence INTEGER NOT NULL,
            at TEXT NOT NULL, actor TEXT NOT NULL, command TEXT NOT NULL, data TEXT NOT NULL,
            previous_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (workflow_id, sequence));
    """)
    return conn


def _chain(previous: str, row: dict) -> str:
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((previous + canonical).encode("utf-8")).hexdigest()


class Peer:
    def __init__(self, path: Path, mode: str):
        from SpiffWorkflow import TaskState
        from SpiffWorkflow.bpmn import BpmnWorkflow

        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.ready = TaskState.READY
        self.workflow_class = BpmnWorkflow
        # Parsed once in both modes: a new dossier starts from this spec (the documented example
        # app also parses, then stores, its specs ahead of any workflow).
        self.spec, self.subprocess_specs = _parse()
        documented, cached = _serializers(self.spec, self.subprocess_specs)
        self.serializer = documented if mode == "documented" else cached
        self.conn = _connect(path)

    def _dump(self, workflow) -> str:
        if self.mode == "documented":
            return self.serializer.serialize_json(workflow)
        return json.dumps(self.serializer.to_dict(workflow))

    def _load(self, state: str):
        if self.mode == "documented":
            return self.serializer.deserialize_json(state)
        return self.serializer.from_dict(json.loads(state))

    def command(self, workflow_id: int | None, command: str, role: str, at: str, data: dict) -> int:
        """One command, one transaction; returns the workflow's id."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if workflow_id is None:
                workflow = self.workflow_class(self.spec, self.subprocess_specs)
                workflow.do_engine_steps()
                version, tip, sequence = 0, "", 0
            else:
                row = conn.execute("SELECT state, version, tip FROM workflow WHERE id = ?", (workflow_id,)).fetchone()
                workflow = self._load(row[0])
                version, tip = row[1], row[2]
                sequence = version
            ready = workflow.get_tasks(state=self.ready, manual=True)
            if len(ready) != 1 or ready[0].task_spec.bpmn_name != command or ready[0].task_spec.lane != role:
                raise Refused(command)
            task = ready[0]
            task.set_data(**copy.deepcopy(data))
            task.run()
            workflow.do_engine_steps()
            state = self._dump(workflow)
            event = {"sequence": sequence + 1, "at": at, "actor": role, "command": command, "data": data}
            digest = _chain(tip, event)
            if workflow_id is None:
                created = conn.execute("INSERT INTO workflow (version, state, tip) VALUES (1, ?, ?)",
                                       (state, digest)).lastrowid
                assert created is not None
                workflow_id = created
            else:
                updated = conn.execute("UPDATE workflow SET state = ?, version = version + 1, tip = ? "
                                       "WHERE id = ? AND version = ?", (state, digest, workflow_id, version)).rowcount
                if updated != 1:
                    raise Refused("stale version")
            conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (workflow_id, sequence + 1, at, role, command, json.dumps(data, sort_keys=True), tip, digest))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return workflow_id

    def completed(self, workflow_id: int) -> bool:
        row = self.conn.execute("SELECT state FROM workflow WHERE id = ?", (workflow_id,)).fetchone()
        return self._load(row[0]).completed

    def close(self) -> None:
        self.conn.close()


def play_lives(folder: Path, dossiers: int, steps: list, mode: str) -> tuple[int, float, float]:
    """The lives of `bench.engine` (its steps, one company a dossier) through the peer:
    (commands, seconds, CPU seconds of this process)."""
    from services.demo import luhn_siren

    folder.mkdir(parents=True, exist_ok=True)
    peer = Peer(folder / f"spiff-{mode}.db", mode)
    rng = random.Random(1)
    count = 0
    last = None
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(dossiers):
        workflow_id = None
        lives = copy.deepcopy(steps)
        lives[0]["with"]["company"]["siren"] = luhn_siren(rng)
        for step in lives:
            workflow_id = peer.command(workflow_id, step["do"], step["as"], step["at"], step.get("with") or {})
            count += 1
        last = workflow_id
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    # Outside the timed region: the last life did reach its end event.
    if last is not None and not peer.completed(last):
        raise AssertionError("the peer's dossier did not reach its end")
    peer.close()
    return count, elapsed, cpu


def main() -> None:
    from bench.engine import lives_steps

    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=100)
    parser.add_argument("--mode", choices=MODES, default="spec_cached")
    args = parser.parse_args()
    if not available():
        raise SystemExit("SpiffWorkflow n'est pas installé : pip install -e '.[bench]'")
    Path("var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spiff-", dir="var") as folder:
        count, elapsed, cpu = play_lives(Path(folder), args.dossiers, lives_steps(), args.mode)
    print(json.dumps({"spiffworkflow": version(), "mode": args.mode, "commands": count,
                      "commands_per_s": round(count / elapsed, 1), "cpu_ms_per_command": round(cpu / count * 1000, 2)}))


if __name__ == "__main__":
    main()
