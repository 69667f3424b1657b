#!/usr/bin/env python3
"""What permessage-deflate would save on Codex's Responses WebSocket (issue 13).

A TCP relay on 127.0.0.1:LISTEN in front of 127.0.0.1:TARGET (the gateway) that reads the
WebSocket frames going through it (nothing is negotiated on the relayed hop: the gateway never
accepts an extension) and, when it is stopped (SIGTERM/SIGINT), prints for every socket the
client's offered Sec-WebSocket-Extensions and, per direction, the message bytes as sent and as
permessage-deflate (RFC 7692, raw DEFLATE, sync flush, the 4 trailing bytes dropped) would send
them: with context takeover (the default both sides offer) and without.

    python3 bench/ws_deflate.py LISTEN TARGET      (bench/ws_deflate.sh runs it)
"""
import json
import signal
import socket
import struct
import sys
import threading
import zlib

LISTEN, TARGET = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
sockets = []  # one dict per upgraded connection


def deflated(messages, takeover):
    out = 0
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    for m in messages:
        if not takeover:
            c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        data = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        out += len(data) - 4  # the 00 00 ff ff tail is not sent
    return out


class Frames:
    """Reassembles WebSocket messages from one direction's byte stream."""

    def __init__(self):
        self.buf = b""
        self.parts = b""
        self.messages = []

    def feed(self, data):
        self.buf += data
        while True:
            b = self.buf
            if len(b) < 2:
                return
            fin, op = b[0] & 0x80, b[0] & 0x0F
            masked, n = b[1] & 0x80, b[1] & 0x7F
            at = 2
            if n == 126:
                if len(b) < 4:
                    return
                n, at = struct.unpack(">H", b[2:4])[0], 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, at = struct.unpack(">Q", b[2:10])[0], 10
            mask = b""
            if masked:
                if len(b) < at + 4:
                    return
                mask, at = b[at:at + 4], at + 4
            if len(b) < at + n:
                return
            payload = b[at:at + n]
            if masked:
                payload = bytes(x ^ mask[i % 4] for i, x in enumerate(payload))
            self.buf = b[at + n:]
            if op in (0x1, 0x2, 0x0):
                self.parts += payload
                if fin:
                    self.messages.append(self.parts)
                    self.parts = b""


def pipe(src, dst, on_data):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            on_data(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client):
    upstream = socket.create_connection(("127.0.0.1", TARGET))
    state = {"head": b"", "resp": b"", "up": Frames(), "down": Frames(), "ws": None}

    def from_client(data):
        if state["ws"] is None:
            state["head"] += data
            if b"\r\n\r\n" not in state["head"]:
                return
            head, rest = state["head"].split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            hdr = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            if hdr.get("upgrade", "").lower() == "websocket":
                state["ws"] = {"request": lines[0],
                               "extensions": hdr.get("sec-websocket-extensions")}
                with lock:
                    sockets.append(state)
                state["up"].feed(rest)
            else:
                state["ws"] = False
        elif state["ws"]:
            state["up"].feed(data)

    def from_upstream(data):
        if not state["ws"]:
            return
        if "status" not in state["ws"]:
            state["resp"] += data
            if b"\r\n\r\n" not in state["resp"]:
                return
            head, rest = state["resp"].split(b"\r\n\r\n", 1)
            state["ws"]["status"] = head.split(b"\r\n")[0].decode("latin-1")
            state["down"].feed(rest)
        else:
            state["down"].feed(data)

    t = threading.Thread(target=pipe, args=(upstream, client, from_upstream), daemon=True)
    t.start()
    pipe(client, upstream, from_client)
    t.join()


def report(*_):
    with lock:
        for n, s in enumerate(sockets, 1):
            print(f"socket {n}: {s['ws']['request']} -> {s['ws'].get('status')}")
            print(f"  offered Sec-WebSocket-Extensions: {s['ws']['extensions']}")
            for name, side in (("client->gateway", s["up"]), ("gateway->client", s["down"])):
                msgs = side.messages
                raw = sum(len(m) for m in msgs)
                if not msgs:
                    continue
                print(f"  {name}: messages={len(msgs)} bytes={raw} "
                      f"deflate_takeover={deflated(msgs, True)} "
                      f"deflate_no_takeover={deflated(msgs, False)}")
                if name == "client->gateway":
                    for m in msgs:
                        kind = json.loads(m).get("type", "?") if m[:1] == b"{" else "?"
                        print(f"    {kind}: bytes={len(m)} deflate_alone={deflated([m], False)}")
    sys.stdout.flush()
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
signal.signal(signal.SIGINT, report)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", LISTEN))
srv.listen(64)
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
