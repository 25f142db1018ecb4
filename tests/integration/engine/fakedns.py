"""A fake upstream resolver for the embedded DNS server's forwarding: UDP on a loopback
address of the test's choosing, answering one name with one A record (NXDOMAIN for any
other name), in a thread; every question it was asked is kept in `asked`, the addresses
they came from in `peers`.

    with FakeDNS({"some.test.name": "192.0.2.7"}) as fake:
        ...                     # fake.address is a random 127.x.y.z; fake.asked the questions
"""

from __future__ import annotations

import random
import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class FakeDNS:
    def __init__(self, answers: dict[str, str], address: str | None = None) -> None:
        self.answers = {k.rstrip(".").lower(): v for k, v in answers.items()}
        self.asked: list[tuple[str, str]] = []  # (name, type)
        self.peers: set[str] = set()  # the addresses the questions came from
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            self.address = address or (f"127.{random.randrange(1, 255)}."
                                        f"{random.randrange(256)}.{random.randrange(2, 255)}")
            try:
                self.sock.bind((self.address, 53))
                break
            except OSError:
                if address:
                    raise
        else:
            raise OSError("no free loopback address for the fake resolver")
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeDNS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.peers.add(peer[0])
            try:
                query = dns.message.from_wire(data)
            except Exception:  # garbage is dropped, as a resolver drops it
                continue
            reply = dns.message.make_response(query)
            for q in query.question:
                name = q.name.to_text().rstrip(".").lower()
                self.asked.append((name, dns.rdatatype.to_text(q.rdtype)))
                if name not in self.answers:
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                elif q.rdtype == dns.rdatatype.A:
                    reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A",
                                                            self.answers[name]))
            self.sock.sendto(reply.to_wire(), peer)
