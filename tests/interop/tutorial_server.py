"""The classic tutorial server: upper-cases what one client sends.

Usage: python3 tutorial_server.py HOST PORT
Prints "listening on PORT" (the real port when PORT is 0) once bound, serves
one client until it closes, then exits.
"""
import socket
import sys


def server_program(host, port):
    server_socket = socket.socket()
    server_socket.bind((host, port))
    server_socket.listen(5)
    print("listening on", server_socket.getsockname()[1], flush=True)
    conn, address = server_socket.accept()
    print("Connection from: " + str(address), flush=True)
    while True:
        data = conn.recv(1024).decode()
        if not data:
            break
        print("from connected user: " + str(data), flush=True)
        data = str(data).upper()
        conn.send(data.encode())
    conn.close()


if __name__ == "__main__":
    server_program(sys.argv[1], int(sys.argv[2]))
