// client_socket.h — finding the socket of an HTTP request's connection, and asking it
// whether the client has gone away.
//
// cpp-httplib 0.11 tells a plain (non-streamed) handler nothing about its connection, and
// a response's status line is written before any content provider runs, so a handler
// that must choose its status after a long computation cannot learn of a disconnect
// through a DataSink. It does know both endpoints of the connection (Request::local_*,
// remote_*), which identify the accepted socket among the process's descriptors.
//
// Ownership: the descriptor stays httplib's; it is valid while the handler runs (the
// connection is closed only after the handler returns). Nothing here closes it.
#pragma once
#include <string>

namespace unmask::server {

struct ConnectionEnds {
  std::string local_addr, remote_addr;  // numeric hosts, as httplib reports them
  int local_port = -1, remote_port = -1;
};

// The descriptor of the connected socket with these ends, or -1 when there is none
// (e.g. the connection was already closed).
int find_connection_socket(const ConnectionEnds& ends);

// True when the peer has shut its side down or the connection failed (POLLRDHUP,
// POLLHUP, POLLERR). A client that half-closes after sending its request counts as gone:
// HTTP/1.1 clients (curl, browsers, the OpenAI clients) do not do that.
bool peer_closed(int socket);

}  // namespace unmask::server
