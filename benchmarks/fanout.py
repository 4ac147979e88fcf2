#!/usr/bin/env python3
"""Figure 6 helper: N Socket.io clients in one asyncio process, all watching one import session.

A minimal Engine.IO v4 / Socket.IO v5 client over websocket (the ``websockets`` library; python-socketio's
AsyncClient would need aiohttp, which the project keeps out): ``0{open}`` -> send ``40{auth}`` -> ``40{sid}``;
``42<id>["joinSession", {...}]`` -> ack ``43<id>[...]``; events arrive as ``42["importProgress", {...}]``; a
server ping ``2`` is answered with ``3``.

    python benchmarks/fanout.py URL[,URL…] TOKEN SESSION_ID N OUT.json

Prints ``ready`` on stdout once every client has joined (the first one reserves the session id, the others
join the reservation), then records the arrival time of every importProgress/importCancelled frame per client
until every client has seen the end (``complete``/``error``/``importCancelled``) or 120 s pass, and writes
``{"clients": N, "joined": n, "events": {raw_frame: [arrival times...]}, "failures": [...]}`` to OUT.json.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import defaultdict

from websockets.asyncio.client import connect

END_MARKERS = ('"type":"complete"', '"type": "complete"', '"type":"error"', '"type": "error"', "importCancelled")


def _text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else frame.decode("utf-8", "replace")


async def client(i: int, url: str, token: str, session: str, joined: asyncio.Event, all_joined: asyncio.Event,
                 counter: list[int], first_done: asyncio.Event, events: dict[str, list[float]],
                 failures: list[str], done: list[int], gate: asyncio.Semaphore) -> None:
    urls = url.split(",")  # several workers: the clients are spread over them round-robin
    ws_url = urls[i % len(urls)].replace("http://", "ws://", 1).rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
    try:
        async with gate:
            ws = await connect(ws_url, max_size=None, ping_interval=None, compression=None, open_timeout=60)
            opened = _text(await asyncio.wait_for(ws.recv(), 30))
            if not opened.startswith("0"):
                raise RuntimeError(f"expected an open packet, got {opened[:40]!r}")
            await ws.send("40" + json.dumps({"token": token}))
            while True:
                msg = _text(await asyncio.wait_for(ws.recv(), 30))
                if msg == "2":
                    await ws.send("3")
                    continue
                if msg.startswith("40"):
                    break
                raise RuntimeError(f"connect refused: {msg[:80]!r}")
            if i > 0:  # the first client reserves the id; the others join the reservation
                await first_done.wait()
            await ws.send("421" + json.dumps(["joinSession", {"sessionId": session, "reserve": True}]))
            while True:
                msg = _text(await asyncio.wait_for(ws.recv(), 30))
                if msg == "2":
                    await ws.send("3")
                    continue
                if msg.startswith("431"):
                    ack = json.loads(msg[3:])
                    if not (ack and isinstance(ack[0], dict) and ack[0].get("ok")):
                        raise RuntimeError(f"join refused: {msg[:120]!r}")
                    break
        if i == 0:
            first_done.set()
        counter[0] += 1
        if counter[0] == counter[1]:
            all_joined.set()
        async for frame in ws:
            now = time.time()
            msg = _text(frame)
            if msg == "2":
                await ws.send("3")
                continue
            if msg.startswith("42"):
                events[msg].append(now)
                if any(m in msg for m in END_MARKERS):
                    break
        done[0] += 1
        await ws.close()
    except Exception as exc:  # counted and reported; one failed client must not stop the others
        failures.append(f"client {i}: {type(exc).__name__}: {exc}")
        if i == 0:
            first_done.set()
        counter[1] -= 1
        if counter[0] >= counter[1]:
            all_joined.set()


async def main(url: str, token: str, session: str, n: int, out: str) -> None:
    events: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    counter = [0, n]  # joined, expected
    done = [0]
    first_done = asyncio.Event()
    all_joined = asyncio.Event()
    gate = asyncio.Semaphore(64)  # connect/handshake at most this many at a time
    tasks = [asyncio.create_task(client(i, url, token, session, asyncio.Event(), all_joined, counter, first_done,
                                        events, failures, done, gate)) for i in range(n)]
    await asyncio.wait_for(all_joined.wait(), 300)
    sys.stdout.write(f"ready {counter[0]}\n")
    sys.stdout.flush()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    except asyncio.TimeoutError:
        failures.append("timeout waiting for every client to see the end")
        for t in tasks:
            t.cancel()
    with open(out, "w") as f:
        json.dump({"clients": n, "joined": counter[0], "finished": done[0], "events": events,
                   "failures": failures[:20], "failed": len(failures)}, f)


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    url, token, session, n, out = sys.argv[1:6]
    asyncio.run(main(url, token, session, int(n), out))
