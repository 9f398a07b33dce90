"""An officer's reads with and without a flood of wrong sign-ins, side by side in one run.

    .venv/bin/python -m bench.signin_flood                         # SQLite file, 50 flooding clients
    .venv/bin/python -m bench.signin_flood --postgres postgresql+psycopg://postgres@127.0.0.1:5432/usine_bench
    .venv/bin/python -m bench.signin_flood --concurrency 40 --nice 0   # no bound: what the flood did before

1. prepares a database (as `bench.api_load` does: a SQLite file in a temporary folder, or a
   dedicated PostgreSQL database, dropped and re-created), an officer and a few dossiers;
2. starts the API on 127.0.0.1 (`python -m api.server`, one worker, a free port), its argon2
   parameters the production ones, the per-address limit lifted (`USINE_SIGNIN_PER_ADDRESS`:
   every client here is 127.0.0.1, a botnet has many addresses — what is left to hold is the
   bound on password checks; `--per-address` to keep one);
3. alternates quiet and flooded phases (`--rounds`, each phase `--seconds` long): in both, the
   officer reads `GET /dossiers/{id}` from `--readers` connections, one request after the other;
   in the flooded phases `--flooders` more clients post `/auth/token` with wrong passwords for
   names of their own (no account lock stops them), as fast as they are answered;
4. prints, per kind of phase, the officer's read count and p50/p99/max latency, and the flood's
   answers by status and rule, and the password checks the API did per second.

Bounded: rounds × 2 × seconds of driving (default 2 × 2 × 6 s), a 10 s timeout a request,
loopback only."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.api_load import LeanClient, free_port, prepare_database, seed, start_server, wait_healthy

OFFICER = "bench.agent0"
PASSWORD = "banc-de-charge-2021"


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def drive(base: str, dossiers: list[int], *, rounds: int, seconds: float, readers: int, flooders: int) -> dict:
    async with LeanClient(base) as c:
        r = await c.post("/auth/token", data={"username": OFFICER, "password": PASSWORD})
        r.raise_for_status()
        token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    latencies: dict[str, list[float]] = {"quiet": [], "flood": []}
    answers: Counter = Counter()
    errors: Counter = Counter()
    checked = {"flood_seconds": 0.0, "checks": 0}

    async def reader(n: int, phase: str, until: float) -> None:
        async with LeanClient(base, timeout=10) as c:
            i = n
            while time.monotonic() < until:
                start = time.perf_counter()
                try:
                    resp = await c.get(f"/dossiers/{dossiers[i % len(dossiers)]}", headers=token)
                except (OSError, asyncio.TimeoutError, RuntimeError) as exc:
                    errors[f"read {type(exc).__name__}"] += 1
                    continue
                if resp.status_code != 200:
                    errors[f"read {resp.status_code}"] += 1
                    continue
                latencies[phase].append(1000 * (time.perf_counter() - start))
                i += readers

    async def flooder(n: int, until: float) -> None:
        async with LeanClient(base, timeout=10) as c:
            k = 0
            while time.monotonic() < until:
                try:
                    resp = await c.post("/auth/token", data={"username": f"intrus.{n}.{k}", "password": "pas le bon mot de passe"})
                except (OSError, asyncio.TimeoutError, RuntimeError) as exc:
                    answers[f"error {type(exc).__name__}"] += 1
                    c._idle.clear()
                    continue
                rule = resp.json().get("rule") if resp.content else None
                answers[f"{resp.status_code} {rule}"] += 1
                if resp.status_code == 400:
                    checked["checks"] += 1
                k += 1

    for _ in range(rounds):
        for phase in ("quiet", "flood"):
            until = time.monotonic() + seconds
            tasks = [reader(n, phase, until) for n in range(readers)]
            if phase == "flood":
                tasks += [flooder(n, until) for n in range(flooders)]
            started = time.monotonic()
            await asyncio.gather(*tasks)
            if phase == "flood":
                checked["flood_seconds"] += time.monotonic() - started

    def summary(values: list[float]) -> dict:
        return {"reads": len(values), "p50_ms": round(percentile(values, 50), 1), "p99_ms": round(percentile(values, 99), 1),
                "max_ms": round(max(values), 1) if values else None}

    return {"quiet": summary(latencies["quiet"]), "flood": summary(latencies["flood"]),
            "flood_answers": dict(answers.most_common()), "read_errors": dict(errors),
            "password_checks_per_second": round(checked["checks"] / checked["flood_seconds"], 1)
            if checked["flood_seconds"] else 0.0}


def run(args) -> dict:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="usine-bench-signin-") as tmp:
        folder = Path(tmp)
        url = prepare_database(args.postgres, folder)
        ids = seed(url, folder, args.dossiers, 1)
        os.environ.update({
            "USINE_SIGNIN_PER_ADDRESS": args.per_address or "1000000/minute",
            "USINE_SIGNIN_CONCURRENCY": str(args.concurrency), "USINE_SIGNIN_NICE": str(args.nice),
            "USINE_SIGNIN_MAX_WAITING": str(args.max_waiting), "USINE_WEB": "0"})
        port = args.port or free_port()
        server = start_server(url, folder, port, 1)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, server)
            result = asyncio.run(asyncio.wait_for(
                drive(base, ids, rounds=args.rounds, seconds=args.seconds, readers=args.readers, flooders=args.flooders),
                timeout=args.rounds * 2 * args.seconds + 60))
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except Exception:
                server.kill()
    result.update(database="postgresql" if args.postgres else "sqlite", flooders=args.flooders, readers=args.readers,
                  signin_concurrency=args.concurrency, signin_nice=args.nice, signin_max_waiting=args.max_waiting,
                  per_address=args.per_address or "levée", rounds=args.rounds, seconds_per_phase=args.seconds,
                  cpus=os.cpu_count(), load_average_before=round(load_before, 2))
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--postgres", default=None, help="URL d'une base PostgreSQL dédiée (supprimée puis recréée)")
    p.add_argument("--dossiers", type=int, default=20)
    p.add_argument("--flooders", type=int, default=50)
    p.add_argument("--readers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--concurrency", type=int, default=2, help="USINE_SIGNIN_CONCURRENCY du serveur")
    p.add_argument("--max-waiting", type=int, default=64, help="USINE_SIGNIN_MAX_WAITING du serveur")
    p.add_argument("--nice", type=int, default=10, help="USINE_SIGNIN_NICE du serveur")
    p.add_argument("--port", type=int, default=None, help="port de l'API (défaut : un port libre)")
    p.add_argument("--per-address", default=None, help="USINE_SIGNIN_PER_ADDRESS (défaut : levée)")
    args = p.parse_args(argv)
    if not (1 <= args.rounds <= 10 and 1 <= args.seconds <= 60 and 0 <= args.flooders <= 200):
        raise SystemExit("--rounds 1–10, --seconds 1–60, --flooders 0–200")
    result = run(args)
    q, f = result["quiet"], result["flood"]
    print(f"lectures d'un·e chargé·e de mission ({result['database']}, {result['readers']} connexions) :")
    print(f"  sans inondation : {q['reads']} lectures, p50 {q['p50_ms']} ms, p99 {q['p99_ms']} ms, max {q['max_ms']} ms")
    print(f"  avec {result['flooders']} clients qui inondent /auth/token : {f['reads']} lectures, p50 {f['p50_ms']} ms, "
          f"p99 {f['p99_ms']} ms, max {f['max_ms']} ms")
    print(f"  vérifications de mot de passe : {result['password_checks_per_second']} /s ; réponses à l'inondation : "
          + ", ".join(f"{k} × {v}" for k, v in result["flood_answers"].items()))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
