"""The classic tutorial server: upper-cases what one client sends.

Usage: python3 tutorial_server.py HOST PORT [--forever]
Prints "listening on PORT" (the real port when PORT is 0) once bound, serves
one client until it closes, then exits: the tutorial's server, unchanged.

With --forever it accepts the next client after each one, still one at a
time, and a client whose bytes crash the tutorial's loop (invalid UTF-8
raises UnicodeDecodeError in `decode()`) only loses its own connection, as
if the tutorial's server were started again after each crash. That is the
variant `upcase conform` can test (README.md, "What conform finds in the
tutorial's server"): the tutorial's own server takes one connection only.
"""
import socket
import sys
import traceback


def serve_client(conn, address):
    """The tutorial's loop, word for word."""
    print("Connection from: " + str(address), flush=True)
    while True:
        data = conn.recv(1024).decode()
        if not data:
            break
        print("from connected user: " + str(data), flush=True)
        data = str(data).upper()
        conn.send(data.encode())
    conn.close()


def server_program(host, port, forever):
    server_socket = socket.socket()
    server_socket.bind((host, port))
    server_socket.listen(5)
    print("listening on", server_socket.getsockname()[1], flush=True)
    while True:
        conn, address = server_socket.accept()
        if not forever:
            serve_client(conn, address)
            return
        try:
            serve_client(conn, address)
        except Exception:
            traceback.print_exc()
            conn.close()


if __name__ == "__main__":
    server_program(sys.argv[1], int(sys.argv[2]), "--forever" in sys.argv[3:])
