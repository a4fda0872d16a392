#!/usr/bin/env python3
"""Opens N lobby members that stop reading after joining: the stalled
readers of the slow-consumer measurement in docs/reliability.md.

usage: stalled_members.py WS_URL RUN_ID LOBBIES N HOLD_SECONDS
(joins lobbies bench-<RUN_ID>-<i % LOBBIES>, as lobbyd-bench --run-id names them;
needs the `websockets` package, e.g. the venv scripts/soak.sh makes)."""
import asyncio, json, sys
import websockets
url, run_id, lobbies, n, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
async def one(i):
    ws = await websockets.connect(url, max_queue=1)
    await ws.send(json.dumps({"event":"login","data":{"username":f"stall{i}"},"ack":1}))
    await ws.recv()
    await ws.send(json.dumps({"event":"connect_lobby","data":{"lobby":{"id":f"bench-{run_id}-{i % lobbies}"}},"ack":2}))
    await ws.recv()
    # Stop reading: pause the transport so the kernel buffers fill.
    ws.transport.pause_reading()
    return ws
async def main():
    socks = [await one(i) for i in range(n)]
    print(f"stalled {len(socks)} members", flush=True)
    await asyncio.sleep(hold)
asyncio.run(main())
