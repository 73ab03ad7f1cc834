#!/usr/bin/env python3
"""A scripted OpenAI-style SSE server for moeprobe load's unit tests (loopback only).

The model name in the request picks the behaviour, so one server serves every case:
  steady     first token after TTFT_MS, then TOKENS-1 more every ITL_MS, usage, [DONE];
             the reply reads "answer 42 tok tok …" (for the eval check)
  stall      first token after STALL_MS, then like steady
  every10    HTTP 500 on every 10th request (counted per server), else steady
  cut        5 tokens, then the connection closes (no finish_reason, no [DONE])
  malformed  3 tokens, then an event that is not JSON, then the rest
  trickle    SLOW_TOKENS tokens every SLOW_MS (a slow trickle)
  nousage    steady without a usage chunk
  cached     steady, usage reports half the prompt tokens as cached
  tool       a tool call: even requests get_weather({"city": ...}), odd ones broken arguments
--not-openai: every path answers 404 with an HTML page.
Prints the port on the first line of stdout; exits by itself after --lifetime seconds.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TTFT_MS, ITL_MS, TOKENS = 300, 40, 11
STALL_MS = 1000
SLOW_MS, SLOW_TOKENS = 200, 6
PROMPT_TOKENS = 64

lock = threading.Lock()
counter = {"every10": 0, "tool": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the end of the body is the end of the connection
    # Small SSE writes must leave at once: with Nagle on, a write waits for the client's
    # delayed ACK (~40 ms) and the schedule is lost (uvicorn and llama.cpp set TCP_NODELAY too).
    disable_nagle_algorithm = True
    not_openai = False

    def log_message(self, *args):
        pass

    def _html404(self):
        body = b"<html><body>Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.not_openai or self.path != "/v1/models":
            return self._html404()
        body = json.dumps({"object": "list", "data": [{"id": "steady"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def event(self, obj):
        data = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write(("data: " + data + "\n\n").encode())
        self.wfile.flush()

    def chunk(self, chat, text=None, finish=None, tool=None):
        if chat:
            delta = {}
            if text is not None:
                delta["content"] = text
            if tool is not None:
                delta["tool_calls"] = [tool]
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish}
        return {"id": "x", "object": "chat.completion.chunk", "choices": [choice]}

    def do_POST(self):
        if self.not_openai:
            return self._html404()
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        chat = self.path == "/v1/chat/completions"
        mode = req.get("model", "steady")
        t0 = time.monotonic()
        if mode == "every10":
            with lock:
                counter["every10"] += 1
                k = counter["every10"]
            if k % 10 == 0:
                body = b'{"error": {"message": "scripted failure"}}'
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        first, gap, count = TTFT_MS, ITL_MS, TOKENS
        if mode == "stall":
            first = STALL_MS
        elif mode == "trickle":
            first, gap, count = SLOW_MS, SLOW_MS, SLOW_TOKENS
        elif mode == "tool":
            with lock:
                counter["tool"] += 1
                k = counter["tool"]
            time.sleep(first / 1e3)
            args = '{"city": "Paris"}' if k % 2 == 0 else '{"city": '
            self.event(self.chunk(chat, tool={"index": 0, "id": "c1", "type": "function",
                                              "function": {"name": "get_weather", "arguments": ""}}))
            self.event(self.chunk(chat, tool={"index": 0, "function": {"arguments": args}}))
            self.event(self.chunk(chat, finish="tool_calls"))
            self.event("[DONE]")
            return
        for i in range(count):
            # An absolute schedule, so sleep jitter does not accumulate.
            target = t0 + (first + i * gap) / 1e3
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if mode == "cut" and i == 5:
                self.wfile.flush()
                return  # connection closes: no finish_reason, no [DONE]
            if mode == "malformed" and i == 3:
                self.event("{not json")
            text = "answer 42" if i == 0 else " tok"
            self.event(self.chunk(chat, text=text, finish="length" if i == count - 1 else None))
        if mode != "nousage":
            usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": count,
                     "total_tokens": PROMPT_TOKENS + count}
            if mode == "cached":
                usage["prompt_tokens_details"] = {"cached_tokens": PROMPT_TOKENS // 2}
            self.event({"id": "x", "object": "chat.completion.chunk", "choices": [], "usage": usage})
        self.event("[DONE]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--not-openai", action="store_true")
    ap.add_argument("--lifetime", type=float, default=300)
    a = ap.parse_args()
    Handler.not_openai = a.not_openai
    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # clients that time out or hang up on purpose are not errors here

    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    threading.Timer(a.lifetime, lambda: srv.shutdown()).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
