#!/usr/bin/env python3
"""Host side of virtio-console port 0 for the hostile tests.

console_client.py SOCKET SECONDS: connects to the VMM's unix socket (retrying until it
exists), sends "hostile-ping\\n" every 20 ms and throws away what the guest writes; when the VMM
closes the connection it connects again. Ends after SECONDS or when run.sh kills it."""
import socket
import sys
import time


def main():
    path, limit = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + limit
    while time.monotonic() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            s.close()
            time.sleep(0.02)
            continue
        s.setblocking(False)
        try:
            while time.monotonic() < end:
                try:
                    s.send(b"hostile-ping\n")
                except BlockingIOError:
                    pass  # the guest is not reading: fine
                try:
                    if s.recv(65536) == b"":
                        break  # the VMM closed the connection
                except BlockingIOError:
                    pass
                time.sleep(0.02)
        except OSError:
            pass  # reset by the VMM
        s.close()


if __name__ == "__main__":
    main()
