"""The classic tutorial client: sends each line, prints the upper-cased reply.

Usage: python3 tutorial_client.py HOST PORT
Reads lines from stdin (with a "--->: " prompt on a terminal); "exit" or the
end of input closes the connection.
"""
import socket
import sys


def client_program(host, port):
    client_socket = socket.socket()
    client_socket.settimeout(10)
    client_socket.connect((host, port))
    prompt = "--->: " if sys.stdin.isatty() else ""
    while True:
        if prompt:
            print(prompt, end="", flush=True)
        message = sys.stdin.readline()
        if not message or message.strip() == "exit":
            break
        client_socket.send(message.rstrip("\n").encode())
        data = client_socket.recv(1024).decode()
        print(data, flush=True)
    client_socket.close()


if __name__ == "__main__":
    client_program(sys.argv[1], int(sys.argv[2]))
