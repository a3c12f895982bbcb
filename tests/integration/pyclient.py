#!/usr/bin/env python3
"""Autobahn|Python (Debian python3-autobahn) client for the end-to-end tests.

Joins REALM with ticket auth, subscribes to TOPIC with get_retained, prints one JSON line
per step on stdout ("joined", "event", ...) and, after the retained page, waits for one
page that is not retained (the test bumps once it has read the first event), then leaves.
Autobahn|Python checks topics on the client side with its loose URI rule (no whitespace,
'#' or '.'), so a path such as "/users/1" goes through but "/users/1.json" would not.
Usage: pyclient.py URL REALM TOKEN TOPIC json|msgpack
Exits 0 on success, 1 on any error or after 20 s.
"""
import asyncio
import base64
import json
import sys

from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import SubscribeOptions

URL, REALM, TOKEN, TOPIC, SER = sys.argv[1:6]
RESULT = {"ok": False}


def say(**obj):
    print(json.dumps(obj), flush=True)


def plain(body):
    # msgpack bin arrives as bytes; send it to the test as base64 so JSON can carry it.
    if isinstance(body, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(body)).decode()}
    return body


class Client(ApplicationSession):
    def onConnect(self):
        self.join(self.config.realm, ["ticket"], authid="pyclient")

    def onChallenge(self, challenge):
        if challenge.method != "ticket":
            raise Exception("unexpected challenge " + challenge.method)
        return TOKEN

    async def onJoin(self, details):
        say(step="joined", authmethod=details.authmethod, authrole=details.authrole,
            session=details.session)
        queue = asyncio.Queue()

        def on_event(status=None, headers=None, body=None, details=None, **rest):
            queue.put_nowait(dict(status=status, headers=headers, body=plain(body),
                                  retained=bool(details.retained), topic=details.topic))

        try:
            await self.subscribe(on_event, TOPIC,
                                 options=SubscribeOptions(get_retained=True, details_arg="details"))
            first = await asyncio.wait_for(queue.get(), 10)
            say(step="event", **first)
            while True:
                ev = await asyncio.wait_for(queue.get(), 10)
                if not ev["retained"]:
                    say(step="event", **ev)
                    break
            RESULT["ok"] = True
        except Exception as e:  # reported to the test, which fails with it
            say(step="error", error=repr(e))
        self.leave()

    def onDisconnect(self):
        asyncio.get_event_loop().stop()


def main():
    serializer = JsonSerializer() if SER == "json" else MsgPackSerializer()
    runner = ApplicationRunner(URL, REALM, serializers=[serializer])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.call_later(20, loop.stop)
    runner.run(Client, start_loop=True, log_level="critical")
    sys.exit(0 if RESULT["ok"] else 1)


if __name__ == "__main__":
    main()
