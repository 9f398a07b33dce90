"""Time the workspace's pages on a demo database: `python -m web.bench [--dossiers 240] [--runs 20]`.

Prints, for each page, the median and the slowest server time of `runs` GETs (in-process HTTP
client, SQLite file database, one signed-in officer). Figures only: nothing is asserted."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=240)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    import re
    from datetime import datetime

    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from db import models as m
    from db.engine import create_schema, make_engine
    from rules.calendar import PARIS
    from services.clock import FrozenClock
    from services.uow import unit_of_work_factory
    from services.users import DEMO_PASSWORD
    from web.app import create_standalone_app
    from web.devserver import prepare_demo

    folder = Path(tempfile.mkdtemp(prefix="usine-web-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    factory = unit_of_work_factory(url, storage_dir=str(folder / "documents"))
    started = time.perf_counter()
    prepare_demo(factory, dossiers=args.dossiers, seed=1)
    print(f"demo of {args.dossiers} dossiers loaded in {time.perf_counter() - started:.1f} s")
    app = create_standalone_app(uow_factory=factory, clock=FrozenClock(datetime(2022, 6, 15, 9, tzinfo=PARIS)),
                                secret_key="bench-" + "0" * 60)
    client = TestClient(app)
    page = client.get("/ui/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/ui/login", data={"username": "agent.occitanie", "password": DEMO_PASSWORD, "csrf_token": token})
    with factory() as uow:
        busiest = uow.session.scalar(select(m.Event.dossier_id).group_by(m.Event.dossier_id)
                                     .order_by(func.count().desc()).limit(1))
        claim = uow.session.scalar(select(func.max(m.PaymentClaim.id)))
        session = uow.session.scalar(select(m.CouncilSession.code).limit(1))
    pages = ["/ui/dossiers", "/ui/dossiers?closed=1", f"/ui/dossiers/{busiest}", "/ui/seances",
             f"/ui/seances/{session}", "/ui/paiements?status=paid", f"/ui/paiements/{claim}", "/ui/tableau-de-bord",
             "/ui/cycle-de-vie"]
    print(f"{'page':<34} {'median ms':>10} {'max ms':>8}")
    for path in pages:
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        print(f"{path:<34} {statistics.median(times):>10.1f} {max(times):>8.1f}")


if __name__ == "__main__":
    main()
