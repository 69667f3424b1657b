#!/usr/bin/env python3
"""permessage-deflate on one hop of Codex's Responses WebSocket (issue 13), as it crosses the wire.

A TCP relay on 127.0.0.1:LISTEN in front of 127.0.0.1:TARGET that passes every byte on
unchanged and reads the WebSocket frames going through. When it is stopped (SIGTERM/SIGINT) it
prints, for every upgraded socket, the offered and the answered Sec-WebSocket-Extensions and,
per direction, the messages, the bytes on the wire after the handshake (frames, headers and
masks included) and the bytes they decode to (compressed messages, RSV1 set, are inflated per
RFC 7692 with the negotiated context takeover); every client message with its type.

    python3 bench/ws_deflate.py LISTEN TARGET LABEL      (bench/ws_deflate.sh runs it)
"""
import json
import signal
import socket
import struct
import sys
import threading
import zlib

LISTEN, TARGET, LABEL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
sockets = []  # one dict per upgraded connection


class Frames:
    """Reassembles and inflates WebSocket messages from one direction's byte stream."""

    def __init__(self):
        self.buf = b""
        self.parts = b""
        self.part_wire = 0
        self.compressed = False
        self.keep_context = True
        self.inflater = None
        self.wire = 0
        self.messages = []  # (decoded bytes, wire bytes, compressed?)

    def feed(self, data):
        self.wire += len(data)
        self.buf += data
        while True:
            b = self.buf
            if len(b) < 2:
                return
            fin, rsv1, op = b[0] & 0x80, b[0] & 0x40, b[0] & 0x0F
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
                if op != 0x0:
                    self.compressed = bool(rsv1)
                self.parts += payload
                self.part_wire += at + n
                if fin:
                    self.messages.append((self.decode(self.parts), self.part_wire, self.compressed))
                    self.parts, self.part_wire = b"", 0

    def decode(self, payload):
        if not self.compressed:
            return payload
        if self.inflater is None or not self.keep_context:
            self.inflater = zlib.decompressobj(-15)
        return self.inflater.decompress(payload + b"\x00\x00\xff\xff")


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


def headers(head):
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}


def serve(client):
    upstream = socket.create_connection(("127.0.0.1", TARGET))
    state = {"head": b"", "resp": b"", "up": Frames(), "down": Frames(), "ws": None}

    def from_client(data):
        if state["ws"] is None:
            state["head"] += data
            if b"\r\n\r\n" not in state["head"]:
                return
            head, rest = state["head"].split(b"\r\n\r\n", 1)
            line, hdr = headers(head)
            if hdr.get("upgrade", "").lower() == "websocket":
                state["ws"] = {"request": line, "offered": hdr.get("sec-websocket-extensions")}
                with lock:
                    sockets.append(state)
                state["pending"] = rest
            else:
                state["ws"] = False
        elif state["ws"]:
            if "status" in state["ws"]:
                state["up"].feed(data)
            else:
                state["pending"] = state.get("pending", b"") + data

    def from_upstream(data):
        if not state["ws"]:
            return
        if "status" not in state["ws"]:
            state["resp"] += data
            if b"\r\n\r\n" not in state["resp"]:
                return
            head, rest = state["resp"].split(b"\r\n\r\n", 1)
            line, hdr = headers(head)
            answered = hdr.get("sec-websocket-extensions") or ""
            state["ws"]["status"] = line
            state["ws"]["answered"] = answered or None
            state["up"].keep_context = "client_no_context_takeover" not in answered
            state["down"].keep_context = "server_no_context_takeover" not in answered
            state["up"].feed(state.pop("pending", b""))
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
            print(f"{LABEL} socket {n}: {s['ws']['request']} -> {s['ws'].get('status')}")
            print(f"  offered:  {s['ws']['offered']}")
            print(f"  answered: {s['ws'].get('answered')}")
            for name, side in (("client->server", s["up"]), ("server->client", s["down"])):
                msgs = side.messages
                if not msgs:
                    continue
                decoded = sum(len(m[0]) for m in msgs)
                print(f"  {name}: messages={len(msgs)} compressed={sum(m[2] for m in msgs)} "
                      f"decoded_bytes={decoded} wire_bytes={side.wire}")
                if name == "client->server":
                    for m, wire, _ in msgs:
                        kind = json.loads(m).get("type", "?") if m[:1] == b"{" else "?"
                        print(f"    {kind}: decoded_bytes={len(m)} wire_bytes={wire}")
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
