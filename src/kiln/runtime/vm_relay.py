"""One guest connection to the metadata endpoint, relayed: QEMU's ``guestfwd=…-cmd:`` runs this per
connection with the guest's socket on stdin and stdout; it copies bytes both ways to the instance's
metadata server on 127.0.0.1 until either side closes. Standard library only (run with ``-I -S``)."""

from __future__ import annotations

import os
import socket
import sys
import threading


def _pump_in(server: socket.socket) -> None:
    while data := os.read(0, 65536):
        server.sendall(data)
    server.shutdown(socket.SHUT_WR)


def main(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=30) as server:
        threading.Thread(target=_pump_in, args=(server,), daemon=True).start()
        while data := server.recv(65536):
            os.write(1, data)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
