"""kiln's exec agent inside a VM guest: ``kiln instance exec --via serial`` without SSH or a login.

Not imported by kiln: this file is put into the guest and run there by cloud-init's ``bootcmd`` at
every boot (``kiln.runtime.vm_seed``), with the guest's own ``python3`` (cloud-init's: every guest
that runs cloud-init has it), standard library only, Python 3.7 and later.

It serves the virtio-serial port ``org.kiln.exec.0`` (QEMU's other end is the instance's
``exec.sock``), one JSON object a line each way: ``{"id", "ping": true}`` is answered
``{"id", "pong": true}``; ``{"id", "argv", "env", "cwd", "stdin", "timeout"}`` runs ``argv`` and
answers with ``{"id", "stream": "stdout"|"stderr", "data"}`` pieces (base64) then ``{"id", "exit",
"timed_out"}`` (a signal's death as 128 + its number, as a shell says it).
"""

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

PORT = "/dev/virtio-ports/org.kiln.exec.0"
TIMEOUT_EXIT = 124


class Channel:
    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        with self.lock:
            while data:
                try:
                    data = data[os.write(self.fd, data):]
                except OSError:  # the host went away: what it does not read is lost
                    return


def _pump(stream, name, request_id, channel):
    for chunk in iter(lambda: stream.read1(65536), b""):
        channel.send({"id": request_id, "stream": name, "data": base64.b64encode(chunk).decode()})


def _feed(stream, data):
    try:
        stream.write(data)
    except OSError:
        pass
    finally:
        stream.close()


def run(request, channel):
    request_id = request.get("id")
    env = dict(os.environ)
    env.setdefault("HOME", "/root")
    env.update(request.get("env") or {})
    stdin = base64.b64decode(request["stdin"]) if request.get("stdin") is not None else None
    try:
        process = subprocess.Popen(request["argv"], cwd=request.get("cwd") or "/", env=env,
                                   stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        message = "kiln agent: cannot run {!r}: {}\n".format(request.get("argv"), error)
        channel.send({"id": request_id, "stream": "stderr", "data": base64.b64encode(message.encode()).decode()})
        channel.send({"id": request_id, "exit": 127, "timed_out": False})
        return
    pumps = [threading.Thread(target=_pump, args=(process.stdout, "stdout", request_id, channel), daemon=True),
             threading.Thread(target=_pump, args=(process.stderr, "stderr", request_id, channel), daemon=True)]
    if stdin is not None:
        pumps.append(threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True))
    for pump in pumps:
        pump.start()
    timed_out = False
    try:
        code = process.wait(timeout=request.get("timeout"))
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
    for pump in pumps:
        pump.join(timeout=5)
    exit_code = TIMEOUT_EXIT if timed_out else (128 - code if code < 0 else code)
    channel.send({"id": request_id, "exit": exit_code, "timed_out": timed_out})


def main(port=PORT):
    while not os.path.exists(port):
        time.sleep(1)
    channel = Channel(os.open(port, os.O_RDWR))
    buffered = b""
    while True:
        try:
            chunk = os.read(channel.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:  # no host connected: nothing to read until one is
            buffered = b""
            time.sleep(0.2)
            continue
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if not isinstance(request, dict):
                continue
            if request.get("ping"):
                channel.send({"id": request.get("id"), "pong": True})
            else:
                threading.Thread(target=run, args=(request, channel), daemon=True).start()


if __name__ == "__main__":
    main(*sys.argv[1:])
